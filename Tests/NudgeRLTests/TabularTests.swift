// Dynamic programming and TD control on small MDPs written out by hand.

import Foundation
import Nudge
import Testing
@testable import NudgeRL

/// A 3-state chain: action 1 moves right (reward 1 on reaching state 2, which terminates),
/// action 0 stays with reward 0.
func chainMDP() -> TabularMDP {
    let t: [[[Transition]]] = [
        [[Transition(probability: 1, nextState: 0, reward: 0, terminated: false)],
         [Transition(probability: 1, nextState: 1, reward: 0, terminated: false)]],
        [[Transition(probability: 1, nextState: 1, reward: 0, terminated: false)],
         [Transition(probability: 0.5, nextState: 2, reward: 1, terminated: true),
          Transition(probability: 0.5, nextState: 0, reward: 0, terminated: false)]],
        [[Transition(probability: 1, nextState: 2, reward: 0, terminated: true)],
         [Transition(probability: 1, nextState: 2, reward: 0, terminated: true)]],
    ]
    return TabularMDP(stateCount: 3, actionCount: 2, transitions: t)
}

@Suite("Tabular") struct TabularTests {
    @Test func valueIterationMatchesTheClosedForm() {
        // Optimal: always move right. V1 = ½ + ½γV0, V0 = γV1 → V1 = ½ / (1 − ½γ²).
        let g = 0.9
        let s = valueIteration(chainMDP(), gamma: g)
        let v1 = 0.5 / (1 - 0.5 * g * g)
        #expect(abs(s.values[1] - v1) < 1e-9 && abs(s.values[0] - g * v1) < 1e-9 && s.values[2] == 0)
        #expect(s.greedyActions[0] == 1 && s.greedyActions[1] == 1)
        #expect(s.residual < 1e-10)
    }

    @Test func policyIterationAgreesWithValueIteration() {
        let vi = valueIteration(chainMDP(), gamma: 0.9), pi = policyIteration(chainMDP(), gamma: 0.9)
        for (a, b) in zip(vi.values, pi.values) { #expect(abs(a - b) < 1e-8) }
        #expect(vi.greedyActions == pi.greedyActions)
    }

    @Test func policyEvaluationOfAUniformPolicy() {
        let uniform = [[Double]](repeating: [0.5, 0.5], count: 3)
        let (v, _) = policyEvaluation(chainMDP(), policy: uniform, gamma: 0.9)
        // Bellman equations: V0 = .9(.5V0 + .5V1); V1 = .5(.9V1) + .5(.5 + .5·.9V0).
        #expect(abs(v[0] - 0.9 * (0.5 * v[0] + 0.5 * v[1])) < 1e-9)
        #expect(abs(v[1] - (0.45 * v[1] + 0.5 * (0.5 + 0.45 * v[0]))) < 1e-9)
    }

    @Test func softValueIterationTendsToHardAsTemperatureFalls() {
        let hard = valueIteration(chainMDP(), gamma: 0.9)
        var previousGap = Double.infinity
        for alpha in [1.0, 0.1, 0.01, 0.001] {
            let soft = softValueIteration(chainMDP(), gamma: 0.9, temperature: alpha)
            let gap = zip(soft.values, hard.values).map { abs($0 - $1) }.max()!
            #expect(gap <= previousGap)
            previousGap = gap
            // Soft values are never below hard ones (log-sum-exp ≥ max).
            #expect(zip(soft.values, hard.values).allSatisfy { $0 >= $1 - 1e-12 })
        }
        #expect(previousGap < 0.01)
        let cold = softValueIteration(chainMDP(), gamma: 0.9, temperature: 0.001)
        #expect(cold.policy[0][1] > 0.99)
    }
}

/// Solves A x = b by Gaussian elimination with partial pivoting.
func solveLinear(_ a: [[Double]], _ b: [Double]) -> [Double] {
    var m = a, v = b
    let n = b.count
    for col in 0..<n {
        let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
        m.swapAt(col, pivot)
        v.swapAt(col, pivot)
        for row in (col + 1)..<n {
            let f = m[row][col] / m[col][col]
            for k in col..<n { m[row][k] -= f * m[col][k] }
            v[row] -= f * v[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        x[row] = (v[row] - ((row + 1)..<n).reduce(0) { $0 + m[row][$1] * x[$1] }) / m[row][row]
    }
    return x
}

@Suite("Tabular on Gymnasium maps") struct TabularEnvTests {
    @Test func frozenLakeValueIterationEqualsTheLinearSystemOfItsPolicy() {
        let mdp = TabularMDP(FrozenLake(mapName: .fourByFour, isSlippery: true))
        let gamma = 0.99
        let vi = valueIteration(mdp, gamma: gamma, tolerance: 1e-13)
        // V = r_π + γ P_π V with terminal transitions contributing no future value.
        let n = mdp.stateCount
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        var b = [Double](repeating: 0, count: n)
        for s in 0..<n {
            a[s][s] = 1
            for t in mdp.transitions[s][vi.greedyActions[s]] {
                b[s] += t.probability * t.reward
                if !t.terminated { a[s][t.nextState] -= gamma * t.probability }
            }
        }
        let exact = solveLinear(a, b)
        for s in 0..<n { #expect(abs(exact[s] - vi.values[s]) < 1e-9, "state \(s)") }
        // Policy iteration lands on the same values.
        let pi = policyIteration(mdp, gamma: gamma, tolerance: 1e-13)
        for s in 0..<n { #expect(abs(pi.values[s] - vi.values[s]) < 1e-8) }
        // The best success probability within 100 steps is Gymnasium's known 0.7442 (exact
        // dynamic programming over the 100-step horizon).
        #expect(abs(TabularLab.optimalSuccessProbability(mdp, horizon: 100) - 0.7442) < 5e-5)
    }

    @Test func qLearningFindsTheGridWorldOptimum() throws {
        var config = TDConfig()
        config.episodes = 300
        config.learningRate = 0.5
        config.epsilonEnd = 0.05
        config.epsilonDecayFraction = 0.5
        config.seed = 3
        let env = GridWorld.make()
        let optimum = valueIteration(TabularMDP(env.base), gamma: config.gamma)
        for method in [TDMethod.qLearning, .sarsa, .expectedSarsa] {
            let result = try trainTD(env, stateCount: 16, actionCount: 4, method: method, config: config)
            // Greedy from the start reaches the goal in the optimal 6 steps.
            let greedyReturn = try evaluateGreedy(env, q: result.q, episodes: 1, seed: 0)
            #expect(abs(greedyReturn - (1 - 0.05)) < 1e-9, "\(method.name): greedy return \(greedyReturn)")
        }
        let soft = try trainTD(env, stateCount: 16, actionCount: 4, method: .softQLearning(temperature: 0.01), config: config)
        #expect(soft.episodeReturns.suffix(50).reduce(0, +) / 50 > 0.8)
        #expect(optimum.values[0] > 0.9)
    }

    @Test func frozenLakeQLearningApproachesTheOptimum() throws {
        var config = TDConfig()
        config.episodes = 8000
        config.seed = 1
        let env = FrozenLake.make(mapName: .fourByFour, isSlippery: true)
        let result = try trainTD(env, stateCount: 16, actionCount: 4, method: .qLearning, config: config)
        let greedy = result.q.map { q in q.indices.max { q[$0] < q[$1] }! }
        let success = TabularLab.successProbability(TabularMDP(env.base), policy: greedy, horizon: 100)
        #expect(success > 0.7, "greedy success probability \(success)")
    }

    @Test func registryMakesEveryEnvironmentAndRejectsUnknownIds() throws {
        for id in Registry.ids {
            let env = try Registry.make(id)
            #expect(env.id == id || id == "FrozenLake8x8-v1")
            #expect(EnvironmentChecker.check(env, steps: 50).isEmpty, "\(id)")
        }
        #expect(throws: EnvironmentError.self) { try Registry.make("CartPole-v0") }
    }
}
