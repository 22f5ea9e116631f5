// Online DPO (Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback"; TRL's
// OnlineDPOTrainer): each step samples k completions per prompt from the current policy, a judge
// ranks them, the best and the worst form a preference pair, and a loss of the DPO family against
// the frozen reference (the starting policy; with LoRA the adapters-off policy) updates the policy.
// Offline DPO trains on pairs sampled once, from a policy that then moves away from them; here the
// pairs always come from the policy being trained, so the loss keeps pushing on what it does now.
//
// Ties (equal scores: no preference) and judge failures (no verdict) are skipped and counted, never
// scored; TRL keeps a tie as a pair with the first completion chosen, which teaches noise.
// Iterative DPO is the same loop with longer rounds: sample and label the prompts of several steps
// at once, then take those steps (for `roundEpochs` passes) on the frozen set before sampling again;
// online DPO is the round of one step.
//
// Metrics keep TRL's names and definitions (objective/kl: mean over the pairs' completions of
// Σ(log π − log π_ref); objective/entropy: −mean Σ log π; objective/non_score_reward: −β·that KL;
// objective/scores and scores_margin from a pointwise judge, with the missing-EOS penalty), computed
// over the completions trained on (TRL's two samples per prompt; with k > 2 the best and worst).

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeTensor

/// Online (and iterative) DPO hyperparameters (TRL's OnlineDPOConfig defaults).
public struct OnlineDPOConfig: Sendable {
    /// Optimizer steps the run takes.
    public var steps = 100
    public var learningRate: Float = 5e-7
    public var beta: Float = 0.1
    public var loss: PreferenceLoss = .sigmoid()
    /// How the frozen copy of the initial policy made as the reference is held (bf16: its projections
    /// in half the bytes); a given reference model or the adapter-free policy is used as it is.
    public var refModelDtype: ReferenceDType = .float32
    /// The weights that sample each step's completions (bf16: copies made for the step; the Float32
    /// policy scores the tokens).
    public var rolloutDtype: GenerationWeights = .float32
    /// TRL's `bf16`: training products on bf16 operands with Float32 sums (`MixedPrecision`).
    public var bf16 = false
    /// Prompts per step (TRL's per_device_train_batch_size).
    public var batchSize = 8
    /// k: completions sampled per prompt; the judge's best and worst form the pair (TRL: 2).
    public var numGenerations = 2
    public var maxNewTokens = 64
    public var maxPromptLength: Int? = 512
    public var temperature: Float = 0.9
    public var topP: Float = 1
    public var topK = 0
    /// Subtracted from a pointwise judge's score of a completion without EOS (nil: none).
    public var missingEOSPenalty: Double?
    /// 0: online (fresh samples every step); R > 0: R rounds of sample → label → DPO steps on that set.
    public var iterativeRounds = 0
    /// Iterative DPO: passes over each round's pairs.
    public var roundEpochs = 1
    public var maxGradNorm: Float = 1
    public var weightDecay: Float = 0
    /// The AdamW implementation (HF TrainingArguments' `optim`): Float32 moments, or bitsandbytes-style 8-bit ones.
    public var optim: OptimizerName = .adamwTorch
    public var seed: UInt64 = 0

    public init() {}

    /// Steps per pass over a round's pairs (1 online): the round's steps, split over its epochs.
    public var stepsPerRoundEpoch: Int {
        guard iterativeRounds > 0 else { return 1 }
        let roundSteps = (steps + iterativeRounds - 1) / iterativeRounds
        return max(1, roundSteps / max(roundEpochs, 1))
    }

    /// Passes over a round's pairs (1 online).
    public var epochsPerRound: Int { iterativeRounds > 0 ? max(roundEpochs, 1) : 1 }
}

/// How a judge ranked one prompt's k completions.
public enum GroupRanking: Equatable, Sendable {
    /// The completions (indices within the group) preferred and dispreferred.
    case pair(chosen: Int, rejected: Int)
    /// No completion preferred over another: nothing to learn, skipped.
    case tie
    /// Too few verdicts to form a pair: skipped and reported.
    case failed(JudgeFailure)
}

/// One prompt's k completions as the judge labelled them.
public struct JudgedGroup: Sendable {
    public var ranking: GroupRanking
    /// A pointwise judge's score per completion (with the missing-EOS penalty); nil where it gave
    /// none or the judge is pairwise only.
    public var scores: [Double?]
    /// The judge's failures, each at the row (the sample's index in the samples given) it concerns.
    public var failures: [JudgeFailure]
}

/// Ranks each group of `groupSize` consecutive samples: with a pointwise judge (e.g. `RewardJudge`)
/// by score, best against worst, equal scores a tie; with a pairwise-only judge by wins over every
/// pair of the group (Copeland), a pair of two when k = 2. Failed rows are left out; a group with
/// fewer than two scored samples (or no verdict) fails.
public func judgeGroups(_ samples: [RewardSample], groupSize k: Int, judge: any PairwiseJudge,
                        missingEOSPenalty: Double? = nil) -> [JudgedGroup] {
    let groups = samples.count / k
    if let pointwise = judge as? any PointwiseJudge {
        let results = pointwise.judge(samples)
        return (0..<groups).map { g in
            var scores: [Double?] = [], failures: [JudgeFailure] = []
            for i in 0..<k {
                let row = g * k + i
                switch results[row] {
                case .success(var score):
                    if let penalty = missingEOSPenalty, samples[row].finishReason == .length { score -= penalty }
                    scores.append(score)
                case .failure(var failure):
                    failure.row = row
                    failures.append(failure)
                    scores.append(nil)
                }
            }
            let scored = scores.indices.filter { scores[$0] != nil }
            guard scored.count >= 2 else {
                return JudgedGroup(ranking: .failed(JudgeFailure(judge: judge.name, row: g * k,
                                                                 reason: "only \(scored.count) of \(k) completions scored")),
                                   scores: scores, failures: failures)
            }
            let best = scored.max { scores[$0]! < scores[$1]! }!, worst = scored.min { scores[$0]! < scores[$1]! }!
            let ranking: GroupRanking = scores[best]! > scores[worst]! ? .pair(chosen: best, rejected: worst) : .tie
            return JudgedGroup(ranking: ranking, scores: scores, failures: failures)
        }
    }
    // Every pair of each group, judged in one call (a remote judge batches them).
    let pairIndices = (0..<k).flatMap { i in ((i + 1)..<k).map { (i, $0) } }
    let pairs = (0..<groups).flatMap { g in pairIndices.map { JudgePair(first: samples[g * k + $0.0], second: samples[g * k + $0.1]) } }
    let verdicts = judge.judge(pairs)
    return (0..<groups).map { g in
        var wins = [Int](repeating: 0, count: k), failures: [JudgeFailure] = [], judged = 0
        for (p, (i, j)) in pairIndices.enumerated() {
            switch verdicts[g * pairIndices.count + p] {
            case .first: wins[i] += 1; judged += 1
            case .second: wins[j] += 1; judged += 1
            case .tie: judged += 1
            case .failed(var failure):
                // Reported at the pair's first completion (a row of the samples given).
                failure.row = g * k + i
                failure.reason = "against completion \(g * k + j): \(failure.reason)"
                failures.append(failure)
            }
        }
        let scores = [Double?](repeating: nil, count: k)
        guard judged > 0 else {
            return JudgedGroup(ranking: .failed(JudgeFailure(judge: judge.name, row: g * k, reason: "no pair of the group was judged")),
                               scores: scores, failures: failures)
        }
        let best = wins.indices.max { wins[$0] < wins[$1] }!, worst = wins.indices.min { wins[$0] < wins[$1] }!
        return JudgedGroup(ranking: wins[best] > wins[worst] ? .pair(chosen: best, rejected: worst) : .tie, scores: scores, failures: failures)
    }
}

/// A labelled pair of one round (kept in the checkpoint, so a resumed iterative round trains on the same set).
struct LabelledPair: Codable {
    var promptIDs: [Int]
    var prompt: String
    var answer: String?
    var chosen: [Int]
    var rejected: [Int]
    var chosenFinish: String
    var rejectedFinish: String
    var chosenScore: Double?
    var rejectedScore: Double?
}

/// What a round holds: its steps' pairs, and how many steps of it were taken.
struct OnlineDPORound: Codable {
    var index = 0
    var batches: [[LabelledPair]] = []
    var position = 0
}

/// Online DPO over a prompt dataset, a `Trainer` for `AlignRunner`.
public final class OnlineDPOTrainer: Trainer {
    public let policy: any CausalLanguageModel
    public let reference: (any CausalLanguageModel)?
    public let tokenizer: any Tokenizer
    public let judge: any PairwiseJudge
    /// Scored and logged (monitor/<name>) but never trained on: e.g. a hidden gold reward.
    public var monitors: [any RewardFunction] = []
    /// Called with each sampling's judge failures (row: the index in `samples`), so a run can write
    /// them down with their rows.
    public var onJudgeFailures: ((_ step: Int, _ failures: [JudgeFailure], _ samples: [RewardSample]) -> Void)?
    public let config: OnlineDPOConfig
    public let optimizer: Adam
    public private(set) var step = 0
    public var bf16: Bool { config.bf16 }
    var cursor: PromptCursor
    var tokensSeen = 0
    var round = OnlineDPORound()
    let referenceIsAdapterFreePolicy: Bool

    /// - Parameters:
    ///   - reference: the frozen reference. nil: the policy with LoRA adapters disabled when it has
    ///     adapters, else a frozen copy of the initial policy (none for reference-free losses).
    public init(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)? = nil, tokenizer: any Tokenizer,
                template: ChatTemplate? = nil, rows: [DatasetRow], judge: any PairwiseJudge, config: OnlineDPOConfig) throws {
        guard config.numGenerations >= 2 else {
            throw TrainerConfigurationError(field: "num_generations", message: "online DPO needs at least 2 completions per prompt to form a pair, got \(config.numGenerations)")
        }
        guard config.batchSize >= 1 else { throw TrainerConfigurationError(field: "batch_size", message: "expected at least 1 prompt per step, got \(config.batchSize)") }
        guard config.iterativeRounds >= 0, config.roundEpochs >= 1 else {
            throw TrainerConfigurationError(field: "iterative_rounds", message: "expected iterative_rounds ≥ 0 and round_epochs ≥ 1")
        }
        try checkSampling(temperature: config.temperature, maxCompletionLength: config.maxNewTokens)
        (self.reference, referenceIsAdapterFreePolicy) = try onlineReference(reference, of: policy, needs: !config.loss.isReferenceFree, dtype: config.refModelDtype)
        self.policy = policy
        self.tokenizer = tokenizer
        self.judge = judge
        self.config = config
        optimizer = AdamW(learningRate: config.learningRate, weightDecay: config.weightDecay, optim: config.optim)
        let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, template: template, maxPromptLength: config.maxPromptLength,
                                        limits: TokenLimits(model: policy), maxNewTokens: config.maxNewTokens)
        cursor = try PromptCursor(prompts, seed: config.seed)
    }

    public var completedSteps: Int { step }
    public var totalSteps: Int { config.steps }

    var generation: GenerationConfig {
        var g = GenerationConfig(tokenizer: tokenizer, maxNewTokens: config.maxNewTokens, temperature: config.temperature)
        g.topP = config.topP
        g.topK = config.topK
        g.weights = config.rolloutDtype
        return g
    }

    /// Samples and labels a new round (one step's prompts online); returns its metrics and samples.
    func sampleRound() throws -> (metrics: [(String, Double)], samples: [OnlineSample]) {
        let k = config.numGenerations
        var batches: [[LabelledPair]] = []
        var allSamples: [RewardSample] = [], allScores: [Double?] = [], samples: [OnlineSample] = []
        var finishes: [FinishReason] = []
        var ties = 0, failedGroups = 0, failedRows = 0, margins: [Double] = []
        var rollouts: [Rollout] = []
        for b in 0..<config.stepsPerRoundEpoch {
            var gen = generation
            gen.seed = config.seed &+ UInt64(round.index) &* 1_000_003 &+ UInt64(b)
            let rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: cursor.next(config.batchSize), repeats: k,
                                             generation: gen)
            rollouts.append(rollout)
            let judged = judgeGroups(rollout.samples, groupSize: k, judge: judge, missingEOSPenalty: config.missingEOSPenalty)
            var pairs: [LabelledPair] = [], advantages = [Double](repeating: 0, count: rollout.count)
            var failures: [JudgeFailure] = []
            for (g, group) in judged.enumerated() {
                failures += group.failures
                failedRows += group.failures.count
                allScores += group.scores
                switch group.ranking {
                case .tie: ties += 1
                case .failed(let failure):
                    failedGroups += 1
                    if group.failures.isEmpty { failures.append(failure) }
                case .pair(let c, let r):
                    let (ci, ri) = (g * k + c, g * k + r)
                    advantages[ci] = 1
                    advantages[ri] = -1
                    let p = rollout.prompts[ci]
                    pairs.append(LabelledPair(promptIDs: p.ids, prompt: p.text, answer: p.answer, chosen: rollout.completions[ci],
                                              rejected: rollout.completions[ri], chosenFinish: rollout.finishReasons[ci].rawValue,
                                              rejectedFinish: rollout.finishReasons[ri].rawValue, chosenScore: group.scores[c],
                                              rejectedScore: group.scores[r]))
                    if let a = group.scores[c], let b = group.scores[r] { margins.append(a - b) }
                }
            }
            if !failures.isEmpty { onJudgeFailures?(step + 1, failures, rollout.samples) }
            for (i, s) in rollout.samples.enumerated() {
                samples.append(OnlineSample(prompt: s.prompt, completion: s.completion, reward: allScores[allScores.count - rollout.count + i],
                                            advantage: advantages[i]))
            }
            allSamples += rollout.samples
            finishes += rollout.finishReasons
            batches.append(pairs)
        }
        round = OnlineDPORound(index: round.index + 1, batches: batches, position: 0)
        let groups = Double(config.batchSize * config.stepsPerRoundEpoch)
        var metrics: [(String, Double)] = []
        let scored = allScores.compactMap { $0 }
        if !scored.isEmpty { metrics.append(("objective/scores", scored.reduce(0, +) / Double(scored.count))) }
        if !margins.isEmpty { metrics.append(("objective/scores_margin", margins.reduce(0, +) / Double(margins.count))) }
        metrics += [("val/contain_eos_token", Double(finishes.filter { $0 == .eos }.count) / Double(max(finishes.count, 1))),
                    ("judge/pairs", Double(batches.reduce(0) { $0 + $1.count })), ("judge/ties", Double(ties)),
                    ("judge/failed_groups", Double(failedGroups)), ("judge/failed_rows", Double(failedRows)),
                    ("judge/tie_fraction", Double(ties) / groups)]
        for monitor in monitors {
            metrics.append(("monitor/\(monitor.name)", meanAndStd(try monitor.scores(allSamples)).0))
        }
        let merged = Rollout(prompts: rollouts.flatMap(\.prompts), completions: rollouts.flatMap(\.completions),
                             finishReasons: rollouts.flatMap(\.finishReasons), samplingLogProbs: rollouts.flatMap(\.samplingLogProbs),
                             tokenizer: tokenizer, padID: generation.padTokenID)
        metrics += completionMetrics(merged)
        return (metrics, samples)
    }

    /// One optimizer step on the round's next pairs (sampling and labelling a new round first when
    /// the current one is used up). A step whose prompts all tied or failed makes no update and
    /// returns its judge counts.
    public func trainStep() throws -> OnlineStepResult? {
        let start = Date()
        var metrics: [(String, Double)] = [], samples: [OnlineSample] = []
        if round.position >= round.batches.count * config.epochsPerRound {
            let cursorBefore = cursor, roundBefore = round
            do { (metrics, samples) = try sampleRound() } catch { cursor = cursorBefore; round = roundBefore; throw error }
        }
        let pairs = round.batches[round.position % round.batches.count]
        round.position += 1
        step += 1
        if !pairs.isEmpty { metrics = try update(pairs) + metrics }
        metrics += [("beta", Double(config.beta)), ("learning_rate", Double(optimizer.learningRate)), ("num_tokens", Double(tokensSeen)),
                    ("step_time", Date().timeIntervalSince(start))]
        return OnlineStepResult(step: step, metrics: metrics, samples: samples)
    }

    /// The DPO-family loss on `pairs` against the reference, one optimizer step; TRL's metrics.
    func update(_ pairs: [LabelledPair]) throws -> [(String, Double)] {
        let n = pairs.count
        let prompts = pairs.map { OnlinePrompt(ids: $0.promptIDs, text: $0.prompt, answer: $0.answer) }
        let finishes = (pairs.map(\.chosenFinish) + pairs.map(\.rejectedFinish)).map { FinishReason(rawValue: $0) ?? .length }
        let rollout = Rollout(prompts: prompts + prompts, completions: pairs.map(\.chosen) + pairs.map(\.rejected), finishReasons: finishes,
                              samplingLogProbs: Array(repeating: [], count: 2 * n), tokenizer: tokenizer, padID: generation.padTokenID)
        let width = rollout.input.length - 1
        let maskValues = rollout.shiftedMask()
        let mask = Tensor(shape: [2 * n, width], values: maskValues)
        let lengths = rollout.completions.map(\.count)
        // TRL scores log-probs of the raw logits (no temperature) under the policy and the reference.
        let referenceSums: [Float]? = config.loss.isReferenceFree ? nil : withoutGradients {
            rollout.referenceLogProbs(policy: policy, reference: reference, adapterFreePolicy: referenceIsAdapterFreePolicy, temperature: 1)
                .map { ($0 * mask).sum(axis: 1).scalars }
        }
        var lossMetrics: PreferenceMetrics?
        var policySums: [Float] = []
        var (loss, grads) = valueAndGrad(policy) { m -> Tensor in
            let sums = (rollout.logProbsAndEntropies(m, temperature: 1, entropy: false).0 * mask).sum(axis: 1)
            policySums = withoutGradients { sums.scalars }
            let logProbs = PairedLogProbs(chosen: sums.slice(axis: 0, 0..<n), rejected: sums.slice(axis: 0, n..<(2 * n)),
                                          referenceChosen: referenceSums.map { Tensor(Array($0[0..<n])) },
                                          referenceRejected: referenceSums.map { Tensor(Array($0[n..<(2 * n)])) },
                                          chosenLengths: Array(lengths[0..<n]), rejectedLengths: Array(lengths[n..<(2 * n)]))
            let (loss, metrics) = preferenceLoss(config.loss, beta: config.beta, logProbs)
            lossMetrics = metrics
            return loss
        }
        let gradNorm = Double(clipGradientNorm(&grads, maxNorm: config.maxGradNorm))
        try NonFiniteValueError.check(step: step, [("loss", Double(loss.item())), ("grad_norm", gradNorm)])
        optimizer.update(policy, gradients: grads)
        try NonFiniteValueError.checkParameters(of: policy, step: step)
        tokensSeen += zip(prompts + prompts, lengths).reduce(0) { $0 + $1.0.ids.count + $1.1 }
        var metrics = lossMetrics?.named ?? [("loss", Double(loss.item()))]
        let beta = Double(config.beta)
        let entropy = -policySums.reduce(0) { $0 + Double($1) } / Double(2 * n)
        metrics += [("grad_norm", gradNorm), ("objective/entropy", entropy)]
        if let referenceSums {
            let kl = zip(policySums, referenceSums).map { Double($0 - $1) }
            let meanKL = kl.reduce(0, +) / Double(2 * n)
            metrics += [("objective/kl", meanKL), ("objective/non_score_reward", -beta * meanKL)]
            let scores = pairs.map(\.chosenScore) + pairs.map(\.rejectedScore)
            if scores.allSatisfy({ $0 != nil }) {
                let rlhf = zip(scores, kl).map { $0.0! - beta * $0.1 }
                metrics.append(("objective/rlhf_reward", rlhf.reduce(0, +) / Double(rlhf.count)))
            }
        }
        return metrics
    }

    // MARK: Checkpoints

    static let roundFile = "online_dpo_round.json"

    /// Writes the policy, the optimizer state, the prompt position and the current round's pairs, atomically.
    public func saveCheckpoint(to directory: URL) throws {
        try Checkpoint.save(model: policy, optimizer: optimizer, step: step, to: directory,
                            metadata: ["consumed_prompts": String(cursor.consumed), "num_tokens": String(tokensSeen)],
                            files: [Self.roundFile: try JSONEncoder().encode(round)])
    }

    /// Restores a checkpoint written by `saveCheckpoint`; the following steps repeat those of the
    /// uninterrupted run (same prompts, configuration, judge and reference).
    public func restoreCheckpoint(from directory: URL) throws {
        let (restoredStep, state) = try Checkpoint.restore(model: policy, optimizer: optimizer, from: directory,
                                                           trainerState: ["consumed_prompts", "num_tokens"])
        let url = directory.appendingPathComponent(Self.roundFile)
        do { round = try JSONDecoder().decode(OnlineDPORound.self, from: Data(contentsOf: url)) } catch {
            throw CheckpointError.invalid(path: url.path, reason: "cannot read the online DPO round: \(error)")
        }
        step = restoredStep
        tokensSeen = Int(state["num_tokens"]!)
        cursor = cursor.replayed(to: Int(state["consumed_prompts"]!))
    }
}
