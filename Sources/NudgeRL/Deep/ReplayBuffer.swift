// A uniform experience replay buffer (Mnih et al. 2015) and Polyak-averaged target networks
// (θ' ← τθ + (1 − τ)θ'), shared by DQN and SAC.
//
// As Stable-Baselines3's handle_timeout_termination (which CleanRL uses), the stored `done` flag is
// `terminated` only: a transition cut by a time limit keeps its real next observation and is
// bootstrapped.

import Foundation
import NudgeNN
import NudgeTensor

/// A sampled batch of transitions.
public struct ReplayBatch {
    public var observations: Tensor       // (B, obs)
    public var actions: Tensor            // (B, A) continuous, or (B) discrete as floats
    public var discreteActions: [Int]
    public var rewards: Tensor            // (B)
    public var nextObservations: Tensor   // (B, obs)
    public var terminated: Tensor         // (B), 1 where terminated
}

/// A fixed-capacity ring buffer of transitions.
public struct ReplayBuffer {
    public let capacity: Int
    public let observationSize: Int
    public let actionSize: Int
    public private(set) var count = 0
    private var position = 0
    private var observations: [Float]
    private var nextObservations: [Float]
    private var actions: [Float]
    private var rewards: [Float]
    private var terminated: [Float]

    public init(capacity: Int, observationSize: Int, actionSize: Int = 1) {
        self.capacity = capacity
        self.observationSize = observationSize
        self.actionSize = actionSize
        observations = Array(repeating: 0, count: capacity * observationSize)
        nextObservations = Array(repeating: 0, count: capacity * observationSize)
        actions = Array(repeating: 0, count: capacity * actionSize)
        rewards = Array(repeating: 0, count: capacity)
        terminated = Array(repeating: 0, count: capacity)
    }

    /// Stores one transition, overwriting the oldest when full.
    public mutating func add(observation: [Float], action: [Float], reward: Float, nextObservation: [Float], terminated done: Bool) {
        let p = position
        observations.replaceSubrange((p * observationSize)..<((p + 1) * observationSize), with: observation)
        nextObservations.replaceSubrange((p * observationSize)..<((p + 1) * observationSize), with: nextObservation)
        actions.replaceSubrange((p * actionSize)..<((p + 1) * actionSize), with: action)
        rewards[p] = reward
        terminated[p] = done ? 1 : 0
        position = (position + 1) % capacity
        count = Swift.min(count + 1, capacity)
    }

    /// `batchSize` transitions drawn uniformly with replacement.
    public func sample(_ batchSize: Int, using rng: inout RandomGenerator) -> ReplayBatch {
        precondition(count > 0, "sampling from an empty replay buffer")
        let idx = (0..<batchSize).map { _ in rng.int(below: count) }
        func gather(_ source: [Float], _ width: Int) -> [Float] {
            var out = [Float]()
            out.reserveCapacity(batchSize * width)
            for i in idx { out.append(contentsOf: source[(i * width)..<((i + 1) * width)]) }
            return out
        }
        let a = gather(actions, actionSize)
        return ReplayBatch(
            observations: Tensor(shape: [batchSize, observationSize], values: gather(observations, observationSize)),
            actions: Tensor(shape: [batchSize, actionSize], values: a),
            discreteActions: a.map { Int($0) },
            rewards: Tensor(shape: [batchSize], values: idx.map { rewards[$0] }),
            nextObservations: Tensor(shape: [batchSize, observationSize], values: gather(nextObservations, observationSize)),
            terminated: Tensor(shape: [batchSize], values: idx.map { terminated[$0] }))
    }
}

extension ReplayBuffer {
    /// The stored transitions for a checkpoint (rows 0..<count of each field, in slot order;
    /// nothing while empty), with `count` and `position` kept as counters beside them.
    func stateTensors() -> NamedTensors {
        guard count > 0 else { return NamedTensors() }
        func rows(_ field: [Float], _ width: Int) -> Tensor { Tensor(shape: [count, width], values: Array(field[0..<(count * width)])) }
        return NamedTensors([("observations", rows(observations, observationSize)), ("next_observations", rows(nextObservations, observationSize)),
                             ("actions", rows(actions, actionSize)), ("rewards", rows(rewards, 1)), ("terminated", rows(terminated, 1))])
    }

    /// The write position, saved beside `stateTensors()`.
    var writePosition: Int { position }

    /// The counters saved beside `stateTensors()` (read back by `RestoredRun.restore(_:)`).
    var checkpointCounters: [String: Int] { ["replay_count": count, "replay_position": position] }

    /// Restores `count` transitions saved by `stateTensors()` with write position `position`; a
    /// missing field or a wrong shape is an error naming `file`. A buffer restored into a larger
    /// capacity (a run extended past a buffer sized by its step budget) keeps writing after the
    /// last row.
    mutating func restore(_ tensors: NamedTensors, count: Int, position: Int, file: String) throws {
        // Not yet full (writing at `count`), full (any slot), or full at a smaller capacity, which
        // wraps to 0 only at the very end.
        let consistent = (position == count && count < capacity) || (count == capacity && position >= 0 && position < capacity)
            || (position == 0 && count > 0 && count <= capacity)
        guard consistent else {
            throw CheckpointError.invalid(path: file, reason: "replay buffer of \(count) transitions at position \(position) does not fit a capacity of \(capacity)")
        }
        func load(_ name: String, _ width: Int, into field: inout [Float]) throws {
            guard count > 0 else { return }
            guard let t = tensors[name], t.shape == [count, width] else {
                throw CheckpointError.invalid(path: file, reason: "replay field '\(name)' missing or not of shape [\(count), \(width)]")
            }
            field.replaceSubrange(0..<(count * width), with: t.scalars)
        }
        try load("observations", observationSize, into: &observations)
        try load("next_observations", observationSize, into: &nextObservations)
        try load("actions", actionSize, into: &actions)
        try load("rewards", 1, into: &rewards)
        try load("terminated", 1, into: &terminated)
        self.count = count
        self.position = count < capacity ? count : position
    }
}

/// θ_target ← τ·θ_source + (1 − τ)·θ_target for every parameter, in place (τ = 1 copies).
public func polyakUpdate(target: Module, source: Module, tau: Float) {
    let t = target.parameters(), s = source.parameters()
    precondition(t.keys == s.keys, "polyakUpdate: the two modules have different parameters")
    for (a, b) in zip(t.tensors, s.tensors) {
        let p = a.data, q = b.data
        for i in 0..<a.count { p[i] = tau * q[i] + (1 - tau) * p[i] }
    }
}

/// CleanRL's `layer_init`: orthogonal weights with gain `std`, constant bias.
public func cleanRLLinear(_ inputs: Int, _ outputs: Int, std: Float = 1.41421356, bias: Float = 0,
                          using rng: inout RandomGenerator) -> Linear {
    Linear(inputCount: inputs, outputCount: outputs, weightInit: .orthogonal(gain: std), biasInit: .constant(bias), using: &rng)
}

/// A 64-64 tanh MLP with CleanRL's initialization (√2 hidden, `headStd` for the output layer).
public func cleanRLNetwork(inputs: Int, outputs: Int, hidden: [Int] = [64, 64], headStd: Float,
                           activation: Activation.Kind = .tanh, using rng: inout RandomGenerator) -> MLP {
    MLP(sizes: [inputs] + hidden + [outputs], activation: activation,
        hiddenInit: .orthogonal(gain: Float(2).squareRoot()), outputInit: .orthogonal(gain: headStd), using: &rng)
}
