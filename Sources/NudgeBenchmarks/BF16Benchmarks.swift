// bf16 frozen weights on a real model: the bf16 kernels (AVX512_BF16 dot products on x rounded to
// bf16, and the widening AVX-512 / AVX2 ones on Float32 x) against the Float32 and Q8_0 products on
// the model's projection shapes; then the whole frozen model with its projections in bf16 (and
// Q8_0) against Float32: greedy decoding agreement on a short chat, the log-prob difference on
// sampled completions, and decoding tokens/s at batch 1 and 16. Part of `NudgeBench --only qlora`.

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

extension EngineBenchmarks {
    /// The bf16 measurements as printable lines.
    public static func bf16Comparison(path: String, rounds: Int = 3, newTokens: Int = 32) throws -> [String] {
        let url = URL(fileURLWithPath: path)
        var lines: [String] = ["bf16 kernels: active \(BF16Kernel.active.rawValue), threads \(Engine.threads)"]
        let c = try LanguageModelLoader.loadWithTokenizer(path: url).0.configuration
        // The product x·Wᵀ on the model's MLP shapes (up: hidden → intermediate, down: back).
        for (n, k) in [(c.intermediateSize, c.hiddenSize), (c.hiddenSize, c.intermediateSize)] {
            var rng = RandomGenerator(seed: 7)
            let w = Tensor.normal([n, k], std: 0.02, using: &rng)
            let b = QuantizedMatrix(quantizing: w, format: .bf16), q = QuantizedMatrix(quantizing: w, format: .q8_0)
            for m in [1, 4, 16] {
                let x = Tensor.normal([m, k], using: &rng)
                func time(_ body: () -> Void) -> Double { timePerUnit(repeats: 5, minSeconds: 0.05, warmup: 2, body).median }
                var parts = [String(format: "Float32 %.1f µs", time { _ = withoutGradients { linear(x, weight: w, bias: nil) } } * 1e6),
                             String(format: "Q8_0 %.1f µs", time { _ = withoutGradients { linear(x, weight: q, bias: nil) } } * 1e6),
                             String(format: "bf16 linear %.1f µs", time { _ = withoutGradients { linear(x, weight: b, bias: nil) } } * 1e6)]
                let exact = b.bf16Product(x, kernel: .portable).scalars
                for kernel in BF16Kernel.allCases where kernel.isSupported && kernel != .portable {
                    let t = time { _ = b.bf16Product(x, kernel: kernel) }
                    let got = b.bf16Product(x, kernel: kernel).scalars
                    let scale = exact.map(abs).max() ?? 1
                    let err = zip(got, exact).map { abs($0 - $1) }.max() ?? 0
                    parts.append(String(format: "bf16 %@ %.1f µs (%.1f GB/s of weights, max |Δ| %.1e of %.2f)", kernel.rawValue, t * 1e6,
                                        Double(n * k * 2) / t / 1e9, err, scale))
                }
                lines.append("  x·Wᵀ \(m)×\(k) · (\(n)×\(k))ᵀ: " + parts.joined(separator: ", "))
            }
        }

        // Whole frozen models: Float32, bf16 and Q8_0 projections (embeddings, norms and head stay Float32).
        var models: [(name: String, model: any CausalLanguageModel)] = []
        var tokenizer: (any Tokenizer)!
        for (name, format) in [("Float32", WeightQuantization?.none), ("bf16", .bf16), ("Q8_0", .q8_0)] {
            let (model, t) = try LanguageModelLoader.loadWithTokenizer(path: url)
            tokenizer = t
            model.freeze()
            model.eval()
            if let format { quantizeFrozenBase(of: model, to: format) }
            models.append((name, model))
        }
        // A short chat in ChatML (SmolLM2-Instruct's template, with its default system prompt).
        let chat = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nWhat is the capital of France, and what is it known for?<|im_end|>\n<|im_start|>assistant\n"
        let prompt = tokenizer.encode(chat, addSpecialTokens: false)
        var greedy = GenerationConfig(maxNewTokens: newTokens, temperature: 0)
        greedy.eosTokenID = nil  // the full length for every model, so the comparison covers N tokens
        let greedyTokens = models.map { generate(model: $0.model, prompts: [prompt], config: greedy).tokens[0] }
        for (i, entry) in models.enumerated().dropFirst() {
            let same = zip(greedyTokens[0], greedyTokens[i]).prefix { $0 == $1 }.count
            lines.append("greedy decoding, \(entry.name) frozen model vs Float32: first \(same) of \(newTokens) tokens equal"
                + (same < newTokens ? " (Float32: \(tokenizer.decode(greedyTokens[0], skipSpecialTokens: true).debugDescription), \(entry.name): \(tokenizer.decode(greedyTokens[i], skipSpecialTokens: true).debugDescription))" : ""))
        }
        lines.append("  Float32 greedy: \(tokenizer.decode(greedyTokens[0], skipSpecialTokens: true).debugDescription)")

        // Sampled completions (temperature 1, from the Float32 model) and the greedy one, scored by every model.
        let samples = 8
        var sampling = GenerationConfig(maxNewTokens: newTokens, temperature: 1, seed: 11)
        sampling.eosTokenID = nil
        let sampled = generate(model: models[0].model, prompts: Array(repeating: prompt, count: samples), config: sampling).tokens + [greedyTokens[0]]
        let ids = sampled.map { prompt + $0 }
        let mask = sampled.map { s in Array(repeating: false, count: prompt.count) + Array(repeating: true, count: s.count) }
        let scores = models.map { entry in withoutGradients { completionLogProbs(model: entry.model, batch: TokenBatch(ids: ids), completionMask: mask) } }
        let base = scores[0].perToken.scalars, counted = scores[0].mask.scalars
        for (i, entry) in models.enumerated().dropFirst() {
            let other = scores[i].perToken.scalars
            let diffs = counted.indices.filter { counted[$0] != 0 }.map { Double(abs(base[$0] - other[$0])) }
            let sums = zip(scores[0].sums.scalars, scores[i].sums.scalars).map { Double(abs($0 - $1)) }
            lines.append(String(format: "%@ frozen model vs Float32, %d sampled + 1 greedy completions × %d tokens: per-token log-prob max |Δ| %.4f, mean |Δ| %.4f nats; per-sequence sum mean |Δ| %.4f nats",
                                entry.name, samples, newTokens, diffs.max() ?? 0, diffs.reduce(0, +) / Double(max(diffs.count, 1)),
                                sums.reduce(0, +) / Double(max(sums.count, 1))))
        }

        // Decoding speed: greedy, every row the chat prompt, newTokens new tokens per row.
        for batch in [1, 16] {
            var parts: [String] = []
            for entry in models {
                let t = timePerUnit(repeats: max(rounds - 1, 1), minSeconds: 0, warmup: 1) {
                    _ = generate(model: entry.model, prompts: Array(repeating: prompt, count: batch), config: greedy)
                }.median
                parts.append(String(format: "%@ %.1f tokens/s", entry.name, Double(batch * newTokens) / t))
            }
            lines.append("decoding, batch \(batch), \(prompt.count)-token prompt + \(newTokens) new tokens (prefill included): " + parts.joined(separator: ", "))
        }
        return lines
    }
}
