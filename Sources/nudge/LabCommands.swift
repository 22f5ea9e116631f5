// `nudge bandit` and `nudge tabular`: the seeds' experiments (the Nudge library's LabExperiment),
// each writing a run directory with metrics and SVG plots.

import ArgumentParser
import Foundation
import Nudge

/// The options every bandit and tabular experiment has: `--config`/`--set`, `--seed`, `--output`.
struct ExperimentOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "Random seed (key: seed).") var seed: Int?
    @Option(help: "Run directory (key: output).") var output: String?

    /// `experiment`'s configuration with `flags` (the experiment's own) plus --seed and --output, checked.
    func resolve(_ experiment: LabExperiment, _ flags: [ConfigOptions.Flag]) throws -> ResolvedConfig {
        let c = try config.resolve(experiment.schema, flags: flags + [.init("seed", "--seed", seed.map { .int($0) }),
                                                                      .init("output", "--output", output.map { .string($0) })])
        try usageErrors { try experiment.check(c) }
        return c
    }

    /// Runs `experiment` and prints its summary.
    func run(_ experiment: LabExperiment, _ flags: [ConfigOptions.Flag]) throws {
        print(try experiment.run(config: resolve(experiment, flags)) { note("· \($0)") })
    }
}

struct BanditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandit", abstract: "Bandit experiments (writes runs/bandit/<experiment>).",
        subcommands: [ThompsonVsReinforce.self, TestbedCommand.self, RegretCommand.self])

    struct ThompsonVsReinforce: ParsableCommand {
        static let experiment = LabExperiment.thompsonVsReinforce
        static let configuration = CommandConfiguration(
            commandName: experiment.name,
            abstract: "Thompson sampling vs REINFORCE on a 5-armed Bernoulli bandit (p = 0.1…0.9, T = 500).",
            discussion: experiment.schema.discussion(examples: ["nudge bandit thompson-vs-reinforce", "nudge bandit thompson-vs-reinforce --runs 1000 --set steps=2000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Independent runs to average (key: runs).") var runs: Int?
        @Option(help: "Steps per run (key: steps).") var steps: Int?
        var flags: [ConfigOptions.Flag] { [.init("runs", "--runs", runs.map { .int($0) }), .init("steps", "--steps", steps.map { .int($0) })] }
        func validate() throws { _ = try options.resolve(Self.experiment, flags) }
        func run() throws { try options.run(Self.experiment, flags) }
    }

    struct TestbedCommand: ParsableCommand {
        static let experiment = LabExperiment.testbed
        static let configuration = CommandConfiguration(
            commandName: experiment.name, abstract: "Sutton & Barto's 10-armed testbed: greedy, ε-greedy, UCB, gradient, softmax.",
            discussion: experiment.schema.discussion(examples: ["nudge bandit testbed --runs 500", "nudge bandit testbed --nonstationary --set steps=10000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Independent problems per agent (key: runs).") var runs: Int?
        @Option(help: "Steps per run (key: steps).") var steps: Int?
        @Flag(help: "Random-walk action values (exercise 2.5; key: nonstationary).") var nonstationary = false
        var flags: [ConfigOptions.Flag] {
            [.init("runs", "--runs", runs.map { .int($0) }), .init("steps", "--steps", steps.map { .int($0) }),
             .init("nonstationary", "--nonstationary", nonstationary ? .bool(true) : nil)]
        }
        func validate() throws { _ = try options.resolve(Self.experiment, flags) }
        func run() throws { try options.run(Self.experiment, flags) }
    }

    struct RegretCommand: ParsableCommand {
        static let experiment = LabExperiment.regret
        static let configuration = CommandConfiguration(
            commandName: experiment.name, abstract: "UCB1, KL-UCB and Thompson regret against the Lai–Robbins bound.",
            discussion: experiment.schema.discussion(examples: ["nudge bandit regret", "nudge bandit regret --runs 20 --steps 100000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Independent runs to average (key: runs).") var runs: Int?
        @Option(help: "Steps per run (key: steps).") var steps: Int?
        var flags: [ConfigOptions.Flag] { [.init("runs", "--runs", runs.map { .int($0) }), .init("steps", "--steps", steps.map { .int($0) })] }
        func validate() throws { _ = try options.resolve(Self.experiment, flags) }
        func run() throws { try options.run(Self.experiment, flags) }
    }
}

struct TabularCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tabular", abstract: "Tabular experiments (writes runs/tabular/<experiment>).",
        subcommands: [GridWorldCommand.self, FrozenLakeCommand.self])

    struct GridWorldCommand: ParsableCommand {
        static let experiment = LabExperiment.gridWorld
        static let configuration = CommandConfiguration(
            commandName: experiment.name, abstract: "Q-learning on the 4x4 GridWorld: policy and value heatmap.",
            discussion: experiment.schema.discussion(examples: ["nudge tabular gridworld", "nudge tabular gridworld --episodes 2000 --seed 3"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Q-learning episodes (key: episodes).") var episodes: Int?
        var flags: [ConfigOptions.Flag] { [.init("episodes", "--episodes", episodes.map { .int($0) })] }
        func validate() throws { _ = try options.resolve(Self.experiment, flags) }
        func run() throws { try options.run(Self.experiment, flags) }
    }

    struct FrozenLakeCommand: ParsableCommand {
        static let experiment = LabExperiment.frozenLake
        static let configuration = CommandConfiguration(
            commandName: experiment.name, abstract: "FrozenLake 4x4 slippery: the optimum vs Q-learning.",
            discussion: experiment.schema.discussion(examples: ["nudge tabular frozenlake", "nudge tabular frozenlake --set episodes=50000"]))
        @OptionGroup var options: ExperimentOptions
        @Option(help: "Q-learning episodes (key: episodes).") var episodes: Int?
        @Option(name: .customLong("evaluation-episodes"), help: "Evaluation episodes (key: evaluation_episodes).") var evaluationEpisodes: Int?
        var flags: [ConfigOptions.Flag] {
            [.init("episodes", "--episodes", episodes.map { .int($0) }),
             .init("evaluation_episodes", "--evaluation-episodes", evaluationEpisodes.map { .int($0) })]
        }
        func validate() throws { _ = try options.resolve(Self.experiment, flags) }
        func run() throws { try options.run(Self.experiment, flags) }
    }
}
