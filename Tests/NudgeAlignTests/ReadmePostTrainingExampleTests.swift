// The README's post-training example, kept compiling and working: `postTrain` is copied verbatim
// from the README and run on a tiny random Llama with the byte tokenizer instead of SmolLM2
// (a few debug-build steps of the real model would take minutes).

import Foundation
import Nudge
import Testing

/// GRPO on two-digit additions, rewarded 1 when the completion is exactly the answer.
private func postTrain(policy: any CausalLanguageModel, tokenizer: any Tokenizer, steps: Int) throws -> [Double] {
    let rows = SyntheticTask.addition(digits: 2).verifiableRows(count: 256, seed: 1)  // prompt + answer
    let exact = ClosureReward(name: "exact") { sample in
        sample.completion.trimmingCharacters(in: .whitespacesAndNewlines) == sample.answer ? 1 : 0
    }
    var config = GRPOConfig()
    (config.promptsPerStep, config.numGenerations, config.maxCompletionLength) = (4, 8, 16)
    config.learningRate = 1e-5
    let trainer = try GRPOTrainer(policy: policy, tokenizer: tokenizer, rows: rows,
                                  rewards: WeightedRewards([(exact, 1)]), config: config)
    var rewards: [Double] = []
    for _ in 0..<steps { if let step = try trainer.trainStep() { rewards.append(step["reward"]!) } }
    return rewards
}

@Test func readmePostTrainingExampleRuns() throws {
    let (policy, tokenizer) = tinyPolicy(seed: 1)
    let rewards = try postTrain(policy: policy, tokenizer: tokenizer, steps: 2)
    #expect(rewards.count == 2 && rewards.allSatisfy { $0 >= 0 && $0 <= 1 })
}
