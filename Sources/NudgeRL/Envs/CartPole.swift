// CartPole-v1: keep a pole upright on a cart pushed left or right (Barto, Sutton & Anderson 1983).
// Mirrors Gymnasium 1.x `gymnasium/envs/classic_control/cartpole.py` (CartPoleEnv): its constants,
// the Euler (or semi-implicit Euler) update in float64, termination at |x| > 2.4 or |θ| > 12°, a
// reward of 1 per step including the terminating one, 0 for steps taken after termination
// (`steps_beyond_terminated`), and the `sutton_barto_reward` variant. Observations are the float64
// state rounded to float32, as Gymnasium returns them.

import Foundation
import NudgeTensor

/// The cart-pole balancing task (Gymnasium's CartPole-v1).
///
/// Observation: `[x, ẋ, θ, θ̇]` as Float. Actions: 0 pushes the cart left, 1 pushes it right.
public final class CartPole: StatefulEnvironment {
    public typealias Observation = [Float]
    public typealias Action = Int

    /// How the equations of motion advance the state (Gymnasium's `kinematics_integrator`).
    public enum Integrator: Sendable, Equatable {
        /// Positions advance with the old velocities ("euler", the default).
        case euler
        /// Velocities advance first and positions use the new velocities ("semi-implicit euler").
        case semiImplicitEuler
    }

    /// CartPole-v1's registered time limit.
    public static let maxEpisodeSteps = 500

    /// A CartPole inside `TimeLimit(maxEpisodeSteps)`, as `gymnasium.make("CartPole-v1")`.
    public static func make(integrator: Integrator = .euler, suttonBartoReward: Bool = false) -> TimeLimit<CartPole> {
        TimeLimit(CartPole(integrator: integrator, suttonBartoReward: suttonBartoReward), maxEpisodeSteps: maxEpisodeSteps)
    }

    /// "CartPole-v1".
    public let id = "CartPole-v1"
    /// `gravity`, m/s².
    public let gravity = 9.8
    /// `masscart`, kg.
    public let cartMass = 1.0
    /// `masspole`, kg.
    public let poleMass = 0.1
    /// `length`: half the pole's length, m.
    public let poleHalfLength = 0.5
    /// `force_mag`: the push applied by either action, N.
    public let forceMagnitude = 10.0
    /// `tau`: seconds between state updates.
    public let timeStep = 0.02
    /// `theta_threshold_radians`: the episode terminates when |θ| exceeds 12°.
    public let angleThreshold = 12 * 2 * Double.pi / 360
    /// `x_threshold`: the episode terminates when |x| exceeds 2.4.
    public let positionThreshold = 2.4
    /// The integration scheme.
    public let integrator: Integrator
    /// Gymnasium's `sutton_barto_reward`: 0 per step and −1 on termination instead of +1 per step.
    public let suttonBartoReward: Bool

    /// Box of [x, ẋ, θ, θ̇] with bounds ±(4.8, ∞, 24°, ∞), as Gymnasium.
    public let observationSpace: Space
    /// Discrete(2): 0 push left, 1 push right.
    public let actionSpace: Space = .discrete(n: 2)

    /// `[x, ẋ, θ, θ̇]` in Float64; empty before the first reset.
    public private(set) var state: [Double] = []
    /// Steps taken after the first terminating step (Gymnasium's `steps_beyond_terminated`); nil
    /// until the episode terminates.
    public private(set) var stepsBeyondTerminated: Int?
    private var rng = RandomGenerator(seed: defaultEnvironmentSeed)

    /// - Parameters:
    ///   - integrator: Gymnasium's `kinematics_integrator` (default Euler).
    ///   - suttonBartoReward: Gymnasium's `sutton_barto_reward` (default false).
    public init(integrator: Integrator = .euler, suttonBartoReward: Bool = false) {
        self.integrator = integrator
        self.suttonBartoReward = suttonBartoReward
        let high: [Float] = [Float(2.4 * 2), .infinity, Float(12 * 2 * Double.pi / 360 * 2), .infinity]
        observationSpace = .box(low: high.map { -$0 }, high: high, shape: [4])
    }

    /// Draws each state variable uniformly from [−0.05, 0.05) (options `low`/`high` change the bounds).
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) {
        if let seed { rng = RandomGenerator(seed: seed) }
        let (low, high) = resetBounds(options, low: -0.05, high: 0.05, env: id)
        state = (0..<4).map { _ in rng.uniform(low, high) }
        stepsBeyondTerminated = nil
        return (observation, [:])
    }

    /// Advances 0.02 s; after termination further steps pay 0 (−1 with `suttonBartoReward`).
    public func step(_ action: Int) throws -> Step<[Float]> {
        try validate(action, actionSpace, id)
        guard state.count == 4 else { throw EnvironmentError.needsReset(env: id) }
        var x = state[0], xDot = state[1], theta = state[2], thetaDot = state[3]
        let force = action == 1 ? forceMagnitude : -forceMagnitude
        let cosTheta = cos(theta), sinTheta = sin(theta)
        let totalMass = poleMass + cartMass
        let poleMassLength = poleMass * poleHalfLength
        // The equations of the reference implementation, term for term (same rounding).
        let temp = (force + poleMassLength * (thetaDot * thetaDot) * sinTheta) / totalMass
        let thetaAcceleration = (gravity * sinTheta - cosTheta * temp)
            / (poleHalfLength * (4.0 / 3.0 - poleMass * (cosTheta * cosTheta) / totalMass))
        let xAcceleration = temp - poleMassLength * thetaAcceleration * cosTheta / totalMass
        switch integrator {
        case .euler:
            x = x + timeStep * xDot
            xDot = xDot + timeStep * xAcceleration
            theta = theta + timeStep * thetaDot
            thetaDot = thetaDot + timeStep * thetaAcceleration
        case .semiImplicitEuler:
            xDot = xDot + timeStep * xAcceleration
            x = x + timeStep * xDot
            thetaDot = thetaDot + timeStep * thetaAcceleration
            theta = theta + timeStep * thetaDot
        }
        state = [x, xDot, theta, thetaDot]
        let terminated = x < -positionThreshold || x > positionThreshold
            || theta < -angleThreshold || theta > angleThreshold
        let reward: Double
        if !terminated {
            reward = suttonBartoReward ? 0 : 1
        } else if let beyond = stepsBeyondTerminated {
            stepsBeyondTerminated = beyond + 1
            reward = suttonBartoReward ? -1 : 0
        } else {
            stepsBeyondTerminated = 0
            reward = suttonBartoReward ? -1 : 1
        }
        return Step(observation: observation, reward: reward, terminated: terminated, truncated: false)
    }

    /// Replaces `[x, ẋ, θ, θ̇]` (4 finite values) and clears `stepsBeyondTerminated`.
    public func setState(_ state: [Double]) throws {
        try checkState(state, count: 4, env: id)
        self.state = state
        stepsBeyondTerminated = nil
    }

    private var observation: [Float] { state.map { Float($0) } }
}

extension CartPole: SnapshotEnvironment {
    public func writeSnapshot(to snapshot: inout EnvironmentSnapshot) {
        snapshot.write(state)
        snapshot.write(stepsBeyondTerminated ?? -1)
        snapshot.write(rng)
    }

    public func readSnapshot(from reader: inout SnapshotReader) throws {
        state = try reader.doubles()
        let beyond = try reader.int()
        stepsBeyondTerminated = beyond < 0 ? nil : beyond
        rng = try reader.generator()
    }
}
