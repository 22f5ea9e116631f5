// The processor, as /proc/cpuinfo names it: its model and the instruction-set features the kernels
// care about (`nudge doctor` reports them).

import Foundation

/// A processor's model name and its instruction-set features of interest to the kernels.
public struct CPUInfo: Sendable {
    /// The model name, or "unknown".
    public var model: String
    /// The features present among SSE4.2, AVX, AVX2, FMA, AVX-512 (F, BW, BF16), AMX, ASIMD and SVE, by their cpuinfo names.
    public var features: [String]

    /// This machine's processor (on a system without /proc/cpuinfo: arm64 with NEON, else unknown).
    public static var current: CPUInfo {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            #if arch(arm64)
            return CPUInfo(model: "arm64", features: ["neon"])
            #else
            return CPUInfo(model: "unknown", features: [])
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
        return CPUInfo(model: model, features: interesting.filter { flags.contains($0) })
    }
}
