// A deep-RL run evaluates its deterministic policy every eval_every steps and when its budget is
// spent, logs eval/mean_return, and keeps the best agent in checkpoints/best, which `rl eval --best`
// (RLRunner.evaluate) reads back.

import Foundation
@testable import Nudge
import NudgeNN
import NudgeConfig
import Testing
@testable import NudgeRL

@Suite("Periodic evaluation") struct PeriodicEvaluationTests {
    @Test func runKeepsItsBestEvaluatedAgent() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("eval-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try RLRunner.schema(algorithm: "ppo", environmentID: "CartPole-v1")
            .resolve(overrides: ["seed=3", "total_timesteps=6144", "eval_every=2000", "eval_episodes=3", "num_steps=128"])
        let summary = try RLRunner.train(config, directory: directory)

        let rows = try String(contentsOf: directory.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let evaluations = rows.compactMap { row -> (Int, Double)? in
            guard let mean = (row["eval/mean_return"] as? NSNumber)?.doubleValue, let step = (row["step"] as? NSNumber)?.intValue else { return nil }
            return (step, mean)
        }
        // 512 steps per update: past 2000 at 2048, past 4000 at 4096, and the budget's end at 6144.
        #expect(evaluations.map(\.0) == [2048, 4096, 6144])
        let best = try #require(evaluations.map(\.1).max())
        #expect(summary.first { $0.0.hasPrefix("best eval mean return") }?.1 == best)

        // The kept agent replays its evaluation exactly; latest is the last agent.
        let replayed = try RLRunner.evaluate(directory: directory, episodes: 3, seed: RLRunner.evaluationSeed(3), best: true)
        #expect(replayed.reduce(0, +) / 3 == best)
        let last = try RLRunner.evaluate(directory: directory, episodes: 3, seed: RLRunner.evaluationSeed(3))
        #expect(last.reduce(0, +) / 3 == evaluations.last!.1)
    }

    @Test func bestIsAnErrorBeforeAnyEvaluation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("eval-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try RLRunner.schema(algorithm: "reinforce", environmentID: "CartPole-v1")
            .resolve(overrides: ["total_timesteps=300"])
        var stopped = false
        _ = try RLRunner.train(config, directory: directory) { defer { stopped = true }; return stopped }
        #expect(throws: CheckpointError.self) { try RLRunner.evaluate(directory: directory, episodes: 1, seed: 1, best: true) }
    }
}
