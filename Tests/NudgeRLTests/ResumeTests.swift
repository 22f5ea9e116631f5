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

    /// A run stopped between iterations and resumed logs exactly what an uninterrupted run logs.
    @Test(arguments: ["ppo", "a2c"]) func resumedRunMatchesUninterrupted(algorithm: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        func run(stopAfter updates: Int?, resume: Bool) throws -> [String] {
            var log: [String] = []
            var seen = 0
            let checkpointing = RLCheckpointing(directory: directory, resume: resume, every: 1000)
            let record: MetricsCallback = { step, metrics in
                log.append("\(step) \(metrics.filter { $0.0 != "charts/SPS" }.map { "\($0.0)=\($0.1)" })")
                if metrics.contains(where: { $0.0.hasPrefix("losses/") || $0.0 == "charts/learning_rate" }) { seen += 1 }
            }
            let stop = { updates.map { seen >= $0 } ?? false }
            if algorithm == "ppo" {
                var c = PPOConfig()
                c.totalTimesteps = 8 * 512
                c.numSteps = 128
                _ = try PPO.train(environmentID: "CartPole-v1", config: c, onMetrics: record, shouldStop: stop, checkpointing: checkpointing)
            } else {
                var c = A2CConfig()
                c.totalTimesteps = 3 * 100 * 20  // losses are logged every 100 updates
                _ = try A2C.train(environmentID: "CartPole-v1", config: c, onMetrics: record, shouldStop: stop, checkpointing: checkpointing)
            }
            return log
        }
        let straight = try run(stopAfter: nil, resume: false)
        let first = try run(stopAfter: algorithm == "ppo" ? 3 : 1, resume: false)
        let state = try RLCheckpointing.state(in: directory)
        #expect(state.algorithm == algorithm && state.globalStep > 0)
        let second = try run(stopAfter: nil, resume: true)
        #expect(first.count < straight.count && !second.isEmpty)
        #expect(first + second == straight)
    }
}
