// How a training loop is driven from outside, the same for every trainer: where it starts (a resumed
// run replays its data order up to the saved step without training), when it stops (Ctrl-C asks
// between steps), when it saves, and what happens when a loss or gradient stops being a number
// (the step is refused before the optimizer touches the weights, so the last good state stays).

import Foundation

/// Outside control of a training loop.
public struct TrainingControl {
    /// Optimizer steps already taken (a resumed run): the loop skips them, consuming the same
    /// shuffles and batches, so the steps after it are the ones an uninterrupted run makes.
    public var startStep: Int
    /// Asked after every step; true ends training there (the final checkpoint is still written).
    public var shouldStop: () -> Bool
    /// `checkpoint` runs every this many steps (0: only at the end).
    public var checkpointEvery: Int
    /// Saves the trainer's state after the given step; also called once when training ends or stops.
    public var checkpoint: ((Int) throws -> Void)?
    /// Told after every step: (step, total steps), e.g. for a progress bar.
    public var progress: ((Int, Int) -> Void)?

    public init(startStep: Int = 0, shouldStop: @escaping () -> Bool = { false }, checkpointEvery: Int = 0,
                checkpoint: ((Int) throws -> Void)? = nil, progress: ((Int, Int) -> Void)? = nil) {
        self.startStep = startStep
        self.shouldStop = shouldStop
        self.checkpointEvery = checkpointEvery
        self.checkpoint = checkpoint
        self.progress = progress
    }

    /// Runs after step `step` (of `total`): reports progress, saves when due; returns whether to stop.
    public func afterStep(_ step: Int, total: Int) throws -> Bool {
        progress?(step, total)
        let stop = shouldStop()
        if stop || step == total || (checkpointEvery > 0 && step % checkpointEvery == 0) { try checkpoint?(step) }
        return stop
    }
}

/// A loss, gradient norm or other training quantity that is NaN or infinite.
public struct NonFiniteValueError: Error, CustomStringConvertible {
    public var step: Int
    public var metric: String
    public var value: Double

    public init(step: Int, metric: String, value: Double) {
        self.step = step
        self.metric = metric
        self.value = value
    }

    /// Whether the value is a weight the step's update made non-finite (else a loss or norm
    /// refused before the update).
    public var afterUpdate = false

    public var description: String {
        afterUpdate
            ? "step \(step): \(metric) became \(value) in this step's update (the learning rate or the loss scale is too large); training stopped and these weights are not saved"
            : "step \(step): \(metric) is \(value); training stopped before this step's update"
    }

    /// Throws when a parameter of `model` holds a NaN or an infinity (an update that overflowed).
    public static func checkParameters(of model: Module, step: Int) throws {
        if let bad = model.firstNonFiniteParameter() {
            var error = NonFiniteValueError(step: step, metric: "parameter \(bad.name)", value: Double(bad.value))
            error.afterUpdate = true
            throw error
        }
    }

    /// Throws for the first of `values` that is not finite.
    public static func check(step: Int, _ values: [(String, Double)]) throws {
        if let bad = values.first(where: { !$0.1.isFinite }) { throw NonFiniteValueError(step: step, metric: bad.0, value: bad.1) }
    }
}

extension Module {
    /// The first parameter holding a NaN or an infinity, with that value; nil when all are finite.
    public func firstNonFiniteParameter() -> (name: String, value: Float)? {
        for (name, tensor) in parameters() {
            if let value = firstNonFinite(tensor.data, tensor.count) { return (name, value) }
        }
        return nil
    }
}

/// The first NaN or infinity of `count` values: one vectorized pass over 0 × value (NaN exactly
/// where a value is not finite), then a scan only when that sum is NaN.
func firstNonFinite(_ values: UnsafePointer<Float>, _ count: Int) -> Float? {
    var lanes = SIMD8<Float>(repeating: 0)
    let raw = UnsafeRawPointer(values)
    // 0 × value: 0 for every finite value, NaN for NaN and ±infinity, so no finite sum can overflow.
    for k in 0..<(count / 8) { lanes += raw.loadUnaligned(fromByteOffset: k * 32, as: SIMD8<Float>.self) * 0 }
    var total = lanes.sum()
    for i in (count / 8 * 8)..<count { total += values[i] * 0 }
    if total.isFinite { return nil }
    for k in 0..<count where !values[k].isFinite { return values[k] }
    return nil
}
