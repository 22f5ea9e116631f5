// What Nudge runs on, and how to make it faster (`nudge doctor`): versions, the CPU, threads, the
// BLAS backend and the built-in kernels, the measured sgemm speed, and advice where it helps.

import Foundation
import NudgeNN
import NudgeTensor

/// The `nudge doctor` report.
public enum SystemReport {
    /// The report, one fact per line; it measures sgemm at 512³ (about a second).
    public static func text() -> String {
        let environment = ProcessInfo.processInfo.environment
        let cpu = CPUInfo.current
        let kernel = BuiltinGemm.kernel
        var lines = [
            "Nudge \(NudgeVersion.string)",
            "Swift \(swiftVersion)",
            "OS: \(ProcessInfo.processInfo.operatingSystemVersionString)",
            "CPU: \(cpu.model) (\(ProcessInfo.processInfo.activeProcessorCount) cores)",
            "CPU features: \(cpu.features.isEmpty ? "unknown" : cpu.features.joined(separator: " "))",
            "Threads: \(Engine.threads) (set NUDGE_THREADS to change)",
            "BLAS: \(BLAS.backend == .builtin ? "Nudge's built-in kernel" : "\(BLAS.backend)") — \(BLAS.note)",
            "Built-in sgemm kernel: \(kernel.rawValue) "
                + (environment["NUDGE_GEMM_KERNEL"].map { "(NUDGE_GEMM_KERNEL=\($0))" }
                   ?? (kernel == .portable ? "(this CPU lacks AVX2/FMA)" : "(packed C, chosen at run time; NUDGE_GEMM_KERNEL=avx2|portable to change)")),
            "Small-row kernel (x·Wᵀ on ≤ 8 rows, decoding attention): "
                + (BLAS.smallRowKernel ? BLAS.smallRowKernelName : "off (\(environment["NUDGE_SMALL_GEMM"] == "0" ? "NUDGE_SMALL_GEMM=0" : "this CPU lacks AVX2/FMA"); BLAS and Swift kernels instead)"),
            String(format: "sgemm 512³ (active backend): %.1f GFLOP/s", EngineBenchmarks.quickGemmGFLOPS()),
            Communicator.report(),
        ]
        if BLAS.backend != .builtin {
            let builtin = EngineBenchmarks.gemm(m: 512, n: 512, k: 512, transA: false, transB: false, backend: .builtin).direct.0
            lines.append("sgemm 512³ (built-in \(kernel.rawValue) kernel): " + String(format: "%.1f GFLOP/s", builtin))
        } else if kernel != .portable {
            lines.append("(OpenBLAS, where installed, runs about as fast as this kernel; NUDGE_BLAS=/path/libopenblas.so selects one.)")
        } else {
            lines.append("""
            Advice: install OpenBLAS for much faster matrix products, e.g.
              Debian/Ubuntu: sudo apt-get install libopenblas0-pthread
              Fedora:        sudo dnf install openblas
            or point NUDGE_BLAS at any CBLAS library (NUDGE_BLAS=/path/libopenblas.so).
            """)
        }
        return lines.joined(separator: "\n")
    }

    /// The Swift compiler that built Nudge.
    public static var swiftVersion: String {
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
}
