// Nudge's own sgemm kernels (packed C with AVX-512 or AVX2+FMA, and the portable Swift kernel)
// against a Double-accumulated product by the definition: every transpose case, shapes that are
// not multiples of the register tile or the cache blocks, α/β, strided operands, and
// bit-identical results however a product is split over threads.

import Foundation
import CNudgeKernels
import Testing
@testable import NudgeTensor

/// The C kernels this CPU runs (none off x86-64 or without AVX2/FMA).
private let cKernels = BuiltinGemm.Kernel.allCases.filter { $0 != .portable && $0.isSupported }

/// One product's operands with row strides larger than needed (the padding holds NaN, which
/// must never reach C).
struct Operands {
    let m: Int, n: Int, k: Int, ta: Bool, tb: Bool
    let lda: Int, ldb: Int, ldc: Int
    var a: [Float], b: [Float], c0: [Float]

    init(m: Int, n: Int, k: Int, ta: Bool, tb: Bool, pad: Int = 3, seed: UInt64) {
        (self.m, self.n, self.k, self.ta, self.tb) = (m, n, k, ta, tb)
        let (aRows, aCols) = ta ? (k, m) : (m, k), (bRows, bCols) = tb ? (n, k) : (k, n)
        (lda, ldb, ldc) = (aCols + pad, bCols + pad + 1, n + pad)
        func strided(_ rows: Int, _ cols: Int, _ ld: Int, _ seed: UInt64) -> [Float] {
            let values = randomTensor([max(rows * cols, 1)], seed: seed).scalars
            var out = [Float](repeating: .nan, count: max(rows * ld, 1))
            for r in 0..<rows { for j in 0..<cols { out[r * ld + j] = values[r * cols + j] } }
            return out
        }
        a = strided(aRows, aCols, lda, seed)
        b = strided(bRows, bCols, ldb, seed + 1)
        c0 = strided(m, n, ldc, seed + 2)
    }

    func opA(_ i: Int, _ p: Int) -> Float { ta ? a[p * lda + i] : a[i * lda + p] }
    func opB(_ p: Int, _ j: Int) -> Float { tb ? b[j * ldb + p] : b[p * ldb + j] }

    /// α·op(A)·op(B) + β·C0 in Double, and the scale Σ|α·a·b| + |β·c0| of each element, which bounds
    /// the rounding error of any summation order.
    func reference(alpha: Float, beta: Float) -> (value: [Double], scale: [Double]) {
        var value = [Double](repeating: 0, count: m * n), scale = value
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, t = 0.0
                for p in 0..<k {
                    let x = Double(opA(i, p)) * Double(opB(p, j))
                    s += x
                    t += abs(x)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j])
                value[i * n + j] = Double(alpha) * s + old
                scale[i * n + j] = abs(Double(alpha)) * t + abs(old)
            }
        }
        return (value, scale)
    }

    /// C after the product on `kernel`; C starts as C0, or all NaN when β = 0.
    func run(_ kernel: BuiltinGemm.Kernel, alpha: Float, beta: Float, threads: Int = 1, parallelMinimum: Int = .max) -> [Float] {
        var c = beta == 0 ? [Float](repeating: .nan, count: c0.count) : c0
        // Keep the NaN padding so a write past column n shows.
        for r in 0..<m { for j in n..<ldc { c[r * ldc + j] = .nan } }
        builtinGemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, c: &c, ldc: ldc, kernel: kernel, threads: threads, parallelMinimum: parallelMinimum)
        return c
    }

    /// Records an issue unless `c` is within the rounding bound of the reference everywhere and the
    /// padding past column n is untouched.
    func check(_ c: [Float], alpha: Float, beta: Float, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let (value, scale) = reference(alpha: alpha, beta: beta)
        // Any order of k + 2 float operations per element: |error| ≤ (k + 2)·2⁻²⁴·scale, plus a
        // float's own rounding.
        let unit = pow(2.0, -24.0)
        for i in 0..<m {
            for j in 0..<n {
                let got = Double(c[i * ldc + j]), want = value[i * n + j]
                let bound = Double(k + 3) * unit * scale[i * n + j] + 1e-30
                if !(abs(got - want) <= bound) {
                    Issue.record("\(label) \(m)×\(n)×\(k) \(ta ? "T" : "N")\(tb ? "T" : "N") α \(alpha) β \(beta): C[\(i), \(j)] = \(got), want \(want) ± \(bound)",
                                 sourceLocation: sourceLocation)
                    return
                }
            }
            for j in n..<ldc where !c[i * ldc + j].isNaN {
                Issue.record("\(label): C[\(i), \(j)] past column \(n) was written", sourceLocation: sourceLocation)
                return
            }
        }
    }
}

@Suite("Gemm") struct GemmTests {
    /// Sizes around the tiles (MR 6 or 12, NR 16 or 32) and past the cache blocks (KC 384,
    /// NC 512), one dimension at a time, then a few large mixed shapes.
    static let shapes: [(Int, Int, Int)] = {
        let sizes = [1, 2, 5, 7, 15, 17, 63, 65, 129, 257]
        var shapes = sizes.map { ($0, 17, 33) } + sizes.map { (15, $0, 65) } + sizes.map { (7, 63, $0) }
        shapes += [(20, 65, 385), (33, 513, 17), (9, 33, 769), (257, 129, 7), (2, 600, 1)]
        return shapes
    }()

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func kernelsMatchTheDefinition(ta: Bool, tb: Bool) {
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            let ops = Operands(m: m, n: n, k: k, ta: ta, tb: tb, seed: UInt64(10 + index))
            for kernel in cKernels + [.portable] {
                ops.check(ops.run(kernel, alpha: 1, beta: 0), alpha: 1, beta: 0, kernel.rawValue)
            }
        }
    }

    @Test func alphaAndBeta() {
        // β = 0 must ignore the NaN C starts with; β = 1 accumulates; other values scale.
        for (alpha, beta) in [(Float(1), Float(1)), (-0.5, 0), (2, 0.25), (0.75, -1)] {
            for (m, n, k, ta, tb) in [(7, 33, 65, false, true), (20, 17, 400, true, false), (1, 1, 1, false, false), (15, 70, 9, true, true)] {
                let ops = Operands(m: m, n: n, k: k, ta: ta, tb: tb, seed: 7)
                for kernel in cKernels + [.portable] {
                    ops.check(ops.run(kernel, alpha: alpha, beta: beta), alpha: alpha, beta: beta, kernel.rawValue)
                }
            }
        }
    }

    @Test func emptyInnerDimensionScalesC() {
        for kernel in cKernels + [.portable] {
            for (alpha, beta) in [(Float(1), Float(0)), (1, 0.5), (0, 2)] {
                let ops = Operands(m: 5, n: 9, k: alpha == 0 ? 4 : 0, ta: false, tb: false, seed: 3)
                ops.check(ops.run(kernel, alpha: alpha, beta: beta), alpha: alpha, beta: beta, kernel.rawValue)
            }
        }
    }

    /// Splitting C by columns (n ≥ m) or rows (m > n) over 2 or 3 threads gives the same bits as
    /// one thread, with β = 1 and k across several cache blocks.
    @Test func threadCountDoesNotChangeTheBits() {
        for (m, n, k, ta, tb) in [(13, 301, 400, false, true), (301, 13, 390, true, false), (129, 129, 64, false, false), (5, 1000, 17, true, true)] {
            let ops = Operands(m: m, n: n, k: k, ta: ta, tb: tb, seed: 21)
            for kernel in cKernels {
                let one = ops.run(kernel, alpha: 0.5, beta: 1)
                for threads in [2, 3] {
                    let split = ops.run(kernel, alpha: 0.5, beta: 1, threads: threads, parallelMinimum: 0)
                    #expect(zip(one, split).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                            "\(kernel.rawValue) \(m)×\(n)×\(k) on \(threads) threads")
                }
            }
        }
    }

    /// The C kernels share KC and compute every element as the same FMA chain, so AVX2 and
    /// AVX-512 machines get the same bits (checked where the CPU runs both).
    @Test func cKernelsGiveTheSameBits() {
        guard cKernels.count > 1 else { return }
        for (m, n, k, ta, tb) in [(13, 301, 400, false, true), (100, 37, 390, true, false), (7, 64, 544, false, false), (50, 20, 9, true, true)] {
            let ops = Operands(m: m, n: n, k: k, ta: ta, tb: tb, seed: 31)
            let results = cKernels.map { ops.run($0, alpha: 0.5, beta: 1) }
            #expect(results.allSatisfy { zip($0, results[0]).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) } },
                    "\(m)×\(n)×\(k)")
        }
    }

    @Test func builtinBackendUsesTheActiveKernel() {
        // `.builtin` runs `BuiltinGemm.kernel`: the fastest kernel this CPU runs unless
        // NUDGE_GEMM_KERNEL names another.
        if ProcessInfo.processInfo.environment["NUDGE_GEMM_KERNEL"] == nil {
            #expect(BuiltinGemm.kernel == BuiltinGemm.Kernel.allCases.first(where: \.isSupported))
        }
        let ops = Operands(m: 40, n: 50, k: 60, ta: false, tb: true, pad: 0, seed: 5)
        var c = [Float](repeating: 0, count: 40 * 50)
        sgemm(transA: false, transB: true, m: 40, n: 50, k: 60, a: ops.a, lda: ops.lda, b: ops.b, ldb: ops.ldb, c: &c, ldc: 50, backend: .builtin)
        #expect(c == ops.run(BuiltinGemm.kernel, alpha: 1, beta: 0))
    }
}

/// A Float32 value rounded to bf16 (to nearest, ties to even) and widened back.
private func bf16Rounded(_ x: Float) -> Float {
    var out: UInt16 = 0
    withUnsafePointer(to: x) { nudge_f32_to_bf16(1, $0, &out) }
    return Float(bitPattern: UInt32(out) << 16)
}

/// The mixed-precision kernel (`nudge_bf16_gemm`, AVX512_BF16): its operands are rounded to bf16
/// and the exact products summed in Float32, so it must match the Double product of the ROUNDED
/// operands within Float32 summation error, and differ from the unrounded product by bf16's.
@Suite("bf16 Gemm") struct BF16GemmTests {
    /// The operands of `ops` rounded to bf16 (NaN padding stays NaN).
    private func rounded(_ ops: Operands) -> Operands {
        var copy = ops
        copy.a = ops.a.map(bf16Rounded)
        copy.b = ops.b.map(bf16Rounded)
        return copy
    }

    private func run(_ ops: Operands, alpha: Float, beta: Float, threads: Int = 1, parallelMinimum: Int = .max) -> [Float] {
        var c = beta == 0 ? [Float](repeating: .nan, count: ops.c0.count) : ops.c0
        for r in 0..<ops.m { for j in ops.n..<ops.ldc { c[r * ops.ldc + j] = .nan } }
        builtinGemm(transA: ops.ta, transB: ops.tb, m: ops.m, n: ops.n, k: ops.k, alpha: alpha, a: ops.a, lda: ops.lda, b: ops.b,
                    ldb: ops.ldb, beta: beta, c: &c, ldc: ops.ldc, threads: threads, parallelMinimum: parallelMinimum, bf16: true)
        return c
    }

    /// Around the tile (12 × 32), odd k (a pair padded with zero) and past the k block (768).
    static let shapes: [(Int, Int, Int)] = GemmTests.shapes + [(40, 70, 767), (13, 33, 769), (25, 64, 1537), (100, 300, 2)]

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matchesTheProductOfRoundedOperands(ta: Bool, tb: Bool) {
        guard MixedPrecision.isSupported else { return }  // no AVX512_BF16: the kernel does not exist here
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            let ops = Operands(m: m, n: n, k: k, ta: ta, tb: tb, seed: UInt64(40 + index))
            rounded(ops).check(run(ops, alpha: 1, beta: 0), alpha: 1, beta: 0, "bf16")
        }
    }

    @Test func alphaAndBeta() {
        guard MixedPrecision.isSupported else { return }
        for (alpha, beta) in [(Float(1), Float(1)), (-0.5, 0), (2, 0.25), (0.75, -1)] {
            for (m, n, k, ta, tb) in [(7, 33, 65, false, true), (20, 17, 800, true, false), (1, 1, 1, false, false), (15, 70, 9, true, true)] {
                let ops = Operands(m: m, n: n, k: k, ta: ta, tb: tb, seed: 9)
                rounded(ops).check(run(ops, alpha: alpha, beta: beta), alpha: alpha, beta: beta, "bf16")
            }
        }
    }

    /// The operands really are rounded: against the unrounded product, the error is bf16's
    /// (relative 2⁻⁹ per operand), far above Float32's.
    @Test func roundsItsOperands() {
        guard MixedPrecision.isSupported else { return }
        let ops = Operands(m: 40, n: 50, k: 300, ta: false, tb: true, seed: 4)
        let c = run(ops, alpha: 1, beta: 0), (value, scale) = ops.reference(alpha: 1, beta: 0)
        let worst = (0..<40).flatMap { i in (0..<50).map { j in abs(Double(c[i * ops.ldc + j]) - value[i * 50 + j]) / scale[i * 50 + j] } }.max()!
        #expect(worst > 1e-4 && worst < 1e-2, "worst relative error \(worst)")
    }

    @Test func threadCountDoesNotChangeTheBits() {
        guard MixedPrecision.isSupported else { return }
        for (m, n, k, ta, tb) in [(13, 301, 900, false, true), (301, 13, 390, true, false), (129, 129, 64, false, false), (5, 1000, 17, true, true)] {
            let ops = Operands(m: m, n: n, k: k, ta: ta, tb: tb, seed: 23)
            let one = run(ops, alpha: 0.5, beta: 1)
            for threads in [2, 3] {
                let split = run(ops, alpha: 0.5, beta: 1, threads: threads, parallelMinimum: 0)
                #expect(zip(one, split).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "\(m)×\(n)×\(k) on \(threads) threads")
            }
        }
    }

    /// Inside `MixedPrecision.bf16`, sgemm runs the bf16 kernel on products larger than decoding
    /// batches and Float32 elsewhere; outside it, always Float32.
    @Test func scopeRoutesLargeProductsOnly() {
        guard MixedPrecision.isSupported else {
            #expect(MixedPrecision.bf16 { !MixedPrecision.isActive })
            return
        }
        let rows = MixedPrecision.minimumRows
        for m in [rows, rows + 1] {
            let ops = Operands(m: m, n: 64, k: 96, ta: false, tb: true, pad: 0, seed: 8)
            func product() -> [Float] {
                var c = [Float](repeating: 0, count: m * 64)
                sgemm(transA: false, transB: true, m: m, n: 64, k: 96, a: ops.a, lda: ops.lda, b: ops.b, ldb: ops.ldb, c: &c, ldc: 64)
                return c
            }
            let plain = product(), scoped = MixedPrecision.bf16 { product() }
            #expect(plain == product())
            if m > rows {
                #expect(scoped == run(ops, alpha: 1, beta: 0))
                #expect(scoped != plain)
            } else {
                #expect(scoped == plain)
            }
        }
        #expect(!MixedPrecision.isActive)
        #expect(MixedPrecision.bf16(false) { !MixedPrecision.isActive })
    }

    /// A scope holds for its thread and the pieces `parallelRanges` splits off it, never for
    /// work on other threads (another trainer or test running beside it).
    @Test func scopeHoldsForItsThreadAndItsParallelPieces() {
        guard MixedPrecision.isSupported else { return }
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var values: [Bool] = []
            func add(_ v: Bool) { lock.withLock { values.append(v) } }
            var all: [Bool] { lock.withLock { values } }
        }
        let pieces = Seen(), elsewhere = Seen(), outside = Seen()
        MixedPrecision.bf16 {
            parallelRanges(64, minimum: 2, grain: 1) { _ in pieces.add(MixedPrecision.isActive) }
            let done = DispatchSemaphore(value: 0)
            Thread { elsewhere.add(MixedPrecision.isActive); done.signal() }.start()
            done.wait()
        }
        parallelRanges(64, minimum: 2, grain: 1) { _ in outside.add(MixedPrecision.isActive) }
        #expect(!pieces.all.isEmpty && pieces.all.allSatisfy { $0 })
        #expect(elsewhere.all == [false])
        #expect(!outside.all.isEmpty && outside.all.allSatisfy { !$0 })
    }

    /// A linear layer's forward and both backward products under the scope stay within bf16's
    /// error of Float32's.
    @Test func linearGradientsStayCloseToFloat32() {
        guard MixedPrecision.isSupported else { return }
        let x = randomTensor([48, 80], seed: 1), w = randomTensor([72, 80], seed: 2)
        func gradients() -> [[Float]] {
            let y = linear(x, weight: w, bias: nil)
            let g = grad([x, w]) { v in
                let out = linear(v[0], weight: v[1], bias: nil)
                return (out * out).sum()
            }
            return [y.scalars] + g.map(\.scalars)
        }
        let exact = gradients(), mixed = MixedPrecision.bf16 { gradients() }
        for (name, (e, m)) in zip(["y", "dx", "dW"], zip(exact, mixed)) {
            let scale = e.map(abs).max()!, diff = zip(e, m).map { abs($0 - $1) }.max()!
            #expect(diff > 0 && diff < 2e-2 * scale, "\(name): max |Δ| \(diff) against max |value| \(scale)")
        }
    }
}
