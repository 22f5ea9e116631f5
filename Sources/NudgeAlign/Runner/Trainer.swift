// The shape every post-training trainer shares, so that one runner (`AlignRunner`) drives them all:
// one step at a time, a checkpoint it can save and restore, and the number of steps the run takes.
// A step refuses a non-finite loss, gradient or weight itself (NonFiniteValueError), so a trainer
// called from code is as safe as one driven by the runner.

import Foundation
import NudgeNN

/// A trainer the runner can drive: `trainStep()` until `completedSteps == totalSteps`.
public protocol Trainer: AnyObject {
    /// Steps taken so far (a restored trainer continues from its checkpoint's).
    var completedSteps: Int { get }
    /// Steps the run takes.
    var totalSteps: Int { get }
    /// One step; nil when the step made no update (e.g. dynamic sampling found no informative group).
    /// Throws `NonFiniteValueError` before a non-finite update reaches the weights.
    func trainStep() throws -> OnlineStepResult?
    /// Writes everything a resume needs (weights, optimizer state, data position) to `directory`, atomically.
    func saveCheckpoint(to directory: URL) throws
    /// Restores a checkpoint written by `saveCheckpoint`; the following steps repeat the uninterrupted run's.
    func restoreCheckpoint(from directory: URL) throws
    /// Whether `trainStep` runs inside `MixedPrecision.bf16` (the config's `bf16`).
    var bf16: Bool { get }
}

extension Trainer {
    public var bf16: Bool { false }
}

/// The result of one trainer step (metrics with TRL's names, and completions for samples.jsonl).
public typealias StepResult = OnlineStepResult

extension GRPOTrainer: Trainer {
    public var completedSteps: Int { step }
    public var totalSteps: Int { config.steps }
    public var bf16: Bool { config.bf16 }
}

extension PPORLHFTrainer: Trainer {
    public var completedSteps: Int { step }
    public var totalSteps: Int { config.steps }
    public var bf16: Bool { config.bf16 }
}

/// Training stopped on a non-finite value: the reason, and the checkpoint that is left (always
/// finite: non-finite weights are never saved), or that there is none.
public struct TrainingStopped: Error, CustomStringConvertible {
    public var reason: String
    public var checkpoint: URL

    public init(reason: String, checkpoint: URL) {
        self.reason = reason
        self.checkpoint = checkpoint
    }

    public var description: String {
        let model = checkpoint.appendingPathComponent("model.safetensors")
        guard let step = (try? SafeTensorsFile(url: model))?.metadata["step"] else {
            return "\(reason). No checkpoint was written before the stop (checkpoint.every is larger than the steps done), so no trained weights are kept."
        }
        return "\(reason). The last finite checkpoint, \(checkpoint.path) (step \(step)), is kept."
    }
}

/// A run stopped by Ctrl-C after saving its checkpoint and report; the command line exits 130
/// (128 + SIGINT), so a scheduler tells an interrupted run from a finished one.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    /// The run directory.
    public var directory: URL
    /// The last step saved.
    public var step: Int

    public init(directory: URL, step: Int) {
        self.directory = directory
        self.step = step
    }

    public var description: String { "interrupted after step \(step); the run in \(directory.path) is saved and can be resumed" }
}
