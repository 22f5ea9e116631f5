// Step-by-step parity of the classic-control environments with Gymnasium 1.4 traces: the state is
// set to the trace's initial state and the recorded actions are replayed through TimeLimit.

import Foundation
import Testing
import NudgeRL

@Suite struct ClassicControlParityTests {
    private func floats(_ obs: [Float]) -> [Double] { obs.map { Double($0) } }

    @Test func cartPole() throws {
        let traces = try loadFixture("CartPole-v1", as: [Trace].self)
        var errors = ParityErrors()
        for trace in traces {
            let env = CartPole()
            errors.merge(try replay(env, trace, maxEpisodeSteps: CartPole.maxEpisodeSteps,
                                    state: Tolerance(absolute: 1e-9), action: { $0.int }, observe: floats))
            // The observation is the state rounded to float32.
            #expect(env.state.map { Float($0) } == trace.steps?.last?.obs.values.map { Float($0) })
        }
        #expect(traces.contains { $0.steps?.last?.truncated == true })
        print("CartPole-v1 parity: \(errors)")
    }

    @Test func mountainCar() throws {
        var errors = ParityErrors()
        for trace in try loadFixture("MountainCar-v0", as: [Trace].self) {
            errors.merge(try replay(MountainCar(), trace, maxEpisodeSteps: MountainCar.maxEpisodeSteps,
                                    state: Tolerance(absolute: 1e-9), action: { $0.int }, observe: floats))
        }
        print("MountainCar-v0 parity: \(errors)")
    }

    @Test func mountainCarContinuous() throws {
        var errors = ParityErrors()
        for trace in try loadFixture("MountainCarContinuous-v0", as: [Trace].self) {
            errors.merge(try replay(MountainCarContinuous(), trace, maxEpisodeSteps: MountainCarContinuous.maxEpisodeSteps,
                                    state: Tolerance(absolute: 1e-9), reward: Tolerance(absolute: 1e-12),
                                    action: { $0.floats }, observe: floats))
        }
        print("MountainCarContinuous-v0 parity: \(errors)")
    }

    @Test func acrobot() throws {
        var errors = ParityErrors()
        for trace in try loadFixture("Acrobot-v1", as: [Trace].self) {
            errors.merge(try replay(Acrobot(), trace, maxEpisodeSteps: Acrobot.maxEpisodeSteps,
                                    state: Tolerance(absolute: 1e-9), observation: Tolerance(absolute: 1e-6),
                                    action: { $0.int }, observe: floats))
        }
        print("Acrobot-v1 parity: \(errors)")
    }

    @Test func pendulum() throws {
        var errors = ParityErrors()
        for trace in try loadFixture("Pendulum-v1", as: [Trace].self) {
            var gravity = 10.0
            if case .number(let g)? = trace.makeKwargs["g"] { gravity = g }
            errors.merge(try replay(Pendulum(gravity: gravity), trace, maxEpisodeSteps: Pendulum.maxEpisodeSteps,
                                    state: Tolerance(absolute: 1e-9, relative: 1e-6),
                                    observation: Tolerance(absolute: 1e-6),
                                    reward: Tolerance(absolute: 1e-9, relative: 1e-6),
                                    action: { $0.floats }, observe: floats))
        }
        print("Pendulum-v1 parity: \(errors)")
    }
}
