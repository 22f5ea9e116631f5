// Wrappers with Gymnasium's exact semantics: TimeLimit, RecordEpisodeStatistics,
// NormalizeObservation / NormalizeReward (RunningMeanStd with the parallel update), ClipAction,
// TransformObservation / TransformReward.

import Foundation
import NudgeTensor

/// An environment that wraps another (Gymnasium's Wrapper): unless it says otherwise it has its
/// base's id, spaces and reset, and a snapshot holds its own state (if any) and then its base's.
public protocol EnvironmentWrapper: Environment {
    associatedtype Base: Environment
    var base: Base { get }
}

extension EnvironmentWrapper {
    public var id: String { base.id }
    public var observationSpace: Space { base.observationSpace }
    public var actionSpace: Space { base.actionSpace }
}

extension EnvironmentWrapper where Observation == Base.Observation {
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Observation, info: Info) {
        base.reset(seed: seed, options: options)
    }
}

extension SnapshotEnvironment where Self: EnvironmentWrapper, Base: SnapshotEnvironment {
    /// A wrapper without state of its own snapshots as its base.
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) { base.writeSnapshot(to: &snapshot) }
    public func readSnapshot(from reader: inout SnapshotReader) throws { try base.readSnapshot(from: &reader) }
}

/// Truncates an episode after `maxEpisodeSteps` steps. As Gymnasium's TimeLimit, `truncated` is
/// set on the last allowed step even when the step also terminated.
public final class TimeLimit<Base: Environment>: EnvironmentWrapper {
    public let base: Base
    public let maxEpisodeSteps: Int
    /// Steps taken in the current episode.
    public private(set) var elapsedSteps = 0

    public init(_ base: Base, maxEpisodeSteps: Int) {
        self.base = base
        self.maxEpisodeSteps = maxEpisodeSteps
    }

    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Base.Observation, info: Info) {
        elapsedSteps = 0
        return base.reset(seed: seed, options: options)
    }

    public func step(_ action: Base.Action) throws -> Step<Base.Observation> {
        var s = try base.step(action)
        elapsedSteps += 1
        if elapsedSteps >= maxEpisodeSteps { s.truncated = true }
        return s
    }
}

extension TimeLimit: StatefulEnvironment where Base: StatefulEnvironment {
    public var state: [Double] { base.state }
    public func setState(_ state: [Double]) throws { try base.setState(state) }
}

/// Adds `episode_return`, `episode_length` and `episode_time` to the info of an episode's last
/// step, and keeps the recent returns and lengths (Gymnasium's RecordEpisodeStatistics; its
/// `info["episode"]["r"]` becomes `info["episode_return"]`).
public final class RecordEpisodeStatistics<Base: Environment>: EnvironmentWrapper {
    public let base: Base
    /// Returns and lengths of the most recent finished episodes (up to `bufferLength`).
    public private(set) var returnQueue: [Double] = []
    public private(set) var lengthQueue: [Int] = []
    public let bufferLength: Int
    private var episodeReturn = 0.0
    private var episodeLength = 0
    private var episodeStart = Date()

    public init(_ base: Base, bufferLength: Int = 100) {
        self.base = base
        self.bufferLength = bufferLength
    }

    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Base.Observation, info: Info) {
        episodeReturn = 0
        episodeLength = 0
        episodeStart = Date()
        return base.reset(seed: seed, options: options)
    }

    public func step(_ action: Base.Action) throws -> Step<Base.Observation> {
        var s = try base.step(action)
        episodeReturn += s.reward
        episodeLength += 1
        if s.done {
            s.info["episode_return"] = .double(episodeReturn)
            s.info["episode_length"] = .int(episodeLength)
            s.info["episode_time"] = .double(Date().timeIntervalSince(episodeStart))
            returnQueue.append(episodeReturn)
            lengthQueue.append(episodeLength)
            if returnQueue.count > bufferLength { returnQueue.removeFirst(); lengthQueue.removeFirst() }
        }
        return s
    }
}

/// Running mean and variance of vectors with the parallel (Chan et al.) update, as Gymnasium's
/// RunningMeanStd: initial mean 0, variance 1, count ε = 1e-4.
public struct RunningMeanStd: Sendable, Equatable {
    public var mean: [Double]
    public var variance: [Double]
    public var count: Double

    public init(shape: Int, epsilon: Double = 1e-4) {
        mean = Array(repeating: 0, count: shape)
        variance = Array(repeating: 1, count: shape)
        count = epsilon
    }

    /// Folds in a batch of rows (each of `mean.count` values).
    public mutating func update(_ batch: [[Double]]) {
        guard !batch.isEmpty else { return }
        let n = Double(batch.count)
        for j in mean.indices {
            var m = 0.0
            for row in batch { m += row[j] }
            m /= n
            var v = 0.0
            for row in batch { v += (row[j] - m) * (row[j] - m) }
            v /= n  // population variance, as np.var
            let delta = m - mean[j]
            let total = count + n
            let newMean = mean[j] + delta * n / total
            let m2 = variance[j] * count + v * n + delta * delta * count * n / total
            mean[j] = newMean
            variance[j] = m2 / total
        }
        count += n
    }

    /// Folds in one row.
    public mutating func update(_ row: [Double]) { update([row]) }
}

/// Normalizes observations to roughly zero mean and unit variance with a running estimate:
/// (obs − μ)/√(σ² + ε), ε = 1e-8 (Gymnasium's NormalizeObservation). Updates while `isUpdating`.
public final class NormalizeObservation<Base: Environment>: EnvironmentWrapper where Base.Observation == [Float] {
    public let base: Base
    public var statistics: RunningMeanStd
    public let epsilon: Double
    /// Whether new observations update the statistics (turn off for evaluation).
    public var isUpdating = true

    public init(_ base: Base, epsilon: Double = 1e-8) {
        self.base = base
        self.epsilon = epsilon
        statistics = RunningMeanStd(shape: base.observationSpace.flatCount)
    }

    public var observationSpace: Space { .box(low: -.infinity, high: .infinity, shape: [base.observationSpace.flatCount]) }

    public func normalize(_ obs: [Float]) -> [Float] {
        if isUpdating { statistics.update(obs.map(Double.init)) }
        return obs.indices.map { i in Float((Double(obs[i]) - statistics.mean[i]) / (statistics.variance[i] + epsilon).squareRoot()) }
    }

    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) {
        let (obs, info) = base.reset(seed: seed, options: options)
        return (normalize(obs), info)
    }

    public func step(_ action: Base.Action) throws -> Step<[Float]> {
        var s = try base.step(action)
        s.observation = normalize(s.observation)
        return s
    }
}

/// Scales rewards so the discounted return has roughly unit variance (Gymnasium's
/// NormalizeReward): a running discounted return G ← γ·G·(1 − terminated) + r updates a
/// RunningMeanStd, and the reward is divided by √(var + ε), ε = 1e-8.
public final class NormalizeReward<Base: Environment>: EnvironmentWrapper {
    public let base: Base
    public let gamma: Double
    public let epsilon: Double
    public var statistics = RunningMeanStd(shape: 1)
    public var isUpdating = true
    private var discountedReturn = 0.0

    public init(_ base: Base, gamma: Double = 0.99, epsilon: Double = 1e-8) {
        self.base = base
        self.gamma = gamma
        self.epsilon = epsilon
    }

    public func step(_ action: Base.Action) throws -> Step<Base.Observation> {
        var s = try base.step(action)
        discountedReturn = discountedReturn * gamma * (s.terminated ? 0 : 1) + s.reward
        if isUpdating { statistics.update([discountedReturn]) }
        s.reward /= (statistics.variance[0] + epsilon).squareRoot()
        return s
    }
}

/// Clips continuous actions into the action space's bounds before stepping (ClipAction); its own
/// action space is unbounded.
public final class ClipAction<Base: Environment>: EnvironmentWrapper where Base.Action == [Float] {
    public let base: Base
    public init(_ base: Base) { self.base = base }

    public var actionSpace: Space {
        .box(low: -.infinity, high: .infinity, shape: [base.actionSpace.flatCount])
    }

    public func step(_ action: [Float]) throws -> Step<Base.Observation> {
        guard case .box(let low, let high, _) = base.actionSpace else { return try base.step(action) }
        return try base.step(action.indices.map { Swift.min(Swift.max(action[$0], low[$0]), high[$0]) })
    }
}

/// Applies a function to every observation (TransformObservation).
public final class TransformObservation<Base: Environment, Output>: EnvironmentWrapper {
    public let base: Base
    public let transform: (Base.Observation) -> Output
    public let observationSpace: Space

    public init(_ base: Base, observationSpace: Space? = nil, _ transform: @escaping (Base.Observation) -> Output) {
        self.base = base
        self.transform = transform
        self.observationSpace = observationSpace ?? base.observationSpace
    }

    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Output, info: Info) {
        let (obs, info) = base.reset(seed: seed, options: options)
        return (transform(obs), info)
    }

    public func step(_ action: Base.Action) throws -> Step<Output> {
        let s = try base.step(action)
        return Step(observation: transform(s.observation), reward: s.reward, terminated: s.terminated,
                    truncated: s.truncated, info: s.info)
    }
}

/// Applies a function to every reward (TransformReward).
public final class TransformReward<Base: Environment>: EnvironmentWrapper {
    public let base: Base
    public let transform: (Double) -> Double

    public init(_ base: Base, _ transform: @escaping (Double) -> Double) {
        self.base = base
        self.transform = transform
    }

    public func step(_ action: Base.Action) throws -> Step<Base.Observation> {
        var s = try base.step(action)
        s.reward = transform(s.reward)
        return s
    }
}

// Snapshots of the wrappers: each writes its own counters and statistics, then its base's.

extension TimeLimit: SnapshotEnvironment where Base: SnapshotEnvironment {
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) {
        snapshot.write(elapsedSteps)
        base.writeSnapshot(to: &snapshot)
    }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        elapsedSteps = try reader.int()
        try base.readSnapshot(from: &reader)
    }
}

extension RecordEpisodeStatistics: SnapshotEnvironment where Base: SnapshotEnvironment {
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) {
        snapshot.write(episodeReturn)
        snapshot.write(episodeLength)
        snapshot.write(returnQueue)
        snapshot.write(lengthQueue.map(Double.init))
        base.writeSnapshot(to: &snapshot)
    }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        episodeReturn = try reader.double()
        episodeLength = try reader.int()
        returnQueue = try reader.doubles()
        lengthQueue = try reader.doubles().map { Int($0) }
        // Wall-clock episode time restarts on resume; it is not part of any learning signal.
        episodeStart = Date()
        try base.readSnapshot(from: &reader)
    }
}

extension RunningMeanStd {
    func write(to snapshot: inout EnvironmentSnapshot) {
        snapshot.write(mean)
        snapshot.write(variance)
        snapshot.write(count)
    }

    mutating func read(from reader: inout SnapshotReader) throws {
        mean = try reader.doubles()
        variance = try reader.doubles()
        count = try reader.double()
    }
}

extension NormalizeObservation: SnapshotEnvironment where Base: SnapshotEnvironment {
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) {
        statistics.write(to: &snapshot)
        snapshot.write(isUpdating)
        base.writeSnapshot(to: &snapshot)
    }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        try statistics.read(from: &reader)
        isUpdating = try reader.bool()
        try base.readSnapshot(from: &reader)
    }
}

extension NormalizeReward: SnapshotEnvironment where Base: SnapshotEnvironment {
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) {
        statistics.write(to: &snapshot)
        snapshot.write(isUpdating)
        snapshot.write(discountedReturn)
        base.writeSnapshot(to: &snapshot)
    }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        try statistics.read(from: &reader)
        isUpdating = try reader.bool()
        discountedReturn = try reader.double()
        try base.readSnapshot(from: &reader)
    }
}

extension ClipAction: SnapshotEnvironment where Base: SnapshotEnvironment {}

extension TransformObservation: SnapshotEnvironment where Base: SnapshotEnvironment {}

extension TransformReward: SnapshotEnvironment where Base: SnapshotEnvironment {}
