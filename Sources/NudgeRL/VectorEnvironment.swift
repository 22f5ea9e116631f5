// A synchronous vector of N environments stepped together, with Gymnasium 1.x's autoreset modes.
//
// NEXT_STEP (Gymnasium's default): when a sub-environment's episode ends, the step returns its
// final observation; on the next call that sub-environment is reset instead of stepped (its action
// is ignored) and reports reward 0, not terminated, not truncated. SAME_STEP: the sub-environment
// is reset within the same step; the returned observation is the new episode's first one and
// `finalObservations[i]` / `finalInfos[i]` hold the last step's.

import Foundation

/// When a finished sub-environment is reset.
public enum AutoresetMode: String, Sendable {
    case nextStep = "next_step"
    case sameStep = "same_step"
}

/// The batched result of one vector step.
public struct VectorStep<Observation> {
    public var observations: [Observation]
    public var rewards: [Double]
    public var terminated: [Bool]
    public var truncated: [Bool]
    public var infos: [Info]
    /// SAME_STEP only: the final observation of sub-environments whose episode ended this step.
    public var finalObservations: [Observation?]
    /// SAME_STEP only: the final step's info of those sub-environments.
    public var finalInfos: [Info?]
}

/// N copies of an environment stepped in lockstep on the calling thread.
public final class SyncVectorEnvironment<Base: Environment> {
    public let environments: [Base]
    public let autoresetMode: AutoresetMode
    private var needsReset: [Bool]

    /// Which environments reset instead of stepping on the next call (NEXT_STEP mode).
    var pendingResets: [Bool] {
        get { needsReset }
        set { needsReset = newValue }
    }

    /// Builds `count` environments with `make` (called with the index).
    public init(count: Int, autoresetMode: AutoresetMode = .nextStep, make: (Int) -> Base) {
        precondition(count > 0, "a vector environment needs at least one environment")
        environments = (0..<count).map(make)
        self.autoresetMode = autoresetMode
        needsReset = Array(repeating: false, count: count)
    }

    public var count: Int { environments.count }
    public var observationSpace: Space { environments[0].observationSpace }
    public var actionSpace: Space { environments[0].actionSpace }

    /// Resets every environment; with a seed, environment i gets `seed + i` (as Gymnasium).
    public func reset(seed: UInt64? = nil, options: [String: Double]? = nil) -> (observations: [Base.Observation], infos: [Info]) {
        var observations: [Base.Observation] = []
        var infos: [Info] = []
        observations.reserveCapacity(count)
        for (i, env) in environments.enumerated() {
            let (obs, info) = env.reset(seed: seed.map { $0 &+ UInt64(i) }, options: options)
            observations.append(obs)
            infos.append(info)
            needsReset[i] = false
        }
        return (observations, infos)
    }

    /// Steps every environment with its action.
    public func step(_ actions: [Base.Action]) throws -> VectorStep<Base.Observation> {
        precondition(actions.count == count, "\(actions.count) actions for \(count) environments")
        var result = VectorStep<Base.Observation>(
            observations: [], rewards: Array(repeating: 0, count: count),
            terminated: Array(repeating: false, count: count), truncated: Array(repeating: false, count: count),
            infos: Array(repeating: [:], count: count), finalObservations: Array(repeating: nil, count: count),
            finalInfos: Array(repeating: nil, count: count))
        result.observations.reserveCapacity(count)
        for (i, env) in environments.enumerated() {
            if autoresetMode == .nextStep && needsReset[i] {
                let (obs, info) = env.reset(seed: nil, options: nil)
                result.observations.append(obs)
                result.infos[i] = info
                needsReset[i] = false
                continue
            }
            let s = try env.step(actions[i])
            result.rewards[i] = s.reward
            result.terminated[i] = s.terminated
            result.truncated[i] = s.truncated
            if s.done && autoresetMode == .sameStep {
                result.finalObservations[i] = s.observation
                result.finalInfos[i] = s.info
                let (obs, info) = env.reset(seed: nil, options: nil)
                result.observations.append(obs)
                result.infos[i] = info
            } else {
                result.observations.append(s.observation)
                result.infos[i] = s.info
                needsReset[i] = s.done
            }
        }
        return result
    }
}
