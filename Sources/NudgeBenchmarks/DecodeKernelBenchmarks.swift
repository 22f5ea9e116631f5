// The few-row products of decoding, on one thread, with the weight read from memory (cycling
// through copies larger than the last-level cache, as a model's layers are during a decoding
// step) and from cache (one copy): `NudgeBench --only decodekernels`. The numbers in the comments
// of CNudgeKernels' decoding drivers (prefetching) and of `smallProductRowsFromMemory` come from it.

import CNudgeKernels
import Dispatch
import Foundation

extension EngineBenchmarks {
    /// One kernel's time per call (µs, median) on an m × k by (n × k)ᵀ product.
    public struct DecodeKernelTiming: Sendable {
        public var kernel: String
        public var m, n, k: Int
        public var fromMemory, fromCache: Double
    }

    /// Times the Float32 unpacked and packed kernels and the bf16 ones this CPU runs at SmolLM2-135M's
    /// decoding shapes for 1, 8 and 16 rows.
    public static func decodeKernels(rows: [Int] = [1, 8, 16],
                                     shapes: [(n: Int, k: Int)] = [(1536, 576), (576, 1536), (576, 576), (192, 576)]) -> [DecodeKernelTiming] {
        var results: [DecodeKernelTiming] = []
        let sgemmKernel = nudge_sgemm_best_kernel(), bf16Kernel = nudge_bf16_best_kernel()
        for (n, k) in shapes {
            let kp = (k + 31) / 32 * 32
            // Enough copies for 256 MB of Float32 weights: past any last-level cache here.
            let copies = max(2, (256 << 20) / (n * k * 4))
            let weights = UnsafeMutablePointer<Float>.allocate(capacity: copies * n * k)
            let bits = UnsafeMutablePointer<UInt16>.allocate(capacity: copies * n * kp)
            defer { weights.deallocate(); bits.deallocate() }
            for i in 0..<(copies * n * k) { weights[i] = Float((i &* 2_654_435_761) % 1000) / 1000 - 0.5 }
            for c in 0..<copies {
                for o in 0..<n {
                    for j in 0..<kp { bits[(c * n + o) * kp + j] = j < k ? UInt16(weights[(c * n + o) * k + j].bitPattern >> 16) : 0 }
                }
            }
            for m in rows {
                let x = UnsafeMutablePointer<Float>.allocate(capacity: m * k), y = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
                let xb = UnsafeMutablePointer<UInt16>.allocate(capacity: m * kp)
                defer { x.deallocate(); y.deallocate(); xb.deallocate() }
                for i in 0..<(m * k) { x[i] = Float(i % 7) / 7 - 0.5 }
                for r in 0..<m {
                    for j in 0..<kp { xb[r * kp + j] = j < k ? UInt16(x[r * k + j].bitPattern >> 16) : 0 }
                }
                /// Median µs of `call(copy)` over about 0.3 s, cycling through `count` copies.
                func time(_ count: Int, _ call: (Int) -> Void) -> Double {
                    for c in 0..<min(count, 8) { call(c) }
                    var times: [Double] = []
                    let start = DispatchTime.now().uptimeNanoseconds
                    var c = 0
                    while times.count < 5 || DispatchTime.now().uptimeNanoseconds - start < 300_000_000 {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        call(c % count)
                        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
                        c += 1
                    }
                    return times.sorted()[times.count / 2]
                }
                func add(_ name: String, _ call: @escaping (Int) -> Void) {
                    results.append(DecodeKernelTiming(kernel: name, m: m, n: n, k: k, fromMemory: time(copies, call), fromCache: time(1, call)))
                }
                if nudge_has_avx2_fma() != 0 {
                    add("float32 unpacked") { c in
                        nudge_sgemm_nt_small(Int32(m), Int32(n), Int32(k), x, Int32(k), weights + c * n * k, Int32(k), y, Int32(n))
                    }
                }
                if sgemmKernel != Int32(NUDGE_SGEMM_NONE) {
                    add("float32 packed") { c in
                        nudge_sgemm(sgemmKernel, 0, 1, m, n, k, 1, x, k, weights + c * n * k, k, 0, y, n)
                    }
                }
                if bf16Kernel >= Int32(NUDGE_BF16_DOT) {
                    add("bf16 vdpbf16ps") { c in
                        nudge_bf16_linear(Int32(NUDGE_BF16_DOT), Int32(m), Int32(n), Int32(k), x, k, xb, kp, bits + c * n * kp, kp, y, n)
                    }
                }
                if bf16Kernel >= Int32(NUDGE_BF16_AVX2) {
                    add("bf16 widened, AVX2") { c in
                        nudge_bf16_linear(Int32(NUDGE_BF16_AVX2), Int32(m), Int32(n), Int32(k), x, k, xb, kp, bits + c * n * kp, kp, y, n)
                    }
                }
                if bf16Kernel >= Int32(NUDGE_BF16_AVX512) {
                    add("bf16 widened, AVX-512") { c in
                        nudge_bf16_linear(Int32(NUDGE_BF16_AVX512), Int32(m), Int32(n), Int32(k), x, k, xb, kp, bits + c * n * kp, kp, y, n)
                    }
                }
            }
        }
        return results
    }
}
