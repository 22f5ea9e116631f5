// The C elementwise kernels (AVX2 and AVX-512F, CNudgeKernels/elementwise.c) against the portable
// Swift path bit for bit where they promise it (maps and their backward rules), against Double
// references with stated bounds (exp, tanh, tanh-GELU, softmax, log-softmax and their backward
// rules), at lengths with every tail size, with each instruction set forced; results that do not
// depend on how the work is split over threads; and central differences through the routed ops.

import CNudgeKernels
import Foundation
import Testing
@testable import NudgeTensor

/// The C kernels this CPU runs (none off x86-64 or without AVX2/FMA).
private let cKernels = BuiltinGemm.Kernel.allCases.filter { $0 != .portable && $0.isSupported }

/// Lengths covering every tail of 8 and 16 lanes, and one past the routing threshold.
private let lengths = [1, 2, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 100, 257, 1023, 4099]

private func values(_ n: Int, seed: UInt64, low: Float = -10, high: Float = 10) -> [Float] {
    var rng = RandomGenerator(seed: seed)
    return (0..<n).map { _ in Float(rng.uniform(Double(low), Double(high))) }
}

private func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// A C map over `n` outputs.
private func run(_ n: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    var out = [Float](repeating: .nan, count: n)
    out.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    return out
}

/// The Swift SIMD8 path for `F` over `x`.
private func swiftMap<F: VectorFunction>(_: F.Type, _ x: [Float]) -> [Float] {
    run(x.count) { y in x.withUnsafeBufferPointer { vectorLoop(F.self, $0.baseAddress!, y, x.count) } }
}

struct ElementwiseKernelTests {
    @Test func kernelIsOneThisCPURuns() {
        #expect(ElementwiseKernels.kernel.isSupported)
        if nudge_sgemm_best_kernel() != Int32(NUDGE_SGEMM_NONE) && ProcessInfo.processInfo.environment["NUDGE_ELEMENTWISE_KERNEL"] == nil {
            #expect(ElementwiseKernels.kernel != .portable)
        }
    }

    /// exp, tanh, σ, SiLU, tanh-GELU and negation: the same bits as the Swift SIMD8 functions, on every
    /// kernel and every tail length.
    @Test func unaryMapsMatchTheSwiftPathBitForBit() {
        for kernel in cKernels {
            for n in lengths {
                // Beyond exp's clamps and tanh's limit too, and the special values.
                var x = values(n, seed: UInt64(n), low: -95, high: 95)
                if n >= 8 { x[0] = 0; x[1] = -0.0; x[2] = .infinity; x[3] = -.infinity; x[4] = 1e-30; x[5] = 88.5; x[6] = -87.5 }
                let cases: [(Int32, [Float])] = [
                    (Int32(NUDGE_EW_EXP), swiftMap(ExpFunction.self, x)), (Int32(NUDGE_EW_TANH), swiftMap(TanhFunction.self, x)),
                    (Int32(NUDGE_EW_SIGMOID), swiftMap(SigmoidFunction.self, x)), (Int32(NUDGE_EW_SILU), swiftMap(SiLUFunction.self, x)),
                    (Int32(NUDGE_EW_GELU_TANH), swiftMap(GeluTanhFunction.self, x)), (Int32(NUDGE_EW_NEG), x.map { -$0 }),
                ]
                for (op, expected) in cases {
                    let got = run(n) { y in nudge_ew_unary(kernel.cKernel, op, x, y, n) }
                    #expect(bitsEqual(got, expected), "\(kernel) op \(op) n \(n)")
                }
            }
        }
    }

    @Test func binaryAndScalarMapsMatchTheSwiftPathBitForBit() {
        for kernel in cKernels {
            for n in lengths {
                let a = values(n, seed: UInt64(n) + 1), b = values(n, seed: UInt64(n) + 2)
                let s: Float = -1.7
                let binary: [(Int32, (Float, Float) -> Float)] = [
                    (Int32(NUDGE_EW_ADD), { $0 + $1 }), (Int32(NUDGE_EW_SUB), { $0 - $1 }),
                    (Int32(NUDGE_EW_MUL), { $0 * $1 }), (Int32(NUDGE_EW_DIV), { $0 / $1 }),
                ]
                for (op, f) in binary {
                    let got = run(n) { y in nudge_ew_binary(kernel.cKernel, op, a, b, y, n) }
                    #expect(bitsEqual(got, zip(a, b).map(f)), "\(kernel) binary op \(op) n \(n)")
                }
                let scalar: [(Int32, (Float) -> Float)] = [
                    (Int32(NUDGE_EW_SCALAR_ADD), { $0 + s }), (Int32(NUDGE_EW_SCALAR_MUL), { $0 * s }),
                    (Int32(NUDGE_EW_SCALAR_RSUB), { s - $0 }), (Int32(NUDGE_EW_SCALAR_RDIV), { s / $0 }),
                    (Int32(NUDGE_EW_SCALAR_DIV), { $0 / s }),
                ]
                for (op, f) in scalar {
                    let got = run(n) { y in nudge_ew_scalar(kernel.cKernel, op, a, s, y, n) }
                    #expect(bitsEqual(got, a.map(f)), "\(kernel) scalar op \(op) n \(n)")
                }
            }
        }
    }

    @Test func backwardRulesMatchTheSwiftPathBitForBit() {
        for kernel in cKernels {
            for n in lengths {
                let g = values(n, seed: UInt64(n) + 3, low: -1, high: 1), x = values(n, seed: UInt64(n) + 4)
                let y = swiftMap(TanhFunction.self, x)
                let silu = run(n) { o in siluBackwardKernel(g, x, o, n) }
                let gelu = run(n) { o in geluTanhBackwardKernel(g, x, o, n) }
                let cases: [(Int32, [Float])] = [
                    (Int32(NUDGE_EW_EXP), zip(g, y).map { $0 * $1 }),
                    (Int32(NUDGE_EW_TANH), zip(g, y).map { $0 * (1 - $1 * $1) }),
                    (Int32(NUDGE_EW_SIGMOID), zip(g, y).map { $0 * $1 * (1 - $1) }),
                    (Int32(NUDGE_EW_SILU), silu), (Int32(NUDGE_EW_GELU_TANH), gelu), (Int32(NUDGE_EW_NEG), g.map { -$0 }),
                ]
                for (op, expected) in cases {
                    let got = run(n) { d in nudge_ew_unary_backward(kernel.cKernel, op, g, x, y, d, n) }
                    #expect(bitsEqual(got, expected), "\(kernel) backward op \(op) n \(n)")
                }
            }
        }
    }

    /// The shared approximations against Double: exp relative error ≤ 3e-7 over [−87, 88];
    /// tanh absolute ≤ 2e-7; tanh-GELU absolute ≤ 2e-7·max(1, |x|); SiLU and σ relative ≤ 1e-6.
    @Test func approximationsAgainstDouble() {
        for kernel in cKernels {
            let n = 20_011
            let x = values(n, seed: 5, low: -87, high: 88)
            let e = run(n) { y in nudge_ew_unary(kernel.cKernel, Int32(NUDGE_EW_EXP), x, y, n) }
            let worstExp = zip(x, e).map { abs(Double($1) - Foundation.exp(Double($0))) / Foundation.exp(Double($0)) }.max()!
            #expect(worstExp <= 3e-7, "\(kernel) exp relative error \(worstExp)")
            let z = values(n, seed: 6, low: -12, high: 12)
            let t = run(n) { y in nudge_ew_unary(kernel.cKernel, Int32(NUDGE_EW_TANH), z, y, n) }
            let worstTanh = zip(z, t).map { abs(Double($1) - Foundation.tanh(Double($0))) }.max()!
            #expect(worstTanh <= 2e-7, "\(kernel) tanh absolute error \(worstTanh)")
            let gl = run(n) { y in nudge_ew_unary(kernel.cKernel, Int32(NUDGE_EW_GELU_TANH), z, y, n) }
            let worstGelu = zip(z, gl).map { x, y in
                let d = Double(x)
                let ref = 0.5 * d * (1 + Foundation.tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
                return abs(Double(y) - ref) / Swift.max(1, abs(d))
            }.max()!
            #expect(worstGelu <= 2e-7, "\(kernel) tanh-GELU error \(worstGelu)")
            let s = run(n) { y in nudge_ew_unary(kernel.cKernel, Int32(NUDGE_EW_SILU), z, y, n) }
            let worstSilu = zip(z, s).map { x, y in
                let ref = Double(x) / (1 + Foundation.exp(-Double(x)))
                return abs(Double(y) - ref) / Swift.max(abs(ref), 1e-30)
            }.max()!
            #expect(worstSilu <= 1e-6, "\(kernel) SiLU relative error \(worstSilu)")
        }
    }

    /// softmax / log-softmax rows and their backward rules: AVX2 and AVX-512 bit for bit, and
    /// against Double: softmax relative ≤ 2e-6, log-softmax absolute ≤ 4e-6·(1 + |ref|), backward
    /// absolute ≤ 2e-6 relative to the row's Σ|terms|.
    /// A vocabulary row's maximum and Σ exp(x − m) (sampling's distribution): against Double on
    /// every kernel, the same bits on AVX2 and AVX-512, and a row of −∞ kept as (−∞, 0).
    @Test func maxAndExpSumAgainstDoubleAndAcrossKernels() {
        for n in lengths + [49_152] {
            let x = values(n, seed: UInt64(n) + 11, low: -20, high: 20)
            let xs = x.map(Double.init)
            let m = xs.max()!
            let exact = xs.map { Foundation.exp($0 - m) }
            let total = exact.reduce(0, +)
            var results: [[Float]] = []
            for kernel in cKernels {
                var top: Float = 0
                var sum: Float = 0
                let e = run(n) { e in sum = nudge_max_exp_sum(kernel.cKernel, x, e, n, &top) }
                #expect(Double(top) == m, "\(kernel) max n \(n)")
                #expect(abs(Double(sum) - total) <= 2e-6 * total, "\(kernel) Σ exp n \(n): \(sum) vs \(total)")
                for j in 0..<n { #expect(abs(Double(e[j]) - exact[j]) <= 2e-6 * exact[j] + 1e-30, "\(kernel) exp n \(n) [\(j)]") }
                results.append(e + [top, sum])
                let skipped = nudge_max_exp_sum(kernel.cKernel, x, nil, n, &top)
                #expect(skipped.bitPattern == sum.bitPattern, "\(kernel) Σ without writing the exponentials")
                let minusInfinity = [Float](repeating: -.infinity, count: n)
                #expect(nudge_max_exp_sum(kernel.cKernel, minusInfinity, nil, n, &top) == 0 && top == -.infinity)
            }
            if results.count == 2 { #expect(bitsEqual(results[0], results[1]), "AVX2 vs AVX-512, n \(n)") }
            // The public entry point on the active kernel (or the Swift path) agrees with Double too.
            let (pm, ps) = x.withUnsafeBufferPointer { ElementwiseKernels.maxAndExpSum($0) }
            #expect(Double(pm) == m && abs(Double(ps) - total) <= 2e-6 * total)
        }
    }

    @Test func softmaxRowsAgainstDoubleAndAcrossKernels() {
        for n in lengths {
            let rows = 3
            let x = values(rows * n, seed: UInt64(n) + 7, low: -12, high: 12)
            let g = values(rows * n, seed: UInt64(n) + 8, low: -1, high: 1)
            var results: [[[Float]]] = []
            for kernel in cKernels {
                let k = kernel.cKernel
                let sm = run(rows * n) { y in nudge_softmax_rows(k, x, y, rows, n) }
                let lsm = run(rows * n) { y in nudge_log_softmax_rows(k, x, y, rows, n) }
                let dsm = run(rows * n) { d in nudge_softmax_backward_rows(k, g, sm, d, rows, n) }
                let dlsm = run(rows * n) { d in nudge_log_softmax_backward_rows(k, g, lsm, d, rows, n) }
                results.append([sm, lsm, dsm, dlsm])
                for r in 0..<rows {
                    let xs = x[(r * n)..<((r + 1) * n)].map(Double.init), gs = g[(r * n)..<((r + 1) * n)].map(Double.init)
                    let m = xs.max()!
                    let total = xs.reduce(0) { $0 + Foundation.exp($1 - m) }
                    let p = xs.map { Foundation.exp($0 - m) / total }
                    let dot = zip(gs, p).reduce(0) { $0 + $1.0 * $1.1 }, gsum = gs.reduce(0, +)
                    let absDot = zip(gs, p).reduce(0) { $0 + abs($1.0 * $1.1) }, absG = gs.reduce(0) { $0 + abs($1) }
                    for j in 0..<n {
                        let i = r * n + j
                        #expect(abs(Double(sm[i]) - p[j]) <= 2e-6 * p[j], "\(kernel) softmax n \(n) [\(i)]: \(sm[i]) vs \(p[j])")
                        let l = xs[j] - m - Foundation.log(total)
                        #expect(abs(Double(lsm[i]) - l) <= 4e-6 * (1 + abs(l)), "\(kernel) log-softmax n \(n) [\(i)]: \(lsm[i]) vs \(l)")
                        let scale = abs(gs[j] * p[j]) + p[j] * absDot
                        #expect(abs(Double(dsm[i]) - (gs[j] * p[j] - p[j] * dot)) <= 2e-6 * scale + 1e-12,
                                "\(kernel) softmax backward n \(n) [\(i)]")
                        let lscale = abs(gs[j]) + p[j] * absG
                        // exp of the Float log-softmax carries its absolute error (≤ 4e-6·(1 + |l|)) as a relative one.
                        #expect(abs(Double(dlsm[i]) - (gs[j] - p[j] * gsum)) <= 4e-6 * (1 + abs(l)) * lscale + 1e-12,
                                "\(kernel) log-softmax backward n \(n) [\(i)]")
                    }
                }
            }
            if results.count == 2 {
                for (a, b) in zip(results[0], results[1]) { #expect(bitsEqual(a, b), "AVX2 vs AVX-512 rows, n \(n)") }
            }
        }
    }

    /// Splitting a map or a row kernel at any point (as `parallelRanges` does, for any thread
    /// count) gives the same bits as one call.
    @Test func splitsGiveTheSameBits() {
        for kernel in cKernels {
            let k = kernel.cKernel
            let n = 5_003
            let x = values(n, seed: 11), b = values(n, seed: 12)
            let whole = run(n) { y in nudge_ew_unary(k, Int32(NUDGE_EW_SILU), x, y, n) }
            let wholeSum = run(n) { y in nudge_ew_binary(k, Int32(NUDGE_EW_ADD), x, b, y, n) }
            for cut in [1, 7, 64, 2_500, 4_999] {
                let parts = run(n) { y in
                    x.withUnsafeBufferPointer { xp in
                        nudge_ew_unary(k, Int32(NUDGE_EW_SILU), xp.baseAddress!, y, cut)
                        nudge_ew_unary(k, Int32(NUDGE_EW_SILU), xp.baseAddress! + cut, y + cut, n - cut)
                    }
                }
                #expect(bitsEqual(parts, whole), "\(kernel) SiLU split at \(cut)")
                let sums = run(n) { y in
                    x.withUnsafeBufferPointer { xp in
                        b.withUnsafeBufferPointer { bp in
                            nudge_ew_binary(k, Int32(NUDGE_EW_ADD), xp.baseAddress!, bp.baseAddress!, y, cut)
                            nudge_ew_binary(k, Int32(NUDGE_EW_ADD), xp.baseAddress! + cut, bp.baseAddress! + cut, y + cut, n - cut)
                        }
                    }
                }
                #expect(bitsEqual(sums, wholeSum), "\(kernel) add split at \(cut)")
            }
            let rows = 37, width = 135
            let r0 = values(rows * width, seed: 13)
            let all = run(rows * width) { y in nudge_softmax_rows(k, r0, y, rows, width) }
            let split = run(rows * width) { y in
                r0.withUnsafeBufferPointer { xp in
                    nudge_softmax_rows(k, xp.baseAddress!, y, 10, width)
                    nudge_softmax_rows(k, xp.baseAddress! + 10 * width, y + 10 * width, rows - 10, width)
                }
            }
            #expect(bitsEqual(all, split), "\(kernel) softmax rows split")
        }
    }

    /// Tensor ops on tensors large enough to be threaded (> `Engine.parallelThreshold`) give the
    /// bits of one unsplit call, and the routed maps the bits of the Swift path.
    @Test func threadedTensorOpsMatchOneCall() {
        guard let kernel = cKernels.last, ElementwiseKernels.kernel != .portable else { return }
        let k = kernel.cKernel
        let shape = [300, 1_001]  // 300,300 elements: over the threshold, rows of an odd length
        let a = randomTensor(shape, seed: 21, low: -5, high: 5), b = randomTensor(shape, seed: 22, low: 0.5, high: 2)
        let n = a.count
        func one(_ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] { run(n, body) }
        #expect(bitsEqual((a + b).scalars, one { nudge_ew_binary(k, Int32(NUDGE_EW_ADD), a.data, b.data, $0, n) }))
        #expect(bitsEqual((a / b).scalars, zip(a.scalars, b.scalars).map { $0 / $1 }))
        let bias = randomTensor([1_001], seed: 23)
        #expect(bitsEqual((a + bias).scalars, Tensor.broadcastMap(a, bias, AddFunction.self).scalars))
        #expect(bitsEqual((a * bias).scalars, Tensor.broadcastMap(a, bias, MultiplyFunction.self).scalars))
        #expect(bitsEqual((a * 0.3).scalars, a.scalars.map { $0 * 0.3 }))
        #expect(bitsEqual((2 - a).scalars, a.scalars.map { 2 - $0 }))
        #expect(bitsEqual((a - Tensor(0.25)).scalars, a.scalars.map { $0 - 0.25 }))
        #expect(bitsEqual(a.exp().scalars, swiftMap(ExpFunction.self, a.scalars)))
        #expect(bitsEqual(a.silu().scalars, swiftMap(SiLUFunction.self, a.scalars)))
        #expect(bitsEqual(a.gelu(approximate: true).scalars, swiftMap(GeluTanhFunction.self, a.scalars)))
        #expect(bitsEqual(a.softmax().scalars, one { nudge_softmax_rows(k, a.data, $0, 300, 1_001) }))
        #expect(bitsEqual(a.logSoftmax().scalars, one { nudge_log_softmax_rows(k, a.data, $0, 300, 1_001) }))
        // Gradients through the routed backward rules.
        let (_, g) = valueAndGrad([a]) { xs in (xs[0].silu() * b).sum() }
        let silu = one { o in siluBackwardKernel(b.data, a.data, o, n) }
        #expect(bitsEqual(g[0].scalars, silu))
        let (_, gs) = valueAndGrad([a]) { xs in (xs[0].softmax() * b).sum() }
        let y = a.softmax()
        #expect(bitsEqual(gs[0].scalars, one { nudge_softmax_backward_rows(k, b.data, y.data, $0, 300, 1_001) }))
    }

    /// Central differences along one random direction through every routed op on tensors above the
    /// routing threshold (so the C backward rules run): (L(x + hv) − L(x − hv)) / 2h against ⟨∇L, v⟩.
    @Test func directionalDerivativesOfRoutedOps() {
        let shape = [8, 1_031]  // 8,248 elements
        let x = randomTensor(shape, seed: 31, low: -3, high: 3)
        let v = randomTensor(shape, seed: 32), w = randomTensor(shape, seed: 33)
        let other = randomTensor(shape, seed: 34, low: 0.5, high: 2)
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("exp", { $0.exp() }), ("tanh", { $0.tanh() }), ("sigmoid", { $0.sigmoid() }), ("silu", { $0.silu() }),
            ("geluTanh", { $0.gelu(approximate: true) }), ("neg", { -$0 }), ("scalar", { 3 - $0 * 0.5 + 1 }),
            ("mul", { $0 * other }), ("div", { $0 / other }), ("rdiv", { other / ($0 * 0.1 + 4) }), ("sub", { other - $0 }),
            ("softmax", { ($0 * 3).softmax() }), ("logSoftmax", { ($0 * 3).logSoftmax() }),
        ]
        let h: Float = 1e-2
        for (name, f) in ops {
            func loss(_ t: Tensor) -> Double { weightedSum(withoutGradients { f(t) }, w.scalars) }
            let (_, g) = valueAndGrad([x]) { xs in (f(xs[0]) * w).sum() }
            let analytic = zip(g[0].scalars, v.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let numeric = (loss(x + v * h) - loss(x - v * h)) / Double(2 * h)
            #expect(abs(analytic - numeric) <= 1e-2 + 2e-3 * abs(numeric), "\(name): analytic \(analytic) vs numeric \(numeric)")
        }
    }
}
