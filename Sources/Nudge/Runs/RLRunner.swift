// Runs a deep-RL algorithm into a run directory (config, CleanRL-named metrics, checkpoint, a
// returns plot) and evaluates a saved run. The CLI's `nudge rl` is a thin layer over this.

import Foundation
import NudgeConfig
import NudgeNN
import NudgeRL
import NudgeReport
import NudgeTensor

/// Training and evaluation of saved runs, by algorithm name.
public enum RLRunner {
    /// The algorithms, by the names `nudge rl train` takes.
    public static let algorithms = ["ppo", "a2c", "dqn", "sac", "reinforce", "actor-critic"]

    /// Whether `environmentID` has a continuous (Box) action space.
    static func isContinuous(_ environmentID: String) throws -> Bool {
        if case .box = try Registry.make(environmentID).actionSpace { return true }
        return false
    }

    /// The config keys of `algorithm` on `environmentID`: `algorithm` and `env_id` (fixed by the
    /// command line), `checkpoint_every`, then the algorithm's own keys with its reference defaults
    /// (CleanRL's continuous-control defaults for PPO on a Box action space).
    public static func schema(algorithm: String, environmentID: String) throws -> ConfigSchema {
        let head: [ConfigField] = [
            .choice("algorithm", [algorithm], default: algorithm, help: "The algorithm (fixed; recorded in config.toml)."),
            .string("env_id", environmentID, help: "Environment id (see `nudge env list`)."),
            .int("checkpoint_every", 100_000, help: "Environment steps between resumable checkpoints (taken at the next update or episode boundary; 0: only when stopped and at the end)."),
            .int("eval_every", 25_000, min: 0, help: "Environment steps between evaluations of the deterministic policy on a separate environment (at the next update or episode boundary, and when the budget is spent; 0: only then); the best agent is kept in checkpoints/best."),
            .int("eval_episodes", 10, min: 1, help: "Episodes per evaluation (the same seeded starts every time)."),
        ]
        let keys: [ConfigField]
        switch algorithm {
        case "ppo": keys = PPOConfig.configKeys.fields(defaults: try isContinuous(environmentID) ? PPOConfig.continuous : PPOConfig())
        case "dqn": keys = DQNConfig.configKeys.fields(defaults: DQNConfig())
        case "a2c": keys = A2CConfig.configKeys.fields(defaults: A2CConfig())
        case "sac": keys = SACConfig.configKeys.fields(defaults: SACConfig())
        case "reinforce", "actor-critic": keys = PolicyGradientConfig.configKeys.fields(defaults: PolicyGradientConfig())
        default: throw EnvironmentError.invalidArgument("unknown algorithm '\(algorithm)'; known: \(algorithms.joined(separator: ", "))")
        }
        return ConfigSchema(head + keys)
    }

    /// The environment a config file names (its env_id; a run's config.toml when resuming), else
    /// CartPole-v1: some algorithms' defaults depend on it, so it is settled before the rest.
    public static func environmentID(configFile: String?) -> String {
        guard let configFile, let document = try? ConfigDocument.load(path: configFile) else { return "CartPole-v1" }
        return recordedString("env_id", in: document) ?? "CartPole-v1"
    }

    /// A string value recorded in a config file (typed, or as text).
    static func recordedString(_ key: String, in document: ConfigDocument) -> String? {
        guard let entry = document.entries.first(where: { $0.key == key }) else { return nil }
        switch entry.value {
        case .typed(.string(let v)), .text(let v): return v
        default: return nil
        }
    }

    /// The evaluation environment's seed: the run's seed moved out of the training streams' way.
    static func evaluationSeed(_ seed: Int) -> UInt64 { UInt64(truncatingIfNeeded: seed) &+ 1_000_003 }

    /// Trains the algorithm of a configuration resolved against `schema(algorithm:environmentID:)`
    /// into `directory` (config.toml, metrics, checkpoints/latest and best, returns.svg, report.html);
    /// `shouldStop` ends training early (Ctrl-C), still saving. With `resume`, continues the run
    /// in `directory` from its checkpoints/latest, dropping metrics logged after it. Returns key
    /// results.
    public static func train(_ config: ResolvedConfig, directory: URL, resume: Bool = false,
                             shouldStop: @escaping () -> Bool = { false }) throws -> [(String, Double)] {
        let algorithm = config.string("algorithm"), environmentID = config.string("env_id")
        let latest = directory.appendingPathComponent("checkpoints/latest")
        // A loss that stops being a number ends training at once; no checkpoint is written after it.
        var failure: NonFiniteValueError?
        let metadata = ["algorithm": algorithm, "env_id": environmentID]
        let evaluation = PeriodicEvaluation(environmentID: environmentID, every: config.int("eval_every"), episodes: config.int("eval_episodes"),
                                            seed: evaluationSeed(config.int("seed")),
                                            directory: directory.appendingPathComponent("checkpoints/best"), metadata: metadata)
        var checkpointing = RLCheckpointing(directory: latest, resume: resume, every: config.int("checkpoint_every"), metadata: metadata,
                                            evaluation: evaluation)
        // A failed metrics write (a full disk) stops the run at once and is thrown, never dropped.
        var logFailure: (any Error)?
        // Data parallel (`mpirun -np N nudge rl train …`): every rank trains, rank 0 alone writes the
        // run; the others log into a scratch directory removed at the end and read checkpoints/latest.
        let root = Communicator.shared.isRoot
        checkpointing.skipSave = { failure != nil || !root }
        let body: (@escaping MetricsCallback, @escaping () -> Bool) throws -> (Module, TrainingResult)
        let total: Int
        switch algorithm {
        case "ppo":
            let c = PPOConfig.configKeys.apply(config, to: PPOConfig())
            total = c.totalTimesteps
            body = { try PPO.train(environmentID: environmentID, config: c, onMetrics: $0, shouldStop: $1, checkpointing: checkpointing) }
        case "dqn":
            let c = DQNConfig.configKeys.apply(config, to: DQNConfig())
            total = c.totalTimesteps
            body = { try DQN.train(environmentID: environmentID, config: c, onMetrics: $0, shouldStop: $1, checkpointing: checkpointing) }
        case "a2c":
            let c = A2CConfig.configKeys.apply(config, to: A2CConfig())
            total = c.totalTimesteps
            body = { try A2C.train(environmentID: environmentID, config: c, onMetrics: $0, shouldStop: $1, checkpointing: checkpointing) }
        case "sac":
            let c = SACConfig.configKeys.apply(config, to: SACConfig())
            total = c.totalTimesteps
            body = { try SAC.train(environmentID: environmentID, config: c, onMetrics: $0, shouldStop: $1, checkpointing: checkpointing) }
        case "reinforce", "actor-critic":
            let c = PolicyGradientConfig.configKeys.apply(config, to: PolicyGradientConfig())
            total = c.totalTimesteps
            body = { callback, stop in
                algorithm == "reinforce"
                    ? try PolicyGradient.reinforce(environmentID: environmentID, config: c, onMetrics: callback, shouldStop: stop,
                                                   checkpointing: checkpointing)
                    : try PolicyGradient.actorCritic(environmentID: environmentID, config: c, onMetrics: callback, shouldStop: stop,
                                                     checkpointing: checkpointing)
            }
        default:
            throw EnvironmentError.invalidArgument("unknown algorithm '\(algorithm)'; known: \(algorithms.joined(separator: ", "))")
        }
        let run: RunDirectory
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-rank\(Communicator.shared.rank)-\(ProcessInfo.processInfo.processIdentifier)")
        if !root {
            run = try RunDirectory.create(at: scratch, config: config.asConfigTable(), mode: .overwrite)
        } else if resume {
            try Checkpoint.recoverInterruptedSwap(at: latest)
            let state = try RLCheckpointing.state(in: latest)
            run = try RunDirectory.create(at: directory, config: config.asConfigTable(), mode: .resume)
            try run.truncate(afterStep: state.lastMetricsStep)
        } else {
            run = try RunDirectory.create(at: directory, config: config.asConfigTable(), mode: .overwrite)
        }
        defer { run.close() }
        let progress = ProgressReporter(total: total, label: "\(algorithm) \(environmentID)",
                                        output: root ? .standardError : ProgressOutput(isTerminal: false) { _ in })
        var lastReturn = 0.0
        let (_, result) = try body({ step, metrics in
            do { try run.log(step: step, metrics) } catch { if logFailure == nil { logFailure = error } }
            if failure == nil, let bad = metrics.first(where: { $0.0.hasPrefix("losses/") && !$0.1.isFinite }) {
                failure = NonFiniteValueError(step: step, metric: bad.0, value: bad.1)
            }
            if let r = metrics.first(where: { $0.0 == "charts/episodic_return" }) { lastReturn = r.1 }
            progress.update(completed: step, metrics: [("return", lastReturn)])
        }, { failure != nil || logFailure != nil || shouldStop() })
        progress.finish()
        if !root {
            run.close()
            try? FileManager.default.removeItem(at: scratch)
            if let failure { throw failure }
            return summary(result)
        }
        if let logFailure { throw logFailure }
        if let failure {
            run.close()
            try? HTMLReport.forRun(directory).write(to: directory.appendingPathComponent("report.html"))
            throw failure
        }
        try plotReturns(result.episodes, title: "\(algorithm.uppercased()) on \(environmentID) (seed \(config.int("seed")))",
                        to: run.url.appendingPathComponent("returns.svg"))
        run.close()
        try HTMLReport.forRun(directory).write(to: directory.appendingPathComponent("report.html"))
        var out = summary(result)
        if let best = evaluation.best { out.append(("best eval mean return (checkpoints/best)", best)) }
        return out
    }

    /// `train` stopped by Ctrl-C (SIGINT or SIGTERM): the first request announces that the agent and
    /// the report are being saved and ends training at the next boundary. Returns the key results
    /// and whether training was interrupted.
    public static func trainUntilInterrupted(_ config: ResolvedConfig, directory: URL, resume: Bool = false) throws
        -> (results: [(String, Double)], interrupted: Bool)
    {
        let stop = StopSignal.install()
        let interrupted = Announcement("\nInterrupted: saving the agent and the report")
        let results = try train(config, directory: directory, resume: resume) {
            guard stop.requested else { return false }
            interrupted.print()
            return true
        }
        return (results, stop.requested)
    }

    /// Trains `algorithm` on `environmentID` with its reference configuration, changing only the
    /// seed and (when given) the step budget.
    public static func train(algorithm: String, environmentID: String, seed: UInt64, totalTimesteps: Int?,
                             directory: URL) throws -> [(String, Double)] {
        var config = try schema(algorithm: algorithm, environmentID: environmentID).defaults
        config.setDefault("seed", .int(Int(seed)))
        if let totalTimesteps { config.setDefault("total_timesteps", .int(totalTimesteps)) }
        return try train(config, directory: directory)
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

    /// `mean return over N episodes: M (min A, max B)`.
    public static func describeReturns(_ returns: [Double]) -> String {
        let mean = returns.reduce(0, +) / Double(returns.count)
        return String(format: "mean return over %d episodes: %.2f (min %.2f, max %.2f)", returns.count, mean, returns.min() ?? 0, returns.max() ?? 0)
    }

    /// Evaluates the deterministic policy saved in a run directory (its checkpoints/latest, or
    /// checkpoints/best with `best`).
    public static func evaluate(directory: URL, episodes: Int, seed: UInt64, best: Bool = false) throws -> [Double] {
        let file = directory.appendingPathComponent("config.toml")
        let document = try ConfigDocument.load(path: file.path)
        guard let algorithm = recordedString("algorithm", in: document), let envID = recordedString("env_id", in: document) else {
            throw CheckpointError.invalid(path: file.path, reason: "no algorithm or env_id (not a run of `nudge rl train`)")
        }
        let config = try schema(algorithm: algorithm, environmentID: envID).resolve(file: document)
        let env = try Registry.make(envID)
        let checkpoint = directory.appendingPathComponent(best ? "checkpoints/best" : "checkpoints/latest")
        guard FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent("model.safetensors").path) else {
            throw CheckpointError.io(path: checkpoint.path, reason: best ? "no best agent (the run has not been evaluated yet)" : "no saved agent")
        }
        let agent: Module
        switch algorithm {
        case "dqn":
            guard case .discrete(let n, _) = env.actionSpace else { throw EnvironmentError.invalidArgument("DQN needs discrete actions") }
            let c = DQNConfig.configKeys.apply(config, to: DQNConfig())
            agent = QNetwork(observationSize: env.observationSpace.flatCount, actionCount: n, hidden: c.hiddenSizes, seed: 0)
        case "sac":
            guard case .box(let low, let high, _) = env.actionSpace else { throw EnvironmentError.invalidArgument("SAC needs continuous actions") }
            var rng = RandomGenerator(seed: 0)
            let c = SACConfig.configKeys.apply(config, to: SACConfig())
            agent = SACActor(observationSize: env.observationSpace.flatCount, low: low, high: high, hidden: c.hiddenSizes,
                             logStdMin: c.logStdMin, logStdMax: c.logStdMax, rng: &rng)
        default:
            let hidden = config.array("hidden_sizes").compactMap { if case .int(let v) = $0 { v } else { nil } }
            let normalize = config.schema.field("normalize_observations") != nil && config.bool("normalize_observations")
            agent = ActorCriticAgent(observationSize: env.observationSpace.flatCount, actionSpace: env.actionSpace, hidden: hidden,
                                     normalizeObservations: normalize, seed: 0)
        }
        try Checkpoint.restore(model: agent, optimizer: nil, from: checkpoint)
        return try NudgeRL.evaluate(env: env, episodes: episodes, seed: seed, act: deterministicPolicy(of: agent)!)
    }
}
