// `nudge doctor`: what Nudge runs on, and how to make it faster.

import ArgumentParser
import Foundation
import Nudge
import NudgeBenchmarks

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show versions, CPU features, the BLAS backend with its measured speed, the small-row kernel, and threads.")

    func run() throws {
        print("Nudge \(NudgeVersion.string)")
        print("Swift \(swiftVersion)")
        print("OS: \(ProcessInfo.processInfo.operatingSystemVersionString)")
        let cpu = cpuInfo()
        print("CPU: \(cpu.model) (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
        print("CPU features: \(cpu.features.isEmpty ? "unknown" : cpu.features.joined(separator: " "))")
        print("Threads: \(Engine.threads) (set NUDGE_THREADS to change)")
        print("BLAS: \(BLAS.backend == .builtin ? "Nudge's built-in kernel" : "\(BLAS.backend)") — \(BLAS.note)")
        let kernel = BuiltinGemm.kernel
        let requested = ProcessInfo.processInfo.environment["NUDGE_GEMM_KERNEL"]
        print("Built-in sgemm kernel: \(kernel.rawValue) "
              + (requested.map { "(NUDGE_GEMM_KERNEL=\($0))" }
                 ?? (kernel == .portable ? "(this CPU lacks AVX2/FMA)" : "(packed C, chosen at run time; NUDGE_GEMM_KERNEL=avx2|portable to change)")))
        print("Small-row kernel (x·Wᵀ on ≤ 8 rows, decoding attention): "
              + (BLAS.smallRowKernel ? "AVX2/FMA" : "off (\(ProcessInfo.processInfo.environment["NUDGE_SMALL_GEMM"] == "0" ? "NUDGE_SMALL_GEMM=0" : "this CPU lacks AVX2/FMA"); BLAS and Swift kernels instead)"))
        let active = EngineBenchmarks.quickGemmGFLOPS()
        print(String(format: "sgemm 512³ (active backend): %.1f GFLOP/s", active))
        if BLAS.backend != .builtin {
            let builtin = EngineBenchmarks.gemm(m: 512, n: 512, k: 512, transA: false, transB: false, backend: .builtin).direct.0
            print("sgemm 512³ (built-in \(kernel.rawValue) kernel): " + String(format: "%.1f GFLOP/s", builtin))
        } else if kernel != .portable {
            print("(OpenBLAS, where installed, runs about as fast as this kernel; NUDGE_BLAS=/path/libopenblas.so selects one.)")
        } else {
            print("""
            Advice: install OpenBLAS for much faster matrix products, e.g.
              Debian/Ubuntu: sudo apt-get install libopenblas0-pthread
              Fedora:        sudo dnf install openblas
            or point NUDGE_BLAS at any CBLAS library (NUDGE_BLAS=/path/libopenblas.so).
            """)
        }
    }

    var swiftVersion: String {
        #if compiler(>=6.3)
        "6.3 or later"
        #elseif compiler(>=6.2)
        "6.2"
        #elseif compiler(>=6.1)
        "6.1"
        #else
        "6.0"
        #endif
    }

    func cpuInfo() -> (model: String, features: [String]) {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            #if arch(arm64)
            return ("arm64", ["neon"])
            #else
            return ("unknown", [])
            #endif
        }
        var model = "unknown"
        var flags: Set<String> = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "model name" && model == "unknown" { model = parts[1] }
            if parts[0] == "flags" || parts[0] == "Features" { flags.formUnion(parts[1].split(separator: " ").map(String.init)) }
        }
        let interesting = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "amx_tile", "asimd", "sve"]
        return (model, interesting.filter { flags.contains($0) })
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the engine benchmarks (sgemm, per-op floor, MLP step, throughput).",
        discussion: "Peer numbers are read from Benchmarks/peers/results/engine_torch.json when present.")

    @Flag(help: "Print the full report as JSON.") var json = false
    @Flag(help: "Skip the largest matrix sizes.") var quick = false
    @Option(help: "Also write the JSON report to this file.") var output: String?

    func run() throws {
        let report = EngineBenchmarks.runAll(quick: quick) { note("· \($0)") }
        let text = EngineBenchmarks.json(report)
        if let output { try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) }
        if json { print(text); return }
        print(EngineBenchmarks.summary(report))
    }
}
