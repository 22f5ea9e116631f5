// MountainCar-v0: drive an under-powered car up a hill by rocking it (Moore 1990). Mirrors
// Gymnasium 1.x `gymnasium/envs/classic_control/mountain_car.py` (MountainCarEnv): three discrete
// accelerations, velocity += (a − 1)·force − cos(3·position)·gravity, clipping of speed and
// position, the velocity zeroed against the left wall, −1 per step, termination at position ≥ 0.5
// with velocity ≥ goal_velocity. Dynamics in float64; observations rounded to float32.

import Foundation
import NudgeTensor

/// The discrete mountain-car task (Gymnasium's MountainCar-v0).
///
/// Observation: `[position, velocity]` as Float. Actions: 0 accelerate left, 1 coast, 2 accelerate right.
public final class MountainCar: PhysicsEnvironment {
    public typealias Observation = [Float]
    public typealias Action = Int

    /// MountainCar-v0's registered time limit.
    public static let maxEpisodeSteps = 200

    /// A MountainCar inside `TimeLimit(maxEpisodeSteps)`, as `gymnasium.make("MountainCar-v0")`.
    public static func make(goalVelocity: Double = 0) -> TimeLimit<MountainCar> {
        TimeLimit(MountainCar(goalVelocity: goalVelocity), maxEpisodeSteps: maxEpisodeSteps)
    }

    /// "MountainCar-v0".
    public let id = "MountainCar-v0"
    /// `min_position`.
    public let minPosition = -1.2
    /// `max_position`.
    public let maxPosition = 0.6
    /// `max_speed`: the velocity is clipped to ±0.07.
    public let maxSpeed = 0.07
    /// `goal_position`.
    public let goalPosition = 0.5
    /// `goal_velocity`: the episode terminates at the goal only at this velocity or more.
    public let goalVelocity: Double
    /// `force`: the acceleration of actions 0 and 2.
    public let force = 0.001
    /// `gravity`.
    public let gravity = 0.0025

    /// Box of [position, velocity] within [−1.2, 0.6] × [−0.07, 0.07].
    public let observationSpace: Space
    /// Discrete(3): accelerate left, coast, accelerate right.
    public let actionSpace: Space = .discrete(n: 3)

    /// `[position, velocity]` in Float64; empty before the first reset.
    public internal(set) var state: [Double] = []
    var rng = RandomGenerator(seed: defaultEnvironmentSeed)

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
        return (state.map { Float($0) }, [:])
    }

    /// One step of the car; reward −1, terminated at the goal.
    public func step(_ action: Int) throws -> Step<[Float]> {
        try validate(action, actionSpace, id)
        guard state.count == 2 else { throw EnvironmentError.needsReset(env: id) }
        var position = state[0], velocity = state[1]
        velocity += Double(action - 1) * force + cos(3 * position) * -gravity
        velocity = min(max(velocity, -maxSpeed), maxSpeed)
        position += velocity
        position = min(max(position, minPosition), maxPosition)
        if position == minPosition && velocity < 0 { velocity = 0 }
        let terminated = position >= goalPosition && velocity >= goalVelocity
        state = [position, velocity]
        return Step(observation: state.map { Float($0) }, reward: -1, terminated: terminated, truncated: false)
    }

    /// Replaces `[position, velocity]` (2 finite values).
    public func setState(_ state: [Double]) throws {
        try checkState(state, count: 2, env: id)
        self.state = state
    }
}
