// PPO for language models with the four-model setup (Ziegler et al. 2019; Ouyang et al. 2022; TRL's
// PPOTrainer; Ouyang et al. 2022, eq. 2): a policy, a frozen reference, a reward model (any weighted reward
// functions) and a value model (a separate scalar-head model, or a head on the policy's own trunk).
//
// Per rollout: sample one completion per prompt; score it; per token t of the completion the reward
// is −β·KL_t (k1, k2 or k3 of log π − log π_ref), and the score (minus a missing-EOS penalty) is
// added at the last real token. GAE over tokens (γ, λ; padding ends an episode), advantages whitened
// with masked statistics, then several PPO epochs of clipped policy and value losses over
// mini-batches, with an optional entropy bonus. β is fixed or follows the adaptive controller of
// Ziegler et al. (target KL, horizon). Alternatively the KL goes in the loss (k3, as GRPO) instead of
// the reward.
//
// Where the score goes (`scorePosition`): by default at the last real token (InstructGPT's reading,
// and OpenRLHF's). TRL's PPOTrainer adds it one position later (`sequence_lengths + 1`) when the
// completion is shorter than the batch's longest: that position's value is V of the state after the
// last token, which TRL then trains on the score (its value mask `padding_mask_p1` reaches one past
// the last token), and the score reaches the last real token through one more step of GAE
// (discounted by γλ, against that value). `.afterLastToken` does the same.
// Metrics keep TRL's names and definitions: `objective/entropy` is the mean over sequences of the
// summed −log π_old of the sampled tokens (TRL's, without its padding positions, which TRL fills
// with log-prob 1), `policy/approxkl_avg` the mean over mini-batches of ½·(log π − log π_old)²
// averaged over the mini-batch's response frame (rows × the rollout's longest completion), padding
// included as zeros (TRL's `.mean()`), `val/ratio` the mean over mini-batches of the ratio averaged
// over that frame (padding counts as 1, TRL's exp(1 − 1)) and `val/ratio_var` the unbiased variance
// of those means (logged from two mini-batch steps on, where TRL's is defined), and
// `policy/entropy_avg` the masked mean of the full-distribution token entropy. All checked against
// TRL's last PPOTrainer by Tests/NudgeAlignTests/PPORLHFParityTests.swift.

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeTensor

/// Where the KL leash acts.
public enum KLPenaltyPlacement: String, Sendable, CaseIterable {
    /// −β·KL_t in each token's reward (InstructGPT, TRL's PPO).
    case reward
    /// β·k3 added to the policy loss.
    case loss
}

/// Ziegler et al.'s adaptive KL coefficient: β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon).
/// Where PPO-RLHF adds the sequence's score to the token rewards.
public enum PPOScorePosition: String, Sendable, CaseIterable {
    /// At the last real token (InstructGPT, OpenRLHF).
    case lastToken = "last_token"
    /// TRL's PPOTrainer: one position past the last real token (`sequence_lengths + 1`), where the
    /// value of the state after the last token is trained on it, when the completion is shorter than
    /// the batch's longest (and that position is inside the batch's frame); at the last token otherwise.
    case afterLastToken = "after_last_token"
}

public struct AdaptiveKLController: Sendable, Equatable {
    public var target: Double
    public var horizon: Double

    public init(target: Double = 6, horizon: Double = 10_000) {
        self.target = target
        self.horizon = horizon
    }

    /// β after observing a mean sequence KL over `samples` rollouts.
    public func updated(_ beta: Double, observedKL: Double, samples: Int) -> Double {
        let error = min(max(observedKL / target - 1, -0.2), 0.2)
        return beta * (1 + error * Double(samples) / horizon)
    }
}

/// PPO-RLHF hyperparameters (TRL's PPOConfig defaults where they apply).
public struct PPORLHFConfig: Sendable {
    /// Rollout batches the run takes (each followed by `ppoEpochs` epochs).
    public var steps = 60
    public var learningRate: Float = 3e-6
    /// Prompts (one completion each) per rollout batch.
    public var batchSize = 16
    public var miniBatches = 1
    public var ppoEpochs = 4
    public var maxPromptLength: Int? = 512
    public var maxCompletionLength = 53
    public var temperature: Float = 0.7
    /// β: the KL coefficient (the initial one when adaptive).
    public var klCoefficient: Double = 0.05
    /// How the frozen copy of the initial policy made as the reference is held (bf16: its projections
    /// in half the bytes); a given reference model or the adapter-free policy is used as it is.
    public var refModelDtype: ReferenceDType = .float32
    /// The weights that sample each step's completions (bf16: copies made for the step; the Float32
    /// policy scores the tokens).
    public var rolloutDtype: GenerationWeights = .float32
    public var klEstimator: KLEstimator = .k1
    public var klPlacement: KLPenaltyPlacement = .reward
    public var adaptiveKL: AdaptiveKLController?
    public var clipRange: Float = 0.2
    public var valueClipRange: Float = 0.2
    public var valueCoefficient: Float = 0.1
    public var entropyCoefficient: Float = 0
    public var gamma: Float = 1
    public var lambda: Float = 0.95
    public var whitenRewards = false
    public var scorePosition: PPOScorePosition = .lastToken
    /// Subtracted from the score of completions that never produced EOS (nil: none).
    public var missingEOSPenalty: Double?
    /// Dense rewards: a process reward (a PRM file or run directory from `nudge prm`, or "gold" for the
    /// carries task's step checker; empty: none), read by the runs, which set
    /// `PPORLHFTrainer.processReward`; each step's score joins the token rewards at the step's last token.
    public var processRewardModel = ""
    /// The weight of the per-step scores in the token rewards.
    public var processRewardCoefficient: Double = 1
    /// Gradient clipping (.infinity: none). TRL's PPOTrainer loop never clips (its inherited
    /// max_grad_norm = 1 is not applied; found by the parity tests), OpenRLHF clips at 1; kept at 1,
    /// with `ppo.max_grad_norm = 0` for TRL's unclipped steps.
    public var maxGradNorm: Float = 1
    public var seed: UInt64 = 0
    /// Activation checkpointing (TRL's `gradient_checkpointing`): each decoder block of the trained
    /// model is recomputed in backward instead of keeping its activations; gradients are unchanged.
    public var gradientCheckpointing = false
    /// TRL's `bf16`: training products on bf16 operands with Float32 sums (`MixedPrecision`).
    public var bf16 = false
    /// The AdamW implementation (HF TrainingArguments' `optim`): Float32 moments, or bitsandbytes-style 8-bit ones.
    public var optim: OptimizerName = .adamwTorch

    public init() {}
}

/// The trainable policy and value model as one module (TRL's PolicyAndValueWrapper); a value head on
/// the policy's own trunk adds just its head.
final class PolicyAndValue: Module {
    let policy: any CausalLanguageModel
    let value: ScalarHeadModel

    init(policy: any CausalLanguageModel, value: ScalarHeadModel) {
        self.policy = policy
        self.value = value
    }

    var sharesTrunk: Bool { value.trunk === policy }

    override func items() -> (parameters: [(String, Tensor)], children: [(String, Module)]) {
        sharesTrunk ? ([], [("policy", policy), ("value_head", value.score)]) : ([], [("policy", policy), ("value", value)])
    }
}

/// GAE over completion tokens in the shifted (B, T − 1) frame: positions outside the mask are
/// padding or prompt, get advantage 0 and pass nothing back; the last masked token has no successor.
public func tokenGAE(rewards: [[Float]], values: [[Float]], mask: [[Bool]], gamma: Float, lambda: Float) -> (advantages: [[Float]], returns: [[Float]]) {
    let b = rewards.count, t = rewards.first?.count ?? 0
    var r = [Float](repeating: 0, count: b * t), v = r, next = r
    var terminated = [Bool](repeating: true, count: b * t)
    for row in 0..<b {
        for i in 0..<t where mask[row][i] {
            r[i * b + row] = rewards[row][i]
            v[i * b + row] = values[row][i]
            let continues = i + 1 < t && mask[row][i + 1]
            terminated[i * b + row] = !continues
            next[i * b + row] = continues ? values[row][i + 1] : 0
        }
    }
    let (a, g) = generalizedAdvantages(rewards: r, values: v, nextValues: next, terminated: terminated, episodeEnded: terminated,
                                       envs: b, gamma: gamma, lambda: lambda)
    let advantages = (0..<b).map { row in (0..<t).map { i in mask[row][i] ? a[i * b + row] : 0 } }
    let returns = (0..<b).map { row in (0..<t).map { i in mask[row][i] ? g[i * b + row] : 0 } }
    return (advantages, returns)
}

/// PPO-RLHF over a prompt dataset.
public final class PPORLHFTrainer {
    public let policy: any CausalLanguageModel
    public let value: ScalarHeadModel
    public let reference: (any CausalLanguageModel)?
    public let tokenizer: any Tokenizer
    public let rewards: WeightedRewards
    /// Scored and logged (monitor/<name>) but never trained on: e.g. a hidden gold reward.
    public var monitors: [any RewardFunction] = []
    /// Per-step rewards added to the token rewards at each step's last token (dense rewards).
    public var processReward: (any ProcessReward)?
    public var config: PPORLHFConfig
    public let optimizer: Adam
    /// The current KL coefficient β.
    public private(set) var klCoefficient: Double
    public private(set) var step = 0
    let trainable: PolicyAndValue
    var cursor: PromptCursor
    let referenceIsAdapterFreePolicy: Bool

    /// - Parameters:
    ///   - value: the value model; `ScalarHeadModel(trunk: policy)` puts the head on the policy's trunk.
    ///   - reference: nil: the policy with LoRA adapters disabled when it has adapters, else a frozen copy.
    public init(policy: any CausalLanguageModel, value: ScalarHeadModel, reference: (any CausalLanguageModel)? = nil,
                tokenizer: any Tokenizer, template: ChatTemplate? = nil, rows: [DatasetRow], rewards: WeightedRewards,
                config: PPORLHFConfig) throws {
        guard config.batchSize >= 1, config.miniBatches >= 1, config.batchSize % config.miniBatches == 0 else {
            throw TrainerConfigurationError(field: "batch_size", message: "the batch size (\(config.batchSize)) must be a positive multiple of the mini-batch count (\(config.miniBatches))")
        }
        try checkSampling(temperature: config.temperature, maxCompletionLength: config.maxCompletionLength)
        policy.gradientCheckpointing = config.gradientCheckpointing
        value.trunk.gradientCheckpointing = config.gradientCheckpointing
        (self.reference, referenceIsAdapterFreePolicy) = try onlineReference(reference, of: policy, needs: true, dtype: config.refModelDtype)
        self.policy = policy
        self.value = value
        self.tokenizer = tokenizer
        self.rewards = rewards
        self.config = config
        klCoefficient = config.klCoefficient
        trainable = PolicyAndValue(policy: policy, value: value)
        optimizer = AdamW(learningRate: config.learningRate, weightDecay: 0, optim: config.optim)
        let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, template: template, maxPromptLength: config.maxPromptLength,
                                        limits: TokenLimits(model: policy), maxNewTokens: config.maxCompletionLength)
        try checkAnswers(prompts, rewards: rewards)
        cursor = try PromptCursor(prompts, seed: config.seed)
    }

    func referenceLogProbs(_ rollout: Rollout) -> Tensor {
        rollout.referenceLogProbs(policy: policy, reference: reference, adapterFreePolicy: referenceIsAdapterFreePolicy,
                                  temperature: config.temperature)!
    }

    /// Values in the shifted frame: V at position t − 1 estimates the return of token t onward.
    func shiftedValues(_ input: TokenBatch) -> Tensor {
        value.values(input).slice(axis: 1, 0..<(input.length - 1))
    }

    // MARK: Checkpoints

    /// Writes the policy and value model, the optimizer state and the trainer's position (step,
    /// prompts consumed, the current KL coefficient) as a checkpoint directory, atomically.
    public func saveCheckpoint(to directory: URL) throws {
        try Checkpoint.save(model: trainable, optimizer: optimizer, step: step, to: directory,
                            metadata: ["consumed_prompts": String(cursor.consumed), "kl_coefficient": String(klCoefficient)])
    }

    /// Restores a checkpoint written by `saveCheckpoint`; the following steps then repeat those of
    /// the uninterrupted run. The trainer must have been made with the same models, prompts and
    /// configuration.
    public func restoreCheckpoint(from directory: URL) throws {
        let (restoredStep, state) = try Checkpoint.restore(model: trainable, optimizer: optimizer, from: directory,
                                                           trainerState: ["consumed_prompts", "kl_coefficient"])
        step = restoredStep
        klCoefficient = state["kl_coefficient"]!
        cursor = cursor.replayed(to: Int(state["consumed_prompts"]!))
    }

    /// One rollout batch and its PPO epochs (never nil: every batch updates; optional as `Trainer` asks).
    @discardableResult
    public func trainStep() throws -> OnlineStepResult? {
        let start = Date()
        var gen = GenerationConfig(tokenizer: tokenizer, maxNewTokens: config.maxCompletionLength, temperature: config.temperature,
                                   seed: config.seed &+ UInt64(step) &* 1_000_003)
        gen.weights = config.rolloutDtype
        // A failed or interrupted scoring (e.g. Ctrl-C during the reward command) leaves the step
        // undone: put the prompts back so a checkpoint saved now resumes exactly here.
        let cursorBefore = cursor
        let rollout: Rollout, perFunction: [[Double?]], totals: [Double?]
        do {
            rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: cursor.next(config.batchSize), repeats: 1, generation: gen)
            (perFunction, totals) = try rewards.evaluate(rollout.samples)
        } catch {
            cursor = cursorBefore
            throw error
        }
        return try update(rollout, perFunction: perFunction, totals: totals, start: start)
    }

    /// One step on given completions (one per prompt): score them with the reward functions, then the
    /// same PPO epochs as `trainStep`. The parity tests feed a fixed rollout through here.
    @discardableResult
    public func trainStep(on rollout: Rollout) throws -> OnlineStepResult {
        let start = Date()
        guard rollout.count > 0, rollout.count % config.miniBatches == 0 else {
            throw TrainerConfigurationError(field: "num_mini_batches", message: "a rollout of \(rollout.count) rows does not split into \(config.miniBatches) mini-batches")
        }
        let (perFunction, totals) = try rewards.evaluate(rollout.samples)
        return try update(rollout, perFunction: perFunction, totals: totals, start: start)
    }

    /// Token rewards, GAE and whitening, then the PPO epochs on `rollout`, and the step's metrics.
    func update(_ rollout: Rollout, perFunction: [[Double?]], totals: [Double?], start: Date) throws -> OnlineStepResult {
        let b = rollout.count, width = rollout.input.length - 1
        // TRL's statistics average over the response frame (its `responses` tensor), not over the
        // prompt positions of Nudge's shifted frame.
        let responseLength = max(rollout.completions.map(\.count).max() ?? 1, 1)
        let maskValues = rollout.shiftedMask()
        let mask2D = (0..<b).map { r in (0..<width).map { maskValues[r * width + $0] != 0 } }

        // Scores, with the missing-EOS penalty.
        var scores = totals.map { $0 ?? 0 }
        if let penalty = config.missingEOSPenalty {
            for r in 0..<b where rollout.finishReasons[r] != .eos { scores[r] -= penalty }
        }
        // Old log-probs, reference log-probs and values, without gradients.
        let old = rollout.logProbs(policy, temperature: config.temperature)
        let ref = referenceLogProbs(rollout)
        let oldValues = withoutGradients { shiftedValues(rollout.input) }
        let klPerToken = withoutGradients { config.klEstimator(logRatio: ref - old) * Tensor(shape: [b, width], values: maskValues) }.scalars
        let sequenceKL = (0..<b).map { r in (0..<width).reduce(0.0) { $0 + Double(klPerToken[r * width + $1]) } }
        // Token rewards: −β·KL_t, plus the score at the last real token (or, TRL's placement, one
        // past it, which then joins the value frame: GAE, returns and the value loss run over it).
        var tokenRewards = [[Float]](repeating: [Float](repeating: 0, count: width), count: b)
        var valueMask2D = mask2D
        for r in 0..<b {
            for t in 0..<width where mask2D[r][t] {
                if config.klPlacement == .reward { tokenRewards[r][t] = Float(-klCoefficient) * klPerToken[r * width + t] }
            }
            guard var at = mask2D[r].lastIndex(of: true) else { continue }
            if config.scorePosition == .afterLastToken, rollout.completions[r].count < responseLength, at + 1 < width {
                at += 1
                valueMask2D[r][at] = true
            }
            tokenRewards[r][at] += Float(scores[r])
        }
        // Dense rewards: each step's score at the step's last token (completion token j of row r is
        // predicted at shifted column prompt length + j − 1).
        var stepScores: [Double] = []
        if let processReward {
            let placed = try placedStepRewards(processReward, samples: rollout.samples, tokenizer: tokenizer)
            for (r, steps) in placed.enumerated() {
                for (token, score) in steps ?? [] {
                    let column = rollout.prompts[r].ids.count - 1 + token
                    guard column >= 0, column < width, mask2D[r][column] else { continue }
                    tokenRewards[r][column] += Float(config.processRewardCoefficient * score)
                    stepScores.append(score)
                }
            }
        }
        let valueMaskValues = valueMask2D.flatMap { $0.map { $0 ? Float(1) : 0 } }
        if config.whitenRewards { tokenRewards = maskedWhiten(tokenRewards, mask: valueMask2D, shiftMean: false) }
        let valueRows = (0..<b).map { r in Array(oldValues.scalars[(r * width)..<((r + 1) * width)]) }
        let (rawAdvantages, returns) = tokenGAE(rewards: tokenRewards, values: valueRows, mask: valueMask2D, gamma: config.gamma, lambda: config.lambda)
        let flatAdvantages = maskedWhiten(rawAdvantages, mask: mask2D).flatMap { $0 }, flatReturns = returns.flatMap { $0 }

        // PPO epochs over mini-batches, shuffled by a stream of this step (so a resumed run needs no
        // generator state from the checkpoint).
        var rng = RandomGenerator(seed: config.seed).derive(stream: 7).derive(stream: UInt64(step))
        let miniBatchSize = b / config.miniBatches
        var policyLosses: [Double] = [], valueLosses: [Double] = [], clipFractions: [Double] = [], valueClipFractions: [Double] = []
        var approxKLs: [Double] = [], ratioMeans: [Double] = [], entropies: [Double] = [], norms: [Double] = []
        for _ in 0..<config.ppoEpochs {
            var order = Array(0..<b)
            rng.shuffle(&order)
            for m in 0..<config.miniBatches {
                let rows = Array(order[(m * miniBatchSize)..<((m + 1) * miniBatchSize)])
                let input = TokenBatch(ids: rows.map { rollout.input.ids[$0] }, attentionMask: rows.map { rollout.input.attentionMask![$0] })
                let completionMask = rows.map { rollout.completionMask[$0] }
                func pick(_ flat: [Float]) -> Tensor { Tensor(shape: [rows.count, width], values: rows.flatMap { flat[($0 * width)..<(($0 + 1) * width)] }) }
                let mbMask = pick(maskValues), mbOld = pick(old.scalars), mbRef = pick(ref.scalars), mbOldValues = pick(oldValues.scalars)
                let mbAdvantages = pick(flatAdvantages), mbReturns = pick(flatReturns)
                let maskList = mbMask.scalars
                let mbValueMask = pick(valueMaskValues)
                var (_, grads) = valueAndGrad(trainable) { w -> Tensor in
                    // The entropy bonus needs the logits' gradient; without it the fused head serves.
                    let logits: Tensor? = config.entropyCoefficient != 0 ? w.policy(input) : nil
                    let current: Tensor, tokenEntropy: [Float]?
                    if let logits {
                        current = completionLogProbs(logits: logits, ids: input.ids, completionMask: completionMask,
                                                     temperature: config.temperature).perToken
                        tokenEntropy = withoutGradients { tokenEntropies(logits: logits, mask: maskList, temperature: config.temperature) }
                    } else {
                        let scored: CompletionLogProbs
                        (scored, tokenEntropy) = completionLogProbs(
                            model: w.policy, input: input, keepingLast: input.length, sharing: nil, completionMask: completionMask,
                            temperature: config.temperature, entropy: true)
                        current = scored.perToken
                    }
                    let values = w.value.values(input).slice(axis: 1, 0..<width)
                    let (loss, terms) = PPORLHFTrainer.loss(
                        current: current, logits: logits, values: values, old: mbOld, reference: mbRef, oldValues: mbOldValues,
                        returns: mbReturns, advantages: mbAdvantages, mask: mbMask, valueMask: mbValueMask, klCoefficient: klCoefficient,
                        responseFrame: Double(rows.count * responseLength), config: config)
                    policyLosses.append(terms.policyLoss)
                    valueLosses.append(terms.valueLoss)
                    clipFractions.append(terms.clipFraction)
                    valueClipFractions.append(terms.valueClipFraction)
                    approxKLs.append(terms.approxKL)
                    ratioMeans.append(terms.ratioMean)
                    entropies.append(maskedMean(tokenEntropy!, maskList))
                    return loss
                }
                norms.append(Double(clipGradientNorm(&grads, maxNorm: config.maxGradNorm)))
                try NonFiniteValueError.check(step: step + 1, [("loss/policy", policyLosses.last ?? 0), ("loss/value", valueLosses.last ?? 0),
                                                                ("grad_norm", norms.last!)])
                optimizer.update(trainable, gradients: grads)
                try NonFiniteValueError.checkParameters(of: trainable, step: step + 1)
            }
        }
        step += 1
        let meanKL = sequenceKL.reduce(0, +) / Double(b)
        let usedBeta = klCoefficient
        if let controller = config.adaptiveKL {
            klCoefficient = controller.updated(klCoefficient, observedKL: meanKL, samples: b)
        }
        func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }
        let score = mean(scores)
        let oldLogProbs = old.scalars
        let sampledEntropy = (0..<b).map { r in
            (0..<width).reduce(0.0) { $0 + (mask2D[r][$1] ? -Double(oldLogProbs[r * width + $1]) : 0) }
        }.reduce(0, +) / Double(max(b, 1))
        var metrics: [(String, Double)] = [
            ("objective/scores", score), ("objective/kl", meanKL),
            ("objective/non_score_reward", config.klPlacement == .reward ? -usedBeta * meanKL : 0),
            ("objective/rlhf_reward", score - usedBeta * meanKL),
            ("objective/entropy", sampledEntropy),
        ]
        if processReward != nil { metrics.append(("objective/step_scores", mean(stepScores))) }
        metrics += try rewardMetrics(rewards, perFunction: perFunction, monitors: monitors, samples: rollout.samples)
        metrics += [("policy/approxkl_avg", mean(approxKLs)), ("policy/clipfrac_avg", mean(clipFractions)),
                    ("loss/policy_avg", mean(policyLosses)), ("loss/value_avg", mean(valueLosses)),
                    ("val/clipfrac_avg", mean(valueClipFractions)), ("policy/entropy_avg", mean(entropies)),
                    ("val/ratio", mean(ratioMeans)),
                    ("val/num_eos_tokens", Double(rollout.finishReasons.filter { $0 == .eos }.count)),
                    ("kl_coef", usedBeta), ("grad_norm", mean(norms)), ("learning_rate", Double(optimizer.learningRate))]
        if ratioMeans.count > 1 {
            metrics.append(("val/ratio_var", meanAndVariance(ratioMeans).variance))
        }
        metrics += completionMetrics(rollout)
        metrics.append(("step_time", Date().timeIntervalSince(start)))
        let samples = (0..<b).map { r in
            OnlineSample(prompt: rollout.samples[r].prompt, completion: rollout.samples[r].completion, reward: scores[r],
                         advantage: Double(rawAdvantages[r].first { $0 != 0 } ?? 0))
        }
        return OnlineStepResult(step: step, metrics: metrics, samples: samples)
    }
}

// MARK: The loss

/// What PPO-RLHF's loss logs for one mini-batch (TRL's PPOTrainer: loss/policy_avg, loss/value_avg,
/// policy/clipfrac_avg, val/clipfrac_avg, policy/approxkl_avg, val/ratio).
struct PPOLossTerms {
    var policyLoss = 0.0, valueLoss = 0.0
    var clipFraction = 0.0, valueClipFraction = 0.0
    var approxKL = 0.0, ratioMean = 0.0
}

extension PPORLHFTrainer {
    /// PPO-RLHF's loss on one mini-batch, a pure function of the scored tensors (Schulman et al.
    /// 2017, eq. 9, as TRL's PPOTrainer): the clipped surrogate −min(r·A, clip(r, 1 ± ε)·A) with
    /// r = π/π_old, masked mean; plus vf_coef times the clipped value loss ½·max((V − R)²,
    /// (clip(V, V_old ± ε_v) − R)²) over the value frame; with the KL in the loss, + β·k3(π_ref ‖ π);
    /// with `logits` (an entropy bonus), − entropy_coef·H. All (B, T − 1); `current`, `values` and
    /// `logits` carry the gradient. `responseFrame` is TRL's response-tensor size, over which it
    /// averages approxkl and the ratio.
    static func loss(current: Tensor, logits: Tensor?, values: Tensor, old: Tensor, reference: Tensor, oldValues: Tensor, returns: Tensor,
                     advantages: Tensor, mask: Tensor, valueMask: Tensor, klCoefficient: Double, responseFrame: Double,
                     config: PPORLHFConfig) -> (Tensor, PPOLossTerms) {
        let width = current.shape[1]
        let ratio = (current - old).exp()
        let policyLoss = maskedMean(clippedSurrogateTerms(ratio: ratio, advantages: advantages, clipLow: config.clipRange), mask: mask)
        let vLoss = valueLoss(values: values, oldValues: oldValues, returns: returns, clip: config.valueClipRange, mask: valueMask)
        var loss = policyLoss + vLoss * config.valueCoefficient
        if config.klPlacement == .loss {
            loss = loss + maskedMean(KLEstimator.k3(logRatio: reference - current), mask: mask, scale: Float(klCoefficient))
        }
        if let logits {
            let entropy = (logits.slice(axis: 1, 0..<width) * (1 / config.temperature)).categoricalEntropy()
            loss = loss - maskedMean(entropy, mask: mask, scale: config.entropyCoefficient)
        }
        var terms = PPOLossTerms()
        withoutGradients {
            terms.policyLoss = Double(policyLoss.item())
            terms.valueLoss = Double(vLoss.item())
            let maskList = mask.scalars, valueMaskList = valueMask.scalars
            let r = ratio.scalars, k2 = KLEstimator.k2(logRatio: current - old).scalars
            var vClipped = 0.0, kl = 0.0, ratioSum = 0.0
            let v = values.scalars, ov = oldValues.scalars, ret = returns.scalars
            for i in maskList.indices where maskList[i] != 0 {
                kl += Double(k2[i])
                ratioSum += Double(r[i])
            }
            // TRL's vf_clipfrac: over the value frame (one position longer with TRL's score position).
            for i in valueMaskList.indices where valueMaskList[i] != 0 {
                let clippedValue = ov[i] + min(max(v[i] - ov[i], -config.valueClipRange), config.valueClipRange)
                if (clippedValue - ret[i]) * (clippedValue - ret[i]) > (v[i] - ret[i]) * (v[i] - ret[i]) { vClipped += 1 }
            }
            // TRL's pg_clipfrac: the clipped branch is the larger loss.
            terms.clipFraction = ClipStatistics.trlPPO(ratios: r, advantages: advantages.scalars, mask: maskList, clipRange: config.clipRange)
                .fractions.region
            terms.valueClipFraction = vClipped / Double(max(valueMaskList.reduce(0, +), 1))
            let tokens = max(maskList.reduce(0, +), 1)
            terms.approxKL = kl / responseFrame
            terms.ratioMean = (ratioSum + responseFrame - Double(tokens)) / responseFrame
        }
        return (loss, terms)
    }
}
