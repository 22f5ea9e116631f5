// Parity of the toy-text environments with Gymnasium 1.4: transition tables P[s][a] compared
// outcome by outcome, and recorded episodes replayed (stochastic outcomes forced to the recorded ones).

import Foundation
import Testing
import NudgeRL

@Suite struct ToyTextParityTests {
    private func int(_ s: Int) -> [Double] { [Double(s)] }

    /// Replays a slippery trace with each outcome forced to the recorded one (checked to be a legal
    /// entry of P[s][a]), counting elapsed steps for the time limit.
    private func replayForced<E: TabularEnvironment & StatefulEnvironment>(
        _ env: E, _ trace: Trace, maxEpisodeSteps: Int,
        step: (E, Int, Int) throws -> Step<Int>
    ) throws -> Int {
        _ = env.reset(seed: 0)
        try env.setState(trace.initialState.values)
        var count = 0
        for (t, expected) in try trace.records().enumerated() {
            let s = Int(env.state[0]), a = trace.actions[t].int
            let outcomes = env.transitions[s][a]
            let index = outcomes.firstIndex {
                $0.nextState == Int(expected.state[0]) && $0.reward == expected.reward && $0.terminated == expected.terminated
            }
            #expect(index != nil, "\(trace.envId) step \(t): recorded outcome is not in P[\(s)][\(a)]")
            guard let index else { break }
            let result = try step(env, a, index)
            let truncated = t + 1 >= maxEpisodeSteps
            #expect(result.observation == expected.obs.first.map { Int($0) })
            #expect(result.reward == expected.reward && result.terminated == expected.terminated)
            #expect(truncated == expected.truncated)
            count += 1
        }
        return count
    }

    @Test func frozenLake4x4Slippery() throws {
        let fixture = try loadFixture("FrozenLake-v1_slippery", as: TabularFixture.self)
        let env = FrozenLake()
        #expect(fixture.map == env.map)
        expectSameTable(env.transitions, fixture.transitionTable.table, "FrozenLake-v1 slippery P")
        var steps = 0
        for trace in fixture.traces {
            steps += try replayForced(env, trace, maxEpisodeSteps: FrozenLake.maxEpisodeSteps) { try $0.step($1, outcome: $2) }
        }
        #expect(steps > 50)
    }

    @Test func frozenLake4x4NotSlippery() throws {
        for trace in try loadFixture("FrozenLake-v1_nonslippery", as: [Trace].self) {
            _ = try replay(FrozenLake(isSlippery: false), trace, maxEpisodeSteps: FrozenLake.maxEpisodeSteps,
                           state: Tolerance(absolute: 0), action: { $0.int }, observe: int)
        }
    }

    @Test func frozenLake8x8() throws {
        let fixture = try loadFixture("FrozenLake8x8-v1", as: TabularFixture.self)
        let env = FrozenLake(mapName: .eightByEight)
        #expect(env.id == "FrozenLake8x8-v1")
        #expect(fixture.map == FrozenLake.map8x8)
        expectSameTable(env.transitions, fixture.transitionTable.table, "FrozenLake8x8-v1 slippery P")
        for trace in fixture.traces {
            _ = try replay(FrozenLake(mapName: .eightByEight, isSlippery: false), trace,
                           maxEpisodeSteps: FrozenLake.maxEpisodeSteps8x8, state: Tolerance(absolute: 0),
                           action: { $0.int }, observe: int)
        }
        #expect(FrozenLake.make(mapName: .eightByEight).maxEpisodeSteps == fixture.traces[0].maxEpisodeSteps)
    }

    @Test func cliffWalking() throws {
        let fixture = try loadFixture("CliffWalking-v1", as: TabularFixture.self)
        expectSameTable(CliffWalking().transitions, fixture.transitionTable.table, "CliffWalking-v1 P")
        if let slippery = fixture.transitionTableSlippery {
            expectSameTable(CliffWalking(isSlippery: true).transitions, slippery.table, "CliffWalking slippery P")
        }
        for trace in fixture.traces {
            #expect(trace.maxEpisodeSteps == nil && CliffWalking.maxEpisodeSteps == nil)
            _ = try replay(CliffWalking(), trace, maxEpisodeSteps: Int.max, state: Tolerance(absolute: 0),
                           action: { $0.int }, observe: int)
        }
    }

    @Test func taxi() throws {
        let fixture = try loadFixture("Taxi-v3", as: TabularFixture.self)
        let env = Taxi()
        expectSameTable(env.transitions, fixture.transitionTable.table, "Taxi P")
        let initialStates = try #require(fixture.initialStates)
        let probability = try #require(fixture.initialProbability)
        #expect(initialStates.count == 300)
        var distribution = [Double](repeating: 0, count: 500)
        for s in initialStates { distribution[s] = probability }
        // The initial distribution is observable through resets: every start is one of the 300.
        for seed in 0..<200 { #expect(distribution[env.reset(seed: UInt64(seed)).observation] > 0) }
        for trace in fixture.traces {
            #expect(trace.maxEpisodeSteps == Taxi.maxEpisodeSteps)
            if let mask = trace.initialActionMask {
                #expect(Taxi.actionMask(trace.initialState.int) == mask.map { $0 == 1 })
            }
            _ = try replay(Taxi(), trace, maxEpisodeSteps: Taxi.maxEpisodeSteps, state: Tolerance(absolute: 0),
                           action: { $0.int }, observe: int)
            let masks = try #require(trace.actionMasks)
            for (t, step) in try trace.records().enumerated() {
                #expect(Taxi.actionMask(Int(step.state[0])) == masks[t].map { $0 == 1 }, "Taxi mask at step \(t)")
            }
        }
    }
}
