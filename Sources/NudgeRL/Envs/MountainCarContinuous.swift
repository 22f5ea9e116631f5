// MountainCarContinuous-v0: the mountain car with a continuous throttle. Mirrors Gymnasium 1.x
// `gymnasium/envs/classic_control/continuous_mountain_car.py` (Continuous_MountainCarEnv): the
// force is the action clipped to [−1, 1], velocity += force·power − 0.0025·cos(3·position), speed
// and position clipped, goal at position ≥ 0.45, reward 100 at the goal minus 0.1·action² (of the
// action as given, before clipping).
//
// Precision: Gymnasium stores this state as float32 after every step (reset leaves it float64), and
// numpy 2 (NEP 50) keeps float32 arithmetic in float32 when mixed with Python floats, comparisons
// included. `step` reproduces that: the first step after a reset or `setState` runs in float64, the
// following ones in float32, operation for operation.

import Foundation
import NudgeTensor

/// The continuous mountain-car task (Gymnasium's MountainCarContinuous-v0).
///
/// Observation: `[position, velocity]` as Float. Action: `[force]` in Box(−1, 1, (1,)); values
/// outside are clipped for the dynamics (the reward still uses the given value), as in Gymnasium.
/// A wrong-length or non-finite action throws `invalidAction`.
public final class MountainCarContinuous: StatefulEnvironment {
    public typealias Observation = [Float]
    public typealias Action = [Float]

    /// MountainCarContinuous-v0's registered time limit.
    public static let maxEpisodeSteps = 999

    /// A MountainCarContinuous inside `TimeLimit(maxEpisodeSteps)`, as
    /// `gymnasium.make("MountainCarContinuous-v0")`.
    public static func make(goalVelocity: Double = 0) -> TimeLimit<MountainCarContinuous> {
        TimeLimit(MountainCarContinuous(goalVelocity: goalVelocity), maxEpisodeSteps: maxEpisodeSteps)
    }

    /// "MountainCarContinuous-v0".
    public let id = "MountainCarContinuous-v0"
    /// `min_action`.
    public let minAction = -1.0
    /// `max_action`.
    public let maxAction = 1.0
    /// `min_position`.
    public let minPosition = -1.2
    /// `max_position`.
    public let maxPosition = 0.6
    /// `max_speed`.
    public let maxSpeed = 0.07
    /// `goal_position` (0.45 here, 0.5 in the discrete task).
    public let goalPosition = 0.45
    /// `goal_velocity`.
    public let goalVelocity: Double
    /// `power`: acceleration per unit of force.
    public let power = 0.0015
    /// The hill's pull, `0.0025` in the velocity update.
    public let gravity = 0.0025

    /// Box of [position, velocity] within [−1.2, 0.6] × [−0.07, 0.07].
    public let observationSpace: Space
    /// Box(−1, 1, (1,)): the force.
    public let actionSpace: Space = .box(low: -1, high: 1, shape: [1])

    /// `[position, velocity]`; empty before the first reset.
    public private(set) var state: [Double] = []
    /// Whether the state is float32 (after a step) rather than float64 (after reset or setState).
    private var stateIsSingle = false
    private var rng = RandomGenerator(seed: defaultEnvironmentSeed)

    /// - Parameter goalVelocity: Gymnasium's `goal_velocity` (default 0).
    public init(goalVelocity: Double = 0) {
        self.goalVelocity = goalVelocity
        observationSpace = .box(low: [Float(-1.2), Float(-0.07)], high: [Float(0.6), Float(0.07)], shape: [2])
    }

    /// Position uniform in [−0.6, −0.4) (options `low`/`high` change the bounds), velocity 0.
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) {
        if let seed { rng = RandomGenerator(seed: seed) }
        let (low, high) = resetBounds(options, low: -0.6, high: -0.4, env: id)
        state = [rng.uniform(low, high), 0]
        stateIsSingle = false
        return (state.map { Float($0) }, [:])
    }

    /// One step with the force clipped to [−1, 1]; reward 100 at the goal minus 0.1·action².
    public func step(_ action: [Float]) throws -> Step<[Float]> {
        try checkContinuousAction(action, actionSpace, id)
        guard state.count == 2 else { throw EnvironmentError.needsReset(env: id) }
        let single = stateIsSingle
        // Comparisons against constants: in float32 when the operand is float32 (NEP 50).
        func greater(_ a: Double, _ b: Double) -> Bool { single ? Float(a) > Float(b) : a > b }
        func less(_ a: Double, _ b: Double) -> Bool { single ? Float(a) < Float(b) : a < b }
        var position = state[0], velocity = state[1]

        // force = min(max(action, −1), 1): a float32 when inside, a Python float when clipped.
        let a = action[0]
        let push: Double, pushIsSingle: Bool
        if Double(a) < minAction {
            (push, pushIsSingle) = (minAction * power, false)
        } else if Double(a) > maxAction {
            (push, pushIsSingle) = (maxAction * power, false)
        } else {
            (push, pushIsSingle) = (Double(a * Float(power)), true)
        }
        let slope = gravity * cos(single ? Double(3 * Float(position)) : 3 * position)
        let acceleration = pushIsSingle ? Double(Float(push) - Float(slope)) : push - slope
        velocity = single ? Double(Float(velocity) + Float(acceleration)) : velocity + acceleration
        if greater(velocity, maxSpeed) { velocity = maxSpeed }
        if less(velocity, -maxSpeed) { velocity = -maxSpeed }
        position = single ? Double(Float(position) + Float(velocity)) : position + velocity
        if greater(position, maxPosition) { position = maxPosition }
        if less(position, minPosition) { position = minPosition }
        if (single ? Float(position) == Float(minPosition) : position == minPosition) && velocity < 0 { velocity = 0 }
        let atGoal = single ? Float(position) >= Float(goalPosition) : position >= goalPosition
        let fastEnough = single ? Float(velocity) >= Float(goalVelocity) : velocity >= goalVelocity
        let terminated = atGoal && fastEnough

        var reward = terminated ? 100.0 : 0.0
        reward -= Double(a) * Double(a) * 0.1
        state = [Double(Float(position)), Double(Float(velocity))]
        stateIsSingle = true
        return Step(observation: state.map { Float($0) }, reward: reward, terminated: terminated, truncated: false)
    }

    /// Replaces `[position, velocity]` (2 finite values); the next step runs in float64, as after reset.
    public func setState(_ state: [Double]) throws {
        try checkState(state, count: 2, env: id)
        self.state = state
        stateIsSingle = false
    }
}

extension MountainCarContinuous: SnapshotEnvironment {
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) {
        snapshot.write(state)
        snapshot.write(stateIsSingle)
        snapshot.write(rng)
    }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        state = try reader.doubles()
        stateIsSingle = try reader.bool()
        rng = try reader.generator()
    }
}
