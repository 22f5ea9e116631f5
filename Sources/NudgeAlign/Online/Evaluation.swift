// Held-out evaluation for verifiable tasks: greedy decoding (or sampling) and the exact-answer check,
// the number a GRPO run on a built-in task is judged by.

import Foundation
import NudgeLM
import NudgeTensor

/// The fraction of `rows` (verifiable rows) whose decoded completion gives the reference answer.
public func exactMatchAccuracy(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                               rows: [DatasetRow], maxNewTokens: Int = 16, batchSize: Int = 64, temperature: Float = 0,
                               seed: UInt64 = 0) throws -> Double {
    let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, template: template)
    var config = GenerationConfig()
    config.maxNewTokens = maxNewTokens
    config.temperature = temperature
    config.eosTokenID = tokenizer.eosTokenID
    config.padTokenID = Collator.padID(for: tokenizer)
    config.seed = seed
    var correct = 0
    for start in stride(from: 0, to: prompts.count, by: batchSize) {
        let chunk = Array(prompts[start..<min(start + batchSize, prompts.count)])
        let rollout = Rollout.sample(model: model, tokenizer: tokenizer, prompts: chunk, repeats: 1, generation: config)
        correct += try ExactAnswerReward().scores(rollout.samples).filter { $0 == 1 }.count
    }
    return Double(correct) / Double(max(prompts.count, 1))
}
