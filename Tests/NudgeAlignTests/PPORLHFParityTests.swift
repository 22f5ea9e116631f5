// PPO-RLHF parity (issue 23). TRL 1.16 no longer ships PPOTrainer, so scripts/make_trl_parity_fixtures.py
// mirrors the last one (huggingface/trl@f2cd577, trl/experimental/ppo/ppo_trainer.py, train() from the
// rollout on: k1/k3 KL in the token rewards, optional reward whitening, GAE, advantage whitening, the
// clipped policy and value losses with vf_coef, AdamW steps between PPO epochs, and every statistic it
// logs) on the tiny Llama fixture, and this test drives `PPORLHFTrainer.trainStep(on:)` with the same
// fixed rollout, models and scores, comparing each logged metric to 1e-5 relative.
//
// The score's position: TRL adds it at sequence_lengths + 1 (and trains the value one past the last
// token) when the completion is shorter than the response length; Nudge by default at the last real
// token. The ppo_* cases' completions all fill the response length, where TRL falls back to
// sequence_lengths and both agree (the script asserts it); the ppo_trl_score_position* cases have
// unequal lengths and run Nudge with `scorePosition = .afterLastToken`. There the fixture's
// `not_compared` names TRL's two statistics that count padding positions (objective/entropy with its
// INVALID_LOGPROB = 1 fill, policy/entropy_avg over the pads' logits), which Nudge keeps to the
// completion tokens.
// TRL's loop never clips gradients, so Nudge's clip is lifted here (max_grad_norm 1e9); its grad_norm
// (the pre-clip norm, averaged over mini-batch steps) is compared with the norm of TRL's gradients.

import NudgePolicyGradient
import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeRL
import NudgeTensor

@Suite("PPO-RLHF parity") struct PPORLHFParityTests {
    static func caseNames() throws -> [String] {
        try (parityFixture("ppo_rlhf.json")["cases"] as! [[String: Any]]).map { $0["name"] as! String }
    }

    @Test(arguments: try caseNames())
    func ppoStepMatchesTRL(_ name: String) throws {
        let cases = try parityFixture("ppo_rlhf.json")["cases"] as! [[String: Any]]
        let c = try #require(cases.first { $0["name"] as? String == name })
        let lm = tinyLMFixtures
        let policy = try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama"))
        let reference = try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama_ref"))
        // The value model: its own llama_ref trunk with the fixture's score head (TRL's value_model).
        let value = ScalarHeadModel(trunk: try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama_ref")))
        let weight = (c["value_score_weight"] as! [Double]).map(Float.init)
        value.score.weight = Tensor(shape: [1, weight.count], values: weight)
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        let completions = c["completions"] as! [[Int]]
        var config = PPORLHFConfig()
        config.batchSize = completions.count
        config.miniBatches = c["num_mini_batches"] as! Int
        config.ppoEpochs = c["num_ppo_epochs"] as! Int
        config.learningRate = Float(c["learning_rate"] as! Double)
        config.klCoefficient = c["kl_coef"] as! Double
        config.klEstimator = try #require(KLEstimator(rawValue: c["kl_estimator"] as! String))
        config.gamma = Float(c["gamma"] as! Double)
        config.lambda = Float(c["lam"] as! Double)
        config.clipRange = Float(c["cliprange"] as! Double)
        config.valueClipRange = Float(c["cliprange_value"] as! Double)
        config.valueCoefficient = Float(c["vf_coef"] as! Double)
        config.temperature = Float(c["temperature"] as! Double)
        config.whitenRewards = c["whiten_rewards"] as! Bool
        config.scorePosition = try #require(PPOScorePosition(rawValue: c["score_position"] as! String))
        config.maxCompletionLength = completions.map(\.count).max()!
        config.maxGradNorm = 1e9  // TRL's PPO loop does not clip
        let trainer = try PPORLHFTrainer(policy: policy, value: value, reference: reference, tokenizer: tokenizer,
                                         rows: [.promptOnly(.text("hi"))],
                                         rewards: WeightedRewards([(FixedRewards(values: c["scores"] as! [Double]), 1)]), config: config)
        let prompts = (c["prompts"] as! [[Int]]).map { OnlinePrompt(ids: $0, text: "", answer: nil) }
        // No completion has a stop token (the short ones are TRL's padded responses): finish reason .length.
        let rollout = Rollout(prompts: prompts, completions: completions, finishReasons: completions.map { _ in .length },
                              samplingLogProbs: completions.map { $0.map { _ in 0 } }, tokenizer: tokenizer, padID: 0)
        let result = try trainer.trainStep(on: rollout)
        let metrics = Dictionary(result.metrics, uniquingKeysWith: { a, _ in a })
        let expected = c["expected"] as! [String: Double]
        let notCompared = Set(c["not_compared"] as! [String])
        var worst = 0.0
        for (key, e) in expected.sorted(by: { $0.key < $1.key }) where !notCompared.contains(key) {
            let actual = try #require(metrics[key], "Nudge logs \(key)")
            worst = max(worst, expectParity(actual, e, "\(name) \(key)"))
        }
        // The unwhitened GAE advantage of each row's first completion token (what the step's samples carry).
        for (row, e) in (c["raw_advantages_first_token"] as! [Double]).enumerated() {
            worst = max(worst, expectParity(result.samples[row].advantage, e, "\(name) advantage[\(row)]"))
        }
        print("parity ppo-rlhf \(name): max relative difference \(worst)")
    }
}
