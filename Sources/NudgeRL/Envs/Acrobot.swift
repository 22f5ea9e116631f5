// Acrobot-v1: swing the tip of a two-link pendulum, actuated at the middle joint, above a line
// (Sutton 1996; Sutton & Barto 1998). Mirrors Gymnasium 1.x
// `gymnasium/envs/classic_control/acrobot.py` (AcrobotEnv): torques −1, 0, +1, one fourth-order
// Runge–Kutta step of dt = 0.2 s over the "book" equations of motion (`rk4`, `_dsdt`), joint
// angles wrapped into [−π, π] and velocities bounded by 4π and 9π (`wrap`, `bound`), termination
// when −cos θ1 − cos(θ2 + θ1) > 1, reward −1 per step and 0 on the terminating step. The reset
// state is drawn in float64 and rounded to float32, as Gymnasium does; dynamics run in float64.

import Foundation
import NudgeTensor

/// The acrobot swing-up task (Gymnasium's Acrobot-v1).
///
/// Observation: `[cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2]` as Float. Actions: 0, 1, 2 apply a
/// torque of −1, 0, +1 at the joint between the links.
public final class Acrobot: PhysicsEnvironment {
    public typealias Observation = [Float]
    public typealias Action = Int

    /// Which form of the second link's equation of motion to use (Gymnasium's `book_or_nips`).
    public enum Dynamics: Sendable, Equatable {
        /// Sutton & Barto's book and the Java implementation (the default).
        case book
        /// The NIPS paper's form, without the θ̇1² coupling term.
        case nips
    }

    /// Acrobot-v1's registered time limit.
    public static let maxEpisodeSteps = 500

    /// An Acrobot inside `TimeLimit(maxEpisodeSteps)`, as `gymnasium.make("Acrobot-v1")`.
    public static func make(dynamics: Dynamics = .book, torqueNoiseMax: Double = 0) -> TimeLimit<Acrobot> {
        TimeLimit(Acrobot(dynamics: dynamics, torqueNoiseMax: torqueNoiseMax), maxEpisodeSteps: maxEpisodeSteps)
    }

    /// "Acrobot-v1".
    public let id = "Acrobot-v1"
    /// `dt`: the integration time step, s.
    public let timeStep = 0.2
    /// `LINK_LENGTH_1`, m.
    public let link1Length = 1.0
    /// `LINK_LENGTH_2`, m (used only for drawing in Gymnasium).
    public let link2Length = 1.0
    /// `LINK_MASS_1`, kg.
    public let link1Mass = 1.0
    /// `LINK_MASS_2`, kg.
    public let link2Mass = 1.0
    /// `LINK_COM_POS_1`: distance from the first joint to the first link's centre of mass, m.
    public let link1CenterOfMass = 0.5
    /// `LINK_COM_POS_2`: distance from the second joint to the second link's centre of mass, m.
    public let link2CenterOfMass = 0.5
    /// `LINK_MOI`: the moment of inertia of either link.
    public let linkMomentOfInertia = 1.0
    /// `MAX_VEL_1`: |θ̇1| is bounded by 4π.
    public let maxVelocity1 = 4 * Double.pi
    /// `MAX_VEL_2`: |θ̇2| is bounded by 9π.
    public let maxVelocity2 = 9 * Double.pi
    /// `AVAIL_TORQUE`: the torque of each action.
    public let torques: [Double] = [-1, 0, 1]
    /// Gravity in the equations of motion, m/s².
    public let gravity = 9.8
    /// `torque_noise_max`: uniform noise in ±this is added to the torque (0 in Acrobot-v1).
    public let torqueNoiseMax: Double
    /// The equations of motion.
    public let dynamics: Dynamics

    /// Box of [cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2] within ±(1, 1, 1, 1, 4π, 9π).
    public let observationSpace: Space
    /// Discrete(3): torque −1, 0, +1.
    public let actionSpace: Space = .discrete(n: 3)

    /// `[θ1, θ2, θ̇1, θ̇2]` in Float64; empty before the first reset.
    public internal(set) var state: [Double] = []
    var rng = RandomGenerator(seed: defaultEnvironmentSeed)

    /// - Parameters:
    ///   - dynamics: Gymnasium's `book_or_nips` (default book).
    ///   - torqueNoiseMax: Gymnasium's `torque_noise_max` (default 0).
    public init(dynamics: Dynamics = .book, torqueNoiseMax: Double = 0) {
        self.dynamics = dynamics
        self.torqueNoiseMax = torqueNoiseMax
        let high: [Float] = [1, 1, 1, 1, Float(4 * Double.pi), Float(9 * Double.pi)]
        observationSpace = .box(low: high.map { -$0 }, high: high, shape: [6])
    }

    /// Each state variable uniform in [−0.1, 0.1) (options `low`/`high` change the bounds),
    /// rounded to float32.
    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: [Float], info: Info) {
        if let seed { rng = RandomGenerator(seed: seed) }
        let (low, high) = resetBounds(options, low: -0.1, high: 0.1, env: id)
        state = (0..<4).map { _ in Double(Float(rng.uniform(low, high))) }
        return (observation, [:])
    }

    /// One RK4 step of 0.2 s; reward −1, or 0 on the terminating step.
    public func step(_ action: Int) throws -> Step<[Float]> {
        try validate(action, actionSpace, id)
        guard state.count == 4 else { throw EnvironmentError.needsReset(env: id) }
        var torque = torques[action]
        if torqueNoiseMax > 0 { torque += rng.uniform(-torqueNoiseMax, torqueNoiseMax) }
        var next = rungeKutta4(state + [torque])
        next[0] = wrap(next[0], -Double.pi, Double.pi)
        next[1] = wrap(next[1], -Double.pi, Double.pi)
        next[2] = min(max(next[2], -maxVelocity1), maxVelocity1)
        next[3] = min(max(next[3], -maxVelocity2), maxVelocity2)
        state = next
        let terminated = -cos(next[0]) - cos(next[1] + next[0]) > 1.0
        return Step(observation: observation, reward: terminated ? 0 : -1, terminated: terminated, truncated: false)
    }

    /// Replaces `[θ1, θ2, θ̇1, θ̇2]` (4 finite values).
    public func setState(_ state: [Double]) throws {
        try checkState(state, count: 4, env: id)
        self.state = state
    }

    private var observation: [Float] {
        [cos(state[0]), sin(state[0]), cos(state[1]), sin(state[1]), state[2], state[3]].map { Float($0) }
    }

    /// Gymnasium's `_dsdt`: the time derivative of `[θ1, θ2, θ̇1, θ̇2, torque]` (the torque is constant).
    private func derivatives(_ s: [Double]) -> [Double] {
        let m1 = link1Mass, m2 = link2Mass, l1 = link1Length
        let lc1 = link1CenterOfMass, lc2 = link2CenterOfMass
        let i1 = linkMomentOfInertia, i2 = linkMomentOfInertia, g = gravity
        let theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3], a = s[4]
        // Term for term as the reference, so the rounding matches.
        let d1 = m1 * (lc1 * lc1) + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * cos(theta2)) + i1 + i2
        let d2 = m2 * (lc2 * lc2 + l1 * lc2 * cos(theta2)) + i2
        let phi2 = m2 * lc2 * g * cos(theta1 + theta2 - Double.pi / 2.0)
        let phi1 = -m2 * l1 * lc2 * (dtheta2 * dtheta2) * sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * cos(theta1 - Double.pi / 2)
            + phi2
        let ddtheta2: Double
        switch dynamics {
        case .nips:
            ddtheta2 = (a + d2 / d1 * phi1 - phi2) / (m2 * (lc2 * lc2) + i2 - (d2 * d2) / d1)
        case .book:
            ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * (dtheta1 * dtheta1) * sin(theta2) - phi2)
                / (m2 * (lc2 * lc2) + i2 - (d2 * d2) / d1)
        }
        let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return [dtheta1, dtheta2, ddtheta1, ddtheta2, 0]
    }

    /// Gymnasium's `rk4` over the single interval [0, dt]; returns the first four components.
    private func rungeKutta4(_ y0: [Double]) -> [Double] {
        let dt = timeStep - 0, halfStep = dt / 2.0
        func shifted(_ k: [Double], by h: Double) -> [Double] { (0..<5).map { y0[$0] + h * k[$0] } }
        let k1 = derivatives(y0)
        let k2 = derivatives(shifted(k1, by: halfStep))
        let k3 = derivatives(shifted(k2, by: halfStep))
        let k4 = derivatives(shifted(k3, by: dt))
        return (0..<4).map { i in y0[i] + dt / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]) }
    }

    /// Gymnasium's `wrap`: shifts `x` by multiples of (upper − lower) into [lower, upper].
    private func wrap(_ x: Double, _ lower: Double, _ upper: Double) -> Double {
        let period = upper - lower
        var x = x
        while x > upper { x -= period }
        while x < lower { x += period }
        return x
    }
}
