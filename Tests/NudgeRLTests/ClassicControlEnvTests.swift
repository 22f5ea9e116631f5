// Behaviour of the classic-control environments beyond the Gymnasium traces: seeding, initial-state
// bounds, invalid actions and states, CartPole after termination, clipping of continuous actions.

import Foundation
import Testing
import NudgeRL

@Suite struct ClassicControlEnvTests {
    /// The observations of `steps` steps with the cyclic action sequence `actions`.
    private func rollout<E: Environment>(_ env: E, seed: UInt64?, actions: [E.Action], steps: Int) throws -> [E.Observation] {
        var observations = [env.reset(seed: seed, options: nil).observation]
        for t in 0..<steps { observations.append(try env.step(actions[t % actions.count]).observation) }
        return observations
    }

    @Test func seededResetsAreDeterministic() throws {
        #expect(try rollout(CartPole(), seed: 7, actions: [0, 1, 1], steps: 8)
            == rollout(CartPole(), seed: 7, actions: [0, 1, 1], steps: 8))
        #expect(try rollout(MountainCar(), seed: 7, actions: [0, 2], steps: 20)
            == rollout(MountainCar(), seed: 7, actions: [0, 2], steps: 20))
        #expect(try rollout(MountainCarContinuous(), seed: 7, actions: [[0.5], [-1]], steps: 20)
            == rollout(MountainCarContinuous(), seed: 7, actions: [[0.5], [-1]], steps: 20))
        #expect(try rollout(Acrobot(), seed: 7, actions: [0, 2, 1], steps: 20)
            == rollout(Acrobot(), seed: 7, actions: [0, 2, 1], steps: 20))
        #expect(try rollout(Pendulum(), seed: 7, actions: [[1.5], [-2]], steps: 20)
            == rollout(Pendulum(), seed: 7, actions: [[1.5], [-2]], steps: 20))
        // Unseeded environments start from the same default seed.
        #expect(CartPole().reset().observation == CartPole().reset().observation)
        #expect(Pendulum().reset().observation == Pendulum().reset().observation)
    }

    @Test func seedRestartsAndNilContinues() {
        let env = CartPole()
        let first = env.reset(seed: 3).observation
        let continued = env.reset().observation
        #expect(continued != first)
        #expect(env.reset(seed: 3).observation == first)
        #expect(env.reset().observation == continued)
        #expect(CartPole().reset(seed: 4).observation != first)
    }

    @Test func initialStatesWithinBounds() {
        let cartPole = CartPole(), mountainCar = MountainCar(), continuous = MountainCarContinuous()
        let acrobot = Acrobot(), pendulum = Pendulum()
        for seed in 0..<100 as Range<UInt64> {
            let obs = cartPole.reset(seed: seed).observation
            #expect(cartPole.state.allSatisfy { $0 >= -0.05 && $0 < 0.05 })
            #expect(cartPole.observationSpace.contains(obs))
            _ = mountainCar.reset(seed: seed)
            #expect(mountainCar.state[0] >= -0.6 && mountainCar.state[0] < -0.4 && mountainCar.state[1] == 0)
            _ = continuous.reset(seed: seed)
            #expect(continuous.state[0] >= -0.6 && continuous.state[0] < -0.4 && continuous.state[1] == 0)
            let a = acrobot.reset(seed: seed).observation
            #expect(acrobot.state.allSatisfy { abs($0) <= 0.1 && Double(Float($0)) == $0 })
            #expect(acrobot.observationSpace.contains(a))
            let p = pendulum.reset(seed: seed).observation
            #expect(abs(pendulum.state[0]) <= Double.pi && abs(pendulum.state[1]) <= 1)
            #expect(pendulum.observationSpace.contains(p))
        }
        _ = cartPole.reset(seed: 0, options: ["low": -0.2, "high": -0.1])
        #expect(cartPole.state.allSatisfy { $0 >= -0.2 && $0 < -0.1 })
        _ = pendulum.reset(seed: 0, options: ["x_init": 0.1, "y_init": 0.2])
        #expect(abs(pendulum.state[0]) <= 0.1 && abs(pendulum.state[1]) <= 0.2)
    }

    @Test func invalidDiscreteActionsThrow() throws {
        let env = CartPole()
        _ = env.reset(seed: 0)
        #expect(throws: EnvironmentError.invalidAction(env: "CartPole-v1", action: "2", space: "Discrete(2)")) {
            try env.step(2)
        }
        do {
            _ = try env.step(-1)
            Issue.record("step(-1) did not throw")
        } catch {
            #expect("\(error)".contains("-1") && "\(error)".contains("Discrete(2)"))
        }
        let mountainCar = MountainCar(), acrobot = Acrobot()
        _ = mountainCar.reset(seed: 0)
        _ = acrobot.reset(seed: 0)
        #expect(throws: EnvironmentError.invalidAction(env: "MountainCar-v0", action: "3", space: "Discrete(3)")) {
            try mountainCar.step(3)
        }
        #expect(throws: EnvironmentError.self) { try acrobot.step(3) }
    }

    @Test func continuousActionsAreClippedButMalformedOnesThrow() throws {
        let a = Pendulum(), b = Pendulum()
        _ = a.reset(seed: 1)
        _ = b.reset(seed: 1)
        let clipped = try a.step([5])
        let bound = try b.step([2])
        #expect(clipped.observation == bound.observation && clipped.reward == bound.reward)
        #expect(throws: EnvironmentError.self) { try a.step([Float.nan]) }
        #expect(throws: EnvironmentError.self) { try a.step([1, 1]) }
        #expect(throws: EnvironmentError.self) { try a.step([]) }

        let c = MountainCarContinuous(), d = MountainCarContinuous()
        _ = c.reset(seed: 1)
        _ = d.reset(seed: 1)
        let over = try c.step([3])
        let one = try d.step([1])
        #expect(over.observation == one.observation)
        // The reward charges the action as given (0.1·3²), as Gymnasium does.
        #expect(abs(over.reward - -0.9) < 1e-12 && abs(one.reward - -0.1) < 1e-12)
        #expect(throws: EnvironmentError.self) { try c.step([Float.nan]) }
        #expect(throws: EnvironmentError.self) { try c.step([0, 0]) }
    }

    @Test func steppingBeforeResetThrows() {
        #expect(throws: EnvironmentError.needsReset(env: "CartPole-v1")) { try CartPole().step(0) }
        #expect(throws: EnvironmentError.needsReset(env: "MountainCar-v0")) { try MountainCar().step(0) }
        #expect(throws: EnvironmentError.needsReset(env: "MountainCarContinuous-v0")) { try MountainCarContinuous().step([0]) }
        #expect(throws: EnvironmentError.needsReset(env: "Acrobot-v1")) { try Acrobot().step(0) }
        #expect(throws: EnvironmentError.needsReset(env: "Pendulum-v1")) { try Pendulum().step([0]) }
    }

    @Test func invalidStatesThrow() {
        #expect(throws: EnvironmentError.self) { try CartPole().setState([0, 0, 0]) }
        #expect(throws: EnvironmentError.self) { try CartPole().setState([0, .nan, 0, 0]) }
        #expect(throws: EnvironmentError.self) { try MountainCar().setState([0, .infinity]) }
        #expect(throws: EnvironmentError.self) { try Acrobot().setState([0, 0, 0, 0, 0]) }
        #expect(throws: EnvironmentError.self) { try Pendulum().setState([1]) }
    }

    @Test func cartPoleAfterTermination() throws {
        let env = CartPole()
        _ = env.reset(seed: 0)
        try env.setState([2.39, 1, 0, 0])
        let last = try env.step(1)
        #expect(last.terminated && last.reward == 1 && env.stepsBeyondTerminated == 0)
        let beyond = try env.step(1)
        #expect(beyond.terminated && beyond.reward == 0 && env.stepsBeyondTerminated == 1)
        _ = env.reset()
        #expect(env.stepsBeyondTerminated == nil)

        let suttonBarto = CartPole(suttonBartoReward: true)
        _ = suttonBarto.reset(seed: 0)
        #expect(try suttonBarto.step(0).reward == 0)
        try suttonBarto.setState([-2.39, -1, 0, 0])
        #expect(try suttonBarto.step(0).reward == -1)
        #expect(try suttonBarto.step(0).reward == -1)
    }

    @Test func cartPoleIntegrators() throws {
        let euler = CartPole(), semiImplicit = CartPole(integrator: .semiImplicitEuler)
        for env in [euler, semiImplicit] { try env.setState([0, 1, 0, 1]) }
        _ = try euler.step(1)
        _ = try semiImplicit.step(1)
        #expect(euler.state[0] == 0.02 && euler.state[2] == 0.02)  // positions move with the old velocities
        #expect(semiImplicit.state[0] == 0.02 * semiImplicit.state[1])
        #expect(semiImplicit.state[2] == 0.02 * semiImplicit.state[3])
    }

    @Test func pendulumAngleNormalization() {
        #expect(Pendulum.normalizeAngle(0) == 0)
        #expect(abs(Pendulum.normalizeAngle(3 * Double.pi / 2) - -Double.pi / 2) < 1e-12)
        #expect(abs(Pendulum.normalizeAngle(-3 * Double.pi / 2) - Double.pi / 2) < 1e-12)
        #expect(Pendulum.normalizeAngle(Double.pi) == -Double.pi)
    }

    @Test func mountainCarLeftWallStopsTheCar() throws {
        let env = MountainCar()
        try env.setState([-1.19, -0.05])
        let step = try env.step(0)
        #expect(env.state == [-1.2, 0] && step.reward == -1 && !step.terminated)
    }

    @Test func timeLimitsMatchRegistrations() {
        #expect(CartPole.make().maxEpisodeSteps == 500)
        #expect(MountainCar.make().maxEpisodeSteps == 200)
        #expect(MountainCarContinuous.make().maxEpisodeSteps == 999)
        #expect(Acrobot.make().maxEpisodeSteps == 500)
        #expect(Pendulum.make().maxEpisodeSteps == 200)
        #expect(CartPole.make().id == "CartPole-v1")
    }
}

@Suite struct EnvironmentCheckerEnvTests {
    @Test func builtInEnvironmentsPassTheChecker() {
        let envs: [AnyEnvironment] = [
            AnyEnvironment(CartPole()), AnyEnvironment(MountainCar()), AnyEnvironment(MountainCarContinuous()),
            AnyEnvironment(Acrobot()), AnyEnvironment(Pendulum.make()), AnyEnvironment(FrozenLake()),
            AnyEnvironment(FrozenLake(mapName: .eightByEight)), AnyEnvironment(CliffWalking.make()),
            AnyEnvironment(Taxi.make()), AnyEnvironment(GridWorld.make()),
        ]
        for env in envs {
            let problems = EnvironmentChecker.check(env)
            #expect(problems.isEmpty, "\(env.id): \(problems)")
            #expect(env.isStateful)
        }
    }
}
