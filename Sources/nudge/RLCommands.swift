// `nudge rl train <algo>` and `nudge rl eval`: deep RL runs with CleanRL's metric names, written to
// a run directory (config.toml, metrics.jsonl/csv, checkpoints/latest, returns.svg).

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
            discussion: """
            Examples:
              nudge rl train ppo --env CartPole-v1 --seed 1
              nudge rl train ppo --env Pendulum-v1 --total-timesteps 200000
              nudge rl train dqn --env CartPole-v1 --total-timesteps 100000
            """)
        @Argument(help: "Algorithm: \(Algorithm.allCases.map(\.rawValue).joined(separator: ", ")).") var algorithm: Algorithm
        @Option(help: "Environment id (see `nudge env list`).") var env = "CartPole-v1"
        @Option var seed: UInt64 = 1
        @Option(name: .customLong("total-timesteps"), help: "Environment steps (default: the algorithm's reference value).") var totalTimesteps: Int?
        @Option(help: "Run directory (default runs/rl/<algo>-<env>-<seed>).") var output: String?

        func run() throws {
            let dir = URL(fileURLWithPath: output ?? "runs/rl/\(algorithm.rawValue)-\(env)-\(seed)")
            let summary = try RLRunner.train(algorithm: algorithm.rawValue, environmentID: env, seed: seed,
                                             totalTimesteps: totalTimesteps, directory: dir)
            for (k, v) in summary { print(String(format: "  %@: %.4g", k, v)) }
            print("Run directory: \(dir.path)")
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
            print("Per-episode policy-gradient norm at one policy (\(episodes) episodes, after \(warmupSteps) actor-critic steps):")
            for s in stats {
                print(String(format: "  %-26@ mean %8.3f  variance %10.3f  std/mean %.3f", s.name as NSString, s.mean, s.variance,
                             s.variance.squareRoot() / s.mean))
            }
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval", abstract: "Evaluate a trained agent's deterministic policy.")
        @Argument(help: "Run directory written by `nudge rl train`.") var directory: String
        @Option var episodes = 10
        @Option var seed: UInt64 = 100
        func run() throws {
            let returns = try RLRunner.evaluate(directory: URL(fileURLWithPath: directory), episodes: episodes, seed: seed)
            let mean = returns.reduce(0, +) / Double(returns.count)
            print(String(format: "mean return over %d episodes: %.2f (min %.2f, max %.2f)", returns.count, mean,
                         returns.min() ?? 0, returns.max() ?? 0))
        }
    }
}
