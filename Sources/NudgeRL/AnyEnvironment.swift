// A type-erased environment with numeric observations and actions, for registries, the CLI and
// the environment checker. Typed environments stay the fast path for training.

import Foundation

/// An action of either kind.
public enum ActionValue: Sendable, Equatable, CustomStringConvertible {
    case discrete(Int)
    case continuous([Float])

    public var description: String {
        switch self {
        case .discrete(let a): String(a)
        case .continuous(let a): "\(a)"
        }
    }
}

/// Any environment, with observations as `[Float]` (a discrete observation is one number) and
/// actions as `ActionValue`.
public final class AnyEnvironment: StatefulEnvironment {
    public let id: String
    public let observationSpace: Space
    public let actionSpace: Space
    private let resetBody: (UInt64?, [String: Double]?) -> ([Float], Info)
    private let stepBody: (ActionValue) throws -> Step<[Float]>
    private let getState: () -> [Double]?
    private let setStateBody: ([Double]) throws -> Void
    private let writeSnapshotBody: ((inout EnvironmentSnapshot) -> Void)?
    private let readSnapshotBody: ((inout SnapshotReader) throws -> Void)?
    /// The wrapped environment.
    public let base: AnyObject

    private init<E: Environment>(
        _ env: E, observe: @escaping (E.Observation) -> [Float], act: @escaping (ActionValue) throws -> E.Action
    ) {
        id = env.id
        observationSpace = env.observationSpace
        actionSpace = env.actionSpace
        base = env
        resetBody = { seed, options in
            let (obs, info) = env.reset(seed: seed, options: options)
            return (observe(obs), info)
        }
        stepBody = { action in
            let s = try env.step(try act(action))
            return Step(observation: observe(s.observation), reward: s.reward, terminated: s.terminated,
                        truncated: s.truncated, info: s.info)
        }
        if let stateful = env as? any StatefulEnvironment {
            getState = { stateful.state }
            setStateBody = { try stateful.setState($0) }
        } else {
            getState = { nil }
            setStateBody = { _ in throw EnvironmentError.invalidState(env: env.id, reason: "this environment's state cannot be set") }
        }
        if let resumable = env as? any SnapshotEnvironment {
            writeSnapshotBody = { resumable.writeSnapshot(to: &$0) }
            readSnapshotBody = { try resumable.readSnapshot(from: &$0) }
        } else {
            writeSnapshotBody = nil
            readSnapshotBody = nil
        }
    }

    private static func discreteAction(_ id: String, _ space: Space) -> (ActionValue) throws -> Int {
        { action in
            switch action {
            case .discrete(let a): return a
            case .continuous(let v) where v.count == 1 && v[0] == v[0].rounded(): return Int(v[0])
            default: throw EnvironmentError.invalidAction(env: id, action: action.description, space: space.description)
            }
        }
    }

    private static func continuousAction(_ id: String, _ space: Space) -> (ActionValue) throws -> [Float] {
        { action in
            switch action {
            case .continuous(let v): return v
            case .discrete(let a): return [Float(a)]
            }
        }
    }

    /// Wraps an environment with vector observations and discrete actions.
    public convenience init<E: Environment>(_ env: E) where E.Observation == [Float], E.Action == Int {
        self.init(env, observe: { $0 }, act: Self.discreteAction(env.id, env.actionSpace))
    }

    /// Wraps an environment with vector observations and continuous actions.
    public convenience init<E: Environment>(_ env: E) where E.Observation == [Float], E.Action == [Float] {
        self.init(env, observe: { $0 }, act: Self.continuousAction(env.id, env.actionSpace))
    }

    /// Wraps an environment with discrete observations and actions.
    public convenience init<E: Environment>(_ env: E) where E.Observation == Int, E.Action == Int {
        self.init(env, observe: { [Float($0)] }, act: Self.discreteAction(env.id, env.actionSpace))
    }

    /// Wraps an environment that already speaks `[Float]` observations and `ActionValue` actions
    /// (a wrapper around another `AnyEnvironment`).
    public convenience init<E: Environment>(_ env: E) where E.Observation == [Float], E.Action == ActionValue {
        self.init(env, observe: { $0 }, act: { $0 })
    }

    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) {
        let (obs, info) = resetBody(seed, options)
        return (obs, info)
    }

    public func step(_ action: ActionValue) throws -> Step<[Float]> { try stepBody(action) }

    public var state: [Double] { getState() ?? [] }
    /// Whether the state can be read and set.
    public var isStateful: Bool { getState() != nil }
    public func setState(_ state: [Double]) throws { try setStateBody(state) }
}

extension AnyEnvironment: SnapshotEnvironment {
    /// Whether the wrapped environment (and every wrapper in it) can be snapshotted.
    public var supportsSnapshots: Bool { writeSnapshotBody != nil }

    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) { writeSnapshotBody?(&snapshot) }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        guard let readSnapshotBody else {
            throw EnvironmentError.invalidState(env: id, reason: "this environment (or a wrapper around it) cannot be snapshotted")
        }
        try readSnapshotBody(&reader)
    }
}
