// Rejection-sampling fine-tuning (best-of-n, ReST / RAFT / STaR-style expert iteration): sample n
// completions per prompt from the current policy, keep the best one when a judge scores it at or
// above a threshold (e.g. only correct answers), and run SFT on the kept completions; repeat. The
// baseline every RL method should beat: it uses only the successes and never pushes down a failure.
// One trainer step is one round (sample → filter → SFT epochs), so checkpoints fall between rounds.

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeTensor

/// Rejection-sampling fine-tuning hyperparameters.
public struct RFTConfig: Sendable {
    /// Rounds (sample → filter → SFT) the run takes; one trainer step each.
    public var steps = 10
    /// Prompts sampled per round.
    public var promptsPerStep = 64
    /// n: completions sampled per prompt.
    public var numGenerations = 8
    public var maxNewTokens = 64
    public var maxPromptLength: Int? = 512
    public var temperature: Float = 1
    public var topP: Float = 1
    public var topK = 0
    /// Keep a prompt's best completion only when its score is at least this (e.g. 1: correct).
    public var threshold: Double = 1
    /// SFT on each round's kept completions (learning rate, epochs, batch size, clipping).
    public var sft = SFTConfig()
    public var seed: UInt64 = 0

    public init() {}
}

/// Rejection-sampling fine-tuning over a prompt dataset, a `Trainer` for `AlignRunner`.
public final class RFTTrainer: Trainer {
    public let policy: any CausalLanguageModel
    public let tokenizer: any Tokenizer
    public let judge: any PairwiseJudge
    public let config: RFTConfig
    /// Scored and logged (monitor/<name>) but never trained on.
    public var monitors: [any RewardFunction] = []
    /// Called with each round's judge failures (row: the index in `samples`).
    public var onJudgeFailures: ((_ step: Int, _ failures: [JudgeFailure], _ samples: [RewardSample]) -> Void)?
    public let optimizer: Adam
    public private(set) var step = 0
    /// Completions sampled so far (all rounds).
    public private(set) var rolloutsGenerated = 0
    var cursor: PromptCursor
    let template: ChatTemplate?

    public init(policy: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil, rows: [DatasetRow],
                judge: any PairwiseJudge, config: RFTConfig) throws {
        guard config.numGenerations >= 1 else {
            throw TrainerConfigurationError(field: "num_generations", message: "expected at least 1 completion per prompt, got \(config.numGenerations)")
        }
        try checkSampling(temperature: config.temperature, maxCompletionLength: config.maxNewTokens)
        self.policy = policy
        self.tokenizer = tokenizer
        self.template = template
        self.judge = judge
        self.config = config
        optimizer = AdamW(learningRate: config.sft.learningRate, weightDecay: config.sft.weightDecay, optim: config.sft.optim)
        let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, template: template, maxPromptLength: config.maxPromptLength,
                                        limits: TokenLimits(model: policy), maxNewTokens: config.maxNewTokens)
        cursor = try PromptCursor(prompts, seed: config.seed)
    }

    public var completedSteps: Int { step }
    public var totalSteps: Int { config.steps }

    /// The completion kept from one judged group: the best-scored one at or above the threshold
    /// (a pointwise judge; ties at the top keep the first), or a pairwise-only judge's winner.
    func kept(_ group: JudgedGroup) -> Int? {
        let scored = group.scores.indices.filter { group.scores[$0] != nil }
        if !scored.isEmpty {
            let best = scored.max { group.scores[$0]! < group.scores[$1]! }!
            return group.scores[best]! >= config.threshold ? best : nil
        }
        if case .pair(let chosen, _) = group.ranking { return chosen }
        return nil
    }

    /// One round: sample, keep the best completions that pass, SFT on them.
    public func trainStep() throws -> OnlineStepResult? {
        let start = Date()
        let k = config.numGenerations
        var gen = GenerationConfig(tokenizer: tokenizer, maxNewTokens: config.maxNewTokens, temperature: config.temperature)
        gen.topP = config.topP
        gen.topK = config.topK
        gen.seed = config.seed &+ UInt64(step) &* 1_000_003
        let cursorBefore = cursor
        let rollout: Rollout, groups: [JudgedGroup]
        do {
            rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: cursor.next(config.promptsPerStep), repeats: k, generation: gen)
            groups = judgeGroups(rollout.samples, groupSize: k, judge: judge)
        } catch { cursor = cursorBefore; throw error }
        step += 1
        rolloutsGenerated += rollout.count
        var rows: [DatasetRow] = [], failures: [JudgeFailure] = [], advantages = [Double](repeating: 0, count: rollout.count)
        var failedGroups = 0
        for (g, group) in groups.enumerated() {
            failures += group.failures
            if case .failed(let f) = group.ranking {
                failedGroups += 1
                if group.failures.isEmpty { failures.append(f) }
            }
            guard let i = kept(group) else { continue }
            let s = rollout.samples[g * k + i]
            advantages[g * k + i] = 1
            // SFT appends EOS to a plain-text completion, so the model also learns to stop there.
            rows.append(.promptCompletion(prompt: .text(s.prompt), completion: .text(s.completion)))
        }
        if !failures.isEmpty { onJudgeFailures?(step, failures, rollout.samples) }
        let scores = groups.flatMap(\.scores)
        let scored = scores.compactMap { $0 }
        var metrics: [(String, Double)] = [
            ("rft/kept", Double(rows.count)), ("rft/kept_fraction", Double(rows.count) / Double(max(groups.count, 1))),
            ("judge/failed_groups", Double(failedGroups)), ("judge/failed_rows", Double(groups.reduce(0) { $0 + $1.failures.count })),
        ]
        if !scored.isEmpty { metrics.append(("reward", scored.reduce(0, +) / Double(scored.count))) }
        for monitor in monitors { metrics.append(("monitor/\(monitor.name)", meanAndStd(try monitor.scores(rollout.samples)).0)) }
        metrics += completionMetrics(rollout)
        if !rows.isEmpty {
            var sft = config.sft
            sft.seed = config.seed &+ UInt64(step)
            let losses = try SFTTrainer.train(model: policy, tokenizer: tokenizer, template: template, rows: rows, config: sft, optimizer: optimizer)
            metrics += [("loss", Double(losses.reduce(0, +) / Float(max(losses.count, 1)))), ("sft_steps", Double(losses.count))]
        }
        metrics += [("learning_rate", Double(optimizer.learningRate)), ("rollouts", Double(rolloutsGenerated)),
                    ("step_time", Date().timeIntervalSince(start))]
        let samples = rollout.samples.enumerated().map { i, s in
            OnlineSample(prompt: s.prompt, completion: s.completion, reward: scores[i], advantage: advantages[i])
        }
        return OnlineStepResult(step: step, metrics: metrics, samples: samples)
    }

    /// Writes the policy, the optimizer state and the prompt position, atomically.
    public func saveCheckpoint(to directory: URL) throws {
        try Checkpoint.save(model: policy, optimizer: optimizer, step: step, to: directory,
                            metadata: ["consumed_prompts": String(cursor.consumed), "rollouts": String(rolloutsGenerated)])
    }

    /// Restores a checkpoint written by `saveCheckpoint`; the following rounds repeat the uninterrupted run's.
    public func restoreCheckpoint(from directory: URL) throws {
        let (restoredStep, state) = try Checkpoint.restore(model: policy, optimizer: optimizer, from: directory,
                                                           trainerState: ["consumed_prompts", "rollouts"])
        step = restoredStep
        rolloutsGenerated = Int(state["rollouts"]!)
        cursor = cursor.replayed(to: Int(state["consumed_prompts"]!))
    }
}
