// Runs the engine benchmarks and assembles one JSON report with the peer numbers beside ours.

import Foundation
import NudgeTensor

extension EngineBenchmarks {
    /// GFLOP/s of the active backend at 512³ (for `nudge doctor`).
    public static func quickGemmGFLOPS() -> Double {
        gemm(m: 512, n: 512, k: 512, transA: false, transB: false).direct.0
    }

    /// Peer numbers from `Benchmarks/peers/results/engine_torch.json` (PyTorch on this machine),
    /// looked up from the current directory upward; nil when absent.
    public static func loadPeers() -> [String: Any]? {
        var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<4 {
            let url = dir.appendingPathComponent("Benchmarks/peers/results/engine_torch.json")
            if let data = try? Data(contentsOf: url),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                return object
            }
            dir.deleteLastPathComponent()
        }
        return nil
    }

    /// Every benchmark as a JSON-serializable dictionary. `quick` skips the largest GEMMs.
    public static func runAll(quick: Bool = false, log: (String) -> Void = { _ in }) -> [String: Any] {
        let peers = loadPeers()
        func peer(_ path: String...) -> Any? {
            var node: Any? = peers
            for key in path { node = (node as? [String: Any])?[key] }
            return node
        }
        var report: [String: Any] = [
            "nudge_version": NudgeVersion.string,
            "blas": BLAS.note,
            "threads": Engine.threads,
            "date": ISO8601DateFormatter().string(from: Date()),
        ]
        if let peers, let meta = peers["meta"] as? [String: Any] {
            report["peer_source"] = "Benchmarks/peers/results/engine_torch.json: torch \(meta["torch"] ?? "?") (\(meta["torch_blas"] ?? "?")), \(meta["threads"] ?? "?") threads, \(meta["timestamp"] ?? "?"); \(meta["load_note"] ?? "")"
        }

        var gemms: [[String: Any]] = []
        var shapes = [(64, 64, 64), (256, 256, 256), (512, 512, 512), (1024, 768, 256)]  // (m, n, k)
        if !quick { shapes.insert((1024, 1024, 1024), at: 3) }
        for (m, n, k) in shapes {
            for (ta, tb, label) in [(false, false, "NN"), (false, true, "NT"), (true, false, "TN")] {
                log("sgemm \(m)x\(n)x\(k) \(label)")
                let r = gemm(m: m, n: n, k: k, transA: ta, transB: tb)
                var row: [String: Any] = [
                    "m": m, "n": n, "k": k, "op": label,
                    "nudge_gflops_median": r.nudge.0, "nudge_gflops_best": r.nudge.1,
                    "direct_gflops_median": r.direct.0, "direct_gflops_best": r.direct.1,
                    "ratio_best": r.nudge.1 / r.direct.1,
                ]
                if m <= 512 && !quick || m <= 256 {
                    let builtin = gemm(m: m, n: n, k: k, transA: ta, transB: tb, backend: .builtin)
                    row["builtin_gflops_best"] = builtin.direct.1
                }
                // The peer names shapes MxKxN.
                if let p = peer("sgemm_gflops", "torch", "\(m)x\(k)x\(n)", label) { row["peer_torch_gflops"] = p }
                if let p = peer("sgemm_gflops", "numpy", "\(m)x\(k)x\(n)", label) { row["peer_numpy_gflops"] = p }
                gemms.append(row)
            }
        }
        report["sgemm"] = gemms

        log("per-op floor")
        let floor = opFloor()
        report["op_floor_us_per_op"] = [
            "forward_recorded_median": floor.forward.0, "forward_recorded_best": floor.forward.1,
            "forward_backward_median": floor.withBackward.0, "forward_backward_best": floor.withBackward.1,
            "peer_torch": peer("op_chain_us_per_op") as Any,
        ]
        log("MLP train step")
        let mlp = mlpStep()
        var mlpRow: [String: Any] = ["median": mlp.0, "best": mlp.1]
        if let p = peer("mlp_step_us") as? [String: Any] {
            mlpRow["peer_torch"] = p
            if let pm = p["median"] as? Double { mlpRow["speedup_median"] = pm / mlp.0 }
        }
        report["mlp_step_us"] = mlpRow
        log("throughput (1024, 2048)")
        var tp: [String: Any] = [:]
        for (name, median, best, gbs) in throughput() {
            var row: [String: Any] = ["ms_median": median, "ms_best": best, "gb_per_s_best": gbs]
            if let p = peer("elementwise", name == "rmsnorm" ? "rmsnorm_F" : name, "ms") { row["peer_torch_ms"] = p }
            tp[name] = row
        }
        report["throughput_1024x2048"] = tp
        log("RL: CartPole steps/s, 10-armed testbed")
        report["rl"] = rlReport()
        return report
    }

    /// The report as pretty-printed JSON.
    public static func json(_ report: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension EngineBenchmarks {
    /// A short human-readable table of the report.
    public static func summary(_ report: [String: Any]) -> String {
        var lines = ["BLAS: \(report["blas"] ?? "?"), threads: \(report["threads"] ?? "?")"]
        lines.append("sgemm GFLOP/s (best), MxKxN  nudge   direct  ratio  builtin")
        for row in report["sgemm"] as? [[String: Any]] ?? [] {
            let shape = "\(row["m"]!)x\(row["k"]!)x\(row["n"]!) \(row["op"]!)"
            let b = (row["builtin_gflops_best"] as? Double).map { String(format: "%7.1f", $0) } ?? "      -"
            lines.append(String(format: "  %-22@ %7.1f  %7.1f  %5.2f  %@", shape as NSString,
                                row["nudge_gflops_best"] as? Double ?? 0, row["direct_gflops_best"] as? Double ?? 0,
                                row["ratio_best"] as? Double ?? 0, b as NSString))
        }
        if let f = report["op_floor_us_per_op"] as? [String: Any] {
            lines.append(String(format: "per-op floor (64 elems, taped): %.3f µs/op forward, %.3f µs/op with backward",
                                f["forward_recorded_best"] as? Double ?? 0, f["forward_backward_best"] as? Double ?? 0))
        }
        if let m = report["mlp_step_us"] as? [String: Any] {
            var line = String(format: "MLP 4-64-64-2 step (batch 128, Adam): %.1f µs median", m["median"] as? Double ?? 0)
            if let s = m["speedup_median"] as? Double { line += String(format: " (%.1f× PyTorch)", s) }
            lines.append(line)
        }
        if let t = report["throughput_1024x2048"] as? [String: [String: Any]] {
            for name in t.keys.sorted() {
                lines.append(String(format: "  %-8@ %.3f ms (%.1f GB/s)", name as NSString,
                                    t[name]?["ms_best"] as? Double ?? 0, t[name]?["gb_per_s_best"] as? Double ?? 0))
            }
        }
        if let rl = report["rl"] as? [String: Any] {
            func m(_ k: String) -> Double { (rl[k] as? [String: Any])?["median"] as? Double ?? 0 }
            lines.append(String(format: "CartPole-v1: %.0f steps/s single (%.1f× Gymnasium), %.0f steps/s 8-env vector (%.1f×)",
                                m("cartpole_single_steps_per_s"), rl["cartpole_single_speedup"] as? Double ?? 0,
                                m("cartpole_vector8_steps_per_s"), rl["cartpole_vector8_speedup"] as? Double ?? 0))
            lines.append(String(format: "10-armed testbed, ε-greedy, 2000×1000: %.3f s (%.1f× NumPy)",
                                m("testbed_epsilon_greedy_2000x1000_seconds"), rl["testbed_speedup"] as? Double ?? 0))
        }
        return lines.joined(separator: "\n")
    }
}
