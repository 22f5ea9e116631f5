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

    public var description: String {
        "step \(step): \(metric) is \(value); training stopped before this step's update (the last checkpoint is kept)"
    }

    /// Throws for the first of `values` that is not finite.
    public static func check(step: Int, _ values: [(String, Double)]) throws {
        if let bad = values.first(where: { !$0.1.isFinite }) { throw NonFiniteValueError(step: step, metric: bad.0, value: bad.1) }
    }
}
