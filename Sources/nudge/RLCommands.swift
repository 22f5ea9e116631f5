// `nudge rl train <algo>` and `nudge rl eval`: deep RL runs with CleanRL's metric names, written to
// a run directory (config.toml, metrics.jsonl/csv, checkpoints/latest and best, returns.svg).

import ArgumentParser
import Foundation
import Nudge

struct RL: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deep RL: train and evaluate agents (PPO, A2C, DQN, SAC, REINFORCE, actor-critic).",
        subcommands: [Train.self, Evaluate.self, Variance.self])

    enum Algorithm: String, ExpressibleByArgument, CaseIterable {
        case ppo, a2c, dqn, sac, reinforce
        case actorCritic = "actor-critic"
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train an agent.",
            discussion: (try? RLRunner.schema(algorithm: "ppo", environmentID: "CartPole-v1"))?.discussion(examples: [
                "nudge rl train ppo --env CartPole-v1 --seed 1",
                "nudge rl train ppo --env Pendulum-v1 --total-timesteps 200000",
                "nudge rl train dqn --env CartPole-v1 --set learning_rate=1e-3 --set hidden_sizes=[128,128]",
                "nudge rl train ppo --config runs/rl/ppo-CartPole-v1-1/config.toml --seed 2",
                "nudge rl train ppo --resume runs/rl/ppo-CartPole-v1-1 --total-timesteps 1000000",
            ]).replacingOccurrences(of: "Config keys (key = default (type)):",
                                    with: "Config keys of ppo on CartPole-v1 (CleanRL's names; each algorithm has its own, listed in its config.toml):")
                ?? "")
        @Argument(help: "Algorithm: \(Algorithm.allCases.map(\.rawValue).joined(separator: ", ")).") var algorithm: Algorithm
        @OptionGroup var config: ConfigOptions
        @Option(help: "Environment id (see `nudge env list`; key: env_id).") var env: String?
        @Option(help: "Seed (key: seed).") var seed: Int?
        @Option(name: .customLong("total-timesteps"), help: "Environment steps (key: total_timesteps; default: the algorithm's reference value).")
        var totalTimesteps: Int?
        @Option(help: "Run directory (default runs/rl/<algo>-<env>-<seed>).") var output: String?
        @Option(help: ArgumentHelp("Continue the run in this directory from its checkpoints/latest; only --total-timesteps may change.",
                                   valueName: "run-dir"))
        var resume: String?

        /// The environment: --env, else the one the run's or --config's file names, else CartPole-v1.
        func environmentID() -> String {
            let recorded = resume.map { URL(fileURLWithPath: $0).appendingPathComponent("config.toml").path }
            return env ?? RLRunner.environmentID(configFile: recorded ?? config.configFile)
        }

        func resolve() throws -> ResolvedConfig {
            let id = environmentID()
            guard Registry.ids.contains(id) else {
                throw ValidationError("env_id: unknown environment '\(id)'; known: \(Registry.ids.joined(separator: ", "))")
            }
            let schema = try RLRunner.schema(algorithm: algorithm.rawValue, environmentID: id)
            if let resume {
                let given = [(env, "--env"), (seed.map(String.init), "--seed"), (output, "--output")].compactMap { $0.0 == nil ? nil : $0.1 }
                return try config.resolveResume(schema, runDirectory: resume, extendable: "total_timesteps",
                                                extended: .init("total_timesteps", "--total-timesteps", totalTimesteps.map { .int($0) }),
                                                otherFlags: given, outputKey: nil)
            }
            return try config.resolve(schema, flags: [
                .init("env_id", "--env", env.map { .string($0) }),
                .init("seed", "--seed", seed.map { .int($0) }),
                .init("total_timesteps", "--total-timesteps", totalTimesteps.map { .int($0) }),
            ])
        }

        /// Config problems are reported here, before `run`, so that they read as usage errors.
        func validate() throws { _ = try resolve() }

        func run() throws {
            let resolved = try resolve()
            let dir = URL(fileURLWithPath: resume ?? output ?? "runs/rl/\(algorithm.rawValue)-\(resolved.string("env_id"))-\(resolved.int("seed"))")
            let (summary, interrupted) = try RLRunner.trainUntilInterrupted(resolved, directory: dir, resume: resume != nil)
            for (k, v) in summary { print(String(format: "  %@: %.4g", k, v)) }
            print("Run directory: \(dir.path)")
            // 128 + SIGINT, so a scheduler tells an interrupted run from a finished one.
            if interrupted { throw ExitCode(130) }
        }
    }

    struct Variance: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the spread of REINFORCE, REINFORCE-with-baseline and actor-critic gradient estimates.")
        @Option var env = "CartPole-v1"
        @Option(name: .customLong("warmup-steps")) var warmupSteps = 20_000
        @Option var episodes = 200
        @Option var seed: UInt64 = 1
        func run() throws {
            let stats = try PolicyGradient.varianceStudy(environmentID: env, warmupSteps: warmupSteps, episodes: episodes, seed: seed)
            print(PolicyGradient.varianceTable(stats, episodes: episodes, warmupSteps: warmupSteps))
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval", abstract: "Evaluate a trained agent's deterministic policy.")
        @Argument(help: "Run directory written by `nudge rl train`.") var directory: String
        @Option var episodes = 10
        @Option var seed: UInt64 = 100
        @Flag(help: "Evaluate checkpoints/best (the agent with the best evaluation during training) instead of checkpoints/latest.")
        var best = false
        func run() throws {
            let returns = try RLRunner.evaluate(directory: URL(fileURLWithPath: directory), episodes: episodes, seed: seed, best: best)
            print(RLRunner.describeReturns(returns))
        }
    }
}
