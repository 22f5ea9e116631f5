// Pendulum-v1: swing a frictionless pendulum up and hold it upright. Mirrors Gymnasium 1.x
// `gymnasium/envs/classic_control/pendulum.py` (PendulumEnv): torque clipped to ±2, cost
// angle_normalize(θ)² + 0.1·θ̇² + 0.001·u², θ̇ += (3g/(2l)·sin θ + 3/(m·l²)·u)·dt clipped to ±8,
// θ += θ̇·dt, reward −cost, no termination.
//
// Precision: the action is float32 and numpy 2 (NEP 50) keeps `0.001 * u**2` and `3.0 * u` in
// float32 before they meet the float64 state; `step` rounds those two terms the same way.

import Foundation
import NudgeTensor

/// The inverted-pendulum swing-up task (Gymnasium's Pendulum-v1).
///
/// Observation: `[cos θ, sin θ, θ̇]` as Float. Action: `[torque]` in Box(−2, 2, (1,)); values
/// outside are clipped, as in Gymnasium. A wrong-length or non-finite action throws `invalidAction`.
public final class Pendulum: PhysicsEnvironment {
    public typealias Observation = [Float]
    public typealias Action = [Float]

    /// Pendulum-v1's registered time limit.
    public static let maxEpisodeSteps = 200

    /// A Pendulum inside `TimeLimit(maxEpisodeSteps)`, as `gymnasium.make("Pendulum-v1")`.
    public static func make(gravity: Double = 10.0) -> TimeLimit<Pendulum> {
        TimeLimit(Pendulum(gravity: gravity), maxEpisodeSteps: maxEpisodeSteps)
    }

    /// "Pendulum-v1".
    public let id = "Pendulum-v1"
    /// `max_speed`: θ̇ is clipped to ±8.
    public let maxSpeed = 8.0
    /// `max_torque`: the action is clipped to ±2.
    public let maxTorque = 2.0
    /// `dt`, s.
    public let timeStep = 0.05
    /// `g`, m/s².
    public let gravity: Double
    /// `m`, kg.
    public let mass = 1.0
    /// `l`, m.
    public let length = 1.0

    /// Box of [cos θ, sin θ, θ̇] within ±(1, 1, 8).
    public let observationSpace: Space = .box(low: [-1, -1, -8], high: [1, 1, 8], shape: [3])
    /// Box(−2, 2, (1,)): the torque.
    public let actionSpace: Space = .box(low: -2, high: 2, shape: [1])

    /// `[θ, θ̇]` in Float64 (θ = 0 is upright); empty before the first reset.
    public internal(set) var state: [Double] = []
    var rng = RandomGenerator(seed: defaultEnvironmentSeed)

    /// - Parameter gravity: Gymnasium's `g` (default 10.0).
    public init(gravity: Double = 10.0) {
        self.gravity = gravity
    }

    /// θ uniform in [−π, π) and θ̇ in [−1, 1) (options `x_init`/`y_init` change the half-widths).
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) {
        if let seed { rng = RandomGenerator(seed: seed) }
        let angleHalfWidth = options?["x_init"] ?? Double.pi, speedHalfWidth = options?["y_init"] ?? 1.0
        let theta = rng.uniform(-angleHalfWidth, angleHalfWidth)
        let thetaDot = rng.uniform(-speedHalfWidth, speedHalfWidth)
        state = [theta, thetaDot]
        return (observation, [:])
    }

    /// One step of 0.05 s with the torque clipped to ±2; reward −cost; never terminates.
    public func step(_ action: [Float]) throws -> Step<[Float]> {
        try checkContinuousAction(action, actionSpace, id)
        guard state.count == 2 else { throw EnvironmentError.needsReset(env: id) }
        let theta = state[0], thetaDot = state[1]
        let u = min(max(action[0], Float(-maxTorque)), Float(maxTorque))
        let cost = Self.normalizeAngle(theta) * Self.normalizeAngle(theta) + 0.1 * (thetaDot * thetaDot)
            + Double(Float(0.001) * (u * u))
        let torqueTerm = Double(Float(3.0 / (mass * length * length)) * u)
        var newThetaDot = thetaDot + (3 * gravity / (2 * length) * sin(theta) + torqueTerm) * timeStep
        newThetaDot = min(max(newThetaDot, -maxSpeed), maxSpeed)
        let newTheta = theta + newThetaDot * timeStep
        state = [newTheta, newThetaDot]
        return Step(observation: observation, reward: -cost, terminated: false, truncated: false)
    }

    /// Replaces `[θ, θ̇]` (2 finite values).
    public func setState(_ state: [Double]) throws {
        try checkState(state, count: 2, env: id)
        self.state = state
    }

    /// Gymnasium's `angle_normalize`: ((x + π) mod 2π) − π with Python's floored modulo.
    public static func normalizeAngle(_ x: Double) -> Double {
        let period = 2 * Double.pi
        var r = (x + Double.pi).truncatingRemainder(dividingBy: period)
        if r != 0 && (r < 0) != (period < 0) { r += period }
        return r - Double.pi
    }

    private var observation: [Float] { [Float(cos(state[0])), Float(sin(state[0])), Float(state[1])] }
}
