// Generation on a real model (a GGUF file or a Hugging Face directory): `rows` plain-text prompts
// sampled at temperature 1 for exactly `newTokens` tokens each (no end-of-sequence stop), the same
// work as Benchmarks/peers/real/bench_trl_real.py's `generate` mode asks of transformers. Run with
// `NudgeBench --only realgen --model FILE --prompts generate.txt [--rows 16] [--new-tokens 32] [--rounds 4]
// [--weights bf16]`; with bf16 weights it also measures how far they move the sampled tokens'
// log-probs and greedy decoding from the Float32 model's.

import Foundation
import NudgeLM
import NudgeTensor

extension EngineBenchmarks {
    /// Seconds per `generate` call (median after the first) and tokens per second.
    public static func realModelGeneration(model path: String, prompts promptFile: String, rows: Int = 16, newTokens: Int = 32,
                                           rounds: Int = 4, weights: GenerationWeights = .float32)
        throws -> (secondsPerCall: [Double], tokensPerSecond: Double, promptTokens: Int, fidelity: RolloutFidelity?)
    {
        let (model, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: URL(fileURLWithPath: path))
        model.eval()
        let text = try String(contentsOfFile: promptFile, encoding: .utf8)
        let prompts = text.components(separatedBy: "\nAnswer:\n").prefix(rows)
            .map { tokenizer.encode($0.trimmingCharacters(in: .whitespacesAndNewlines) + "\nAnswer:", addSpecialTokens: false) }
        var config = GenerationConfig()
        config.maxNewTokens = newTokens
        config.weights = weights
        var seconds: [Double] = []
        for round in 0..<max(rounds, 2) {
            config.seed = UInt64(round)
            let start = DispatchTime.now().uptimeNanoseconds
            let result = generate(model: model, prompts: prompts, config: config)
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            precondition(result.tokens.allSatisfy { $0.count == newTokens }, "a row stopped early")
        }
        let rest = seconds.dropFirst().sorted()
        let median = rest.count % 2 == 1 ? rest[rest.count / 2] : (rest[rest.count / 2 - 1] + rest[rest.count / 2]) / 2
        let fidelity = weights == .float32 ? nil : rolloutFidelity(model: model, prompts: prompts, config: config)
        return (seconds, Double(prompts.count * newTokens) / median, prompts.map(\.count).reduce(0, +), fidelity)
    }

    /// How far generating with `config.weights` is from the Float32 model.
    public struct RolloutFidelity: Sendable {
        /// Mean and largest |log p_weights − log p_float32| over the sampled tokens (temperature 1).
        public var meanLogProbDifference, maxLogProbDifference: Double
        /// Greedy tokens equal to Float32 greedy decoding's before the first difference, over all rows.
        public var greedyTokensAgreeing, greedyTokens: Int
    }

    /// Samples once with `config` and re-scores the tokens with the Float32 model; decodes greedily both ways.
    static func rolloutFidelity(model: any CausalLanguageModel, prompts: [[Int]], config: GenerationConfig) -> RolloutFidelity {
        var sampled = config
        sampled.seed = 12345
        let result = generate(model: model, prompts: prompts, config: sampled)
        // Right-padded prompt + completion rows, completion tokens marked.
        let rows = zip(prompts, result.tokens).map { $0 + $1 }, length = rows.map(\.count).max() ?? 0
        let batch = TokenBatch(ids: rows.map { $0 + Array(repeating: 0, count: length - $0.count) },
                               attentionMask: rows.map { Array(repeating: true, count: $0.count) + Array(repeating: false, count: length - $0.count) })
        let marks = zip(prompts, result.tokens).map { p, c in
            Array(repeating: false, count: p.count) + Array(repeating: true, count: c.count) + Array(repeating: false, count: length - p.count - c.count)
        }
        let float32 = withoutGradients { completionLogProbs(model: model, batch: batch, completionMask: marks).perToken }
        var differences: [Double] = []
        for (r, (p, lp)) in zip(prompts, result.logProbs).enumerated() {
            for (i, value) in lp.enumerated() { differences.append(abs(Double(value) - Double(float32[r, p.count + i - 1]))) }
        }
        var greedy = config
        greedy.temperature = 0
        let low = generate(model: model, prompts: prompts, config: greedy)
        greedy.weights = .float32
        let exact = generate(model: model, prompts: prompts, config: greedy)
        let agreeing = zip(low.tokens, exact.tokens).map { a, b in zip(a, b).prefix { $0 == $1 }.count }.reduce(0, +)
        return RolloutFidelity(meanLogProbDifference: differences.reduce(0, +) / Double(max(differences.count, 1)),
                               maxLogProbDifference: differences.max() ?? 0,
                               greedyTokensAgreeing: agreeing, greedyTokens: exact.tokens.map(\.count).reduce(0, +))
    }
}
