// The engine benchmarks behind `nudge bench` and the NudgeBench executable: sgemm through Nudge
// against a direct cblas call, the per-op floor with tape recording, a CleanRL-sized MLP train
// step, and large elementwise / softmax / RMSNorm throughput. Timings are medians and bests over
// repeats; speed is measured here, never asserted in tests.

import CNudgeKernels
import Foundation
import NudgeNN
import NudgeTensor

/// One measured quantity.
public struct Measurement: Sendable {
    public var name: String
    public var unit: String
    public var median: Double
    public var best: Double
    /// The comparable peer number (PyTorch on this machine), when known.
    public var peer: Double?
    public var peerLabel: String?
}

/// Times `body` (which performs `work` units) in `repeats` rounds of at least `minSeconds` each;
/// returns seconds per unit (median, best).
public func timePerUnit(repeats: Int = 5, minSeconds: Double = 0.2, warmup: Int = 3, _ body: () -> Void) -> (median: Double, best: Double) {
    for _ in 0..<warmup { body() }
    // Calibrate the number of calls per round.
    var calls = 1
    while true {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { body() }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        if dt >= minSeconds / 4 || calls > 1 << 24 { calls = max(1, Int(Double(calls) * minSeconds / max(dt, 1e-9))); break }
        calls *= 4
    }
    var rounds: [Double] = []
    for _ in 0..<repeats {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { body() }
        rounds.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 / Double(calls))
    }
    rounds.sort()
    return (rounds[rounds.count / 2], rounds[0])
}

/// The benchmark suite.
public enum EngineBenchmarks {
    /// sgemm GFLOP/s at (m, n, k) through `matmul` and through a direct `sgemm` call on the same
    /// backend, timed in alternating rounds so drifting machine load hits both alike.
    public static func gemm(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, backend: GemmBackend? = nil) -> (nudge: (Double, Double), direct: (Double, Double)) {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.normal(transA ? [k, m] : [m, k], using: &rng)
        let b = Tensor.normal(transB ? [n, k] : [k, n], using: &rng)
        let flops = 2.0 * Double(m * n * k)
        let c = Tensor(uninitializedShape: [m, n])
        let direct = {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a.data, lda: transA ? m : k,
                  b: b.data, ldb: transB ? k : n, c: c.data, ldc: n, backend: backend)
        }
        let viaTensor = { _ = matmul(a, b, transposeA: transA, transposeB: transB) }
        // Calls per round: about 20 ms of work.
        for _ in 0..<3 { direct(); if backend == nil { viaTensor() } }
        let t0 = DispatchTime.now().uptimeNanoseconds
        direct()
        let single = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        let calls = max(1, Int(0.02 / max(single, 1e-7)))
        var nudgeRounds: [Double] = [], directRounds: [Double] = []
        func round(_ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { body() }
            return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 / Double(calls)
        }
        for _ in 0..<9 {
            directRounds.append(round(direct))
            if backend == nil { nudgeRounds.append(round(viaTensor)) }
        }
        func rate(_ rounds: [Double]) -> (Double, Double) {
            guard !rounds.isEmpty else { return (0, 0) }
            let sorted = rounds.sorted()
            return (flops / sorted[sorted.count / 2] * 1e-9, flops / sorted[0] * 1e-9)
        }
        return (rate(nudgeRounds), rate(directRounds))
    }

    /// µs per op for a chain of 100 elementwise ops on 64 elements, recorded on a tape;
    /// forward only and forward + backward.
    public static func opFloor() -> (forward: (Double, Double), withBackward: (Double, Double)) {
        let x0 = Tensor(repeating: 0.5, shape: [64])
        func chain(_ x: Tensor) -> Tensor {
            var x = x
            for i in 0..<25 {
                x = x * 1.0001
                x = x + 0.001
                x = x.tanh()
                x = i % 2 == 0 ? x - 0.0005 : x * 0.9999
            }
            return x
        }
        let fwd = timePerUnit {
            let leaf = x0.detached()
            _ = recordOnly(leaf, chain)
        }
        let both = timePerUnit { _ = grad([x0]) { chain($0[0]).sum() } }
        return ((fwd.median * 1e6 / 100, fwd.best * 1e6 / 100), (both.median * 1e6 / 101, both.best * 1e6 / 101))
    }

    /// µs per train step of a 4→64→64→2 tanh MLP at batch 128: forward, MSE, backward, Adam.
    public static func mlpStep() -> (Double, Double) {
        var rng = RandomGenerator(seed: 1)
        let model = MLP(sizes: [4, 64, 64, 2], activation: .tanh, using: &rng)
        let x = Tensor.normal([128, 4], using: &rng), y = Tensor.normal([128, 2], using: &rng)
        let opt = Adam(learningRate: 2.5e-4, eps: 1e-5)
        let t = timePerUnit(minSeconds: 0.3) {
            let (_, g) = valueAndGrad(model) { m in mseLoss(m(x), y) }
            opt.update(model, gradients: g)
        }
        return (t.median * 1e6, t.best * 1e6)
    }

    /// ms per op on a (1024, 2048) tensor.
    public static func throughput() -> [(String, Double, Double, Double)] {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.normal([1024, 2048], using: &rng), b = Tensor.normal([1024, 2048], using: &rng)
        let w = Tensor.ones([2048])
        let bytes = Double(a.count * 4)
        let cases: [(String, Double, () -> Void)] = [
            ("add", 3 * bytes, { _ = a + b }),
            ("mul", 3 * bytes, { _ = a * b }),
            ("exp", 2 * bytes, { _ = a.exp() }),
            ("softmax", 2 * bytes, { _ = a.softmax() }),
            ("rmsnorm", 2 * bytes, { _ = a.rmsNorm(weight: w) }),
            ("silu", 2 * bytes, { _ = a.silu() }),
            ("log_softmax", 2 * bytes, { _ = a.logSoftmax() }),
        ]
        return cases.map { name, traffic, body in
            let t = timePerUnit(minSeconds: 0.3, body)
            return (name, t.median * 1e3, t.best * 1e3, traffic / t.best * 1e-9)
        }
    }
}

extension EngineBenchmarks {
    /// Microseconds per x·Wᵀ product (x: m×k, W: n×k): the unpacked AVX2 kernel on one thread,
    /// the default path (that kernel, split by columns over threads for large weights, up to
    /// `m` = 8) and the BLAS backend; medians after a warm-up. The kernel's time is 0 where the
    /// CPU lacks it.
    public static func smallProductMicroseconds(m: Int, n: Int, k: Int) -> (unpacked: Double, defaultPath: Double, blas: Double) {
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.normal([m, k], using: &rng), w = Tensor.normal([n, k], using: &rng)
        let out = Tensor(repeating: 0, shape: [m, n])
        let repeats = max(5, min(2000, 200_000_000 / (m * n * k)))
        func median(_ body: () -> Void) -> Double {
            for _ in 0..<max(2, repeats / 10) { body() }
            var times: [Double] = []
            for _ in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
            }
            return times.sorted()[times.count / 2]
        }
        let unpacked = nudge_has_avx2_fma() == 0 ? 0 : median {
            nudge_sgemm_nt_small(Int32(m), Int32(n), Int32(k), x.data, Int32(k), w.data, Int32(k), out.data, Int32(n))
        }
        let defaultPath = median { sgemm(transA: false, transB: true, m: m, n: n, k: k, a: x.data, lda: k, b: w.data, ldb: k, c: out.data, ldc: n) }
        let blas = median {
            sgemm(transA: false, transB: true, m: m, n: n, k: k, a: x.data, lda: k, b: w.data, ldb: k, c: out.data, ldc: n, backend: BLAS.backend)
        }
        return (unpacked, defaultPath, blas)
    }
}
