// RL speed benchmarks: env steps/s and the 10-armed testbed, beside the Python peer
// (Benchmarks/peers/bench_rl_python.py: Gymnasium and NumPy on the same machine).

import Foundation
import NudgeRL
import NudgeTensor

extension EngineBenchmarks {
    /// Pulls per second for ε-greedy (ε = 0.1, sample averages) on the 10-armed testbed,
    /// 2000 runs × 1000 steps; returns (median, best) seconds for the whole experiment.
    public static func testbedSeconds(runs: Int = 2000, steps: Int = 1000) -> (Double, Double) {
        let t = timePerUnit(repeats: 3, minSeconds: 0, warmup: 1) {
            _ = runBanditExperiment(runs: runs, steps: steps, seed: 1,
                                    makeBandit: { Testbed(seed: $0) },
                                    makeAgent: { EpsilonGreedy(arms: 10, epsilon: 0.1, seed: $0) })
        }
        return (t.median, t.best)
    }

    /// Peer numbers from `Benchmarks/peers/results/rl_python.json`.
    public static func loadRLPeers() -> [String: Any]? {
        var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<4 {
            let url = dir.appendingPathComponent("Benchmarks/peers/results/rl_python.json")
            if let data = try? Data(contentsOf: url), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] { return o }
            dir.deleteLastPathComponent()
        }
        return nil
    }
}
