// The bandit and tabular experiments as configured runs (`nudge bandit …`, `nudge tabular …`):
// each has a schema whose keys its run's config.toml records (so `--config` reads one back), and
// runs from a configuration resolved against it.

import Foundation
import NudgeAlign
import NudgeConfig

/// A bandit or tabular experiment run from a `ResolvedConfig`.
public struct LabExperiment: Sendable {
    /// The lab: "bandit" or "tabular".
    public let lab: String
    /// The experiment's name (its `experiment` key), e.g. "thompson-vs-reinforce".
    public let name: String
    /// Its keys: experiment (fixed), its own, then seed (default 1) and output (default runs/<lab>/<name>).
    public let schema: ConfigSchema
    private let body: @Sendable (ResolvedConfig, _ progress: @escaping (String) -> Void) throws -> ExperimentSummary

    init(lab: String, name: String, fields: [ConfigField],
         body: @escaping @Sendable (ResolvedConfig, _ progress: @escaping (String) -> Void) throws -> ExperimentSummary) {
        self.lab = lab
        self.name = name
        schema = ConfigSchema([.choice("experiment", [name], default: name, help: "The experiment (fixed; recorded in config.toml).")]
                              + fields + [.int("seed", 1, min: 0, help: "Random seed."),
                                          .string("output", "runs/\(lab)/\(name)", help: "Run directory.")])
        self.body = body
    }

    /// Checks what the schema cannot: the arm probabilities, where the experiment has them.
    ///
    /// - Throws: `RunSetupError` naming the key.
    public func check(_ config: ResolvedConfig) throws {
        if schema.field("probabilities") != nil { _ = try config.armProbabilities() }
    }

    /// Runs the experiment with `config` (resolved against `schema`), writing its run directory;
    /// `progress` hears of each finished part where the experiment has several (e.g. "agent 2/5").
    public func run(config: ResolvedConfig, progress: @escaping (String) -> Void = { _ in }) throws -> ExperimentSummary {
        try check(config)
        return try body(config, progress)
    }
}

extension LabExperiment {
    /// Thompson sampling vs REINFORCE on a Bernoulli bandit (`BanditLab.thompsonVsReinforce`).
    public static let thompsonVsReinforce = LabExperiment(lab: "bandit", name: "thompson-vs-reinforce", fields: [
        probabilities([0.1, 0.3, 0.5, 0.7, 0.9]),
        .int("runs", 200, min: 1, help: "Independent runs to average."),
        .int("steps", 500, min: 1, help: "Steps per run."),
    ]) { c, _ in
        try BanditLab.thompsonVsReinforce(probabilities: try c.armProbabilities(), steps: c.int("steps"), runs: c.int("runs"),
                                          seed: c.seed, output: c.outputURL, recordedConfig: c.asConfigTable())
    }

    /// Sutton & Barto's 10-armed testbed (`BanditLab.testbed`).
    public static let testbed = LabExperiment(lab: "bandit", name: "testbed", fields: [
        .int("runs", 2000, min: 1, help: "Independent bandit problems per agent."),
        .int("steps", 1000, min: 1, help: "Steps per run."),
        .bool("nonstationary", false, help: "Random-walk action values (exercise 2.5)."),
    ]) { c, progress in
        try BanditLab.testbed(runs: c.int("runs"), steps: c.int("steps"), nonstationary: c.bool("nonstationary"), seed: c.seed,
                              output: c.outputURL, recordedConfig: c.asConfigTable()) { done, total in progress("agent \(done)/\(total)") }
    }

    /// UCB1, KL-UCB and Thompson regret against the Lai–Robbins bound (`BanditLab.regret`).
    public static let regret = LabExperiment(lab: "bandit", name: "regret", fields: [
        probabilities([0.45, 0.5, 0.55, 0.6]),
        .int("runs", 100, min: 1, help: "Independent runs to average."),
        .int("steps", 10_000, min: 1, help: "Steps per run."),
    ]) { c, _ in
        try BanditLab.regret(probabilities: try c.armProbabilities(), steps: c.int("steps"), runs: c.int("runs"), seed: c.seed,
                             output: c.outputURL, recordedConfig: c.asConfigTable())
    }

    /// Q-learning on the 4x4 GridWorld (`TabularLab.gridWorld`).
    public static let gridWorld = LabExperiment(lab: "tabular", name: "gridworld", fields: [
        .int("episodes", 500, min: 1, help: "Q-learning episodes."),
    ]) { c, _ in
        try TabularLab.gridWorld(episodes: c.int("episodes"), seed: c.seed, output: c.outputURL, recordedConfig: c.asConfigTable())
    }

    /// FrozenLake 4x4 slippery: the optimum vs Q-learning (`TabularLab.frozenLake`).
    public static let frozenLake = LabExperiment(lab: "tabular", name: "frozenlake", fields: [
        .int("episodes", 20_000, min: 1, help: "Q-learning episodes."),
        .int("evaluation_episodes", 10_000, min: 1, help: "Episodes to evaluate each policy."),
    ]) { c, _ in
        try TabularLab.frozenLake(episodes: c.int("episodes"), evaluationEpisodes: c.int("evaluation_episodes"), seed: c.seed,
                                  output: c.outputURL, recordedConfig: c.asConfigTable())
    }

    /// Bernoulli arm probabilities: at least two, each in [0, 1].
    static func probabilities(_ defaults: [Double]) -> ConfigField {
        .array("probabilities", of: .double, defaults.map { .double($0) }, help: "Success probability of each Bernoulli arm (at least 2, each in [0, 1]).")
    }
}

extension ExperimentSummary: CustomStringConvertible {
    /// The key numbers, one per line, then the run directory and its plots.
    public var description: String {
        (results.map { name, value in String(format: "  %@: %.4f", name, value) }
         + ["Run directory: \(directory.path) (plots: \(plots.joined(separator: ", ")))"]).joined(separator: "\n")
    }
}

extension ResolvedConfig {
    /// The `probabilities` key, checked: at least 2 numbers, each in [0, 1].
    func armProbabilities() throws -> [Double] {
        let values = array("probabilities").compactMap { value -> Double? in
            switch value {
            case .double(let d): d
            case .int(let i): Double(i)
            default: nil
            }
        }
        guard values.count >= 2, values.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
            throw RunSetupError("probabilities: expected at least 2 numbers in [0, 1], got \(values)")
        }
        return values
    }

    fileprivate var seed: UInt64 { UInt64(int("seed")) }
    fileprivate var outputURL: URL { URL(fileURLWithPath: string("output")) }
}
