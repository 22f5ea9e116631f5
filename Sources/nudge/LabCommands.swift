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

struct BanditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandit", abstract: "Bandit experiments (writes runs/bandit/<experiment>).",
        subcommands: [ThompsonVsReinforce.self, TestbedCommand.self, RegretCommand.self])

    struct ThompsonVsReinforce: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "thompson-vs-reinforce",
            abstract: "Thompson sampling vs REINFORCE on a 5-armed Bernoulli bandit (p = 0.1…0.9, T = 500).")
        @Option(help: "Independent runs to average.") var runs = 200
        @Option(help: "Steps per run.") var steps = 500
        @Option var seed: UInt64 = 1
        @Option(help: "Run directory.") var output = "runs/bandit/thompson-vs-reinforce"
        func run() throws {
            report(try BanditLab.thompsonVsReinforce(steps: steps, runs: runs, seed: seed, output: URL(fileURLWithPath: output)))
        }
    }

    struct TestbedCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "testbed", abstract: "Sutton & Barto's 10-armed testbed: greedy, ε-greedy, UCB, gradient, softmax.")
        @Option var runs = 2000
        @Option var steps = 1000
        @Flag(help: "Random-walk action values (exercise 2.5).") var nonstationary = false
        @Option var seed: UInt64 = 1
        @Option var output = "runs/bandit/testbed"
        func run() throws {
            let summary = try BanditLab.testbed(runs: runs, steps: steps, nonstationary: nonstationary, seed: seed,
                                                output: URL(fileURLWithPath: output)) { done, total in note("· agent \(done)/\(total)") }
            report(summary)
        }
    }

    struct RegretCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "regret", abstract: "UCB1, KL-UCB and Thompson regret against the Lai–Robbins bound.")
        @Option var runs = 100
        @Option var steps = 10_000
        @Option var seed: UInt64 = 1
        @Option var output = "runs/bandit/regret"
        func run() throws {
            report(try BanditLab.regret(steps: steps, runs: runs, seed: seed, output: URL(fileURLWithPath: output)))
        }
    }
}

struct TabularCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tabular", abstract: "Tabular experiments (writes runs/tabular/<experiment>).",
        subcommands: [GridWorldCommand.self, FrozenLakeCommand.self])

    struct GridWorldCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "gridworld", abstract: "Q-learning on the 4x4 GridWorld: policy and value heatmap.")
        @Option var episodes = 500
        @Option var seed: UInt64 = 1
        @Option var output = "runs/tabular/gridworld"
        func run() throws { report(try TabularLab.gridWorld(episodes: episodes, seed: seed, output: URL(fileURLWithPath: output))) }
    }

    struct FrozenLakeCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "frozenlake", abstract: "FrozenLake 4x4 slippery: the optimum vs Q-learning.")
        @Option var episodes = 20_000
        @Option(name: .customLong("evaluation-episodes")) var evaluationEpisodes = 10_000
        @Option var seed: UInt64 = 1
        @Option var output = "runs/tabular/frozenlake"
        func run() throws {
            report(try TabularLab.frozenLake(episodes: episodes, evaluationEpisodes: evaluationEpisodes, seed: seed, output: URL(fileURLWithPath: output)))
        }
    }
}
