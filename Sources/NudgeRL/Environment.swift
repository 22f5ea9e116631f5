// The environment contract, with Gymnasium's semantics: `reset(seed:)` starts an episode and
// returns the first observation; `step(_:)` returns (observation, reward, terminated, truncated,
// info). `terminated` means the MDP reached a terminal state (no bootstrapping past it);
// `truncated` means the episode was cut short (a time limit), so the value of the next state
// still counts.

import Foundation
import NudgeTensor

/// A value carried in an environment's info dictionary.
public enum InfoValue: Sendable, Equatable {
    case double(Double)
    case int(Int)
    case bool(Bool)
    case doubles([Double])
    case floats([Float])
    case string(String)
}

/// Extra per-step information (Gymnasium's `info` dict).
public typealias Info = [String: InfoValue]

/// What `step` returns.
public struct Step<Observation> {
    public var observation: Observation
    public var reward: Double
    /// The episode ended in a terminal state of the MDP.
    public var terminated: Bool
    /// The episode was cut short (time limit); the next state's value still counts.
    public var truncated: Bool
    public var info: Info

    public init(observation: Observation, reward: Double, terminated: Bool, truncated: Bool, info: Info = [:]) {
        self.observation = observation
        self.reward = reward
        self.terminated = terminated
        self.truncated = truncated
        self.info = info
    }

    /// Whether the episode is over either way.
    public var done: Bool { terminated || truncated }
}

/// Errors from environments and their wrappers.
public enum EnvironmentError: Error, CustomStringConvertible, Equatable {
    /// An action outside the action space.
    case invalidAction(env: String, action: String, space: String)
    /// `step` called before `reset`, or after the episode ended without a reset.
    case needsReset(env: String)
    /// `make` with an id nobody registered.
    case unknownEnvironment(id: String, known: [String])
    /// A state vector of the wrong length or with invalid values.
    case invalidState(env: String, reason: String)
    /// A bad option or argument.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .invalidAction(let env, let action, let space): "\(env): action \(action) is not in the action space \(space)"
        case .needsReset(let env): "\(env): call reset() before the first step()"
        case .unknownEnvironment(let id, let known): "no environment '\(id)'; known: \(known.joined(separator: ", "))"
        case .invalidState(let env, let reason): "\(env): invalid state: \(reason)"
        case .invalidArgument(let s): s
        }
    }
}

/// A reinforcement-learning environment with Gymnasium's reset/step contract.
public protocol Environment<Observation, Action>: AnyObject {
    associatedtype Observation
    associatedtype Action

    /// The environment's id, e.g. "CartPole-v1".
    var id: String { get }
    var observationSpace: Space { get }
    var actionSpace: Space { get }

    /// Starts an episode. A seed re-seeds the environment's generator; nil continues it.
    func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Observation, info: Info)

    /// Advances one step; an action outside `actionSpace` throws `invalidAction`.
    func step(_ action: Action) throws -> Step<Observation>
}

extension Environment {
    /// Starts an episode, continuing the current random stream.
    public func reset() -> (observation: Observation, info: Info) { reset(seed: nil, options: nil) }
    /// Starts an episode from `seed`.
    public func reset(seed: UInt64) -> (observation: Observation, info: Info) { reset(seed: seed, options: nil) }
}

/// An environment whose internal state can be read and replaced (for replaying trajectories).
public protocol StatefulEnvironment: Environment {
    /// The internal state as numbers (e.g. CartPole's [x, ẋ, θ, θ̇] in Float64).
    var state: [Double] { get }
    /// Replaces the internal state; the episode continues from it.
    func setState(_ state: [Double]) throws
}

/// The transition table of a finite MDP: `transitions[s][a]` lists (probability, next state,
/// reward, terminated), as Gymnasium's `P[s][a]`.
public protocol TabularEnvironment: Environment where Observation == Int, Action == Int {
    var stateCount: Int { get }
    var actionCount: Int { get }
    var transitions: [[[Transition]]] { get }
}

/// One outcome of a tabular transition.
public struct Transition: Sendable, Equatable {
    public var probability: Double
    public var nextState: Int
    public var reward: Double
    public var terminated: Bool

    public init(probability: Double, nextState: Int, reward: Double, terminated: Bool) {
        self.probability = probability
        self.nextState = nextState
        self.reward = reward
        self.terminated = terminated
    }
}

/// Checks a discrete action against its space, throwing `invalidAction` when outside.
@inline(__always)
func validate(_ action: Int, _ space: Space, _ id: String) throws {
    guard space.contains(action) else {
        throw EnvironmentError.invalidAction(env: id, action: String(action), space: space.description)
    }
}

/// Checks a continuous action against its space, throwing `invalidAction` when outside.
func validate(_ action: [Float], _ space: Space, _ id: String) throws {
    guard space.contains(action) else {
        throw EnvironmentError.invalidAction(env: id, action: "\(action)", space: space.description)
    }
}
