// Dynamic programming on a known finite MDP (Sutton & Barto ch. 4): iterative policy evaluation,
// value iteration and policy iteration, stopping when the Bellman residual max|V' − V| falls
// below a tolerance; and soft (maximum-entropy) value iteration with temperature α:
// V(s) = α·log Σₐ exp(Q(s,a)/α), π(a|s) ∝ exp(Q(s,a)/α), which tends to hard value iteration
// as α → 0. Terminal transitions contribute no future value.

import Foundation

/// A finite MDP given by its transition table.
public struct TabularMDP: Sendable {
    public let stateCount: Int
    public let actionCount: Int
    /// `transitions[s][a]`: the possible outcomes (Gymnasium's P[s][a]).
    public let transitions: [[[Transition]]]

    public init(stateCount: Int, actionCount: Int, transitions: [[[Transition]]]) {
        self.stateCount = stateCount
        self.actionCount = actionCount
        self.transitions = transitions
    }

    public init<E: TabularEnvironment>(_ env: E) {
        self.init(stateCount: env.stateCount, actionCount: env.actionCount, transitions: env.transitions)
    }

    /// Q(s, a) = Σ p·(r + γ·V(s')·(1 − terminated)).
    public func actionValue(_ s: Int, _ a: Int, _ v: [Double], gamma: Double) -> Double {
        transitions[s][a].reduce(0) { $0 + $1.probability * ($1.reward + (($1.terminated) ? 0 : gamma * v[$1.nextState])) }
    }

    /// Q for every state and action.
    public func actionValues(_ v: [Double], gamma: Double) -> [[Double]] {
        (0..<stateCount).map { s in (0..<actionCount).map { a in actionValue(s, a, v, gamma: gamma) } }
    }
}

/// The result of a dynamic-programming solve.
public struct Solution: Sendable {
    public var values: [Double]
    public var actionValues: [[Double]]
    /// π(a|s) for every state.
    public var policy: [[Double]]
    public var iterations: Int
    /// The last Bellman residual max|V' − V|.
    public var residual: Double

    /// The greedy action per state (lowest index on ties).
    public var greedyActions: [Int] { actionValues.map { q in q.indices.max { q[$0] < q[$1] || (q[$0] == q[$1] && $0 > $1) } ?? 0 } }
}

/// V^π by iterating V ← Σₐ π(a|s)·Q(s, a) (in place, Gauss–Seidel) until the residual < tolerance.
public func policyEvaluation(_ mdp: TabularMDP, policy: [[Double]], gamma: Double, tolerance: Double = 1e-10,
                             maxIterations: Int = 100_000) -> (values: [Double], iterations: Int) {
    var v = [Double](repeating: 0, count: mdp.stateCount)
    for iteration in 1...maxIterations {
        var delta = 0.0
        for s in 0..<mdp.stateCount {
            let new = (0..<mdp.actionCount).reduce(0) { $0 + policy[s][$1] * mdp.actionValue(s, $1, v, gamma: gamma) }
            delta = Swift.max(delta, Swift.abs(new - v[s]))
            v[s] = new
        }
        if delta < tolerance { return (v, iteration) }
    }
    return (v, maxIterations)
}

/// One-hot rows for a deterministic policy.
func deterministicPolicy(_ actions: [Int], actionCount: Int) -> [[Double]] {
    actions.map { a in (0..<actionCount).map { $0 == a ? 1 : 0 } }
}

/// Value iteration: V ← maxₐ Q(s, a) until the residual < tolerance.
public func valueIteration(_ mdp: TabularMDP, gamma: Double, tolerance: Double = 1e-10, maxIterations: Int = 100_000) -> Solution {
    var v = [Double](repeating: 0, count: mdp.stateCount)
    var iterations = 0, delta = Double.infinity
    while iterations < maxIterations && delta >= tolerance {
        delta = 0
        for s in 0..<mdp.stateCount {
            let best = (0..<mdp.actionCount).map { mdp.actionValue(s, $0, v, gamma: gamma) }.max() ?? 0
            delta = Swift.max(delta, Swift.abs(best - v[s]))
            v[s] = best
        }
        iterations += 1
    }
    let q = mdp.actionValues(v, gamma: gamma)
    var solution = Solution(values: v, actionValues: q, policy: [], iterations: iterations, residual: delta)
    solution.policy = deterministicPolicy(solution.greedyActions, actionCount: mdp.actionCount)
    return solution
}

/// Policy iteration: evaluate, improve greedily, stop when the policy is stable.
public func policyIteration(_ mdp: TabularMDP, gamma: Double, tolerance: Double = 1e-10, maxIterations: Int = 1000) -> Solution {
    var actions = [Int](repeating: 0, count: mdp.stateCount)
    var v = [Double](repeating: 0, count: mdp.stateCount)
    var iterations = 0
    while iterations < maxIterations {
        iterations += 1
        v = policyEvaluation(mdp, policy: deterministicPolicy(actions, actionCount: mdp.actionCount), gamma: gamma, tolerance: tolerance).values
        var stable = true
        for s in 0..<mdp.stateCount {
            let q = (0..<mdp.actionCount).map { mdp.actionValue(s, $0, v, gamma: gamma) }
            let best = q.indices.max { q[$0] < q[$1] || (q[$0] == q[$1] && $0 > $1) } ?? 0
            // Change only on a strict improvement, so ties cannot make the loop cycle.
            if q[best] > q[actions[s]] + 1e-12 { actions[s] = best; stable = false }
        }
        if stable { break }
    }
    let q = mdp.actionValues(v, gamma: gamma)
    return Solution(values: v, actionValues: q, policy: deterministicPolicy(actions, actionCount: mdp.actionCount),
                    iterations: iterations, residual: 0)
}

/// α·log Σ exp(q/α), stable.
public func softMaximum(_ q: [Double], temperature alpha: Double) -> Double {
    let m = q.max() ?? 0
    return m + alpha * Foundation.log(q.reduce(0) { $0 + Foundation.exp(($1 - m) / alpha) })
}

/// Soft value iteration with temperature α: V ← α·log Σₐ exp(Q(s, a)/α); the policy is
/// Boltzmann in Q. As α → 0 the values approach hard value iteration's.
public func softValueIteration(_ mdp: TabularMDP, gamma: Double, temperature alpha: Double, tolerance: Double = 1e-10,
                               maxIterations: Int = 100_000) -> Solution {
    precondition(alpha > 0, "temperature must be positive")
    var v = [Double](repeating: 0, count: mdp.stateCount)
    var iterations = 0, delta = Double.infinity
    while iterations < maxIterations && delta >= tolerance {
        delta = 0
        for s in 0..<mdp.stateCount {
            let q = (0..<mdp.actionCount).map { mdp.actionValue(s, $0, v, gamma: gamma) }
            let new = softMaximum(q, temperature: alpha)
            delta = Swift.max(delta, Swift.abs(new - v[s]))
            v[s] = new
        }
        iterations += 1
    }
    let q = mdp.actionValues(v, gamma: gamma)
    let policy = q.map { row in softmax(row.map { $0 / alpha }) }
    return Solution(values: v, actionValues: q, policy: policy, iterations: iterations, residual: delta)
}
