// REINFORCE++ parity with OpenRLHF (issue 23). scripts/make_trl_parity_fixtures.py mirrors OpenRLHF's
// own functions (compute_approx_kl: k1 clamped to ±10; compute_reward: −β·k1 per token plus the score
// at the last action token; compute_advantages_and_returns: the reinforce_baseline group mean with γ
// forced to 1, discounted returns, whitening over every action token of the batch with the population
// variance and rsqrt(clamp(var, 1e-8)); PolicyLoss "ppo" with the token-level mean) on the tiny Llama
// fixture and the GRPO cases' rollout. Here `GRPOTrainer` with `.reinforcePlusPlus` computes the
// per-token advantages (its real `advantages(…)`) and takes the step through `trainStep(on:)`; the
// advantages of every completion token, the loss and the gradient norm must match to 1e-5 relative.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("REINFORCE++ parity (OpenRLHF)") struct ReinforcePlusPlusParityTests {
    static func caseNames() throws -> [String] {
        try (parityFixture("reinforce_pp.json")["cases"] as! [[String: Any]]).map { $0["name"] as! String }
    }

    @Test(arguments: try caseNames())
    func reinforcePlusPlusStepMatchesOpenRLHF(_ name: String) throws {
        let cases = try parityFixture("reinforce_pp.json")["cases"] as! [[String: Any]]
        let c = try #require(cases.first { $0["name"] as? String == name })
        let lm = tinyLMFixtures
        let policy = try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama"))
        let reference = try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama_ref"))
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var config = GRPOConfig()
        config.advantage = .reinforcePlusPlus(baseline: c["estimator"] as! String == "reinforce_baseline")
        config.lossType = .dapo  // OpenRLHF's token_level_loss: Σ over the step's action tokens / their count
        config.numGenerations = c["num_generations"] as! Int
        config.maxCompletionLength = c["max_completion_length"] as! Int
        config.beta = Float(c["beta"] as! Double)
        config.gamma = c["gamma"] as! Double
        config.epsilon = 0.2
        config.temperature = Float(c["temperature"] as! Double)
        config.numIterations = c["num_iterations"] as! Int
        config.learningRate = Float(c["learning_rate"] as! Double)
        config.maxGradNorm = Float(c["max_grad_norm"] as! Double)
        config.weightDecay = 0
        let rewards = c["rewards"] as! [Double]
        let trainer = try GRPOTrainer(policy: policy, reference: reference, tokenizer: tokenizer, rows: [.promptOnly(.text("hi"))],
                                      rewards: WeightedRewards([(FixedRewards(values: rewards), 1)]), config: config)
        let prompts = (c["prompts"] as! [[Int]]).map { OnlinePrompt(ids: $0, text: "", answer: nil) }
        let completions = c["completions"] as! [[Int]]
        let g = config.numGenerations
        let rollout = Rollout(prompts: completions.indices.map { prompts[$0 / g] }, completions: completions,
                              finishReasons: completions.map { _ in .eos }, samplingLogProbs: completions.map { $0.map { _ in 0 } },
                              tokenizer: tokenizer, padID: 0)
        // The advantages, as the step computes them (old and reference log-probs before any update).
        let mask = rollout.shiftedMask()
        let advantages = trainer.advantages(rollout, totals: rewards, old: rollout.logProbs(policy, temperature: config.temperature),
                                            referenceLogProbs: trainer.referenceLogProbs(rollout), mask: mask)
        let width = rollout.input.length - 1
        var worst = 0.0
        for (row, expected) in (c["token_advantages"] as! [[Double]]).enumerated() {
            let start = prompts[row / g].ids.count - 1  // the shifted frame's first completion position
            #expect(expected.count == completions[row].count)
            for (t, e) in expected.enumerated() {
                #expect(mask[row * width + start + t] == 1)
                worst = max(worst, expectParity(Double(advantages.scalars[row * width + start + t]), e, "\(name) advantage[\(row), \(t)]"))
            }
        }
        let result = try trainer.trainStep(on: rollout)
        let metrics = Dictionary(result.metrics, uniquingKeysWith: { a, _ in a })
        for (key, e) in (c["expected"] as! [String: Double]).sorted(by: { $0.key < $1.key }) {
            let actual = try #require(metrics[key], "Nudge logs \(key)")
            worst = max(worst, expectParity(actual, e, "\(name) \(key)"))
        }
        print("parity reinforce++ \(name): max relative difference \(worst)")
    }
}
