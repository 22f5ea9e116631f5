// Held-out evaluation for verifiable tasks: greedy decoding (or sampling) and the exact-answer check,
// the number a GRPO run on a built-in task is judged by.

import Foundation
import NudgeLM
import NudgeTensor

/// The fraction of `rows` (verifiable rows) whose decoded completion gives the reference answer.
public func exactMatchAccuracy(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                               rows: [DatasetRow], maxNewTokens: Int = 16, batchSize: Int = 64, temperature: Float = 0,
                               seed: UInt64 = 0) throws -> Double {
    let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, template: template, limits: TokenLimits(model: model), maxNewTokens: maxNewTokens)
    let config = GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxNewTokens, temperature: temperature, seed: seed)
    var correct = 0
    for start in stride(from: 0, to: prompts.count, by: batchSize) {
        let chunk = Array(prompts[start..<min(start + batchSize, prompts.count)])
        let rollout = try Rollout.sample(model: model, tokenizer: tokenizer, prompts: chunk, repeats: 1, generation: config)
        correct += try ExactAnswerReward().scores(rollout.samples).filter { $0 == 1 }.count
    }
    return Double(correct) / Double(max(prompts.count, 1))
}

/// The unbiased pass@k estimate from n samples of which c are correct (Chen et al. 2021):
/// 1 − C(n − c, k) / C(n, k), computed as a running product.
public func passAtK(samples n: Int, correct c: Int, k: Int) -> Double {
    precondition(k >= 1 && k <= n && c >= 0 && c <= n, "pass@k needs 1 ≤ k ≤ n and 0 ≤ c ≤ n")
    if n - c < k { return 1 }
    if c == 0 { return 0 }
    var allWrong = 1.0
    for i in (n - c + 1)...n { allWrong *= 1 - Double(k) / Double(i) }
    return 1 - allWrong
}

/// What `evaluateVerifiable` measured on held-out verifiable rows.
public struct VerifiableEvaluation: Sendable {
    public var rows: Int
    /// Greedy exact-match accuracy.
    public var greedyAccuracy: Double
    /// Mean completion length of the greedy completions, in tokens (EOS included).
    public var greedyMeanLength: Double
    /// The mean of `gold` over the greedy completions, when a gold reward was given.
    public var greedyGold: Double?
    /// Samples per prompt at `temperature` (0: none were drawn).
    public var samplesPerPrompt: Int
    public var temperature: Float
    /// The fraction of all samples that are correct.
    public var sampledAccuracy: Double?
    /// pass@k for k = 1, 2, 4, … ≤ samplesPerPrompt, averaged over prompts.
    public var passAtK: [(k: Int, value: Double)]
    /// The first greedy completions, for display.
    public var examples: [(prompt: String, completion: String, answer: String?, correct: Bool)]

    /// The numbers as named metrics (`eval/…`).
    public var metrics: [(String, Double)] {
        var m: [(String, Double)] = [("eval/accuracy", greedyAccuracy), ("eval/mean_length", greedyMeanLength)]
        if let g = greedyGold { m.append(("eval/gold", g)) }
        if let s = sampledAccuracy { m.append(("eval/sampled_accuracy", s)) }
        m += passAtK.map { ("eval/pass@\($0.k)", $0.value) }
        return m
    }
}

/// Greedy exact-match accuracy on `rows` (verifiable rows), the mean gold reward when `gold` is
/// given, and with `samplesPerPrompt` > 0 sampled accuracy and pass@k at `temperature`.
public func evaluateVerifiable(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                               rows: [DatasetRow], maxNewTokens: Int, samplesPerPrompt: Int = 0, temperature: Float = 1,
                               gold: (any RewardFunction)? = nil, seed: UInt64 = 0, batchSize: Int = 256,
                               exampleCount: Int = 5) throws -> VerifiableEvaluation {
    let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, template: template, limits: TokenLimits(model: model), maxNewTokens: maxNewTokens)
    var config = GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxNewTokens, seed: seed)
    func run(_ repeats: Int, temperature: Float) throws -> (samples: [RewardSample], correct: [Bool]) {
        config.temperature = temperature
        var samples: [RewardSample] = []
        let perBatch = max(1, batchSize / repeats)
        for (k, start) in stride(from: 0, to: prompts.count, by: perBatch).enumerated() {
            config.seed = seed &+ UInt64(k)
            let chunk = Array(prompts[start..<min(start + perBatch, prompts.count)])
            samples += try Rollout.sample(model: model, tokenizer: tokenizer, prompts: chunk, repeats: repeats, generation: config).samples
        }
        return (samples, try ExactAnswerReward().scores(samples).map { $0 == 1 })
    }
    let greedy = try run(1, temperature: 0)
    func mean(_ x: [Double]) -> Double { x.isEmpty ? .nan : x.reduce(0, +) / Double(x.count) }
    let goldScores = try gold.map { try $0.scores(greedy.samples).compactMap { $0 } }
    var evaluation = VerifiableEvaluation(
        rows: prompts.count, greedyAccuracy: mean(greedy.correct.map { $0 ? 1 : 0 }),
        greedyMeanLength: mean(greedy.samples.map { Double($0.completionIDs.count) }), greedyGold: goldScores.map(mean),
        samplesPerPrompt: samplesPerPrompt, temperature: temperature, sampledAccuracy: nil, passAtK: [],
        examples: zip(greedy.samples, greedy.correct).prefix(exampleCount).map { ($0.prompt, $0.completion, $0.answer, $1) })
    if samplesPerPrompt > 0 && !prompts.isEmpty {
        let sampled = try run(samplesPerPrompt, temperature: temperature)
        evaluation.sampledAccuracy = mean(sampled.correct.map { $0 ? 1 : 0 })
        let correctPerPrompt = stride(from: 0, to: sampled.correct.count, by: samplesPerPrompt).map { start in
            sampled.correct[start..<(start + samplesPerPrompt)].filter { $0 }.count
        }
        var k = 1
        while k <= samplesPerPrompt {
            evaluation.passAtK.append((k, mean(correctPerPrompt.map { passAtK(samples: samplesPerPrompt, correct: $0, k: k) })))
            k *= 2
        }
    }
    return evaluation
}
