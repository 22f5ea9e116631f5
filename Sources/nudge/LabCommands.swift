// `nudge bandit` and `nudge tabular`: the seeds' experiments, each writing a run directory with
// metrics and SVG plots.

import ArgumentParser
import Foundation
import Nudge

/// Prints an experiment's summary.
func report(_ summary: ExperimentSummary) {
    for (name, value) in summary.results { print(String(format: "  %@: %.4f", name, value)) }
    print("Run directory: \(summary.directory.path) (plots: \(summary.plots.joined(separator: ", ")))")
}

/// The options every bandit and tabular experiment has: `--config`/`--set`, `--seed`, `--output`.
struct ExperimentOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "Random seed (key: seed).") var seed: Int?
    @Option(help: "Run directory (key: output).") var output: String?

    /// The experiment's schema: its name (fixed), `fields`, then seed (default 1) and output
    /// (default runs/<group>/<experiment>). The run's config.toml holds exactly these keys, so
    /// `--config` reads it back.
    static func schema(_ group: String, _ experiment: String, _ fields: [ConfigField]) -> ConfigSchema {
        ConfigSchema([.choice("experiment", [experiment], default: experiment, help: "The experiment (fixed; recorded in config.toml).")]
                     + fields + [.int("seed", 1, min: 0, help: "Random seed."),
                                 .string("output", "runs/\(group)/\(experiment)", help: "Run directory.")])
    }

    /// Bernoulli arm probabilities: at least two, each in [0, 1].
    static func probabilities(_ defaults: [Double]) -> ConfigField {
        .array("probabilities", of: .double, defaults.map { .double($0) }, help: "Success probability of each Bernoulli arm (at least 2, each in [0, 1]).")
    }

    /// Resolves `schema` with `flags` (the experiment's own) plus --seed and --output.
    func resolve(_ schema: ConfigSchema, _ flags: [ConfigOptions.Flag]) throws -> ResolvedConfig {
        try config.resolve(schema, flags: flags + [.init("seed", "--seed", seed.map { .int($0) }),
                                                   .init("output", "--output", output.map { .string($0) })])
    }
}

extension ResolvedConfig {
    /// The `probabilities` key, checked.
    func armProbabilities() throws -> [Double] {
        let values = array("probabilities").compactMap { value -> Double? in
            switch value {
            case .double(let d): d
            case .int(let i): Double(i)
            default: nil
            }
        }
        guard values.count >= 2, values.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
            throw ValidationError("probabilities: expected at least 2 numbers in [0, 1], got \(values)")
        }
        return values
    }

    var seed: UInt64 { UInt64(int("seed")) }
    var outputURL: URL { URL(fileURLWithPath: string("output")) }
}

struct BanditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandit", abstract: "Bandit experiments (writes runs/bandit/<experiment>).",
        subcommands: [ThompsonVsReinforce.self, TestbedCommand.self, RegretCommand.self])

    struct ThompsonVsReinforce: ParsableCommand {
        static let schema = ExperimentOptions.schema("bandit", "thompson-vs-reinforce", [
            ExperimentOptions.probabilities([0.1, 0.3, 0.5, 0.7, 0.9]),
            .int("runs", 200, min: 1, help: "Independent runs to average."),
            .int("steps", 500, min: 1, help: "Steps per run."),
        ])
        static let configuration = CommandConfiguration(
            commandName: "thompson-vs-reinforce",
            abstract: "Thompson sampling vs REINFORCE on a 5-armed Bernoulli bandit (p = 0.1…0.9, T = 500).",
            discussion: schema.discussion(examples: ["nudge bandit thompson-vs-reinforce", "nudge bandit thompson-vs-reinforce --runs 1000 --set steps=2000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Independent runs to average (key: runs).") var runs: Int?
        @Option(help: "Steps per run (key: steps).") var steps: Int?
        func resolve() throws -> ResolvedConfig {
            try options.resolve(Self.schema, [.init("runs", "--runs", runs.map { .int($0) }), .init("steps", "--steps", steps.map { .int($0) })])
        }
        func validate() throws { _ = try resolve().armProbabilities() }
        func run() throws {
            let c = try resolve()
            report(try BanditLab.thompsonVsReinforce(probabilities: try c.armProbabilities(), steps: c.int("steps"), runs: c.int("runs"),
                                                     seed: c.seed, output: c.outputURL, recordedConfig: c.asConfigTable()))
        }
    }

    struct TestbedCommand: ParsableCommand {
        static let schema = ExperimentOptions.schema("bandit", "testbed", [
            .int("runs", 2000, min: 1, help: "Independent bandit problems per agent."),
            .int("steps", 1000, min: 1, help: "Steps per run."),
            .bool("nonstationary", false, help: "Random-walk action values (exercise 2.5)."),
        ])
        static let configuration = CommandConfiguration(
            commandName: "testbed", abstract: "Sutton & Barto's 10-armed testbed: greedy, ε-greedy, UCB, gradient, softmax.",
            discussion: schema.discussion(examples: ["nudge bandit testbed --runs 500", "nudge bandit testbed --nonstationary --set steps=10000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Independent problems per agent (key: runs).") var runs: Int?
        @Option(help: "Steps per run (key: steps).") var steps: Int?
        @Flag(help: "Random-walk action values (exercise 2.5; key: nonstationary).") var nonstationary = false
        func resolve() throws -> ResolvedConfig {
            try options.resolve(Self.schema, [.init("runs", "--runs", runs.map { .int($0) }), .init("steps", "--steps", steps.map { .int($0) }),
                                              .init("nonstationary", "--nonstationary", nonstationary ? .bool(true) : nil)])
        }
        func validate() throws { _ = try resolve() }
        func run() throws {
            let c = try resolve()
            let summary = try BanditLab.testbed(runs: c.int("runs"), steps: c.int("steps"), nonstationary: c.bool("nonstationary"), seed: c.seed,
                                                output: c.outputURL, recordedConfig: c.asConfigTable()) { done, total in note("· agent \(done)/\(total)") }
            report(summary)
        }
    }

    struct RegretCommand: ParsableCommand {
        static let schema = ExperimentOptions.schema("bandit", "regret", [
            ExperimentOptions.probabilities([0.45, 0.5, 0.55, 0.6]),
            .int("runs", 100, min: 1, help: "Independent runs to average."),
            .int("steps", 10_000, min: 1, help: "Steps per run."),
        ])
        static let configuration = CommandConfiguration(
            commandName: "regret", abstract: "UCB1, KL-UCB and Thompson regret against the Lai–Robbins bound.",
            discussion: schema.discussion(examples: ["nudge bandit regret", "nudge bandit regret --runs 20 --steps 100000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Independent runs to average (key: runs).") var runs: Int?
        @Option(help: "Steps per run (key: steps).") var steps: Int?
        func resolve() throws -> ResolvedConfig {
            try options.resolve(Self.schema, [.init("runs", "--runs", runs.map { .int($0) }), .init("steps", "--steps", steps.map { .int($0) })])
        }
        func validate() throws { _ = try resolve().armProbabilities() }
        func run() throws {
            let c = try resolve()
            report(try BanditLab.regret(probabilities: try c.armProbabilities(), steps: c.int("steps"), runs: c.int("runs"), seed: c.seed,
                                        output: c.outputURL, recordedConfig: c.asConfigTable()))
        }
    }
}

struct TabularCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tabular", abstract: "Tabular experiments (writes runs/tabular/<experiment>).",
        subcommands: [GridWorldCommand.self, FrozenLakeCommand.self])

    struct GridWorldCommand: ParsableCommand {
        static let schema = ExperimentOptions.schema("tabular", "gridworld", [.int("episodes", 500, min: 1, help: "Q-learning episodes.")])
        static let configuration = CommandConfiguration(
            commandName: "gridworld", abstract: "Q-learning on the 4x4 GridWorld: policy and value heatmap.",
            discussion: schema.discussion(examples: ["nudge tabular gridworld", "nudge tabular gridworld --episodes 2000 --seed 3"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Q-learning episodes (key: episodes).") var episodes: Int?
        func resolve() throws -> ResolvedConfig { try options.resolve(Self.schema, [.init("episodes", "--episodes", episodes.map { .int($0) })]) }
        func validate() throws { _ = try resolve() }
        func run() throws {
            let c = try resolve()
            report(try TabularLab.gridWorld(episodes: c.int("episodes"), seed: c.seed, output: c.outputURL, recordedConfig: c.asConfigTable()))
        }
    }

    struct FrozenLakeCommand: ParsableCommand {
        static let schema = ExperimentOptions.schema("tabular", "frozenlake", [
            .int("episodes", 20_000, min: 1, help: "Q-learning episodes."),
            .int("evaluation_episodes", 10_000, min: 1, help: "Episodes to evaluate each policy."),
        ])
        static let configuration = CommandConfiguration(
            commandName: "frozenlake", abstract: "FrozenLake 4x4 slippery: the optimum vs Q-learning.",
            discussion: schema.discussion(examples: ["nudge tabular frozenlake", "nudge tabular frozenlake --set episodes=50000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Q-learning episodes (key: episodes).") var episodes: Int?
        @Option(name: .customLong("evaluation-episodes"), help: "Evaluation episodes (key: evaluation_episodes).") var evaluationEpisodes: Int?
        func resolve() throws -> ResolvedConfig {
            try options.resolve(Self.schema, [.init("episodes", "--episodes", episodes.map { .int($0) }),
                                              .init("evaluation_episodes", "--evaluation-episodes", evaluationEpisodes.map { .int($0) })])
        }
        func validate() throws { _ = try resolve() }
        func run() throws {
            let c = try resolve()
            report(try TabularLab.frozenLake(episodes: c.int("episodes"), evaluationEpisodes: c.int("evaluation_episodes"), seed: c.seed,
                                             output: c.outputURL, recordedConfig: c.asConfigTable()))
        }
    }
}
