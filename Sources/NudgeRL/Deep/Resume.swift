// Resumable deep-RL runs. Between updates a trainer can write its whole state into a checkpoint
// directory: the agent's weights (observation statistics included), the optimizer's moments, and
// trainer_state.json with the update count, the global step, the sampling generator, the current
// observations, every environment's exact snapshot (physics state, random stream, time-limit and
// episode counters, reward-normalizer statistics) and the finished episodes. Restored into freshly
// built objects, the run continues with the numbers an uninterrupted run would have produced.

import Foundation
import NudgeNN
import NudgeTensor

/// Where a deep-RL run stands between updates.
public struct RLTrainerState: Codable, Sendable {
    /// The algorithm that wrote it ("ppo", "a2c", "dqn", ...).
    public var algorithm: String
    /// Updates completed (PPO iterations, A2C rollouts, REINFORCE episodes; for DQN and SAC the
    /// environment steps).
    public var iteration: Int
    public var globalStep: Int
    /// Seconds of training so far (so steps per second stay true across a resume).
    public var wallTime: Double
    /// The sampling generator's snapshot.
    public var generator: [UInt64]
    /// The observations the next rollout starts from.
    public var observations: [[Float]]
    public var environments: VectorSnapshot
    public var episodes: [EpisodeRecord]
    /// The last metrics step this state accounts for, when not `globalStep` (DQN and SAC log at
    /// the 0-based index of the step, as CleanRL does).
    public var metricsThrough: Int?
    /// Trainer-specific counts (e.g. the replay buffer's size and write position).
    public var counters: [String: Int]?
    /// The best evaluation mean return so far (runs that evaluate; see `PeriodicEvaluation`).
    public var bestEvaluation: Double?

    /// The last metrics step this state accounts for: later rows of an interrupted run are dropped.
    public var lastMetricsStep: Int { metricsThrough ?? globalStep }
}

/// Checkpoints a trainer writes as it goes, and the one it resumes from.
public struct RLCheckpointing {
    /// The checkpoint directory (a run's checkpoints/latest).
    public var directory: URL
    /// Continue from the checkpoint in `directory` instead of starting fresh.
    public var resume: Bool
    /// Save at the first update boundary past every multiple of `every` environment steps (0: only
    /// when stopped and at the end).
    public var every: Int
    /// Extra metadata stored with the weights (e.g. algorithm and env_id for `rl eval`).
    public var metadata: [String: String]
    /// When true, nothing is saved (the last good checkpoint stays, e.g. after a NaN loss).
    public var skipSave: () -> Bool = { false }
    /// Periodic evaluation of the deterministic policy, keeping the best agent (nil: none).
    public var evaluation: PeriodicEvaluation?

    public init(directory: URL, resume: Bool = false, every: Int = 0, metadata: [String: String] = [:],
                evaluation: PeriodicEvaluation? = nil) {
        self.directory = directory
        self.resume = resume
        self.every = every
        self.metadata = metadata
        self.evaluation = evaluation
    }

    static let stateFile = "trainer_state.json"

    /// Reads the trainer state of the checkpoint in `directory` (without touching any model).
    public static func state(in directory: URL) throws -> RLTrainerState {
        let url = directory.appendingPathComponent(stateFile)
        guard let data = try? Data(contentsOf: url) else {
            throw CheckpointError.io(path: url.path, reason: "no trainer state (was this run saved by a version that can resume?)")
        }
        do { return try JSONDecoder().decode(RLTrainerState.self, from: data) } catch {
            throw CheckpointError.invalid(path: url.path, reason: "\(error)")
        }
    }

    /// Loads the agent and optimizer from the checkpoint and returns the trainer state, checking
    /// that `algorithm` wrote it and that the environments can be restored.
    func restore(agent: Module, optimizer: any Optimizer, algorithm: String) throws -> RLTrainerState {
        let state = try Self.state(in: directory)
        guard state.algorithm == algorithm else {
            throw CheckpointError.invalid(path: directory.path, reason: "written by \(state.algorithm), resumed as \(algorithm)")
        }
        try Checkpoint.restore(model: agent, optimizer: optimizer, from: directory)
        evaluation?.resume(at: state.globalStep, best: state.bestEvaluation)
        return state
    }

    /// Writes `state` with the agent and optimizer and each of `tensors` as `<part>.safetensors`
    /// (atomically, replacing the previous checkpoint).
    func save(_ state: RLTrainerState, agent: Module, optimizer: any Optimizer, tensors: [String: NamedTensors] = [:]) throws {
        if skipSave() { return }
        var state = state
        state.bestEvaluation = evaluation?.best
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try Checkpoint.save(model: agent, optimizer: optimizer, step: state.globalStep, to: directory, metadata: metadata,
                            files: [Self.stateFile: try encoder.encode(state)],
                            tensors: Dictionary(uniqueKeysWithValues: tensors.map { ("\($0.key).safetensors", $0.value) }))
    }

    /// Whether an update that took the run from `previous` to `step` environment steps crossed a
    /// multiple of `every`.
    func isDue(from previous: Int, to step: Int) -> Bool { every > 0 && step / every > previous / every }

    /// Evaluates `agent` when an evaluation is due at `step` (`last`: the budget is spent) and logs
    /// its metrics at `logStep` (default `step`). Called before the checkpoint of the same step, so
    /// the checkpoint records the best mean return.
    func evaluateIfDue(_ agent: Module, step: Int, last: Bool, logStep: Int? = nil, onMetrics: MetricsCallback?) throws {
        guard let evaluation, evaluation.isDue(step: step, last: last) else { return }
        let metrics = try evaluation.evaluate(agent, step: step, save: !skipSave())
        onMetrics?(logStep ?? step, metrics)
    }

    /// At an update or episode boundary that reached `step`: evaluates when due, then calls
    /// `checkpoint` when a multiple of `every` was crossed since `savedStep`.
    func boundary(_ agent: Module, step: Int, savedStep: Int, last: Bool, logStep: Int? = nil, onMetrics: MetricsCallback?,
                  checkpoint: () throws -> Void) throws {
        try evaluateIfDue(agent, step: step, last: last, logStep: logStep, onMetrics: onMetrics)
        if isDue(from: savedStep, to: step) { try checkpoint() }
    }
}

extension RLCheckpointing {
    /// Where an on-policy run starts: restored from the checkpoint when resuming (agent, optimizer,
    /// environments and `generator`), else fresh, with `envs` reset from `seed` and `generator` as
    /// given; `start` is now less the wall time already spent. Fails early when a checkpointed run's
    /// environments cannot be snapshotted.
    static func begin(_ checkpointing: RLCheckpointing?, algorithm: String, envs: SyncVectorEnvironment<AnyEnvironment>,
                      agent: Module, optimizer: any Optimizer, seed: UInt64, generator: inout RandomGenerator) throws
        -> (iteration: Int, globalStep: Int, episodes: [EpisodeRecord], observations: [[Float]], start: Date)
    {
        if checkpointing != nil { try envs.requireSnapshots() }
        let state: RLTrainerState
        if let checkpointing, checkpointing.resume {
            state = try checkpointing.restore(agent: agent, optimizer: optimizer, algorithm: algorithm)
            try envs.restore(state.environments)
        } else {
            let observations = envs.reset(seed: seed).observations
            state = RLTrainerState(algorithm: algorithm, iteration: 0, globalStep: 0, wallTime: 0, generator: generator.snapshot,
                                   observations: observations, environments: VectorSnapshot(environments: [], needsReset: []), episodes: [])
        }
        generator = try restoredGenerator(state)
        return (state.iteration, state.globalStep, state.episodes, state.observations, Date().addingTimeInterval(-state.wallTime))
    }

    /// Saves an on-policy run's state after `iteration` updates, begun at `start`.
    func save(algorithm: String, iteration: Int, globalStep: Int, start: Date, generator: RandomGenerator,
              observations: [[Float]], envs: SyncVectorEnvironment<AnyEnvironment>, episodes: [EpisodeRecord],
              agent: Module, optimizer: any Optimizer) throws {
        try save(RLTrainerState(algorithm: algorithm, iteration: iteration, globalStep: globalStep,
                                wallTime: Date().timeIntervalSince(start), generator: generator.snapshot,
                                observations: observations, environments: envs.snapshot(), episodes: episodes),
                 agent: agent, optimizer: optimizer)
    }
}

/// A single-environment run restored from its checkpoint (DQN, SAC, REINFORCE, actor-critic): the
/// trainer state and the further tensor files the trainer saved beside its agent.
struct RestoredRun {
    var state: RLTrainerState
    var directory: URL

    /// The observation the run continues from, or an error for a checkpoint without one.
    func observation() throws -> [Float] {
        guard let o = state.observations.first else { throw CheckpointError.invalid(path: directory.path, reason: "no observation") }
        return o
    }

    /// Restores `buffer` from the transitions and counters the trainer saved as "replay".
    func restore(_ buffer: inout ReplayBuffer) throws {
        try buffer.restore(tensors("replay"), count: counter("replay_count"), position: counter("replay_position"), file: directory.path)
    }

    /// The tensors the trainer saved as `part` (e.g. a target network, a second optimizer).
    func tensors(_ part: String) throws -> NamedTensors {
        try Checkpoint.load(directory.appendingPathComponent("\(part).safetensors"))
    }

    /// A counter the trainer saved, or an error naming it.
    func counter(_ key: String) throws -> Int {
        guard let value = state.counters?[key] else {
            throw CheckpointError.invalid(path: directory.appendingPathComponent(RLCheckpointing.stateFile).path, reason: "no counter '\(key)'")
        }
        return value
    }
}

extension RLCheckpointing {
    /// Where a single-environment run starts: nil when fresh, else the run restored from the
    /// checkpoint (agent and optimizer loaded, `env` restored). Fails early when a checkpointed
    /// run's environment cannot be snapshotted.
    static func resume(_ checkpointing: RLCheckpointing?, algorithm: String, env: AnyEnvironment, agent: Module,
                       optimizer: any Optimizer) throws -> RestoredRun? {
        if checkpointing != nil && !env.supportsSnapshots { throw unsnapshottable(env) }
        guard let checkpointing, checkpointing.resume else { return nil }
        let state = try checkpointing.restore(agent: agent, optimizer: optimizer, algorithm: algorithm)
        guard state.environments.environments.count == 1 else {
            throw CheckpointError.invalid(path: checkpointing.directory.path,
                                          reason: "\(state.environments.environments.count) environment snapshots for a single-environment run")
        }
        try env.restore(state.environments.environments[0])
        return RestoredRun(state: state, directory: checkpointing.directory)
    }

    /// Saves a single-environment run after `globalStep` environment steps: the agent and its
    /// optimizer, the environment, the generator, `observation` (nil between episodes), the
    /// `counters` and each of `tensors` as `<part>.safetensors`.
    func save(algorithm: String, iteration: Int, globalStep: Int, metricsThrough: Int? = nil, start: Date,
              generator: RandomGenerator, observation: [Float]?, env: AnyEnvironment, episodes: [EpisodeRecord],
              agent: Module, optimizer: any Optimizer, counters: [String: Int]? = nil, tensors: [String: NamedTensors] = [:]) throws {
        let state = RLTrainerState(algorithm: algorithm, iteration: iteration, globalStep: globalStep,
                                   wallTime: Date().timeIntervalSince(start), generator: generator.snapshot,
                                   observations: observation.map { [$0] } ?? [],
                                   environments: VectorSnapshot(environments: [env.snapshot()], needsReset: [false]),
                                   episodes: episodes, metricsThrough: metricsThrough, counters: counters)
        try save(state, agent: agent, optimizer: optimizer, tensors: tensors)
    }
}

extension RLCheckpointing {
    /// Where a single-environment run starts: restored from the checkpoint (agent, optimizer and
    /// environment, then `generator` and `restore` for the trainer's other parts), or fresh. Returns
    /// the environment steps done, the episodes, the start (now less the wall time already spent) and
    /// the restored run (nil when fresh).
    static func beginSingleEnvironmentRun(_ checkpointing: RLCheckpointing?, algorithm: String, env: AnyEnvironment, agent: Module,
                                          optimizer: any Optimizer, generator: inout RandomGenerator,
                                          restore: (RestoredRun) throws -> Void) throws
        -> (step: Int, episodes: [EpisodeRecord], start: Date, restored: RestoredRun?)
    {
        guard let restored = try resume(checkpointing, algorithm: algorithm, env: env, agent: agent, optimizer: optimizer) else {
            return (0, [], Date(), nil)
        }
        generator = try restoredGenerator(restored.state)
        try restore(restored)
        return (restored.state.globalStep, restored.state.episodes, Date().addingTimeInterval(-restored.state.wallTime), restored)
    }

    /// Where a run counted in environment steps with a replay buffer (DQN, SAC) starts: as
    /// `beginSingleEnvironmentRun`, the buffer and the observation restored too, or fresh with `env`
    /// reset from `seed`.
    static func beginReplayRun(_ checkpointing: RLCheckpointing?, algorithm: String, env: AnyEnvironment, agent: Module,
                               optimizer: any Optimizer, seed: UInt64, generator: inout RandomGenerator, buffer: inout ReplayBuffer,
                               restore: (RestoredRun) throws -> Void) throws
        -> (step: Int, episodes: [EpisodeRecord], start: Date, observation: [Float])
    {
        let (step, episodes, start, restored) = try beginSingleEnvironmentRun(
            checkpointing, algorithm: algorithm, env: env, agent: agent, optimizer: optimizer, generator: &generator) {
            try restore($0)
            try $0.restore(&buffer)
        }
        return (step, episodes, start, try restored?.observation() ?? env.reset(seed: seed, options: nil).observation)
    }

    /// Saves a replay-buffer run (DQN, SAC) after `completed` environment steps (its metrics run
    /// through the 0-based step before): the agent and its optimizer, the environment, the generator,
    /// the observation, the buffer's transitions and counters, and each of `tensors`.
    func saveReplayRun(algorithm: String, completed: Int, start: Date, generator: RandomGenerator, observation: [Float],
                       env: AnyEnvironment, episodes: [EpisodeRecord], agent: Module, optimizer: any Optimizer, buffer: ReplayBuffer,
                       tensors: [String: NamedTensors]) throws {
        try save(algorithm: algorithm, iteration: completed, globalStep: completed, metricsThrough: completed - 1, start: start,
                 generator: generator, observation: observation, env: env, episodes: episodes, agent: agent, optimizer: optimizer,
                 counters: buffer.checkpointCounters, tensors: tensors.merging(["replay": buffer.stateTensors()]) { a, _ in a })
    }
}

extension SyncVectorEnvironment where Base == AnyEnvironment {
    /// Fails unless every environment can be snapshotted (so a resumable checkpoint is possible).
    func requireSnapshots() throws {
        if let env = environments.first(where: { !$0.supportsSnapshots }) { throw unsnapshottable(env) }
    }
}

/// The error for a checkpointed run whose environment cannot be snapshotted.
func unsnapshottable(_ env: AnyEnvironment) -> EnvironmentError {
    .invalidArgument("\(env.id): this environment cannot be snapshotted, so the run cannot be checkpointed for resuming")
}

/// The sampling generator stored in `state`.
func restoredGenerator(_ state: RLTrainerState) throws -> RandomGenerator {
    guard let rng = RandomGenerator(snapshot: state.generator) else {
        throw CheckpointError.invalid(path: RLCheckpointing.stateFile, reason: "invalid generator state \(state.generator)")
    }
    return rng
}
