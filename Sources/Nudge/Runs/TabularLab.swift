// The seeds' tabular figures: Q-learning on the 4x4 GridWorld (greedy policy as arrows over a
// heatmap of maxₐ Q), and FrozenLake 4x4 slippery, where value iteration's exact optimum is set
// against Q-learning's greedy policy evaluated over many episodes.

import Foundation
import NudgeConfig
import NudgeRL
import NudgeReport

/// Tabular experiments.
public enum TabularLab {
    static let arrows = ["↑", "↓", "←", "→"]
    static let frozenArrows = ["←", "↓", "→", "↑"]  // FrozenLake: 0 left, 1 down, 2 right, 3 up

    /// Q-learning on the GridWorld; writes the learning curve, the greedy policy and the value
    /// heatmap, and compares with value iteration.
    public static func gridWorld(episodes: Int = 500, seed: UInt64 = 1, output: URL, recordedConfig: ConfigTable? = nil) throws -> ExperimentSummary {
        var td = TDConfig()
        td.episodes = episodes
        td.learningRate = 0.5
        td.gamma = 0.99
        td.epsilonStart = 1
        td.epsilonEnd = 0.05
        td.epsilonDecayFraction = 0.5
        td.seed = seed
        let config = recordedConfig ?? ConfigTable([
            ("experiment", .string("gridworld-q-learning")), ("episodes", .int(episodes)), ("learning_rate", .double(td.learningRate)),
            ("gamma", .double(td.gamma)), ("epsilon_start", .double(td.epsilonStart)), ("epsilon_end", .double(td.epsilonEnd)),
            ("epsilon_decay_fraction", .double(td.epsilonDecayFraction)), ("seed", .int(Int(seed))),
        ])
        let run = try RunDirectory.create(at: output, config: config, mode: .overwrite)
        defer { run.close() }
        let env = GridWorld.make()
        let result = try trainTD(env, stateCount: 16, actionCount: 4, method: .qLearning, config: td)
        for (i, r) in result.episodeReturns.enumerated() {
            try run.log(step: i + 1, [("charts/episodic_return", r), ("charts/episodic_length", Double(result.episodeLengths[i]))])
        }
        let optimum = valueIteration(TabularMDP(env.base), gamma: td.gamma)
        let maxQ = result.q.map { $0.max() ?? 0 }
        let greedy = result.q.map { q in q.indices.max { q[$0] < q[$1] || (q[$0] == q[$1] && $0 > $1) } ?? 0 }
        let grid = (0..<4).map { r in (0..<4).map { c in maxQ[r * 4 + c] } }
        let overlay = (0..<4).map { r in (0..<4).map { c in r * 4 + c == 15 ? "G" : arrows[greedy[r * 4 + c]] } }
        var heat = Heatmap(title: "GridWorld: maxₐ Q(s, a) and the greedy policy (Q-learning, \(episodes) episodes)", values: grid,
                           rowLabels: (0..<4).map { "row \($0)" }, columnLabels: (0..<4).map { "col \($0)" })
        heat.overlay = overlay
        heat.showsValues = true
        try heat.write(to: run.url.appendingPathComponent("values.svg"))
        var curve = LinePlot(title: "GridWorld Q-learning: episode return", xLabel: "episode", yLabel: "return")
        curve.add(.line("return", x: (1...episodes).map(Double.init), y: result.episodeReturns, smoothing: 20))
        curve.add(.horizontal(optimum.values[0], label: "optimal V(start)"))
        try curve.write(to: run.url.appendingPathComponent("returns.svg"))
        let agree = (0..<15).filter { s in optimum.actionValues[s][greedy[s]] >= (optimum.values[s] - 1e-9) }.count
        return ExperimentSummary(directory: run.url, results: [
            ("optimal V(start) (value iteration)", optimum.values[0]),
            ("Q-learning maxₐ Q(start)", maxQ[0]),
            ("states where the greedy action is optimal (of 15)", Double(agree)),
            ("mean return, last 50 episodes", result.episodeReturns.suffix(50).reduce(0, +) / 50),
        ], plots: ["values.svg", "returns.svg"])
    }

    /// FrozenLake 4x4 slippery: the optimum (the best success probability within the 100-step
    /// limit, by backward induction; and value iteration's γ = 0.99 policy, exactly and simulated)
    /// against Q-learning's greedy policy, exactly and over `evaluationEpisodes` simulated episodes.
    public static func frozenLake(episodes: Int = 20_000, evaluationEpisodes: Int = 10_000, seed: UInt64 = 1,
                                  output: URL, recordedConfig: ConfigTable? = nil) throws -> ExperimentSummary {
        var td = TDConfig()
        td.episodes = episodes
        td.seed = seed
        let config = recordedConfig ?? ConfigTable([
            ("experiment", .string("frozenlake")), ("episodes", .int(episodes)), ("evaluation_episodes", .int(evaluationEpisodes)),
            ("learning_rate", .double(td.learningRate)), ("gamma", .double(td.gamma)), ("epsilon_start", .double(td.epsilonStart)),
            ("epsilon_end", .double(td.epsilonEnd)), ("epsilon_decay_fraction", .double(td.epsilonDecayFraction)), ("seed", .int(Int(seed))),
        ])
        let run = try RunDirectory.create(at: output, config: config, mode: .overwrite)
        defer { run.close() }
        let env = FrozenLake.make(mapName: .fourByFour, isSlippery: true)
        let mdp = TabularMDP(env.base)
        let optimum = valueIteration(mdp, gamma: td.gamma)
        let result = try trainTD(env, stateCount: 16, actionCount: 4, method: .qLearning, config: td)
        // Log a 100-episode moving success rate every 100 episodes.
        let window = 100
        for end in stride(from: window, through: episodes, by: window) {
            let rate = result.episodeReturns[(end - window)..<end].reduce(0, +) / Double(window)
            try run.log(step: end, [("charts/success_rate_100", rate)])
        }
        let qSuccess = try evaluateGreedy(env, q: result.q, episodes: evaluationEpisodes, seed: seed &+ 7)
        let viSuccess = try evaluateGreedy(env, q: optimum.actionValues, episodes: evaluationEpisodes, seed: seed &+ 7)
        let exact = successProbability(mdp, policy: optimum.greedyActions, horizon: FrozenLake.maxEpisodeSteps)
        let best = optimalSuccessProbability(mdp, horizon: FrozenLake.maxEpisodeSteps)
        let qExact = successProbability(mdp, policy: result.q.map { q in q.indices.max { q[$0] < q[$1] || (q[$0] == q[$1] && $0 > $1) } ?? 0 },
                                        horizon: FrozenLake.maxEpisodeSteps)
        var curve = LinePlot(title: "FrozenLake 4x4 slippery: Q-learning success rate (100-episode windows)", xLabel: "episode", yLabel: "success rate")
        let rows = try run.readMetrics()
        curve.add(.line("Q-learning (training, ε-greedy)", x: rows.map { Double($0.step) }, y: rows.map { $0.values["charts/success_rate_100"] ?? .nan }))
        curve.add(.horizontal(best, label: "optimum within 100 steps (exact)"))
        try curve.write(to: run.url.appendingPathComponent("success.svg"))
        let grid = (0..<4).map { r in (0..<4).map { c in optimum.values[r * 4 + c] } }
        var heat = Heatmap(title: "FrozenLake 4x4: optimal V (γ = \(td.gamma)) and policy", values: grid,
                           rowLabels: (0..<4).map { "row \($0)" }, columnLabels: (0..<4).map { "col \($0)" })
        let map = FrozenLake.map4x4
        heat.overlay = (0..<4).map { r in (0..<4).map { c in
            let tile = Array(map[r])[c]
            return tile == "H" || tile == "G" ? String(tile) : frozenArrows[optimum.greedyActions[r * 4 + c]]
        } }
        heat.showsValues = true
        try heat.write(to: run.url.appendingPathComponent("optimal_values.svg"))
        return ExperimentSummary(directory: run.url, results: [
            ("optimal success probability within 100 steps (backward induction)", best),
            ("value-iteration (γ = 0.99) policy, exact success probability", exact),
            ("value-iteration policy, simulated success rate", viSuccess),
            ("Q-learning greedy policy, exact success probability", qExact),
            ("Q-learning greedy policy, simulated success rate", qSuccess),
        ], plots: ["success.svg", "optimal_values.svg"])
    }

    /// The highest probability of reaching a reward-1 terminal state within `horizon` steps, over
    /// all (non-stationary) policies: backward induction V_h(s) = maxₐ Σ p·[success or V_{h−1}(s')].
    public static func optimalSuccessProbability(_ mdp: TabularMDP, horizon: Int, start: Int = 0) -> Double {
        var v = [Double](repeating: 0, count: mdp.stateCount)
        for _ in 0..<horizon {
            v = (0..<mdp.stateCount).map { s in
                (0..<mdp.actionCount).map { a in
                    mdp.transitions[s][a].reduce(0) { acc, t in
                        acc + t.probability * (t.terminated ? (t.reward > 0 ? 1 : 0) : v[t.nextState])
                    }
                }.max() ?? 0
            }
        }
        return v[start]
    }

    /// The probability that a deterministic policy reaches a reward-1 terminal state within
    /// `horizon` steps (exact, by forward propagation of the state distribution).
    public static func successProbability(_ mdp: TabularMDP, policy: [Int], horizon: Int, start: Int = 0) -> Double {
        var p = [Double](repeating: 0, count: mdp.stateCount)
        p[start] = 1
        var success = 0.0
        for _ in 0..<horizon {
            var next = [Double](repeating: 0, count: mdp.stateCount)
            for s in 0..<mdp.stateCount where p[s] > 0 {
                for t in mdp.transitions[s][policy[s]] {
                    let mass = p[s] * t.probability
                    if t.terminated {
                        if t.reward > 0 { success += mass }
                    } else {
                        next[t.nextState] += mass
                    }
                }
            }
            p = next
        }
        return success
    }
}
