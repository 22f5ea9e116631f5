// Dynamic programming and TD control on small MDPs written out by hand.

import Foundation
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
