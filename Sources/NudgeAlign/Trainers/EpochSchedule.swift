// The data order the offline trainers (SFT, reward model, DPO, KTO) share: every epoch a
// Fisher–Yates shuffle drawn from one seeded stream, cut into batches, consecutive batches grouped
// into one optimizer step (gradient accumulation). A resumed run walks the same order and skips the
// steps already taken, so its later steps see exactly the batches of an uninterrupted run.

import Foundation
import NudgeNN
import NudgeTensor

/// Shuffled batches of `count` items over `epochs`, grouped into optimizer steps.
struct EpochSchedule {
    var count: Int
    var batchSize: Int
    var accumulation = 1
    var epochs: Int
    var seed: UInt64

    /// Optimizer steps in one epoch (the last step of an epoch may hold fewer batches).
    var stepsPerEpoch: Int {
        let batches = (count + batchSize - 1) / batchSize
        return (batches + accumulation - 1) / accumulation
    }

    /// Optimizer steps over all epochs.
    var totalSteps: Int { stepsPerEpoch * epochs }

    /// One epoch's batches, grouped into optimizer steps, from the next shuffle of `rng`.
    func groups(shuffling rng: inout RandomGenerator) -> [[[Int]]] {
        var order = Array(0..<count)
        rng.shuffle(&order)
        let batches = stride(from: 0, to: order.count, by: batchSize).map { Array(order[$0..<Swift.min($0 + batchSize, order.count)]) }
        return stride(from: 0, to: batches.count, by: accumulation).map { Array(batches[$0..<Swift.min($0 + accumulation, batches.count)]) }
    }

    /// Calls `body(step, batches)` for each optimizer step after `control.startStep` (`skipped` for
    /// the earlier ones), each batch a list of item indices; saves and stops as `control` says.
    /// Returns the last step taken.
    @discardableResult
    func run(control: TrainingControl, skipped: ([[Int]]) -> Void = { _ in },
             _ body: (_ step: Int, _ batches: [[Int]]) throws -> Void) throws -> Int {
        var cursor = EpochCursor(self)
        while let group = cursor.next() {
            if cursor.step <= control.startStep {
                skipped(group)
                continue
            }
            try body(cursor.step, group)
            if try control.afterStep(cursor.step, total: totalSteps) { return cursor.step }
        }
        return cursor.step
    }
}

/// An `EpochSchedule` walked one optimizer step at a time (what `Trainer.trainStep` takes), in the
/// order `run` walks it.
struct EpochCursor {
    let schedule: EpochSchedule
    private var rng: RandomGenerator
    private var epoch = 0
    private var pending: ArraySlice<[[Int]]> = []
    /// Steps handed out so far.
    private(set) var step = 0

    init(_ schedule: EpochSchedule) {
        self.schedule = schedule
        rng = RandomGenerator(seed: schedule.seed)
    }

    /// The next step's batches; nil after the last epoch.
    mutating func next() -> [[Int]]? {
        while pending.isEmpty {
            guard epoch < schedule.epochs else { return nil }
            epoch += 1
            pending = schedule.groups(shuffling: &rng)[...]
        }
        step += 1
        return pending.popFirst()
    }
}

/// An offline training run, prepared: its data order and what one optimizer step does. The
/// closure-driven `train(…control:onMetrics:)` of each offline trainer and its `Trainer` form
/// (`OfflineTrainer`) both run it, so the two take the same steps.
struct OfflinePlan<Metrics> {
    var schedule: EpochSchedule
    /// Accounts for a step a resumed run skips (e.g. the tokens it saw).
    var skipped: ([[Int]]) -> Void = { _ in }
    /// One optimizer step on the step's batches (`final`: training stops after it, so evaluate
    /// now); the step's metrics and their TRL names, or nil when it had nothing to train on.
    var step: (_ step: Int, _ batches: [[Int]], _ final: Bool) throws -> (Metrics, [(String, Double)])?

    /// Every step after `control.startStep`, saving and stopping as `control` says; returns each step's metrics.
    func run(control: TrainingControl, onMetrics: ((Int, [(String, Double)]) -> Void)?) throws -> [Metrics] {
        var history: [Metrics] = []
        try schedule.run(control: control, skipped: skipped) { k, group in
            guard let (metrics, named) = try step(k, group, control.shouldStop()) else { return }
            history.append(metrics)
            onMetrics?(k, named)
        }
        return history
    }
}

/// An offline trainer (SFT, reward model, DPO, KTO) as a `Trainer`: one optimizer step per
/// `trainStep`, checkpoints with the model, optimizer state and step; a restored trainer replays the
/// data order up to its step, so it continues as the uninterrupted run would.
public final class OfflineTrainer<Metrics>: Trainer {
    /// The model trained (the policy, or the reward model with its head).
    public let model: Module
    public let optimizer: Adam
    let plan: OfflinePlan<Metrics>
    var cursor: EpochCursor
    /// The metrics of every step taken by this object.
    public private(set) var history: [Metrics] = []

    /// Whether steps run their products on bf16 operands (the config's `bf16`).
    public let bf16: Bool

    init(model: Module, optimizer: Adam, bf16: Bool = false, plan: OfflinePlan<Metrics>) {
        self.model = model
        self.optimizer = optimizer
        self.plan = plan
        self.bf16 = bf16
        cursor = EpochCursor(plan.schedule)
    }

    public var completedSteps: Int { cursor.step }
    public var totalSteps: Int { plan.schedule.totalSteps }

    public func trainStep() throws -> StepResult? {
        guard let group = cursor.next() else { return nil }
        guard let (metrics, named) = try plan.step(cursor.step, group, false) else { return nil }
        history.append(metrics)
        return StepResult(step: cursor.step, metrics: named, samples: [])
    }

    public func saveCheckpoint(to directory: URL) throws {
        try Checkpoint.save(model: model, optimizer: optimizer, step: cursor.step, to: directory)
    }

    public func restoreCheckpoint(from directory: URL) throws {
        let step = try Checkpoint.restore(model: model, optimizer: optimizer, from: directory)
        cursor = EpochCursor(plan.schedule)
        while cursor.step < step, let group = cursor.next() { plan.skipped(group) }
    }
}

/// The optimization settings every offline trainer's config has (SFT, reward model, DPO, KTO).
public protocol OfflineTrainingConfig: Sendable {
    var learningRate: Float { get set }
    var epochs: Int { get set }
    var batchSize: Int { get set }
    /// Longest sequence in tokens (nil: no limit).
    var maxLength: Int? { get set }
    /// Gradient-norm clip (.infinity: none).
    var maxGradNorm: Float { get set }
    var seed: UInt64 { get set }
    /// Activation checkpointing of the trained model's decoder blocks (TRL's `gradient_checkpointing`).
    var gradientCheckpointing: Bool { get set }
    /// Training products on bf16 operands (TRL's `bf16`).
    var bf16: Bool { get set }
    /// The AdamW implementation (HF TrainingArguments' `optim`).
    var optim: OptimizerName { get set }
    /// The learning rate over the run's optimizer steps (transformers' `lr_scheduler_type`).
    var lrSchedulerType: LRSchedulerType { get set }
    /// Steps of linear warmup to `learningRate` (below 1: a fraction of all steps).
    var warmupSteps: Double { get set }
}

extension OfflineTrainingConfig {
    /// Sets `optimizer`'s learning rate for optimizer step `step` (from 1) of `total` from the
    /// schedule. A constant schedule without warmup leaves it as it is, so an optimizer passed in
    /// with its own rate (rejection sampling's SFT rounds) keeps it.
    func scheduleLearningRate(_ optimizer: Adam, step: Int, total: Int) {
        guard lrSchedulerType != .constant || warmupSteps > 0 else { return }
        optimizer.learningRate = lrSchedulerType.learningRate(step: step - 1, total: total, peak: learningRate, warmupSteps: warmupSteps)
    }
}

extension SFTConfig: OfflineTrainingConfig {}
extension RewardConfig: OfflineTrainingConfig {}
extension DPOConfig: OfflineTrainingConfig {}
extension KTOConfig: OfflineTrainingConfig {}

/// The end of every offline trainer's step: clip the gradients, refuse a non-finite loss or norm
/// before the weights change, update. Returns the gradient norm before clipping.
func applyUpdate(_ optimizer: Adam, to model: Module, gradients: inout NamedTensors, maxNorm: Float, step: Int,
                 loss: Float) throws -> Float {
    let norm = clipGradientNorm(&gradients, maxNorm: maxNorm)
    try NonFiniteValueError.check(step: step, [("loss", Double(loss)), ("grad_norm", Double(norm))])
    optimizer.update(model, gradients: gradients)
    try NonFiniteValueError.checkParameters(of: model, step: step)
    return norm
}

/// A trainer configuration value that cannot work, named by its field.
public struct TrainerConfigurationError: Error, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}


/// transformers' `lr_scheduler_type` (TrainingArguments, which TRL's configs inherit), the kinds
/// an offline trainer can follow; "linear" is transformers' default.
public enum LRSchedulerType: String, CaseIterable, Sendable {
    case linear, cosine, constant
    case constantWithWarmup = "constant_with_warmup"

    /// The learning rate of optimizer step `step` (0-based) of `total`, peaking at `peak` after
    /// `warmupSteps` (transformers' `warmup_steps`: a count from 1 up, a fraction of `total` below
    /// 1, rounded up), on NudgeNN's `LearningRateSchedule`. As transformers' schedulers, except that
    /// the warmup's first step takes peak/w rather than 0 (LearningRateSchedule's warmup).
    public func learningRate(step: Int, total: Int, peak: Float, warmupSteps: Double) -> Float {
        let warmup = warmupSteps >= 1 ? Int(warmupSteps) : Int((Double(total) * warmupSteps).rounded(.up))
        switch self {
        case .constant: return LearningRateSchedule.constant(peak)(step)
        case .constantWithWarmup: return LearningRateSchedule.linearWarmup(peak: peak, steps: warmup)(step)
        case .cosine: return LearningRateSchedule.cosine(peak: peak, steps: total, warmup: warmup)(step)
        case .linear:
            return step < warmup ? LearningRateSchedule.linearWarmup(peak: peak, steps: warmup)(step)
                : LearningRateSchedule.linearDecay(initial: peak, steps: total - warmup)(step - warmup)
        }
    }
}
