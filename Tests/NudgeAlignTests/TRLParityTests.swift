// Parity with TRL's own code (issue 23). scripts/make_trl_parity_fixtures.py feeds fixed inputs to
// TRL 1.16's real loss methods (DPOTrainer._compute_loss, CPOTrainer / ORPOTrainer
// .get_batch_loss_metrics, GRPOTrainer._compute_loss, ...) and records the loss and every metric they
// log; these tests drive Nudge's real code path with the same inputs and compare to 1e-5 relative
// (1e-6 absolute near 0). A wrong sign or normalizer anywhere in a loss composition fails here.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

func parityFixture(_ name: String) throws -> [String: Any] {
    let url = try #require(Bundle.module.url(forResource: "parity/\(name)", withExtension: nil, subdirectory: "Fixtures"))
    return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
}

/// |a − e| ≤ 1e-5·|e| or ≤ 1e-6 near 0; returns the relative difference observed.
@discardableResult
func expectParity(_ actual: Double, _ expected: Double, _ what: String, relative: Double = 1e-5, absolute: Double = 1e-6,
                  sourceLocation: SourceLocation = #_sourceLocation) -> Double {
    let diff = abs(actual - expected)
    let rel = diff / max(abs(expected), 1e-30)
    #expect(diff <= relative * abs(expected) || diff <= absolute,
            "\(what): Nudge \(actual) vs TRL \(expected) (relative \(rel))", sourceLocation: sourceLocation)
    return abs(expected) < 1e-6 ? diff : rel
}

private func floats(_ v: Any?) -> [Float] { (v as? [Double] ?? (v as? [NSNumber])?.map(\.doubleValue) ?? []).map(Float.init) }
private func ints(_ v: Any?) -> [Int] { v as? [Int] ?? [] }

@Suite("TRL parity") struct TRLParityTests {
    static func preferenceCaseNames() throws -> [String] {
        try (parityFixture("preference.json")["cases"] as! [[String: Any]]).map { $0["name"] as! String }
    }

    /// The DPO family through `preferenceLoss` (what DPOTrainer.train calls), on TRL's inputs.
    @Test(arguments: try preferenceCaseNames())
    func preferenceLossMatchesTRL(_ name: String) throws {
        let cases = try parityFixture("preference.json")["cases"] as! [[String: Any]]
        let c = try #require(cases.first { $0["name"] as? String == name })
        let spec = c["nudge"] as! [String: Any]
        let kind: PreferenceLoss
        switch spec["loss"] as! String {
        case "sigmoid": kind = .sigmoid()
        case "robust": kind = .robust(labelSmoothing: Float(spec["epsilon"] as! Double))
        case "hinge": kind = .hinge
        case "ipo": kind = .ipo
        case "rpo": kind = .rpo(alpha: Float(spec["alpha"] as! Double))
        case "simpo": kind = .simpo(gamma: Float(spec["gamma"] as! Double))
        case "cpo": kind = .cpo(lambda: Float(spec["lambda"] as! Double))
        case "orpo": kind = .orpo(lambda: Float(spec["lambda"] as! Double))
        default: Issue.record("unknown loss \(spec)"); return
        }
        let nll = (c["chosen_nll"] as? Double).map { Tensor(Float($0)) }
        let p = PairedLogProbs(chosen: Tensor(floats(c["chosen"])), rejected: Tensor(floats(c["rejected"])),
                               referenceChosen: c["ref_chosen"] is NSNull ? nil : Tensor(floats(c["ref_chosen"])),
                               referenceRejected: c["ref_rejected"] is NSNull ? nil : Tensor(floats(c["ref_rejected"])),
                               chosenLengths: ints(c["chosen_lengths"]), rejectedLengths: ints(c["rejected_lengths"]), chosenNLL: nll)
        let (loss, metrics) = preferenceLoss(kind, beta: Float(c["beta"] as! Double), p)
        let expected = c["expected"] as! [String: Double]
        var worst = expectParity(Double(loss.item()), expected["loss"]!, "\(name) loss")
        for (key, value) in metrics.named {
            let e = try #require(expected[key], "TRL logs \(key)")
            worst = max(worst, expectParity(value, e, "\(name) \(key)"))
        }
        print("parity \(name): max relative difference \(worst)")
    }

    static func grpoCaseNames() throws -> [String] {
        try (parityFixture("grpo.json")["cases"] as! [[String: Any]]).map { $0["name"] as! String }
    }

    /// GRPO end to end through `GRPOTrainer.trainStep(on:)` on the tiny Llama fixture (reference
    /// llama_ref): TRL's fixed completions and rewards in, the step's loss, gradient norm and logged
    /// metrics out, against GRPOTrainer._compute_loss on the same transformers weights.
    @Test(arguments: try grpoCaseNames())
    func grpoStepMatchesTRL(_ name: String) throws {
        let cases = try parityFixture("grpo.json")["cases"] as! [[String: Any]]
        let c = try #require(cases.first { $0["name"] as? String == name })
        let lm = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("NudgeLMTests/Fixtures/lm")
        let policy = try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama"))
        let beta = Float(c["beta"] as! Double)
        let reference = beta != 0 ? try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama_ref")) : nil
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var config = GRPOConfig()
        config.numGenerations = c["num_generations"] as! Int
        config.maxCompletionLength = c["max_completion_length"] as! Int
        config.lossType = try #require(LossAggregation(rawValue: c["loss_type"] as! String))
        config.advantage = .grpo(scaling: try #require(RewardScaling(rawValue: c["scale_rewards"] as! String)))
        config.beta = beta
        config.klBiasCorrection = c["use_bias_correction_kl"] as! Bool
        config.importanceSampling = try #require(ImportanceSamplingLevel(rawValue: c["importance_sampling_level"] as! String))
        config.epsilon = Float(c["epsilon"] as! Double)
        config.epsilonHigh = (c["epsilon_high"] as? Double).map(Float.init)
        config.maxGradNorm = 1e9  // grad_norm is the norm before clipping, as TRL logs it
        config.learningRate = 1e-6
        let rewards = floats(c["rewards"]).map(Double.init)
        let trainer = try GRPOTrainer(policy: policy, reference: reference, tokenizer: tokenizer, rows: [.promptOnly(.text("hi"))],
                                      rewards: WeightedRewards([(FixedRewards(values: rewards), 1)]), config: config)
        let prompts = (c["prompts"] as! [[Int]]).map { OnlinePrompt(ids: $0, text: "", answer: nil) }
        let completions = c["completions"] as! [[Int]]
        let g = config.numGenerations
        let rollout = Rollout(prompts: completions.indices.map { prompts[$0 / g] }, completions: completions,
                              finishReasons: completions.map { _ in .eos }, samplingLogProbs: completions.map { $0.map { _ in 0 } },
                              tokenizer: tokenizer, padID: 0)
        let result = try trainer.trainStep(on: rollout)
        let metrics = Dictionary(result.metrics, uniquingKeysWith: { a, _ in a })
        let expected = c["expected"] as! [String: Double]
        var worst = 0.0
        for (key, e) in expected.sorted(by: { $0.key < $1.key }) {
            let actual = try #require(metrics[key], "Nudge logs \(key)")
            worst = max(worst, expectParity(actual, e, "\(name) \(key)"))
        }
        print("parity grpo \(name): max relative difference \(worst)")
    }
}

/// Fixed rewards, in the rollout's row order.
struct FixedRewards: RewardFunction {
    var name = "fixed"
    var values: [Double]
    func scores(_ samples: [RewardSample]) throws -> [Double?] { values }
}

