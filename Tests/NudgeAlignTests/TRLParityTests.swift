// Parity with TRL's own code (issue 23). scripts/make_trl_parity_fixtures.py feeds fixed inputs to
// TRL 1.16's real loss methods (DPOTrainer._compute_loss, CPOTrainer / ORPOTrainer
// .get_batch_loss_metrics, GRPOTrainer / RLOOTrainer / KTOTrainer._compute_loss; for μ = 2 and for
// DPOTrainer end to end (with its compute_ref_log_probs and DataCollatorForPreference), and CPOTrainer /
// ORPOTrainer end to end (their compute_loss with concatenated_forward on DPODataCollatorWithPadding's
// batch), the same clip_grad_norm_ + AdamW step between two loss computations) and records the loss and every metric they
// log; these tests drive Nudge's real code path with the same inputs and compare to 1e-5 relative
// (1e-6 absolute near 0). A wrong sign or normalizer anywhere in a loss composition fails here.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

/// The tiny transformers checkpoints (llama, llama_ref, …) the LM tests keep in NudgeLMTests/Fixtures/lm.
let tinyLMFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("NudgeLMTests/Fixtures/lm")

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
        var config = GRPOConfig()
        config.lossType = try #require(LossAggregation(rawValue: c["loss_type"] as! String))
        config.advantage = .grpo(scaling: try #require(RewardScaling(rawValue: c["scale_rewards"] as! String)))
        config.klBiasCorrection = c["use_bias_correction_kl"] as! Bool
        config.importanceSampling = try #require(ImportanceSamplingLevel(rawValue: c["importance_sampling_level"] as! String))
        try Self.onlineStepMatchesTRL(c, config: config, label: "grpo")
    }

    static func rlooCaseNames() throws -> [String] {
        try (parityFixture("rloo.json")["cases"] as! [[String: Any]]).map { $0["name"] as! String }
    }

    /// RLOO end to end through `GRPOTrainer.trainStep(on:)` with `GRPOConfig.rloo`, against
    /// RLOOTrainer._compute_loss (β·Σk1 in the reward, leave-one-out baseline, one clipped summed
    /// log-ratio per sequence).
    @Test(arguments: try rlooCaseNames())
    func rlooStepMatchesTRL(_ name: String) throws {
        let cases = try parityFixture("rloo.json")["cases"] as! [[String: Any]]
        let c = try #require(cases.first { $0["name"] as? String == name })
        try Self.onlineStepMatchesTRL(c, config: .rloo, label: "rloo")
    }

    /// One online step on TRL's fixed completions and rewards. μ > 1 (num_iterations in the case):
    /// TRL's side took the same clipped AdamW step between its loss computations; Nudge logs the μ
    /// losses and loss-side metrics averaged and the last grad_norm, which the fixture's expected
    /// values are made of (its `iterations` hold each of TRL's logged steps).
    static func onlineStepMatchesTRL(_ c: [String: Any], config base: GRPOConfig, label: String) throws {
        let name = c["name"] as! String
        let lm = tinyLMFixtures
        let policy = try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama"))
        let beta = Float(c["beta"] as! Double)
        let reference = beta != 0 ? try LanguageModelLoader.load(directory: lm.appendingPathComponent("llama_ref")) : nil
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var config = base
        config.numGenerations = c["num_generations"] as! Int
        config.maxCompletionLength = c["max_completion_length"] as! Int
        config.beta = beta
        config.epsilon = Float(c["epsilon"] as! Double)
        config.epsilonHigh = (c["epsilon_high"] as? Double).map(Float.init)
        config.numIterations = c["num_iterations"] as? Int ?? 1
        if let lr = c["learning_rate"] as? Double {
            // TRL's side stepped clip_grad_norm_(max_grad_norm) + torch AdamW (weight decay 0).
            config.learningRate = Float(lr)
            config.maxGradNorm = Float(c["max_grad_norm"] as! Double)
            config.weightDecay = 0
        } else {
            config.maxGradNorm = 1e9  // grad_norm is the norm before clipping, as TRL logs it
            config.learningRate = 1e-6
        }
        let rewards = floats(c["rewards"]).map(Double.init)
        let trainer = try GRPOTrainer(policy: policy, reference: reference, tokenizer: tokenizer, rows: [.promptOnly(.text("hi"))],
                                      rewards: WeightedRewards([(FixedRewards(values: rewards), 1)]), config: config)
        let prompts = (c["prompts"] as! [[Int]]).map { OnlinePrompt(ids: $0, text: "", answer: nil) }
        let completions = c["completions"] as! [[Int]]
        let g = config.numGenerations
        let rollout = Rollout(prompts: completions.indices.map { prompts[$0 / g] }, completions: completions,
                              finishReasons: completions.map { _ in .eos }, samplingLogProbs: completions.map { $0.map { _ in 0 } },
                              tokenizer: tokenizer, padID: 0)
        let perParameter = c["parameter_grad_norms"] as? [String: Double]
        trainer.recordsParameterGradientNorms = perParameter != nil
        let result = try trainer.trainStep(on: rollout)
        let metrics = Dictionary(result.metrics, uniquingKeysWith: { a, _ in a })
        let expected = c["expected"] as! [String: Double]
        var worst = 0.0
        if let perParameter {
            worst = Self.expectParameterGradientNorms(trainer.parameterGradientNorms, perParameter, name)
        }
        for (key, e) in expected.sorted(by: { $0.key < $1.key }) {
            let actual = try #require(metrics[key], "Nudge logs \(key)")
            worst = max(worst, expectParity(actual, e, "\(name) \(key)"))
        }
        // The advantages TRL computed (RLOO's include the β·Σk1 reward penalty).
        for (row, e) in floats(c["advantages"]).enumerated() {
            worst = max(worst, expectParity(result.samples[row].advantage, Double(e), "\(name) advantage[\(row)]"))
        }
        print("parity \(label) \(name): max relative difference \(worst)")
    }
}

extension TRLParityTests {
    static func ktoCaseNames() throws -> [String] {
        try (parityFixture("kto.json")["cases"] as! [[String: Any]]).map { $0["name"] as! String }
    }

    /// KTO on the tiny Llama fixture through `KTOTrainer.trainStep` (what `KTOTrainer.train` runs
    /// for each batch: the reference's log-probs of the batch's mismatched pairs, `batchLoss` — the
    /// policy's log-probs of the batch and of those pairs, the clamped KL reference point, `ktoLoss`,
    /// the metrics — its gradient and the clipped update), the batch's own reference log-probs from
    /// `KTOTrainer.logProbs` as `train` precomputes them, against KTOTrainer._compute_loss with
    /// precomputed reference log-probs and TRL's rotated KL rows. `train` itself shuffles the batch
    /// and so the KL pairs; the step takes TRL's order.
    @Test(arguments: try ktoCaseNames())
    func ktoStepMatchesTRL(_ name: String) throws {
        let cases = try parityFixture("kto.json")["cases"] as! [[String: Any]]
        let c = try #require(cases.first { $0["name"] as? String == name })
        let lm = tinyLMFixtures
        let policy = try LanguageModelLoader.load(directory: lm.appendingPathComponent(c["policy"] as! String))
        let reference = try LanguageModelLoader.load(directory: lm.appendingPathComponent(c["reference"] as! String))
        var config = KTOConfig()
        config.beta = Float(c["beta"] as! Double)
        config.desirableWeight = Float(c["desirable_weight"] as! Double)
        config.undesirableWeight = Float(c["undesirable_weight"] as! Double)
        let prompts = c["prompts"] as! [[Int]], completions = c["completions"] as! [[Int]], labels = c["labels"] as! [Bool]
        let batch = prompts.indices.map { UnpairedExample(promptIDs: prompts[$0], completionIDs: completions[$0], label: labels[$0]) }
        let referenceLogps = withoutGradients { KTOTrainer.logProbs(reference, batch, padID: 0).scalars }
        var parameterNorms: [String: Double] = [:]
        let (metrics, gradNorm) = try #require(try KTOTrainer.trainStep(
            policy: policy, reference: reference, batch: batch, referenceLogps: referenceLogps, config: config,
            optimizer: AdamW(learningRate: config.learningRate, weightDecay: 0), padID: 0, step: 1,
            onParameterGradientNorms: { parameterNorms = $0 }))
        let named = metrics.named + [("grad_norm", Double(gradNorm))]
        let expected = c["expected"] as! [String: Double]
        #expect(Set(named.map(\.0)) == Set(expected.keys), "Nudge logs \(named.map(\.0).sorted()), TRL \(expected.keys.sorted())")
        var worst = Self.expectParameterGradientNorms(parameterNorms, try #require(c["parameter_grad_norms"] as? [String: Double]), name)
        for (key, value) in named {
            let e = try #require(expected[key], "TRL logs \(key)")
            worst = max(worst, expectParity(value, e, "\(name) \(key)"))
        }
        print("parity kto \(name): max relative difference \(worst)")
    }
}

extension TRLParityTests {
    static func dpoTrainerCaseNames() throws -> [String] {
        try (parityFixture("dpo_trainer.json")["cases"] as! [[String: Any]]).map { $0["name"] as! String }
    }

    /// DPO end to end through `DPOTrainer.train` itself on pre-tokenized pairs (prompts, chosen and
    /// rejected completions of unequal lengths, one batch per epoch, two epochs: two optimizer
    /// steps), policy the tiny Llama fixture, reference llama_ref: the reference log-probs train
    /// precomputes, the collated forward, the loss, every metric TRL's DPOTrainer logs, the
    /// gradient's norm overall and per parameter, and through the second step's values the clipped
    /// AdamW update, against DPOTrainer.compute_ref_log_probs + _compute_loss on the same weights.
    /// The reference-free losses run the same way without a reference, against TRL's own trainers:
    /// CPO and SimPO against CPOTrainer.compute_loss (loss_type sigmoid with cpo_alpha's NLL over
    /// the chosen completions, and simpo), ORPO against ORPOTrainer.compute_loss (its NLL over the
    /// chosen rows' whole sequences); the TRL metrics Nudge does not log under the same definition
    /// are named, with why, in the case's `not_compared`.
    @Test(arguments: try dpoTrainerCaseNames())
    func dpoTrainerMatchesTRL(_ name: String) throws {
        let cases = try parityFixture("dpo_trainer.json")["cases"] as! [[String: Any]]
        let c = try #require(cases.first { $0["name"] as? String == name })
        let lm = tinyLMFixtures
        let policy = try LanguageModelLoader.load(directory: lm.appendingPathComponent(c["policy"] as! String))
        let reference = try (c["reference"] as? String).map { try LanguageModelLoader.load(directory: lm.appendingPathComponent($0)) }
        let spec = c["nudge"] as! [String: Any]
        var config = DPOConfig()
        switch spec["loss"] as! String {
        case "sigmoid": config.loss = .sigmoid()
        case "ipo": config.loss = .ipo
        case "hinge": config.loss = .hinge
        case "robust": config.loss = .robust(labelSmoothing: Float(spec["epsilon"] as! Double))
        case "rpo": config.loss = .rpo(alpha: Float(spec["alpha"] as! Double))
        case "cpo": config.loss = .cpo(lambda: Float(spec["lambda"] as! Double))
        case "simpo": config.loss = .simpo(gamma: Float(spec["gamma"] as! Double))
        case "orpo": config.loss = .orpo(lambda: Float(spec["lambda"] as! Double))
        default: Issue.record("unknown loss \(spec)"); return
        }
        #expect(config.loss.isReferenceFree == (reference == nil), "TRL's trainer for \(name) takes a reference model iff Nudge's loss uses one")
        config.beta = Float(c["beta"] as! Double)
        config.learningRate = Float(c["learning_rate"] as! Double)
        config.maxGradNorm = Float(c["max_grad_norm"] as! Double)
        let prompts = c["prompts"] as! [[Int]], chosen = c["chosen"] as! [[Int]], rejected = c["rejected"] as! [[Int]]
        let iterations = c["iterations"] as! [[String: Double]]
        config.batchSize = prompts.count  // one batch per epoch: TRL's batch
        config.epochs = iterations.count
        config.maxLength = nil
        config.maxPromptLength = nil
        let rows = prompts.indices.map { DatasetRow.tokenizedPreference(promptIDs: prompts[$0], chosenIDs: chosen[$0], rejectedIDs: rejected[$0]) }
        var logged: [[String: Double]] = [], gradientNorms: [Int: [String: Double]] = [:]
        // No special tokens: the 256 byte ids are the tiny Llama's vocabulary, and padding is id 0 as
        // TRL's collator pads (pad_token_id 0; padded positions are masked, so any in-vocabulary id works).
        let tokenizer = ByteTokenizer(specialTokens: [], eosToken: nil, padToken: nil)
        _ = try DPOTrainer.train(policy: policy, reference: reference, tokenizer: tokenizer,
                                 template: nil, rows: rows, config: config, optimizer: nil, control: TrainingControl(),
                                 onMetrics: { _, m in logged.append(Dictionary(m, uniquingKeysWith: { a, _ in a })) },
                                 onParameterGradientNorms: { step, norms in gradientNorms[step] = norms })
        try #require(logged.count == iterations.count)
        var worst = Self.expectParameterGradientNorms(try #require(gradientNorms[1]), try #require(c["parameter_grad_norms"] as? [String: Double]), name)
        var worstMetric = "per-parameter grad_norm"
        for (step, expected) in iterations.enumerated() {
            // Every metric TRL logs but learning_rate (TRL decays it linearly by default; Nudge keeps it constant),
            // and for CPOTrainer / ORPOTrainer but those in the case's not_compared; those trainers log no num_tokens.
            let nudgeOnly: Set = config.loss.isReferenceFree ? ["learning_rate", "num_tokens"] : ["learning_rate"]
            #expect(Set(logged[step].keys).subtracting(nudgeOnly) == Set(expected.keys),
                    "Nudge logs \(logged[step].keys.sorted()), TRL \(expected.keys.sorted())")
            for (key, e) in expected.sorted(by: { $0.key < $1.key }) {
                let actual = try #require(logged[step][key], "Nudge logs \(key)")
                let difference = expectParity(actual, e, "\(name) step \(step + 1) \(key)")
                if difference > worst { (worst, worstMetric) = (difference, "step \(step + 1) \(key)") }
            }
        }
        print("parity dpo \(name): max relative difference \(worst) (\(worstMetric))")
    }
}

extension TRLParityTests {
    /// The gradient's norm per parameter against TRL's, by transformers' parameter name (issue 23):
    /// the same parameters, each norm to 1e-5 relative. Returns the largest relative difference.
    static func expectParameterGradientNorms(_ actual: [String: Double], _ expected: [String: Double], _ name: String,
                                             sourceLocation: SourceLocation = #_sourceLocation) -> Double {
        #expect(Set(actual.keys) == Set(expected.keys), "\(name): Nudge's parameters \(actual.keys.sorted()), TRL's \(expected.keys.sorted())",
                sourceLocation: sourceLocation)
        var worst = 0.0
        for (key, e) in expected.sorted(by: { $0.key < $1.key }) {
            guard let a = actual[key] else { continue }
            worst = max(worst, expectParity(a, e, "\(name) grad_norm[\(key)]", sourceLocation: sourceLocation))
        }
        return worst
    }
}

/// Fixed rewards, in the rollout's row order.
struct FixedRewards: RewardFunction {
    var name = "fixed"
    var values: [Double]
    func scores(_ samples: [RewardSample]) throws -> [Double?] { values }
}

