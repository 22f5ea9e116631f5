// QLoRA on the CPU: a real model's LoRA-wrapped base held in Float32 against the same base with
// its frozen projections in bf16 or quantized to Q8_0 (`quantizeFrozenBase(of:to:)`) and, for a GGUF whose
// projections are stored Q4_1 or Q8_0, kept as the file's own blocks (`quantizeFrozenBase(of:from:)`):
// completion log-probs, the bytes
// the weights take, and the time of one forward pass and of one training step (forward + backward
// to the adapters); then the bf16 kernels and a bf16 frozen model (`bf16Comparison`). Run with
// `NudgeBench --only qlora --gguf path/to/model.gguf`.

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

extension EngineBenchmarks {
    /// The comparison as printable lines.
    public static func qloraComparison(path: String, rounds: Int = 3) throws -> [String] {
        let prompts = [
            ("The capital of France is", " Paris, a city known for its museums and its food."),
            ("def fibonacci(n):", "\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)"),
            ("Question: what is 12 times 7?\nAnswer:", " 12 times 7 is 84."),
            ("Once upon a time, in a small village,", " there lived an old baker who woke before dawn every day."),
        ]
        var lines: [String] = []
        var results: [(name: String, logProbs: [Float], mask: [Float], bytes: Int, forward: Double, step: Double)] = []
        let url = URL(fileURLWithPath: path)
        for base in ["Float32 base", "bf16 base", "Q8_0 base"] + (LanguageModelLoader.isGGUF(url) ? ["GGUF blocks base"] : []) {
            let (model, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: url)
            try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targetModules:
                ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
            var formats = ""
            if base == "bf16 base" { quantizeFrozenBase(of: model, to: .bf16) }
            if base == "Q8_0 base" { quantizeFrozenBase(of: model, to: .q8_0) }
            if base == "GGUF blocks base" {
                let kept = quantizeFrozenBase(of: model, from: try GGUFFile(url: url))
                formats = " (" + Dictionary(grouping: kept, by: \.format).map { "\($0.value.count) \($0.key.rawValue)" }.sorted().joined(separator: ", ") + ")"
            }
            model.eval()
            // Right-padded batch; the mask marks completion tokens only.
            let encoded = prompts.map { (tokenizer.encode($0.0, addSpecialTokens: false), tokenizer.encode($0.0 + $0.1, addSpecialTokens: false)) }
            let length = encoded.map(\.1.count).max()!
            let ids = encoded.map { $0.1 + Array(repeating: 0, count: length - $0.1.count) }
            let completion = encoded.map { p in (0..<length).map { $0 >= p.0.count && $0 < p.1.count } }
            let batch = TokenBatch(ids: ids)
            let logProbs = withoutGradients { completionLogProbs(model: model, batch: batch, completionMask: completion) }
            var bytes = model.parameters().tensors.reduce(0) { $0 + $1.count * 4 }
            for (_, layer) in loraLayers(in: model) { bytes += layer.quantizedBase?.byteCount ?? 0 }
            func quantizedLinears(_ m: Module) -> Int {
                m.items().children.reduce(0) { $0 + (($1.1 as? QuantizedLinear)?.quantizedWeight.byteCount ?? quantizedLinears($1.1)) }
            }
            bytes += quantizedLinears(model)
            // The LoRA-wrapped base projections alone (every projection is targeted).
            let projectionBytes = loraLayers(in: model).reduce(0) { $0 + ($1.layer.quantizedBase?.byteCount ?? $1.layer.weight.count * 4) }
            let forward = timePerUnit(repeats: rounds, minSeconds: 0, warmup: 1) { _ = withoutGradients { model(batch) } }.median
            model.train()
            let step = timePerUnit(repeats: rounds, minSeconds: 0, warmup: 1) {
                _ = valueAndGrad(model) { m in causalLanguageModelLoss(logits: m(batch), ids: ids, lossMask: completion) }
            }.median
            results.append((base, logProbs.perToken.scalars, logProbs.mask.scalars, bytes, forward, step))
            lines.append(String(format: "%@%@: base projections %.1f MB, all weights %.1f MB, forward (%d×%d tokens) %.1f ms, forward+backward %.1f ms",
                                base, formats, Double(projectionBytes) / 1e6, Double(bytes) / 1e6, ids.count, length, forward * 1e3, step * 1e3))
        }
        let a = results[0]
        for b in results.dropFirst() {
            var maxDiff: Float = 0, sum: Double = 0, count = 0
            for i in a.logProbs.indices where a.mask[i] != 0 {
                let d = abs(a.logProbs[i] - b.logProbs[i])
                maxDiff = max(maxDiff, d)
                sum += Double(d)
                count += 1
            }
            lines.append(String(format: "%@ against the Float32 base: completion log-probs over %d tokens: max |Δ| %.4f, mean |Δ| %.4f (nats); all weights %.2f× smaller",
                                b.name, count, maxDiff, sum / Double(max(count, 1)), Double(a.bytes) / Double(b.bytes)))
        }
        return lines + (try bf16Comparison(path: path, rounds: rounds))
    }
}
