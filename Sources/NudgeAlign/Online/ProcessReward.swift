// Process rewards: a score for every step of a sampled completion rather than one for the whole
// (Lightman et al. 2023; Uesato et al. 2022), the dense signal that reintroduces the horizon the
// bandit framing of RLHF drops. A completion's steps are its pieces between step separators ("\n",
// TRL's PRMConfig default); each step's score is placed on the step's last token, the token that
// writes its separator (the last step: the completion's final token, EOS when there is one), so that
// per-token credit assignment sees it where the step is finished:
//
// - PPO-RLHF adds the scores to its token rewards at those positions (its token GAE carries them back);
// - GRPO's process supervision (Shao et al. 2024, DeepSeekMath §4.1.3) normalizes every step reward
//   by the mean and std of all step rewards of the group, and a token's advantage is the sum of the
//   normalized rewards of the steps that end at or after it (`processSupervisionAdvantages`).
//
// Two sources: a trained process reward model (`ProcessRewardModel`, `nudge prm`: p(correct) of each
// step), and the built-in `carries` task's gold step checker (`GoldStepReward`, 1 or 0 per step).

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

/// Scores each step of sampled completions.
public protocol ProcessReward {
    /// The name used in metrics (`rewards/<name>/step_mean`).
    var name: String { get }
    /// What separates steps in a completion.
    var stepSeparator: String { get }
    /// One score per step of each sample's completion (its steps as `steps(of:)` splits them); nil
    /// where the reward does not apply.
    func stepScores(_ samples: [RewardSample]) throws -> [[Double]?]
}

extension ProcessReward {
    /// The steps of a completion: the pieces between separators, empty trailing pieces dropped.
    public func steps(of completion: String) -> [String] { processSteps(of: completion, separator: stepSeparator) }
}

/// The steps of `completion` split on `separator`, empty trailing pieces dropped.
public func processSteps(of completion: String, separator: String) -> [String] {
    var pieces = completion.components(separatedBy: separator)
    while let last = pieces.last, last.trimmingWhitespace.isEmpty { pieces.removeLast() }
    return pieces
}

/// The index in `completionIDs` of the last token of each of the first `stepCount` steps: the token
/// whose decoded text completes the step's separator, and for the last step the final token. Found
/// by decoding growing prefixes (special tokens skipped), so it holds for any tokenizer, including
/// one that writes a separator inside a longer token.
public func stepEndTokens(completionIDs: [Int], stepCount: Int, separator: String, tokenizer: any Tokenizer) -> [Int] {
    guard stepCount > 0, !completionIDs.isEmpty else { return [] }
    var ends: [Int] = []
    for i in completionIDs.indices where ends.count < stepCount - 1 {
        let text = tokenizer.decode(Array(completionIDs[...i]), skipSpecialTokens: true)
        let separators = text.components(separatedBy: separator).count - 1
        while ends.count < min(separators, stepCount - 1) { ends.append(i) }
    }
    // Steps the separators did not close (fewer found than asked) and the last step end at the final token.
    while ends.count < stepCount { ends.append(completionIDs.count - 1) }
    return ends
}

/// Per step of each sample: the completion-token index of the step's last token and its score;
/// nil where the process reward does not apply.
public func placedStepRewards(_ reward: any ProcessReward, samples: [RewardSample], tokenizer: any Tokenizer) throws
    -> [[(token: Int, score: Double)]?] {
    let scores = try reward.stepScores(samples)
    guard scores.count == samples.count else {
        throw RewardError.wrongCount(function: reward.name, expected: samples.count, got: scores.count)
    }
    return zip(samples, scores).map { sample, scores in
        guard let scores, !scores.isEmpty, !sample.completionIDs.isEmpty else { return nil }
        let ends = stepEndTokens(completionIDs: sample.completionIDs, stepCount: scores.count, separator: reward.stepSeparator,
                                 tokenizer: tokenizer)
        return zip(ends, scores).map { (token: $0, score: $1) }
    }
}

// MARK: Sources

/// The built-in `carries` task's gold step checker as a process reward: 1 for a step equal to the
/// worked solution's step at its position, else 0; nil for other prompts.
public struct GoldStepReward: ProcessReward {
    public var name = "gold_steps"
    public var stepSeparator: String { SyntheticTask.stepSeparator }

    public init() {}

    public func stepScores(_ samples: [RewardSample]) throws -> [[Double]?] {
        samples.map { s in
            let steps = steps(of: s.completion)
            guard !steps.isEmpty else { return SyntheticTask.goldSteps(prompt: s.prompt) == nil ? nil : [0] }
            return SyntheticTask.goldStepLabels(prompt: s.prompt, steps: steps)?.map { $0 ? 1 : 0 }
        }
    }
}

/// A trained process reward model (`nudge prm`) as a process reward: each step's p(correct) = σ(z),
/// z the head's logit at the step's separator in TRL's layout of the prompt and the steps. Steps
/// that `maxLength` cuts off score 0.
public final class ProcessRewardModel: ProcessReward {
    public var name = "prm"
    public let model: ScalarHeadModel
    public let tokenizer: any Tokenizer
    public var stepSeparator: String
    public var maxLength: Int?
    public var batchSize: Int

    public init(model: ScalarHeadModel, tokenizer: any Tokenizer, stepSeparator: String = "\n", maxLength: Int? = 1024, batchSize: Int = 32) {
        self.model = model
        self.tokenizer = tokenizer
        self.stepSeparator = stepSeparator
        self.maxLength = maxLength
        self.batchSize = batchSize
    }

    /// A PRM saved by `nudge prm` (`prm.safetensors`, or the run directory holding it in
    /// checkpoints/) on the architecture of `base`: the PRM must have been trained from a model of
    /// that shape (the same preset, or the same model directory).
    public static func load(_ path: URL, base: any CausalLanguageModel, tokenizer: any Tokenizer, stepSeparator: String = "\n") throws
        -> ProcessRewardModel {
        var file = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory), isDirectory.boolValue {
            file = path.appendingPathComponent("checkpoints/prm.safetensors")
        }
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw RunSetupError("process_reward_model \(path.path): no such file (expected prm.safetensors written by nudge prm, or its run directory)")
        }
        let model = ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: base))
        try model.load(from: file)
        return ProcessRewardModel(model: model, tokenizer: tokenizer, stepSeparator: stepSeparator)
    }

    public func stepScores(_ samples: [RewardSample]) throws -> [[Double]?] {
        let stepsPerSample = samples.map { steps(of: $0.completion) }
        let examples = zip(samples, stepsPerSample).map { s, steps in
            PRMTrainer.tokenizeRow(prompt: s.prompt, completions: steps, labels: steps.map { _ in true }, tokenizer: tokenizer,
                                   stepSeparator: stepSeparator, maxLength: maxLength, maxCompletionLength: nil)
        }
        let padID = Collator.padID(for: tokenizer)
        var logits: [[Float]] = []
        withoutGradients {
            for start in stride(from: 0, to: examples.count, by: max(batchSize, 1)) {
                let batch = Array(examples[start..<min(start + batchSize, examples.count)])
                let length = batch.map(\.inputIDs.count).max() ?? 0
                let ids = batch.map { $0.inputIDs + Array(repeating: padID, count: length - $0.inputIDs.count) }
                let mask = batch.map { Array(repeating: true, count: $0.inputIDs.count) + Array(repeating: false, count: length - $0.inputIDs.count) }
                let values = model.values(TokenBatch(ids: ids, attentionMask: mask)).scalars
                for (r, e) in batch.enumerated() { logits.append(e.labelledPositions.map { values[r * length + $0] }) }
            }
        }
        return zip(stepsPerSample, logits).map { steps, z in
            guard !steps.isEmpty else { return [0] }
            return steps.indices.map { k in k < z.count ? 1 / (1 + Foundation.exp(-Double(z[k]))) : 0 }
        }
    }
}
