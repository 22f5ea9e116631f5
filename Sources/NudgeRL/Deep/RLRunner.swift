// Runs a deep-RL algorithm into a run directory (config, CleanRL-named metrics, checkpoint, a
// returns plot) and evaluates a saved run. The CLI's `nudge rl` is a thin layer over this.

import Foundation
import NudgeNN
import NudgeReport
import NudgeTensor

/// What every deep-RL config shares: a seed and a step budget.
public protocol DeepRLConfig: Sendable {
    var seed: UInt64 { get set }
    var totalTimesteps: Int { get set }
}

extension PPOConfig: DeepRLConfig {}
extension DQNConfig: DeepRLConfig {}
extension A2CConfig: DeepRLConfig {}
extension SACConfig: DeepRLConfig {}
extension PolicyGradientConfig: DeepRLConfig {}

/// Training and evaluation of saved runs, by algorithm name.
public enum RLRunner {
    /// Trains `algorithm` ("ppo", "dqn", …) on `environmentID`; returns key results.
    public static func train(algorithm: String, environmentID: String, seed: UInt64, totalTimesteps: Int?,
                             directory: URL) throws -> [(String, Double)] {
        let probe = try Registry.make(environmentID)
        let continuous: Bool
        if case .box = probe.actionSpace { continuous = true } else { continuous = false }
        var table = ConfigTable([("algorithm", .string(algorithm)), ("env_id", .string(environmentID)), ("seed", .int(Int(seed)))])
        let body: (@escaping MetricsCallback) throws -> (Module, TrainingResult, [String: String])
        let total: Int
        /// Applies the run's seed and budget to a config and records it in config.toml.
        func prepare<C: DeepRLConfig>(_ defaults: C) -> C {
            var config = defaults
            config.seed = seed
            if let totalTimesteps { config.totalTimesteps = totalTimesteps }
            for (k, v) in describe(config) { table[k] = v }
            return config
        }
        switch algorithm {
        case "ppo":
            let config = prepare(continuous ? PPOConfig.continuous : PPOConfig())
            total = config.totalTimesteps
            body = { callback in
                let (agent, result) = try PPO.train(environmentID: environmentID, config: config, onMetrics: callback)
                return (agent, result, ["normalize_observations": String(config.normalizeObservations)])
            }
        case "dqn":
            let config = prepare(DQNConfig())
            total = config.totalTimesteps
            body = { callback in
                let (q, result) = try DQN.train(environmentID: environmentID, config: config, onMetrics: callback)
                return (q, result, [:])
            }
        case "a2c":
            let config = prepare(A2CConfig())
            total = config.totalTimesteps
            body = { callback in
                let (agent, result) = try A2C.train(environmentID: environmentID, config: config, onMetrics: callback)
                return (agent, result, ["normalize_observations": "false"])
            }
        case "sac":
            let config = prepare(SACConfig())
            total = config.totalTimesteps
            body = { callback in
                let (actor, result) = try SAC.train(environmentID: environmentID, config: config, onMetrics: callback)
                return (actor, result, [:])
            }
        case "reinforce", "actor-critic":
            let config = prepare(PolicyGradientConfig())
            total = config.totalTimesteps
            body = { callback in
                let (agent, result) = algorithm == "reinforce"
                    ? try PolicyGradient.reinforce(environmentID: environmentID, config: config, onMetrics: callback)
                    : try PolicyGradient.actorCritic(environmentID: environmentID, config: config, onMetrics: callback)
                return (agent, result, ["normalize_observations": "false"])
            }
        default:
            throw EnvironmentError.invalidArgument("unknown algorithm '\(algorithm)'; known: ppo, a2c, dqn, sac, reinforce, actor-critic")
        }
        let run = try RunDirectory.create(at: directory, config: table, mode: .overwrite)
        defer { run.close() }
        let progress = ProgressReporter(total: total, label: "\(algorithm) \(environmentID)")
        var lastReturn = 0.0
        let (model, result, metadata) = try body { step, metrics in
            try? run.log(step: step, metrics)
            if let r = metrics.first(where: { $0.0 == "charts/episodic_return" }) { lastReturn = r.1 }
            progress.update(completed: step, metrics: [("return", lastReturn)])
        }
        progress.finish()
        try Checkpoint.save(model: model, optimizer: nil, step: result.globalSteps, to: run.checkpointURL(name: "latest"),
                            metadata: metadata.merging(["algorithm": algorithm, "env_id": environmentID]) { a, _ in a })
        try plotReturns(result.episodes, title: "\(algorithm.uppercased()) on \(environmentID) (seed \(seed))",
                        to: run.url.appendingPathComponent("returns.svg"))
        return summary(result)
    }

    /// Every stored property of a config as TOML values (via reflection, snake_case keys).
    static func describe(_ config: Any) -> [(String, ConfigValue)] {
        Mirror(reflecting: config).children.compactMap { child in
            guard let label = child.label else { return nil }
            let key = label.reduce(into: "") { out, ch in
                if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
            }
            switch child.value {
            case let v as Int: return (key, .int(v))
            case let v as UInt64: return (key, .int(Int(v)))
            case let v as Float: return (key, .double(Double(v)))
            case let v as Double: return (key, .double(v))
            case let v as Bool: return (key, .bool(v))
            case let v as [Int]: return (key, .array(v.map { .int($0) }))
            case let v as Float?: return v.map { (key, .double(Double($0))) }
            default: return nil
            }
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
        case "dqn":
            guard case .discrete(let n, _) = env.actionSpace else { throw EnvironmentError.invalidArgument("DQN needs discrete actions") }
            let q = QNetwork(observationSize: env.observationSpace.flatCount, actionCount: n, seed: 0)
            try Checkpoint.restore(model: q, optimizer: nil, from: directory.appendingPathComponent("checkpoints/latest"))
            return try NudgeRL.evaluate(env: env, episodes: episodes, seed: seed) { .discrete(q.greedyAction($0)) }
        case "sac":
            guard case .box(let low, let high, _) = env.actionSpace else { throw EnvironmentError.invalidArgument("SAC needs continuous actions") }
            var rng = RandomGenerator(seed: 0)
            let c = SACConfig()
            let actor = SACActor(observationSize: env.observationSpace.flatCount, low: low, high: high, hidden: c.hiddenSizes,
                                 logStdMin: c.logStdMin, logStdMax: c.logStdMax, rng: &rng)
            try Checkpoint.restore(model: actor, optimizer: nil, from: directory.appendingPathComponent("checkpoints/latest"))
            return try NudgeRL.evaluate(env: env, episodes: episodes, seed: seed) { .continuous(actor.deterministicAction($0)) }
        case "ppo", "a2c", "reinforce", "actor-critic":
            let agent = ActorCriticAgent(observationSize: env.observationSpace.flatCount, actionSpace: env.actionSpace,
                                 normalizeObservations: value("normalize_observations") == "true", seed: 0)
            try Checkpoint.restore(model: agent, optimizer: nil, from: directory.appendingPathComponent("checkpoints/latest"))
            return try NudgeRL.evaluate(env: env, episodes: episodes, seed: seed) { agent.deterministicAction($0) }
        default:
            throw CheckpointError.invalid(path: directory.path, reason: "unknown algorithm '\(algorithm)'")
        }
    }
}
