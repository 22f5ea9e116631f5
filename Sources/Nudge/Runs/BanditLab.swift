// The seeds' bandit figures, end to end: each experiment runs, logs its curves into a run
// directory (config.toml, metrics.jsonl/csv) and draws its SVG plots there.

import Foundation
import NudgeConfig
import NudgeRL
import NudgeReport
import NudgeTensor

/// What an experiment reports back.
public struct ExperimentSummary: Sendable {
    /// The run directory written.
    public var directory: URL
    /// Key numbers, by name.
    public var results: [(String, Double)]
    /// Plots written, by file name.
    public var plots: [String]
}

/// A metric-safe slug of a label ("ε = 0.1" → "eps_0.1").
func slug(_ label: String) -> String {
    var s = label.replacingOccurrences(of: "ε", with: "eps").replacingOccurrences(of: "τ", with: "tau")
        .replacingOccurrences(of: "α", with: "alpha").replacingOccurrences(of: " = ", with: "_")
    s = String(s.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" ? $0 : "_" })
    while s.contains("__") { s = s.replacingOccurrences(of: "__", with: "_") }
    return s.trimmingCharacters(in: CharacterSet(charactersIn: "_")).lowercased()
}

/// Bandit experiments.
public enum BanditLab {
    /// Thompson sampling vs REINFORCE on a 5-armed Bernoulli bandit (p = 0.1 … 0.9, T = 500):
    /// cumulative regret (mean with min–max band over runs) and the 20-step moving-average reward.
    public static func thompsonVsReinforce(
        probabilities: [Double] = [0.1, 0.3, 0.5, 0.7, 0.9], steps: Int = 500, runs: Int = 200,
        seed: UInt64 = 1, output: URL, recordedConfig: ConfigTable? = nil
    ) throws -> ExperimentSummary {
        let config = recordedConfig ?? ConfigTable([
            ("experiment", .string("thompson-vs-reinforce")), ("probabilities", .array(probabilities.map { .double($0) })),
            ("steps", .int(steps)), ("runs", .int(runs)), ("seed", .int(Int(seed))),
            ("reinforce", .table(ConfigTable([("learning_rate", .double(0.1)), ("baseline_decay", .double(0.9)), ("optimizer", .string("adam"))]))),
        ])
        let run = try RunDirectory.create(at: output, config: config, mode: .overwrite)
        defer { run.close() }
        let arms = probabilities.count
        let agents: [(String, (UInt64) -> any BanditAgent)] = [
            ("Thompson", { ThompsonBeta(arms: arms, seed: $0) }),
            ("REINFORCE", { REINFORCEBandit(arms: arms, learningRate: 0.1, baselineDecay: 0.9, seed: $0) }),
        ]
        let curves = agents.map { _, make in
            runBanditExperiment(runs: runs, steps: steps, seed: seed,
                                makeBandit: { BernoulliBandit(probabilities: probabilities, seed: $0) }, makeAgent: make)
        }
        for t in 0..<steps {
            var m: [(String, Double)] = []
            for (i, (name, _)) in agents.enumerated() {
                m.append(("\(slug(name))/cumulative_regret", curves[i].cumulativeRegret[t]))
                m.append(("\(slug(name))/reward", curves[i].meanReward[t]))
            }
            try run.log(step: t + 1, m)
        }
        let x = (1...steps).map(Double.init)
        var regretPlot = LinePlot(title: "Cumulative regret, \(arms)-armed Bernoulli bandit (\(runs) runs)",
                                  xLabel: "step", yLabel: "cumulative regret")
        var rewardPlot = LinePlot(title: "Reward, 20-step moving average (mean of \(runs) runs)", xLabel: "step", yLabel: "reward")
        for (i, (name, _)) in agents.enumerated() {
            regretPlot.add(.line(name, x: x, y: curves[i].cumulativeRegret,
                                 band: PlotBand(lower: curves[i].regretLow, upper: curves[i].regretHigh)))
            rewardPlot.add(.line(name, x: x, y: movingAverage(curves[i].meanReward, window: 20)))
        }
        rewardPlot.add(.horizontal(probabilities.max() ?? 0, label: "best arm"))
        try regretPlot.write(to: run.url.appendingPathComponent("regret.svg"))
        try rewardPlot.write(to: run.url.appendingPathComponent("reward.svg"))
        var results: [(String, Double)] = []
        for (i, (name, _)) in agents.enumerated() {
            results.append(("\(name) final cumulative regret", curves[i].cumulativeRegret.last ?? 0))
            results.append(("\(name) reward, last 20 steps", curves[i].meanReward.suffix(20).reduce(0, +) / 20))
        }
        return ExperimentSummary(directory: run.url, results: results, plots: ["regret.svg", "reward.svg"])
    }

    /// Sutton & Barto's 10-armed testbed: average reward and % optimal action over `steps` for
    /// greedy, ε-greedy, UCB, the gradient bandit and softmax agents, averaged over `runs`.
    public static func testbed(runs: Int = 2000, steps: Int = 1000, nonstationary: Bool = false, seed: UInt64 = 1,
                               output: URL, recordedConfig: ConfigTable? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> ExperimentSummary {
        let agents = testbedAgents()
        let config = recordedConfig ?? ConfigTable([
            ("experiment", .string("testbed")), ("runs", .int(runs)), ("steps", .int(steps)),
            ("nonstationary", .bool(nonstationary)), ("seed", .int(Int(seed))),
            ("agents", .array(agents.map { .string($0.0) })),
        ])
        let run = try RunDirectory.create(at: output, config: config, mode: .overwrite)
        defer { run.close() }
        var curves: [BanditCurves] = []
        for (i, (_, make)) in agents.enumerated() {
            curves.append(runBanditExperiment(runs: runs, steps: steps, seed: seed,
                                              makeBandit: { Testbed(nonstationary: nonstationary, seed: $0) }, makeAgent: make))
            progress?(i + 1, agents.count)
        }
        for t in 0..<steps {
            var m: [(String, Double)] = []
            for (i, (name, _)) in agents.enumerated() {
                m.append(("\(slug(name))/average_reward", curves[i].meanReward[t]))
                m.append(("\(slug(name))/optimal_action", curves[i].optimalFraction[t]))
            }
            try run.log(step: t + 1, m)
        }
        let x = (1...steps).map(Double.init)
        var rewardPlot = LinePlot(title: "10-armed testbed: average reward (\(runs) runs)", xLabel: "step", yLabel: "average reward")
        var optimalPlot = LinePlot(title: "10-armed testbed: % optimal action", xLabel: "step", yLabel: "% optimal action")
        for (i, (name, _)) in agents.enumerated() {
            let dash: LineDash = name.hasPrefix("softmax") ? .dashed : .solid
            rewardPlot.add(.line(name, x: x, y: curves[i].meanReward, dash: dash))
            optimalPlot.add(.line(name, x: x, y: curves[i].optimalFraction.map { $0 * 100 }, dash: dash))
        }
        try rewardPlot.write(to: run.url.appendingPathComponent("average_reward.svg"))
        try optimalPlot.write(to: run.url.appendingPathComponent("optimal_action.svg"))
        var bars = BarChart(title: "At step \(steps) (mean of the last 10 steps)", xLabel: "agent", yLabel: "% optimal action",
                            categories: agents.map(\.0))
        bars.add(BarSeries("% optimal", values: curves.map { $0.optimalFraction.suffix(10).reduce(0, +) * 10 }))
        try bars.write(to: run.url.appendingPathComponent("final.svg"))
        var results: [(String, Double)] = []
        for (i, (name, _)) in agents.enumerated() {
            results.append(("\(name): average reward at step \(steps)", curves[i].meanReward[steps - 1]))
            results.append(("\(name): % optimal at step \(steps)", curves[i].optimalFraction[steps - 1] * 100))
        }
        return ExperimentSummary(directory: run.url, results: results, plots: ["average_reward.svg", "optimal_action.svg", "final.svg"])
    }

    /// UCB1, KL-UCB and Thompson sampling regret on a Bernoulli bandit over `steps` (log-scale
    /// time axis) against the Lai–Robbins lower bound C·log T.
    public static func regret(probabilities: [Double] = [0.45, 0.5, 0.55, 0.6], steps: Int = 10_000, runs: Int = 100,
                              seed: UInt64 = 1, output: URL, recordedConfig: ConfigTable? = nil) throws -> ExperimentSummary {
        let arms = probabilities.count
        let agents: [(String, (UInt64) -> any BanditAgent)] = [
            ("UCB1", { UCB(arms: arms, c: 2.0.squareRoot(), seed: $0) }),
            ("KL-UCB", { KLUCB(arms: arms, seed: $0) }),
            ("Thompson", { ThompsonBeta(arms: arms, seed: $0) }),
        ]
        let config = recordedConfig ?? ConfigTable([
            ("experiment", .string("regret")), ("probabilities", .array(probabilities.map { .double($0) })),
            ("steps", .int(steps)), ("runs", .int(runs)), ("seed", .int(Int(seed))),
        ])
        let run = try RunDirectory.create(at: output, config: config, mode: .overwrite)
        defer { run.close() }
        let curves = agents.map { _, make in
            runBanditExperiment(runs: runs, steps: steps, seed: seed,
                                makeBandit: { BernoulliBandit(probabilities: probabilities, seed: $0) }, makeAgent: make)
        }
        let c = laiRobbinsConstant(probabilities: probabilities)
        // Log every step up to 100, then on a logarithmic grid.
        var logged = Set(1...Swift.min(100, steps))
        var t = 100.0
        while t < Double(steps) { logged.insert(Int(t)); t *= 1.05 }
        logged.insert(steps)
        for step in logged.sorted() {
            var m: [(String, Double)] = [("lai_robbins_bound", c * Foundation.log(Double(step)))]
            for (i, (name, _)) in agents.enumerated() { m.append(("\(slug(name))/cumulative_regret", curves[i].cumulativeRegret[step - 1])) }
            try run.log(step: step, m)
        }
        let x = (1...steps).map(Double.init)
        var plot = LinePlot(title: "Regret on Bernoulli \(probabilities) (\(runs) runs)", xLabel: "step T", yLabel: "cumulative regret", xScale: .log)
        for (i, (name, _)) in agents.enumerated() {
            plot.add(.line(name, x: x, y: curves[i].cumulativeRegret, band: PlotBand(lower: curves[i].regretLow, upper: curves[i].regretHigh, opacity: 0.12)))
        }
        plot.add(.line("Lai–Robbins C·log T", x: x, y: x.map { c * Foundation.log($0) }, color: .gray, dash: .dashed))
        try plot.write(to: run.url.appendingPathComponent("regret.svg"))
        var results: [(String, Double)] = [("Lai–Robbins constant C", c), ("C·log T at T = \(steps)", c * Foundation.log(Double(steps)))]
        for (i, (name, _)) in agents.enumerated() { results.append(("\(name) regret at T = \(steps)", curves[i].cumulativeRegret[steps - 1])) }
        return ExperimentSummary(directory: run.url, results: results, plots: ["regret.svg"])
    }
}
