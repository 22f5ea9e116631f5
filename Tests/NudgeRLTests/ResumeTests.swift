// Exact snapshots of environments and resumed deep-RL runs that continue as uninterrupted ones.

import Foundation
import NudgeNN
import NudgeTensor
import Testing
@testable import NudgeRL

/// Observations, rewards, flags and episode infos of `actions` steps (resetting after each episode).
private func trajectory(_ env: AnyEnvironment, steps: Int, seed: UInt64) throws -> [String] {
    var rng = RandomGenerator(seed: seed)
    var out: [String] = []
    for _ in 0..<steps {
        let action: ActionValue
        if case .discrete = env.actionSpace { action = .discrete(env.actionSpace.sampleDiscrete(using: &rng)) } else {
            action = .continuous(env.actionSpace.sample(using: &rng))
        }
        let s = try env.step(action)
        out.append("\(s.observation) \(s.reward) \(s.terminated) \(s.truncated) \(s.info["episode_return"].map { "\($0)" } ?? "")")
        if s.done { out.append("reset \(env.reset().observation)") }
    }
    return out
}

@Suite("Resume") struct ResumeTests {
    /// Every registered environment, under the training wrappers (episode statistics, reward
    /// normalization), continues identically from a snapshot restored into a fresh copy.
    @Test func snapshotsContinueExactlyForEveryEnvironment() throws {
        for id in Registry.ids {
            func make() throws -> AnyEnvironment {
                AnyEnvironment(NormalizeReward(RecordEpisodeStatistics(try Registry.make(id))))
            }
            let env = try make()
            #expect(env.supportsSnapshots, "\(id)")
            _ = env.reset(seed: 3)
            _ = try trajectory(env, steps: 150, seed: 1)
            let snapshot = env.snapshot()
            let expected = try trajectory(env, steps: 300, seed: 2)

            let copy = try make()
            _ = copy.reset(seed: 99)
            try copy.restore(snapshot)
            #expect(try trajectory(copy, steps: 300, seed: 2) == expected, "\(id)")

            var truncated = snapshot
            truncated.words.removeLast()
            #expect(throws: EnvironmentError.self, "\(id)") { try copy.restore(truncated) }
        }
    }

    @Test func vectorSnapshotKeepsPendingResets() throws {
        let make = { SyncVectorEnvironment(count: 3, autoresetMode: .nextStep) { _ in try! Registry.make("CartPole-v1") } }
        let envs = make()
        _ = envs.reset(seed: 5)
        var rng = RandomGenerator(seed: 6)
        func steps(_ v: SyncVectorEnvironment<AnyEnvironment>, _ n: Int, _ rng: inout RandomGenerator) throws -> [String] {
            try (0..<n).map { _ in "\(try v.step((0..<3).map { _ in .discrete(rng.int(below: 2)) }).observations)" }
        }
        _ = try steps(envs, 40, &rng)
        let snapshot = envs.snapshot()
        var copyRNG = rng
        let expected = try steps(envs, 100, &rng)
        let copy = make()
        try copy.restore(snapshot)
        #expect(try steps(copy, 100, &copyRNG) == expected)
    }

    /// A run stopped (between updates, mid-episode for DQN and SAC, between episodes for REINFORCE
    /// and actor-critic) and resumed logs exactly what an uninterrupted run logs, evaluations
    /// included; the best evaluated agent is the one kept, and replaying its evaluation gives its mean.
    @Test(arguments: ["ppo", "a2c", "dqn", "sac", "reinforce", "actor-critic"]) func resumedRunMatchesUninterrupted(algorithm: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        let bestDirectory = directory.appendingPathExtension("best")
        defer { for d in [directory, bestDirectory] { try? FileManager.default.removeItem(at: d) } }
        let environmentID = algorithm == "sac" ? "Pendulum-v1" : "CartPole-v1"
        let evaluateEvery = ["ppo": 1500, "a2c": 2000, "dqn": 400, "sac": 150][algorithm] ?? 500
        var evaluations: [Double] = []
        // What counts toward the stop: loss rows, or finished episodes for the per-episode trainers.
        let counted = ["reinforce", "actor-critic"].contains(algorithm) ? "charts/episodic_return" : "losses/"
        func run(stopAfter events: Int?, resume: Bool) throws -> [String] {
            var log: [String] = []
            var seen = 0
            let evaluation = PeriodicEvaluation(environmentID: environmentID, every: evaluateEvery, episodes: 2, seed: 7, directory: bestDirectory)
            let checkpointing = RLCheckpointing(directory: directory, resume: resume, every: 1000, evaluation: evaluation)
            let record: MetricsCallback = { step, metrics in
                if let mean = metrics.first(where: { $0.0 == "eval/mean_return" }) { evaluations.append(mean.1) }
                log.append("\(step) \(metrics.filter { $0.0 != "charts/SPS" }.map { "\($0.0)=\($0.1)" })")
                if metrics.contains(where: { $0.0.hasPrefix(counted) || (counted == "losses/" && $0.0 == "charts/learning_rate") }) { seen += 1 }
            }
            let stop = { events.map { seen >= $0 } ?? false }
            switch algorithm {
            case "ppo":
                var c = PPOConfig()
                c.totalTimesteps = 8 * 512
                c.numSteps = 128
                _ = try PPO.train(environmentID: "CartPole-v1", config: c, onMetrics: record, shouldStop: stop, checkpointing: checkpointing)
            case "a2c":
                var c = A2CConfig()
                c.totalTimesteps = 3 * 100 * 20  // losses are logged every 100 updates
                _ = try A2C.train(environmentID: "CartPole-v1", config: c, onMetrics: record, shouldStop: stop, checkpointing: checkpointing)
            case "dqn":
                var c = DQNConfig()
                (c.totalTimesteps, c.learningStarts, c.batchSize, c.targetNetworkFrequency) = (1200, 100, 32, 50)
                _ = try DQN.train(environmentID: "CartPole-v1", config: c, onMetrics: record, shouldStop: stop, checkpointing: checkpointing)
            case "sac":
                var c = SACConfig()
                (c.totalTimesteps, c.learningStarts, c.batchSize, c.hiddenSizes) = (450, 100, 16, [16, 16])
                _ = try SAC.train(environmentID: "Pendulum-v1", config: c, onMetrics: record, shouldStop: stop, checkpointing: checkpointing)
            default:
                var c = PolicyGradientConfig()
                c.totalTimesteps = 1500
                _ = algorithm == "reinforce"
                    ? try PolicyGradient.reinforce(environmentID: "CartPole-v1", config: c, onMetrics: record, shouldStop: stop, checkpointing: checkpointing)
                    : try PolicyGradient.actorCritic(environmentID: "CartPole-v1", config: c, onMetrics: record, shouldStop: stop,
                                                     checkpointing: checkpointing)
            }
            return log
        }
        let straight = try run(stopAfter: nil, resume: false)
        // Evaluations at each multiple of evaluateEvery crossed, and one when the budget is spent.
        #expect(evaluations.count >= 3, "\(evaluations)")
        let bestMean = try #require(evaluations.max())
        /// The mean return of the kept best agent, evaluated again.
        func bestReplayed() throws -> Double {
            let agent: Module
            switch algorithm {
            case "dqn": agent = QNetwork(observationSize: 4, actionCount: 2, hidden: DQNConfig().hiddenSizes, seed: 99)
            case "sac":
                var rng = RandomGenerator(seed: 99)
                agent = SACActor(observationSize: 3, low: [-2], high: [2], hidden: [16, 16], logStdMin: SACConfig().logStdMin,
                                 logStdMax: SACConfig().logStdMax, rng: &rng)
            default: agent = ActorCriticAgent(observationSize: 4, actionSpace: .discrete(n: 2), seed: 99)
            }
            try Checkpoint.restore(model: agent, optimizer: nil, from: bestDirectory)
            let returns = try evaluate(env: try Registry.make(environmentID), episodes: 2, seed: 7, act: try #require(deterministicPolicy(of: agent)))
            return returns.reduce(0, +) / 2
        }
        #expect(try bestReplayed() == bestMean)
        try FileManager.default.removeItem(at: bestDirectory)
        let stops = ["ppo": 3, "a2c": 1, "dqn": 3, "sac": 3]
        let first = try run(stopAfter: stops[algorithm] ?? 8, resume: false)
        let state = try RLCheckpointing.state(in: directory)
        #expect(state.algorithm == algorithm && state.globalStep > 0)
        let second = try run(stopAfter: nil, resume: true)
        #expect(first.count < straight.count && !second.isEmpty)
        #expect(first + second == straight)
        #expect(try bestReplayed() == bestMean)
    }

    /// A replay buffer continues from its checkpoint with the same samples, also when it has
    /// wrapped, and refuses a checkpoint that does not fit.
    @Test func replayBufferRestoresExactly() throws {
        var rng = RandomGenerator(seed: 4)
        var buffer = ReplayBuffer(capacity: 7, observationSize: 3, actionSize: 2)
        func add(_ b: inout ReplayBuffer, _ n: Int, _ rng: inout RandomGenerator) {
            for _ in 0..<n {
                b.add(observation: (0..<3).map { _ in Float(rng.uniform()) }, action: [Float(rng.uniform()), 1],
                      reward: Float(rng.uniform()), nextObservation: (0..<3).map { _ in Float(rng.uniform()) }, terminated: rng.uniform() < 0.3)
            }
        }
        func draws(_ b: ReplayBuffer, _ rng: inout RandomGenerator) -> [[Float]] {
            let s = b.sample(5, using: &rng)
            return [s.observations.scalars, s.actions.scalars, s.rewards.scalars, s.nextObservations.scalars, s.terminated.scalars]
        }
        for n in [4, 10] {  // part full, then wrapped
            add(&buffer, n, &rng)
            var copy = ReplayBuffer(capacity: 7, observationSize: 3, actionSize: 2)
            try copy.restore(buffer.stateTensors(), count: buffer.count, position: buffer.writePosition, file: "replay")
            var a = rng, b = rng
            add(&buffer, 3, &a)
            add(&copy, 3, &b)
            #expect(draws(buffer, &a) == draws(copy, &b))
            #expect(buffer.writePosition == copy.writePosition && buffer.count == copy.count)
        }
        var small = ReplayBuffer(capacity: 3, observationSize: 3, actionSize: 2)
        #expect(throws: CheckpointError.self) { try small.restore(buffer.stateTensors(), count: buffer.count, position: 1, file: "replay") }
        var wrongWidth = ReplayBuffer(capacity: 7, observationSize: 2, actionSize: 2)
        #expect(throws: CheckpointError.self) {
            try wrongWidth.restore(buffer.stateTensors(), count: buffer.count, position: buffer.writePosition, file: "replay")
        }
    }
}
