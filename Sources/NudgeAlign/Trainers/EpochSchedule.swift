// The data order the offline trainers (SFT, reward model, DPO, KTO) share: every epoch a
// Fisher–Yates shuffle drawn from one seeded stream, cut into batches, consecutive batches grouped
// into one optimizer step (gradient accumulation). A resumed run walks the same order and skips the
// steps already taken, so its later steps see exactly the batches of an uninterrupted run.

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

    /// Calls `body(step, batches)` for each optimizer step after `control.startStep` (`skipped` for
    /// the earlier ones), each batch a list of item indices; saves and stops as `control` says.
    /// Returns the last step taken.
    @discardableResult
    func run(control: TrainingControl, skipped: ([[Int]]) -> Void = { _ in },
             _ body: (_ step: Int, _ batches: [[Int]]) throws -> Void) throws -> Int {
        var rng = RandomGenerator(seed: seed)
        var step = 0
        for _ in 0..<epochs {
            var order = Array(0..<count)
            rng.shuffle(&order)
            let batches = stride(from: 0, to: order.count, by: batchSize).map { Array(order[$0..<Swift.min($0 + batchSize, order.count)]) }
            for first in stride(from: 0, to: batches.count, by: accumulation) {
                let group = Array(batches[first..<Swift.min(first + accumulation, batches.count)])
                step += 1
                if step <= control.startStep {
                    skipped(group)
                    continue
                }
                try body(step, group)
                if try control.afterStep(step, total: totalSteps) { return step }
            }
        }
        return step
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

