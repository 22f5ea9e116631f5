// The critic-free online trainers (TRL's GRPOTrainer and RLOOTrainer, OpenRLHF's REINFORCE++): sample
// G completions per prompt, score them with weighted reward functions, turn the group's rewards into
// advantages, and nudge the policy with the clipped surrogate (Shao et al. 2024, eq. 3), on a KL leash to a frozen
// reference. Everything TRL's GRPO exposes is here: scale_rewards, the four loss aggregations,
// clip-higher (ε_low, ε_high), β with k3 (β = 0 loads no reference), num_iterations μ with stored
// old log-probs, mask_truncated_completions, dynamic sampling (DAPO), and GSPO's sequence-level
// importance ratios. RLOO and REINFORCE++ put the KL penalty in the reward (sequence k1 sum for
// RLOO, per-token k1 for REINFORCE++), GRPO in the loss, as their papers and TRL/OpenRLHF do.

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeTensor

/// What GRPO's advantages are made from: the completions' rewards (outcome supervision), a process
/// reward's per-step scores (DeepSeekMath's process supervision, §4.1.3), or both (`mixedAdvantages`:
/// each against its own group baseline, then added per token, as PRIME combines them).
public enum RewardMode: String, Sendable, CaseIterable {
    case outcome, process, mixed

    /// Whether the mode needs a process reward's step scores.
    public var usesSteps: Bool { self != .outcome }
}

/// Whether importance ratios are per token (GRPO), per sequence from the mean log-ratio (GSPO, Zheng
/// et al. 2025), or per sequence from the summed log-ratio with one clipped term per sequence,
/// averaged over sequences (TRL's RLOOTrainer; the loss aggregation is then unused).
public enum ImportanceSamplingLevel: String, Sendable, CaseIterable {
    case token, sequence
    case sequenceSum = "sequence_sum"
}

/// GRPO / RLOO / REINFORCE++ hyperparameters (TRL's GRPOConfig defaults).
public struct GRPOConfig: Sendable {
    /// Generation batches the run takes (each with `numIterations` optimizer steps).
    public var steps = 100
    public var learningRate: Float = 1e-6
    /// Distinct prompts per optimizer step (TRL: generation_batch_size / num_generations; its default
    /// 8 × 8 on each of 8 devices is 8 prompts). The same default as `nudge grpo`.
    public var promptsPerStep = 8
    /// G: completions per prompt.
    public var numGenerations = 8
    public var maxPromptLength: Int? = 512
    public var maxCompletionLength = 256
    public var temperature: Float = 1
    public var topP: Float = 1
    public var topK = 0
    /// β: the KL leash's weight (0: no reference model is used).
    public var beta: Float = 0
    /// How the frozen copy of the initial policy made as the reference is held (bf16: its projections
    /// in half the bytes); a given reference model or the adapter-free policy is used as it is.
    public var refModelDtype: ReferenceDType = .float32
    /// The weights that sample each step's completions (bf16: copies made for the step; the Float32
    /// policy scores the tokens).
    public var rolloutDtype: GenerationWeights = .float32
    /// γ of REINFORCE++'s token returns (OpenRLHF's gamma; its baseline variant always uses 1).
    public var gamma: Double = 1
    public var advantage: AdvantageEstimator = .grpo(scaling: .group)
    /// TRL's unbiased std (G − 1); false uses the population std.
    public var unbiasedStd = true
    public var lossType: LossAggregation = .dapo
    /// ε (low side of the clip range).
    public var epsilon: Float = 0.2
    /// ε_high (DAPO's clip-higher); nil: ε.
    public var epsilonHigh: Float?
    /// μ: optimizer steps per generated batch.
    public var numIterations = 1
    public var importanceSampling: ImportanceSamplingLevel = .token
    /// Multiply the k3 term by the importance ratio (TRL's use_bias_correction_kl, off by default).
    public var klBiasCorrection = false
    /// Exclude completions cut at max length from the loss.
    public var maskTruncatedCompletions = false
    /// DAPO's dynamic sampling: drop groups whose rewards are all equal and sample more prompts.
    public var dynamicSampling = false
    /// outcome: advantages from the reward functions; process: from `GRPOTrainer.processReward`'s
    /// step scores (advantage = grpo only; the reward functions are still scored and logged); mixed:
    /// the outcome advantage plus `processRewardWeight` × the process one (`mixedAdvantages`).
    public var rewardMode: RewardMode = .outcome
    /// w of `rewardMode = mixed`: Â_t = Â^outcome + w · Â^process_t (1: PRIME's plain sum).
    public var processRewardWeight: Double = 1
    /// The process reward of `rewardMode = process`: a PRM weights file or run directory (`nudge
    /// prm`), or "gold" for the built-in carries task's step checker; read by the runs, which set
    /// `GRPOTrainer.processReward`.
    public var processRewardModel = ""
    /// Sampling rounds allowed to refill a step when dynamic sampling drops groups.
    public var maxSamplingRounds = 4
    public var maxGradNorm: Float = 1
    public var weightDecay: Float = 0
    public var seed: UInt64 = 0
    /// Activation checkpointing (TRL's `gradient_checkpointing`): each decoder block of the trained
    /// model is recomputed in backward instead of keeping its activations; gradients are unchanged.
    public var gradientCheckpointing = false
    /// TRL's `bf16`: training products on bf16 operands with Float32 sums (`MixedPrecision`).
    public var bf16 = false
    /// The AdamW implementation (HF TrainingArguments' `optim`): Float32 moments, or bitsandbytes-style 8-bit ones.
    public var optim: OptimizerName = .adamwTorch

    public init() {}

    /// TRL's RLOOTrainer: leave-one-out advantages, β = 0.05 as a k1 penalty in the reward, and one
    /// importance ratio from the summed log-ratio, clipped per sequence, averaged over sequences.
    public static var rloo: GRPOConfig {
        var c = GRPOConfig()
        c.advantage = .rloo
        c.beta = 0.05
        c.importanceSampling = .sequenceSum
        return c
    }
}

/// An online trainer of the GRPO family over a prompt dataset.
public final class GRPOTrainer {
    public let policy: any CausalLanguageModel
    public let reference: (any CausalLanguageModel)?
    public let tokenizer: any Tokenizer
    public let rewards: WeightedRewards
    /// Scored and logged (monitor/<name>) but never trained on: e.g. a hidden gold reward.
    public var monitors: [any RewardFunction] = []
    /// The per-step reward of `config.rewardMode = process`.
    public var processReward: (any ProcessReward)?
    public var config: GRPOConfig
    public let optimizer: Adam
    public private(set) var step = 0
    /// When set, each optimizer step records the gradient's norm per parameter (before clipping) in
    /// `parameterGradientNorms`; the parity tests compare them with TRL's (off by default: one more
    /// pass over the gradients).
    var recordsParameterGradientNorms = false
    private(set) var parameterGradientNorms: [String: Double] = [:]
    var cursor: PromptCursor
    var tokensSeen = 0
    /// When the reference is the policy with its LoRA adapters switched off (no second copy).
    let referenceIsAdapterFreePolicy: Bool
    /// The data-parallel job this trainer is one rank of (a single process by default): each rank
    /// samples and trains on its whole prompt groups of every step, gradients are summed over the
    /// ranks, and every rank takes the same optimizer step.
    public let communicator: Communicator

    /// - Parameters:
    ///   - reference: the frozen reference for β > 0. nil: the policy with LoRA adapters disabled when
    ///     it has adapters, else a frozen copy of the initial policy.
    public init(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)? = nil, tokenizer: any Tokenizer,
                template: ChatTemplate? = nil, rows: [DatasetRow], rewards: WeightedRewards, config: GRPOConfig,
                communicator: Communicator = .shared) throws {
        guard config.numGenerations >= 2 else {
            throw TrainerConfigurationError(field: "num_generations", message: "GRPO needs at least 2 generations per prompt, got \(config.numGenerations)")
        }
        try checkSampling(temperature: config.temperature, maxCompletionLength: config.maxCompletionLength)
        policy.gradientCheckpointing = config.gradientCheckpointing
        if config.rewardMode.usesSteps {
            guard case .grpo = config.advantage else {
                throw TrainerConfigurationError(field: "reward_mode", message: "process supervision (reward_mode = \(config.rewardMode.rawValue)) needs advantage = grpo (its per-step normalization), not \(config.advantage)")
            }
            guard config.importanceSampling != .sequenceSum else {
                throw TrainerConfigurationError(field: "importance_sampling_level", message: "sequence_sum needs one advantage per sequence; reward_mode = \(config.rewardMode.rawValue) gives one per token")
            }
        }
        if config.importanceSampling == .sequenceSum, case .reinforcePlusPlus = config.advantage {
            throw TrainerConfigurationError(field: "importance_sampling_level",
                                            message: "sequence_sum needs one advantage per sequence (grpo or rloo), not REINFORCE++'s per-token ones")
        }
        if communicator.isDistributed {
            if config.dynamicSampling {
                throw TrainerConfigurationError(field: "dynamic_sampling", message: "dynamic sampling is not supported across MPI ranks yet (each refill would need the other ranks' kept groups); run it in one process")
            }
            if case .reinforcePlusPlus = config.advantage {
                throw TrainerConfigurationError(field: "advantage", message: "REINFORCE++'s batch whitening is not reduced across MPI ranks yet; run it in one process")
            }
            guard config.promptsPerStep >= communicator.size else {
                throw TrainerConfigurationError(field: "prompts_per_step", message: "\(config.promptsPerStep) prompts per step cannot be shared by \(communicator.size) ranks (each rank samples whole prompt groups); use at least \(communicator.size)")
            }
        }
        self.communicator = communicator
        (self.reference, referenceIsAdapterFreePolicy) = try onlineReference(reference, of: policy, needs: config.beta != 0, dtype: config.refModelDtype)
        self.policy = policy
        self.tokenizer = tokenizer
        self.rewards = rewards
        self.config = config
        optimizer = AdamW(learningRate: config.learningRate, weightDecay: config.weightDecay, optim: config.optim)
        let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, template: template, maxPromptLength: config.maxPromptLength,
                                        limits: TokenLimits(model: policy), maxNewTokens: config.maxCompletionLength)
        try checkAnswers(prompts, rewards: rewards)
        cursor = try PromptCursor(prompts, seed: config.seed)
    }

    var generation: GenerationConfig {
        var g = GenerationConfig(tokenizer: tokenizer, maxNewTokens: config.maxCompletionLength, temperature: config.temperature)
        g.topP = config.topP
        g.topK = config.topK
        g.weights = config.rolloutDtype
        return g
    }

    /// Reference per-token log-probs (B, T − 1).
    func referenceLogProbs(_ rollout: Rollout) -> Tensor? {
        guard config.beta != 0 else { return nil }
        return rollout.referenceLogProbs(policy: policy, reference: reference, adapterFreePolicy: referenceIsAdapterFreePolicy,
                                         temperature: config.temperature)
    }

    /// Per group of `numGenerations` rows: whether all its rewards are equal (no learning signal).
    func zeroStdGroups(_ totals: [Double?]) -> [Bool] {
        let g = config.numGenerations
        let std = groupRelativeAdvantages(rewards: totals, groupSize: g, scaling: .group, unbiased: config.unbiasedStd).groupStd
        return stride(from: 0, to: totals.count, by: g).map { std[$0] < 1e-12 }
    }

    /// TRL's `frac_reward_zero_std`: the share of rows whose scaling std is 0 — each group's std, or
    /// with batch scaling the whole batch's (so 0 or 1).
    func zeroStdFraction(_ totals: [Double?]) -> Double {
        if case .grpo(.batch) = config.advantage {
            let scored = totals.compactMap { $0 }
            guard scored.count > 1 else { return 1 }
            return meanAndVariance(scored, correction: config.unbiasedStd ? 1 : 0).variance.squareRoot() < 1e-12 ? 1 : 0
        }
        let zero = zeroStdGroups(totals)
        return Double(zero.filter { $0 }.count) / Double(max(zero.count, 1))
    }

    /// Samples and scores one step's groups (refilling when dynamic sampling drops some).
    func sampleGroups() throws -> (Rollout, perFunction: [[Double?]], totals: [Double?], zeroStdFraction: Double, rounds: Int)? {
        let g = config.numGenerations
        var kept: [(Rollout, [[Double?]], [Double?])] = []
        var keptGroups = 0, rounds = 0
        var zeroStdFraction = 0.0
        while keptGroups < config.promptsPerStep && rounds < (config.dynamicSampling ? config.maxSamplingRounds : 1) {
            var gen = generation
            gen.seed = config.seed &+ UInt64(step) &* 1_000_003 &+ UInt64(rounds)
            let all = cursor.next(config.dynamicSampling ? config.promptsPerStep - keptGroups : config.promptsPerStep)
            // Every rank walks the same prompt order and samples its own share of whole groups; row
            // r of the step draws from the stream keyed by (seed, step, round, r), whichever rank samples it.
            let share = communicator.shard(all.count)
            let prompts = Array(all[share])
            gen.firstRowKey = share.lowerBound * g
            let rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: prompts, repeats: g, generation: gen)
            let (perFunction, totals) = try rewards.evaluate(rollout.samples)
            let zero = zeroStdGroups(totals)
            if rounds == 0 { zeroStdFraction = self.zeroStdFraction(communicator.gatherRows(totals, offset: share.lowerBound * g, total: all.count * g)) }
            rounds += 1
            let keep = config.dynamicSampling ? zero.indices.filter { !zero[$0] } : Array(zero.indices)
            guard !keep.isEmpty else { continue }
            let rows = keep.flatMap { k in (k * g)..<((k + 1) * g) }
            let sub = Rollout(prompts: rows.map { rollout.prompts[$0] }, completions: rows.map { rollout.completions[$0] },
                              finishReasons: rows.map { rollout.finishReasons[$0] }, samplingLogProbs: rows.map { rollout.samplingLogProbs[$0] },
                              tokenizer: tokenizer, padID: gen.padTokenID)
            kept.append((sub, perFunction.map { col in rows.map { col[$0] } }, rows.map { totals[$0] }))
            keptGroups += keep.count
        }
        guard !kept.isEmpty else { return nil }
        if kept.count == 1 { return (kept[0].0, kept[0].1, kept[0].2, zeroStdFraction, rounds) }
        let all = kept.map(\.0)
        let merged = Rollout(prompts: all.flatMap(\.prompts), completions: all.flatMap(\.completions),
                             finishReasons: all.flatMap(\.finishReasons), samplingLogProbs: all.flatMap(\.samplingLogProbs),
                             tokenizer: tokenizer, padID: generation.padTokenID)
        let perFunction = rewards.functions.indices.map { f in kept.flatMap { $0.1[f] } }
        return (merged, perFunction, kept.flatMap(\.2), zeroStdFraction, rounds)
    }

    /// RLOO's rewards: each minus β·Σ_t (log π_old − log π_ref) over its completion tokens.
    func klPenalizedRewards(_ totals: [Double?], old: Tensor, reference: Tensor, mask: [Float]) -> [Double?] {
        let width = old.shape[1], k1 = KLEstimator.k1(logRatio: reference - old).scalars
        return totals.indices.map { r in
            let kl = (0..<width).reduce(0.0) { $0 + Double(k1[r * width + $1] * mask[r * width + $1]) }
            return totals[r].map { $0 - Double(config.beta) * kl }
        }
    }

    /// Advantages, (B, 1) per sequence or (B, T − 1) per token, for the configured estimator; RLOO and
    /// REINFORCE++ first subtract β·k1 (from `old` and `referenceLogProbs`) from the reward.
    func advantages(_ rollout: Rollout, totals: [Double?], globalTotals: [Double?]? = nil, rowOffset: Int = 0, old: Tensor,
                    referenceLogProbs: Tensor?, mask: [Float], steps: [[(token: Int, score: Double)]?]? = nil) -> Tensor {
        let g = config.numGenerations, b = rollout.count
        let width = old.shape[1]
        if let steps, case .grpo(let scaling) = config.advantage {
            // Process supervision: per completion token, laid into the shifted frame (completion
            // token j of row r is predicted at column prompt length + j − 1).
            let lengths = rollout.completions.map(\.count)
            let perToken = config.rewardMode == .mixed
                ? mixedAdvantages(outcomeRewards: totals, steps: steps, lengths: lengths, groupSize: g, scaling: scaling,
                                  processWeight: config.processRewardWeight, unbiased: config.unbiasedStd)
                : processSupervisionAdvantages(steps: steps, lengths: lengths, groupSize: g, scaling: scaling, unbiased: config.unbiasedStd)
            var values = [Float](repeating: 0, count: b * width)
            for r in 0..<b {
                let offset = rollout.prompts[r].ids.count - 1
                for (j, a) in perToken[r].enumerated() where offset + j < width && mask[r * width + offset + j] != 0 {
                    values[r * width + offset + j] = Float(a)
                }
            }
            return Tensor(shape: [b, width], values: values)
        }
        // k1 per token, log π − log π_ref, for the estimators that penalize in the reward.
        let k1: [Float]? = referenceLogProbs.map { ref in KLEstimator.k1(logRatio: ref - old).scalars }
        switch config.advantage {
        case .grpo(let scaling):
            // From the whole step's rewards (batch scaling takes the std over every rank's rows), this rank's rows.
            let a = groupRelativeAdvantages(rewards: globalTotals ?? totals, groupSize: g, scaling: scaling, unbiased: config.unbiasedStd).advantages
            return Tensor(shape: [b, 1], values: a[rowOffset..<(rowOffset + b)].map(Float.init))
        case .rloo:
            let penalized = referenceLogProbs.map { klPenalizedRewards(totals, old: old, reference: $0, mask: mask) } ?? totals
            return Tensor(shape: [b, 1], values: leaveOneOutAdvantages(rewards: penalized, groupSize: g).map(Float.init))
        case .reinforcePlusPlus(let baseline):
            var scores = totals.map { $0 ?? 0 }
            if baseline {
                // The group mean of the rows that were scored (an unscored row is not a reward of 0).
                for start in stride(from: 0, to: b, by: g) {
                    let scored = totals[start..<(start + g)].compactMap { $0 }
                    let mean = scored.isEmpty ? 0 : scored.reduce(0, +) / Double(scored.count)
                    for i in start..<(start + g) { scores[i] -= mean }
                }
            }
            var tokenRewards = [[Double]](repeating: [Double](repeating: 0, count: width), count: b)
            var tokenMask = [[Bool]](repeating: [Bool](repeating: false, count: width), count: b)
            for r in 0..<b {
                var last: Int?
                for t in 0..<width where mask[r * width + t] != 0 {
                    tokenMask[r][t] = true
                    last = t
                    // OpenRLHF's compute_approx_kl clamps the estimate to ±10.
                    if let k1 { tokenRewards[r][t] = -Double(config.beta) * min(max(Double(k1[r * width + t]), -10), 10) }
                }
                if let last, totals[r] != nil { tokenRewards[r][last] += scores[r] }
            }
            // OpenRLHF discounts only plain REINFORCE++; its baseline variant sets γ to 1.
            let a = reinforcePlusPlusAdvantages(tokenRewards: tokenRewards, mask: tokenMask, gamma: baseline ? 1 : config.gamma)
            return Tensor(shape: [b, width], values: a.flatMap { $0.map(Float.init) })
        }
    }

    // MARK: Checkpoints

    /// Writes the policy, the optimizer state and the trainer's position (step, prompts consumed,
    /// tokens seen) as a checkpoint directory, atomically.
    public func saveCheckpoint(to directory: URL) throws {
        try Checkpoint.save(model: policy, optimizer: optimizer, step: step, to: directory,
                            metadata: ["consumed_prompts": String(cursor.consumed), "num_tokens": String(tokensSeen)])
    }

    /// Restores a checkpoint written by `saveCheckpoint`; the following steps then repeat those of
    /// the uninterrupted run (same seed and thread count). The trainer must have been made with the
    /// same prompts, configuration and reference.
    public func restoreCheckpoint(from directory: URL) throws {
        let (restoredStep, state) = try Checkpoint.restore(model: policy, optimizer: optimizer, from: directory,
                                                           trainerState: ["consumed_prompts", "num_tokens"])
        step = restoredStep
        tokensSeen = Int(state["num_tokens"]!)
        cursor = cursor.replayed(to: Int(state["consumed_prompts"]!))
    }

    /// One generation batch: sample, score, then μ optimizer steps. Returns nil when dynamic sampling
    /// found no group with any reward variation (no update is made).
    @discardableResult
    public func trainStep() throws -> OnlineStepResult? {
        let start = Date()
        // A failed or interrupted scoring (e.g. Ctrl-C during the reward command) leaves the step
        // undone: put the prompts back so a checkpoint saved now resumes exactly here.
        let cursorBefore = cursor
        let sampled: (Rollout, perFunction: [[Double?]], totals: [Double?], zeroStdFraction: Double, rounds: Int)?
        do { sampled = try sampleGroups() } catch { cursor = cursorBefore; throw error }
        guard let (rollout, perFunction, totals, zeroStdFraction, rounds) = sampled else {
            step += 1
            return nil
        }
        return try update(rollout, perFunction: perFunction, totals: totals, zeroStdFraction: zeroStdFraction, rounds: rounds, start: start)
    }

    /// One step on given completions (consecutive groups of `numGenerations` rows per prompt): score
    /// them with the reward functions, then the same μ optimizer steps as `trainStep`. The parity
    /// tests feed the reference implementation's fixed completions through here.
    @discardableResult
    public func trainStep(on rollout: Rollout) throws -> OnlineStepResult {
        let start = Date()
        let g = config.numGenerations
        guard rollout.count > 0, rollout.count % g == 0 else {
            throw TrainerConfigurationError(field: "num_generations", message: "a rollout of \(rollout.count) rows is not whole groups of \(g)")
        }
        let (perFunction, totals) = try rewards.evaluate(rollout.samples)
        return try update(rollout, perFunction: perFunction, totals: totals, zeroStdFraction: zeroStdFraction(totals), rounds: 1, start: start)
    }

    /// Advantages, then μ optimizer steps on `rollout`, and the step's metrics.
    func update(_ rollout: Rollout, perFunction: [[Double?]], totals: [Double?], zeroStdFraction: Double, rounds: Int,
                start: Date) throws -> OnlineStepResult {
        let b = rollout.count
        let truncated = config.maskTruncatedCompletions ? Set(rollout.finishReasons.indices.filter { rollout.finishReasons[$0] == .length }) : []
        let maskValues = rollout.shiftedMask(excluding: truncated)
        let width = rollout.input.length - 1
        let localTokens = Double(maskValues.reduce(0, +))
        // The step's rows over every rank: row `rowOffset + r` of the whole batch is this rank's row r.
        let globalRows = Int(communicator.sum(Double(b))), rowOffset = Int(communicator.exclusivePrefixSum(Double(b)))
        let stepTokens = Int(communicator.sum(localTokens))
        let globalTotals = communicator.gatherRows(totals, offset: rowOffset, total: globalRows)
        let referenceLogProbs = referenceLogProbs(rollout)
        // Old log-probs: needed before the first update for μ > 1 (and for the reward-side KL); with
        // μ = 1 the current pass's detached values are the old ones.
        let klInReward = config.advantage.penalizesKLInReward
        let storedOld: Tensor? = (config.numIterations > 1 || (klInReward && referenceLogProbs != nil))
            ? rollout.logProbs(policy, temperature: config.temperature) : nil
        var steps: [[(token: Int, score: Double)]?]?
        if config.rewardMode.usesSteps {
            guard let processReward else {
                throw TrainerConfigurationError(field: "process_reward_model", message: "reward_mode = \(config.rewardMode.rawValue) needs a process reward (a PRM from nudge prm, or gold)")
            }
            steps = try placedStepRewards(processReward, samples: rollout.samples, tokenizer: tokenizer)
        }
        let advantages = advantages(rollout, totals: totals, globalTotals: globalTotals, rowOffset: rowOffset,
                                    old: storedOld ?? Tensor(repeating: 0, shape: [b, width]),
                                    referenceLogProbs: klInReward ? referenceLogProbs : nil, mask: maskValues, steps: steps)
        var zeroStdFraction = zeroStdFraction
        if case .rloo = config.advantage, let ref = referenceLogProbs, let old = storedOld {
            // TRL's RLOOTrainer takes frac_reward_zero_std from the rewards after the β·Σk1 penalty.
            zeroStdFraction = self.zeroStdFraction(communicator.gatherRows(klPenalizedRewards(totals, old: old, reference: ref, mask: maskValues),
                                                                           offset: rowOffset, total: globalRows))
        }
        var lossValue = 0.0, gradNorm = 0.0
        var terms = GRPOLossMetrics()
        // This rank's loss is its rows' part of the whole batch's loss, so the ranks' gradients sum
        // to the one-process gradient: the aggregations that divide by the batch's rows or tokens
        // are rescaled from this rank's count to the whole step's (dapo already divides by stepTokens).
        let perSequenceLoss = config.importanceSampling == .sequenceSum
        let share: Float
        switch config.lossType {
        case _ where !communicator.isDistributed: share = 1
        case _ where perSequenceLoss: share = Float(b) / Float(globalRows)
        case .grpo, .drGRPO: share = Float(b) / Float(globalRows)
        case .bnpo: share = Float(max(localTokens, 1)) / Float(max(stepTokens, 1))
        case .dapo: share = 1
        }
        // The loss's logged terms are averaged over tokens (or rows, for per-sequence ratios) of the whole batch.
        let termWeight = !communicator.isDistributed ? 1
            : config.importanceSampling != .token ? Double(b) / Double(globalRows) : localTokens / Double(max(stepTokens, 1))
        for _ in 0..<config.numIterations {
            var (loss, grads) = valueAndGrad(policy) { m -> Tensor in
                let (current, tokenEntropy) = rollout.logProbsAndEntropies(m, temperature: config.temperature, entropy: true)
                let (loss, metrics) = GRPOTrainer.loss(current: current, old: storedOld, reference: referenceLogProbs, klInLoss: !klInReward,
                                                       advantages: advantages, mask: maskValues, width: width, stepTokens: stepTokens,
                                                       config: config)
                // Logged on every loss computation and averaged over the μ iterations, as TRL does (at the
                // first one the ratio is 1, so clipping only shows for μ > 1).
                terms.add(metrics, entropy: maskedMean(tokenEntropy!, maskValues), averagedOver: Double(config.numIterations))
                return share == 1 ? loss : loss * share
            }
            communicator.allreduceSum(grads)
            if recordsParameterGradientNorms {
                parameterGradientNorms = grads.norms()
            }
            gradNorm = Double(clipGradientNorm(&grads, maxNorm: config.maxGradNorm))
            // Refused before the weights change; an update that overflows them is caught after it.
            try NonFiniteValueError.check(step: step + 1, [("loss", Double(loss.item())), ("grad_norm", gradNorm)])
            optimizer.update(policy, gradients: grads)
            try NonFiniteValueError.checkParameters(of: policy, step: step + 1)
            lossValue += communicator.sum(Double(loss.item())) / Double(config.numIterations)
        }
        step += 1
        tokensSeen += Int(communicator.sum(Double(rollout.input.attentionMask?.reduce(0) { $0 + $1.filter { $0 }.count } ?? 0)))
        if communicator.isDistributed {
            var t = [terms.kl, terms.entropy, terms.clipLow, terms.clipHigh, terms.clipRegion].map { $0 * termWeight }
            communicator.allreduceSum(&t)
            (terms.kl, terms.entropy, terms.clipLow, terms.clipHigh, terms.clipRegion) = (t[0], t[1], t[2], t[3], t[4])
        }
        let (rewardMean, rewardStd) = meanAndStd(globalTotals)
        var metrics: [(String, Double)] = [("reward", rewardMean), ("reward_std", rewardStd)]
        func gathered(_ column: [Double?]) -> [Double?] { communicator.gatherRows(column, offset: rowOffset, total: globalRows) }
        metrics += try rewardMetrics(rewards, perFunction: perFunction.map { gathered($0) }, monitors: monitors, samples: rollout.samples,
                                     gather: { gathered($0) })
        metrics += [("frac_reward_zero_std", zeroStdFraction)]
        if let steps, let name = processReward?.name {
            let scores = steps.flatMap { $0?.map(\.score) ?? [] }
            metrics += [("rewards/\(name)/step_mean", scores.isEmpty ? 0 : scores.reduce(0, +) / Double(scores.count)),
                        ("rewards/\(name)/steps_per_completion", Double(scores.count) / Double(max(b, 1)))]
        }
        if config.beta != 0 { metrics.append(("kl", terms.kl)) }
        metrics += [("entropy", terms.entropy), ("clip_ratio/low_mean", terms.clipLow), ("clip_ratio/high_mean", terms.clipHigh),
                    ("clip_ratio/region_mean", terms.clipRegion)]
        metrics += completionMetrics(lengths: gathered(rollout.completions.map { Double($0.count) }).map { Int($0 ?? 0) },
                                     clipped: gathered(rollout.finishReasons.map { $0 == .length ? 1 : 0 }).map { $0 == 1 })
        metrics += [("loss", lossValue), ("grad_norm", gradNorm), ("learning_rate", Double(optimizer.learningRate)),
                    ("num_tokens", Double(tokensSeen)), ("sampling_rounds", Double(rounds)),
                    ("step_time", Date().timeIntervalSince(start))]
        let perRow = advantages.shape[1] == 1 ? advantages.scalars.map(Double.init)
            : (0..<b).map { r in Double(advantages.scalars[(r * width)..<((r + 1) * width)].first { $0 != 0 } ?? 0) }
        let samples = (0..<b).map { OnlineSample(prompt: rollout.samples[$0].prompt, completion: rollout.samples[$0].completion,
                                                 reward: totals[$0], advantage: perRow[$0]) }
        return OnlineStepResult(step: step, metrics: metrics, samples: samples)
    }
}

// MARK: The loss

/// What GRPO's loss logs besides its value (TRL's names: kl, entropy, clip_ratio/…).
struct GRPOLossMetrics {
    var clipLow = 0.0, clipHigh = 0.0, clipRegion = 0.0
    /// The KL term the loss uses (k3, times the ratio with the bias correction), or RLOO's k1; 0 without a reference.
    var kl = 0.0
    var entropy = 0.0

    /// Adds `other` (one loss computation's) and its entropy, each divided by `count` (μ: the
    /// iterations' average).
    mutating func add(_ other: GRPOLossMetrics, entropy e: Double, averagedOver count: Double) {
        clipLow += other.clipLow / count
        clipHigh += other.clipHigh / count
        clipRegion += other.clipRegion / count
        kl += other.kl / count
        entropy += e / count
    }
}

extension GRPOTrainer {
    /// GRPO's loss on one generation batch, a pure function of the log-probs (Shao et al. 2024,
    /// eq. 3, as TRL's `_compute_loss`): the importance ratio r = π/π_old per token (or per sequence:
    /// GSPO's mean log-ratio, RLOO's summed one), the clipped surrogate −min(r·A, clip(r, 1−ε_low,
    /// 1+ε_high)·A), plus β·k3(π_ref ‖ π) per token when the KL is in the loss, aggregated by
    /// `config.lossType`; RLOO's sequence form takes the mean over sequences. `current` carries the
    /// gradient, (B, T − 1); `old` nil means μ = 1 (the old log-probs are `current`, detached);
    /// `mask` flags the completion tokens counted.
    static func loss(current: Tensor, old: Tensor?, reference: Tensor?, klInLoss: Bool, advantages: Tensor, mask maskValues: [Float],
                     width: Int, stepTokens: Int, config: GRPOConfig) -> (Tensor, GRPOLossMetrics) {
        let b = current.shape[0]
        let mask = Tensor(shape: [b, width], values: maskValues)
        let logRatio = current - (old ?? current.detached())
        let ratio: Tensor
        switch config.importanceSampling {
        case .token: ratio = logRatio.exp()
        case .sequence:
            let lengths = (0..<b).map { r in max(1, maskValues[(r * width)..<((r + 1) * width)].reduce(0, +)) }
            ratio = ((logRatio * mask).sum(axis: 1) / Tensor(lengths)).reshaped([b, 1]).exp()
        case .sequenceSum:
            ratio = (logRatio * mask).sum(axis: 1).reshaped([b, 1]).exp()
        }
        var metrics = GRPOLossMetrics()
        // One ratio per sequence (GSPO, RLOO): TRL averages the clip flags over sequences.
        let perSequence = config.importanceSampling != .token
        withoutGradients {
            (metrics.clipLow, metrics.clipHigh, metrics.clipRegion) = ClipStatistics.trl(
                ratio: ratio, advantages: advantages, mask: perSequence ? [Float](repeating: 1, count: b) : maskValues, width: perSequence ? 1 : width,
                epsilonLow: config.epsilon, epsilonHigh: config.epsilonHigh ?? config.epsilon).fractions
        }
        let surrogate = clippedSurrogateTerms(ratio: ratio, advantages: advantages, clipLow: config.epsilon, clipHigh: config.epsilonHigh)
        if config.importanceSampling == .sequenceSum {
            // TRL's RLOO: the mean over sequences of −min(r·A, clip(r)·A); the KL it logs is its own k1, per token.
            if let reference { metrics.kl = withoutGradients { maskedMean(KLEstimator.k1(logRatio: reference - (old ?? current.detached())).scalars, maskValues) } }
            return (surrogate.mean(), metrics)
        }
        var perToken = surrogate
        if let reference, klInLoss {
            var k3 = KLEstimator.k3(logRatio: reference - current)
            if config.klBiasCorrection { k3 = k3 * ratio }
            perToken = perToken + k3 * config.beta
        }
        if let reference {
            // TRL logs the KL term the loss uses: with the bias correction, k3 times the ratio (the
            // same at μ = 1, where the ratio is 1; not after an update).
            metrics.kl = withoutGradients {
                var k3 = KLEstimator.k3(logRatio: reference - current)
                if config.klBiasCorrection { k3 = k3 * ratio }
                return maskedMean(k3.scalars, maskValues)
            }
        }
        return (aggregateTokenLoss(perToken, mask: mask, config.lossType, maxCompletionLength: config.maxCompletionLength,
                                   stepTokenCount: stepTokens), metrics)
    }
}
