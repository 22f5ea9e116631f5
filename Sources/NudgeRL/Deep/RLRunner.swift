// Runs a deep-RL algorithm into a run directory (config, CleanRL-named metrics, checkpoint, a
// returns plot) and evaluates a saved run. The CLI's `nudge rl` is a thin layer over this.

import Foundation
import NudgeNN
import NudgeReport
import NudgeTensor

/// Training and evaluation of saved runs, by algorithm name.
public enum RLRunner {
    /// Trains `algorithm` ("ppo", …) on `environmentID`; returns key results.
    public static func train(algorithm: String, environmentID: String, seed: UInt64, totalTimesteps: Int?,
                             directory: URL, log: (String) -> Void = { _ in }) throws -> [(String, Double)] {
        let probe = try Registry.make(environmentID)
        let continuous: Bool
        if case .box = probe.actionSpace { continuous = true } else { continuous = false }
        switch algorithm {
        case "ppo":
            var config = continuous ? PPOConfig.continuous : PPOConfig()
            config.seed = seed
            if let totalTimesteps { config.totalTimesteps = totalTimesteps }
            let table = ConfigTable([
                ("algorithm", .string("ppo")), ("env_id", .string(environmentID)), ("seed", .int(Int(seed))),
                ("total_timesteps", .int(config.totalTimesteps)), ("learning_rate", .double(Double(config.learningRate))),
                ("num_envs", .int(config.numEnvs)), ("num_steps", .int(config.numSteps)), ("anneal_lr", .bool(config.annealLearningRate)),
                ("gamma", .double(Double(config.gamma))), ("gae_lambda", .double(Double(config.gaeLambda))),
                ("num_minibatches", .int(config.numMinibatches)), ("update_epochs", .int(config.updateEpochs)),
                ("norm_adv", .bool(config.normalizeAdvantages)), ("clip_coef", .double(Double(config.clipCoefficient))),
                ("clip_vloss", .bool(config.clipValueLoss)), ("ent_coef", .double(Double(config.entropyCoefficient))),
                ("vf_coef", .double(Double(config.valueCoefficient))), ("max_grad_norm", .double(Double(config.maxGradNorm))),
                ("bootstrap_truncation", .bool(config.bootstrapTruncation)),
                ("normalize_observations", .bool(config.normalizeObservations)), ("normalize_rewards", .bool(config.normalizeRewards)),
            ])
            let run = try RunDirectory.create(at: directory, config: table, mode: .overwrite)
            defer { run.close() }
            let progress = ProgressReporter(total: config.totalTimesteps, label: "ppo \(environmentID)")
            var lastReturn = 0.0
            let (agent, result) = try PPO.train(environmentID: environmentID, config: config) { step, metrics in
                try? run.log(step: step, metrics)
                if let r = metrics.first(where: { $0.0 == "charts/episodic_return" }) { lastReturn = r.1 }
                progress.update(completed: step, metrics: [("return", lastReturn)])
            }
            progress.finish()
            try Checkpoint.save(model: agent, optimizer: nil, step: result.globalSteps, to: run.checkpointURL(name: "latest"),
                                metadata: ["algorithm": "ppo", "env_id": environmentID, "hidden": "64,64",
                                           "normalize_observations": String(config.normalizeObservations)])
            try plotReturns(result.episodes, title: "PPO on \(environmentID) (seed \(seed))", to: run.url.appendingPathComponent("returns.svg"))
            return summary(result)
        default:
            throw EnvironmentError.invalidArgument("unknown algorithm '\(algorithm)'")
        }
    }

    static func summary(_ r: TrainingResult) -> [(String, Double)] {
        var out: [(String, Double)] = [("episodes", Double(r.episodes.count)), ("wall time (s)", r.wallTime),
                                       ("env steps/s", r.stepsPerSecond)]
        if let m = recentMeanReturn(r.episodes) { out.append(("mean return, last 100 episodes", m)) }
        return out
    }

    /// Episode returns against global steps with a 20-episode moving average.
    public static func plotReturns(_ episodes: [EpisodeRecord], title: String, to url: URL) throws {
        var plot = LinePlot(title: title, xLabel: "environment steps", yLabel: "episodic return")
        plot.add(.line("episodic return", x: episodes.map { Double($0.globalStep) }, y: episodes.map(\.episodeReturn), smoothing: 20))
        try plot.write(to: url)
    }

    /// Evaluates the deterministic policy saved in a run directory.
    public static func evaluate(directory: URL, episodes: Int, seed: UInt64) throws -> [Double] {
        let config = try String(contentsOf: directory.appendingPathComponent("config.toml"), encoding: .utf8)
        func value(_ key: String) -> String? {
            config.split(separator: "\n").first { $0.hasPrefix("\(key) = ") }.map { String($0.dropFirst(key.count + 3)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        guard let algorithm = value("algorithm"), let envID = value("env_id") else {
            throw CheckpointError.invalid(path: directory.path, reason: "config.toml has no algorithm or env_id")
        }
        let env = try Registry.make(envID)
        switch algorithm {
        case "ppo":
            let agent = PPOAgent(observationSize: env.observationSpace.flatCount, actionSpace: env.actionSpace,
                                 normalizeObservations: value("normalize_observations") == "true", seed: 0)
            try Checkpoint.restore(model: agent, optimizer: nil, from: directory.appendingPathComponent("checkpoints/latest"))
            return try NudgeRL.evaluate(env: env, episodes: episodes, seed: seed) { agent.deterministicAction($0) }
        default:
            throw CheckpointError.invalid(path: directory.path, reason: "unknown algorithm '\(algorithm)'")
        }
    }
}
