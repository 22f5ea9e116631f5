// The seeds' bandit experiments as functions that return curves: Thompson sampling vs REINFORCE
// on a 5-armed Bernoulli bandit, Sutton & Barto's 10-armed testbed (figures 2.2–2.6), and UCB1 /
// KL-UCB / Thompson regret against the Lai–Robbins bound. Runs are independent and seeded
// (run r of an experiment with seed s uses seed s·1_000_003 + r), so any run can be reproduced
// alone.

import Foundation
import NudgeTensor

/// Per-step curves of one agent, averaged over runs.
public struct BanditCurves: Sendable {
    public var name: String
    /// Mean reward at each step.
    public var meanReward: [Double]
    /// Fraction of runs that chose an optimal arm at each step.
    public var optimalFraction: [Double]
    /// Mean cumulative (pseudo-)regret Σ (μ* − μ_{aₜ}) at each step.
    public var cumulativeRegret: [Double]
    /// Lowest and highest cumulative regret over runs at each step.
    public var regretLow: [Double]
    public var regretHigh: [Double]
}

/// Runs `runs` independent bandit problems for `steps` pulls each.
public func runBanditExperiment(
    runs: Int, steps: Int, seed: UInt64,
    makeBandit: (UInt64) -> any Bandit, makeAgent: (UInt64) -> any BanditAgent
) -> BanditCurves {
    var reward = [Double](repeating: 0, count: steps)
    var optimal = [Double](repeating: 0, count: steps)
    var regret = [Double](repeating: 0, count: steps)
    var low = [Double](repeating: .infinity, count: steps)
    var high = [Double](repeating: -.infinity, count: steps)
    var name = ""
    for run in 0..<runs {
        let runSeed = seed &* 1_000_003 &+ UInt64(run)
        let bandit = makeBandit(runSeed)
        let agent = makeAgent(runSeed &+ 0x5EED)
        name = agent.name
        var cumulative = 0.0
        for t in 0..<steps {
            let means = bandit.expectedRewards
            let best = means.max() ?? 0
            let arm = agent.selectArm()
            let r = bandit.pull(arm)
            agent.update(arm: arm, reward: r)
            reward[t] += r
            if means[arm] == best { optimal[t] += 1 }
            cumulative += best - means[arm]
            regret[t] += cumulative
            low[t] = Swift.min(low[t], cumulative)
            high[t] = Swift.max(high[t], cumulative)
        }
    }
    let n = Double(runs)
    return BanditCurves(name: name, meanReward: reward.map { $0 / n }, optimalFraction: optimal.map { $0 / n },
                        cumulativeRegret: regret.map { $0 / n }, regretLow: low, regretHigh: high)
}

/// The agents of Sutton & Barto's testbed comparison: greedy, ε = 0.01, ε = 0.1, UCB (c = 2),
/// the gradient bandit (α = 0.1 with baseline) and softmax with τ ∈ {0.01, 0.1, 1, 10}.
public func testbedAgents(arms: Int = 10) -> [(String, (UInt64) -> any BanditAgent)] {
    var list: [(String, (UInt64) -> any BanditAgent)] = [
        ("greedy", { EpsilonGreedy(arms: arms, epsilon: 0, seed: $0) }),
        ("ε = 0.01", { EpsilonGreedy(arms: arms, epsilon: 0.01, seed: $0) }),
        ("ε = 0.1", { EpsilonGreedy(arms: arms, epsilon: 0.1, seed: $0) }),
        ("UCB c = 2", { UCB(arms: arms, c: 2, seed: $0) }),
        ("gradient α = 0.1", { GradientBandit(arms: arms, stepSize: 0.1, seed: $0) }),
    ]
    for tau in [0.01, 0.1, 1, 10] {
        list.append(("softmax τ = \(tau)", { SoftmaxAgent(arms: arms, temperature: tau, seed: $0) }))
    }
    return list
}
