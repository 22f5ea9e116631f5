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

extension EngineBenchmarks {
    /// CartPole-v1 steps per second with random actions (resets included): one environment, and
    /// an 8-environment synchronous vector (steps counted per sub-environment).
    public static func cartPoleStepsPerSecond() -> (single: (Double, Double), vector8: (Double, Double)) {
        var rng = RandomGenerator(seed: 0)
        let actions = (0..<100_000).map { _ in rng.int(below: 2) }
        let env = CartPole.make()
        _ = env.reset(seed: 0)
        let single = timePerUnit(repeats: 5, minSeconds: 0, warmup: 1) {
            for a in actions {
                let s = try! env.step(a)
                if s.done { _ = env.reset() }
            }
        }
        let vec = SyncVectorEnvironment(count: 8) { _ in CartPole.make() }
        _ = vec.reset(seed: 0)
        let batches = (0..<20_000).map { i in (0..<8).map { actions[(i * 8 + $0) % actions.count] } }
        let vector = timePerUnit(repeats: 5, minSeconds: 0, warmup: 1) {
            for batch in batches { _ = try! vec.step(batch) }
        }
        return ((100_000 / single.median, 100_000 / single.best), (160_000 / vector.median, 160_000 / vector.best))
    }

    /// The RL section of the report, with the Python peer beside each number.
    public static func rlReport() -> [String: Any] {
        let peers = loadRLPeers()
        let cart = cartPoleStepsPerSecond()
        let testbed = testbedSeconds()
        func peer(_ key: String) -> [String: Any]? { peers?[key] as? [String: Any] }
        var out: [String: Any] = [
            "cartpole_single_steps_per_s": ["median": cart.single.0, "best": cart.single.1],
            "cartpole_vector8_steps_per_s": ["median": cart.vector8.0, "best": cart.vector8.1],
            "testbed_epsilon_greedy_2000x1000_seconds": ["median": testbed.0, "best": testbed.1],
        ]
        if let p = peer("cartpole_single_steps_per_s"), let m = p["median"] as? Double {
            out["cartpole_single_peer_gymnasium"] = p
            out["cartpole_single_speedup"] = cart.single.0 / m
        }
        if let p = peer("cartpole_vector8_steps_per_s"), let m = p["median"] as? Double {
            out["cartpole_vector8_peer_gymnasium"] = p
            out["cartpole_vector8_speedup"] = cart.vector8.0 / m
        }
        if let p = peer("testbed_epsilon_greedy_pulls_per_s"), let s = p["seconds_2000x1000"] as? [String: Any], let m = s["median"] as? Double {
            out["testbed_peer_numpy_seconds"] = s
            out["testbed_speedup"] = m / testbed.0
        }
        return out
    }
}

extension EngineBenchmarks {
    /// PPO on CartPole-v1 with CleanRL's defaults (500k steps, seed 1): wall time, env steps/s,
    /// and the first global step where the mean of the last 20 episodes reached 475 (the peer's
    /// metric), beside the peer's own numbers when its result file is present.
    public static func ppoCartPole(seed: UInt64 = 1) throws -> [String: Any] {
        var config = PPOConfig()
        config.seed = seed
        let (_, result) = try PPO.train(environmentID: "CartPole-v1", config: config)
        var out: [String: Any] = [
            "wall_time_s": result.wallTime, "env_steps_per_s": result.stepsPerSecond, "global_steps": result.globalSteps,
            "first_step_20_episode_mean_475": firstStepReaching(475, result.episodes, window: 20) as Any,
            "first_step_100_episode_mean_475": firstStepReaching(475, result.episodes, window: 100) as Any,
            "final_20_episode_mean": recentMeanReturn(result.episodes, last: 20) as Any,
        ]
        var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<4 {
            for name in ["ppo_cartpole_seed\(seed)_threads1", "ppo_cartpole_seed\(seed)"] {
                let url = dir.appendingPathComponent("Benchmarks/peers/results/\(name).json")
                if let data = try? Data(contentsOf: url), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                    var peer: [String: Any] = [:]
                    for key in ["wall_s", "env_steps_per_s", "first_global_step_avg20_ge_475", "final_avg20_return", "threads", "torch", "date"] {
                        if let v = o[key] { peer[key] = v }
                    }
                    out["peer_\(name)"] = peer
                    if let w = o["wall_s"] as? Double { out["speedup_vs_\(name)"] = w / result.wallTime }
                }
            }
            dir.deleteLastPathComponent()
        }
        return out
    }
}
