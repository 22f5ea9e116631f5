// Mechanics shared by the built-in environments: the default seed, checks of state vectors,
// continuous actions and reset options, and the finite-MDP core through which FrozenLake,
// CliffWalking, Taxi and GridWorld step (Gymnasium's toy_text `P[s][a]` + `categorical_sample`).

import Foundation
import NudgeTensor

/// The seed of an environment that was never given one, so unseeded runs are reproducible.
let defaultEnvironmentSeed: UInt64 = 0

/// Checks that a replacement state has `count` finite values.
func checkState(_ state: [Double], count: Int, env: String) throws {
    guard state.count == count else {
        throw EnvironmentError.invalidState(env: env, reason: "expected \(count) values, got \(state.count)")
    }
    if let i = state.firstIndex(where: { !$0.isFinite }) {
        throw EnvironmentError.invalidState(env: env, reason: "value \(i) is \(state[i]), not finite")
    }
}

/// Checks a continuous action's length and finiteness. Values outside the box are allowed: the
/// environments clip them as Gymnasium does.
func checkContinuousAction(_ action: [Float], _ space: Space, _ id: String) throws {
    guard action.count == space.flatCount, action.allSatisfy(\.isFinite) else {
        throw EnvironmentError.invalidAction(env: id, action: "\(action)", space: space.description)
    }
}

/// Gymnasium's `maybe_parse_reset_bounds`: `options["low"]` and `options["high"]` or the defaults.
/// `reset` cannot throw, so low > high is a precondition failure.
func resetBounds(_ options: [String: Double]?, low: Double, high: Double, env: String) -> (low: Double, high: Double) {
    let l = options?["low"] ?? low, h = options?["high"] ?? high
    precondition(l <= h, "\(env): reset option low (\(l)) must not exceed high (\(h))")
    return (l, h)
}

/// A classic-control environment whose whole state is its Float64 state vector and its generator
/// (Acrobot, MountainCar, Pendulum): a snapshot holds the one, then the other.
protocol PhysicsEnvironment: StatefulEnvironment, SnapshotEnvironment {
    var state: [Double] { get set }
    var rng: RandomGenerator { get set }
}

extension PhysicsEnvironment {
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) {
        snapshot.write(state)
        snapshot.write(rng)
    }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        state = try reader.doubles()
        rng = try reader.generator()
    }
}

/// The state of a finite MDP stepping through its transition table: the current state, the
/// random generator, and sampling of `transitions[s][a]`.
struct TabularCore {
    let id: String
    let actionSpace: Space
    let transitions: [[[Transition]]]
    /// Probabilities of the first state (Gymnasium's `initial_state_distrib`).
    let initialDistribution: [Double]
    private(set) var current: Int?
    private var rng = RandomGenerator(seed: defaultEnvironmentSeed)

    init(id: String, actionCount: Int, transitions: [[[Transition]]], initialDistribution: [Double]) {
        self.id = id
        actionSpace = .discrete(n: actionCount)
        self.transitions = transitions
        self.initialDistribution = initialDistribution
    }

    var stateCount: Int { transitions.count }

    mutating func reset(seed: UInt64?) -> Int {
        if let seed { rng = RandomGenerator(seed: seed) }
        let s = rng.categorical(probabilities: initialDistribution)
        current = s
        return s
    }

    /// One step; `outcome` forces an entry of `transitions[s][a]` instead of sampling one.
    mutating func step(_ action: Int, outcome: Int? = nil) throws -> Step<Int> {
        try validate(action, actionSpace, id)
        guard let s = current else { throw EnvironmentError.needsReset(env: id) }
        let outcomes = transitions[s][action]
        let index: Int
        if let outcome {
            guard outcomes.indices.contains(outcome) else {
                throw EnvironmentError.invalidArgument(
                    "\(id): outcome \(outcome) of state \(s), action \(action) is not in 0..<\(outcomes.count)")
            }
            index = outcome
        } else {
            // Gymnasium's categorical_sample: the first outcome whose cumulative probability exceeds U.
            let u = rng.uniform()
            var cumulative = 0.0
            var chosen = outcomes.count - 1
            for i in outcomes.indices {
                cumulative += outcomes[i].probability
                if u < cumulative { chosen = i; break }
            }
            index = chosen
        }
        let t = outcomes[index]
        current = t.nextState
        return Step(observation: t.nextState, reward: t.reward, terminated: t.terminated, truncated: false,
                    info: ["prob": .double(t.probability)])
    }

    var stateVector: [Double] { current.map { [Double($0)] } ?? [] }

    mutating func setState(_ state: [Double]) throws {
        try checkState(state, count: 1, env: id)
        let v = state[0]
        guard v == v.rounded(), v >= 0, v < Double(stateCount) else {
            throw EnvironmentError.invalidState(env: id, reason: "\(v) is not a state in 0..<\(stateCount)")
        }
        current = Int(v)
    }
}

/// A finite MDP that steps through a `TabularCore` (FrozenLake, CliffWalking, Taxi, GridWorld): its
/// state count, transition table, state vector and snapshot are the core's.
protocol TabularCoreEnvironment: TabularEnvironment, StatefulEnvironment, SnapshotEnvironment {
    var core: TabularCore { get set }
}

extension TabularCoreEnvironment {
    /// The number of states.
    public var stateCount: Int { core.stateCount }
    /// Gymnasium's `P[s][a]`: the outcomes of each action in each state.
    public var transitions: [[[Transition]]] { core.transitions }
    /// `[Double(s)]`; empty before the first reset.
    public var state: [Double] { core.stateVector }
    /// Replaces the state with `[Double(s)]`, s an integer in `0..<stateCount`.
    public func setState(_ state: [Double]) throws { try core.setState(state) }
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) { core.write(to: &snapshot) }
    public func readSnapshot(from reader: inout SnapshotReader) throws { try core.read(from: &reader) }
}

extension TabularCore {
    func write(to snapshot: inout EnvironmentSnapshot) {
        snapshot.write(current ?? -1)
        snapshot.write(rng)
    }

    mutating func read(from reader: inout SnapshotReader) throws {
        let state = try reader.int()
        guard state < stateCount else { throw EnvironmentError.invalidState(env: id, reason: "\(state) is not a state in 0..<\(stateCount)") }
        current = state < 0 ? nil : state
        rng = try reader.generator()
    }
}
