// Forward values against plain loops and hand-computed numbers; BLAS against the built-in kernel.

import Foundation
import Testing
import CNudgeKernels
@testable import NudgeTensor

/// C = op(A)·op(B) by the definition, in Double.
func naiveMatmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, ta: Bool, tb: Bool) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let x = ta ? a[p * m + i] : a[i * k + p]
                let y = tb ? b[j * k + p] : b[p * n + j]
                s += Double(x) * Double(y)
            }
            c[i * n + j] = Float(s)
        }
    }
    return c
}

@Suite("Forward") struct ForwardTests {
    @Test func broadcastingMatchesLoop() {
        let a = randomTensor([2, 1, 3], seed: 1), b = randomTensor([4, 1], seed: 2)
        let c = a * b
        #expect(c.shape == [2, 4, 3])
        for i in 0..<2 { for j in 0..<4 { for k in 0..<3 {
            #expect(c[i, j, k] == a[i, 0, k] * b[j, 0])
        } } }
        #expect(broadcastShape([5, 1, 3], [2, 1]) == [5, 2, 3])
        #expect((Tensor([1, 2, 3]) + Tensor(10)).scalars == [11, 12, 13])
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmBackendsAgree(ta: Bool, tb: Bool) {
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 65), (64, 64, 64), (70, 9, 300)] {
            let a = randomTensor([m * k], seed: 3).scalars, b = randomTensor([k * n], seed: 4).scalars
            let expected = naiveMatmul(a, b, m: m, n: n, k: k, ta: ta, tb: tb)
            var builtin = [Float](repeating: 0, count: m * n)
            sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n,
                  c: &builtin, ldc: n, backend: .builtin)
            expectClose(builtin, expected, atol: 1e-4, rtol: 1e-4)
            var active = [Float](repeating: 0, count: m * n)
            sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n,
                  c: &active, ldc: n)
            expectClose(active, builtin, atol: 1e-4, rtol: 1e-4)
        }
    }

    /// x·Wᵀ on up to `smallProductRows` rows goes to the unpacked AVX2 kernel where the CPU has
    /// it: every remainder of the 4×2 blocks and of k mod 8, with strided rows, and a weight of a
    /// million values, split by columns over threads.
    @Test func smallRowProductsMatchTheDefinition() {
        for (m, n, k) in [(1, 1, 1), (1, 7, 8), (2, 3, 9), (3, 2, 15), (4, 5, 16), (5, 9, 33), (7, 64, 128), (8, 33, 130), (3, 2101, 500)] {
            let (lda, ldb, ldc) = (k + 3, k + 1, n + 2)
            let a = randomTensor([m * lda], seed: 5).scalars, b = randomTensor([n * ldb], seed: 6).scalars
            let dense = (0..<m).flatMap { a[($0 * lda)..<($0 * lda + k)] }, denseB = (0..<n).flatMap { b[($0 * ldb)..<($0 * ldb + k)] }
            let expected = naiveMatmul(dense, denseB, m: m, n: n, k: k, ta: false, tb: true)
            var c = [Float](repeating: .nan, count: m * ldc)
            sgemm(transA: false, transB: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: &c, ldc: ldc)
            expectClose((0..<m).flatMap { c[($0 * ldc)..<($0 * ldc + n)] }, expected, atol: 1e-5, rtol: 1e-5)
            // Columns past n in each row of C are left alone.
            #expect((0..<m).allSatisfy { r in c[(r * ldc + n)..<((r + 1) * ldc)].allSatisfy(\.isNaN) })
        }
    }

    /// Each unpacked kernel this CPU has (AVX2 4×2 blocks, AVX-512 4×4 blocks of 16 lanes) on its
    /// own: every remainder of the blocks and of k mod 8 / mod 16, strided rows, 16 rows.
    @Test func eachSmallRowKernelMatchesTheDefinition() {
        let best = Int(nudge_small_product_kernel())
        guard best > 0 else { return }
        for kernel in 1...best {
            for (m, n, k) in [(1, 1, 1), (1, 5, 16), (2, 3, 17), (3, 6, 31), (4, 4, 32), (5, 9, 33), (7, 64, 128), (16, 35, 576), (13, 7, 130)] {
                let (lda, ldb, ldc) = (k + 3, k + 1, n + 2)
                let a = randomTensor([m * lda], seed: 7).scalars, b = randomTensor([n * ldb], seed: 8).scalars
                let dense = (0..<m).flatMap { a[($0 * lda)..<($0 * lda + k)] }, denseB = (0..<n).flatMap { b[($0 * ldb)..<($0 * ldb + k)] }
                let expected = naiveMatmul(dense, denseB, m: m, n: n, k: k, ta: false, tb: true)
                var c = [Float](repeating: .nan, count: m * ldc)
                nudge_sgemm_nt_small_kernel(Int32(kernel), Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), &c, Int32(ldc))
                expectClose((0..<m).flatMap { c[($0 * ldc)..<($0 * ldc + n)] }, expected, atol: 1e-5, rtol: 1e-5)
                #expect((0..<m).allSatisfy { r in c[(r * ldc + n)..<((r + 1) * ldc)].allSatisfy(\.isNaN) }, "kernel \(kernel) \(m)×\(n)×\(k)")
            }
        }
    }

    @Test func gemmAlphaBeta() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        for backend in [GemmBackend.builtin, BLAS.backend] {
            var c: [Float] = [1, 1, 1, 1]
            sgemm(transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 2, a: a, lda: 2, b: b, ldb: 2,
                  beta: 0.5, c: &c, ldc: 2, backend: backend)
            #expect(c == [38.5, 44.5, 86.5, 100.5])
        }
    }

    @Test func blasIsLoadedWhenInstalled() {
        // CI installs libopenblas0-pthread, so the BLAS path is what it tests. Locally without it
        // the built-in kernel is active and says why.
        if FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"),
           ProcessInfo.processInfo.environment["NUDGE_BLAS"] == nil {
            #expect(BLAS.backend != .builtin, "\(BLAS.note)")
        }
        #expect(!BLAS.note.isEmpty)
    }

    @Test func linearMatchesMatmulPlusBias() {
        let x = randomTensor([2, 3, 4], seed: 40), w = randomTensor([5, 4], seed: 41), b = randomTensor([5], seed: 42)
        expectClose(linear(x, weight: w, bias: b).scalars, (matmul(x, w, transposeB: true) + b).scalars, atol: 1e-6)
        #expect(linear(x, weight: w, bias: b).shape == [2, 3, 5])
    }

    @Test func reductionsAndSoftmax() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(x.sum().item() == 21)
        #expect(x.sum(axis: 0).scalars == [5, 7, 9])
        #expect(x.sum(axis: 1, keepDims: true).shape == [2, 1])
        #expect(x.mean(axis: 1).scalars == [2, 5])
        #expect(x.max(axis: 1).scalars == [3, 6])
        #expect(x.min(axis: 0).scalars == [1, 2, 3])
        #expect(x.argmax(axis: 1) == [2, 2])
        #expect(abs(x.variance().item() - 3.5) < 1e-6)
        let s = x.softmax(axis: 1)
        let e = [1, 2, 3].map { Foundation.exp(Float($0)) }
        expectClose(Array(s.scalars[0..<3]), e.map { $0 / e.reduce(0, +) })
        expectClose(x.logSoftmax().exp().scalars, s.scalars)
        expectClose(x.logSumExp(axis: 1).scalars, [Foundation.log(e.reduce(0, +)), 3 + Foundation.log(e.reduce(0, +))])
        // Large sums: fixed-order SIMD accumulation is exact for integers.
        let big = Tensor(shape: [1000], values: (0..<1000).map(Float.init))
        #expect(big.sum().item() == 499_500)
    }

    @Test func shapeOpsValues() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(x.transposed().scalars == [1, 4, 2, 5, 3, 6])
        #expect(x.slice(axis: 1, 1..<3).scalars == [2, 3, 5, 6])
        #expect(x.padded(axis: 0, before: 1, after: 0).scalars == [0, 0, 0, 1, 2, 3, 4, 5, 6])
        #expect(Tensor.concat([x, x], axis: 1).shape == [2, 6])
        #expect(Tensor.stack([x, x]).shape == [2, 2, 3])
        #expect(x.pick([2, 0]).scalars == [3, 4])
        #expect(x.indexSelect([1, 1, 0]).scalars == [4, 5, 6, 4, 5, 6, 1, 2, 3])
        #expect(Tensor.oneHot([2, 0], classes: 3).scalars == [0, 0, 1, 1, 0, 0])
        #expect(Tensor.zeros([3, 2]).scatterAdd([0, 0], Tensor(shape: [2, 2], values: [1, 2, 3, 4])).scalars == [4, 6, 0, 0, 0, 0])
        #expect(Tensor.where(Tensor([1, 0]), Tensor([1, 2]), Tensor([9, 9])).scalars == [1, 9])
    }

    @Test func crossEntropyHandValues() {
        // Uniform logits over 4 classes: loss log 4; ignored rows do not count.
        let logits = Tensor.zeros([3, 4])
        #expect(abs(crossEntropy(logits: logits, targets: [1, -100, 3]).item() - Float(Foundation.log(4.0))) < 1e-6)
        #expect(crossEntropy(logits: logits, targets: [-100, -100, -100]).item() == 0)
        // Logits (0, ln 3): p = (1/4, 3/4); target 1 → −ln 0.75; smoothing 0.2 → 0.9·(−ln .75) + 0.1·(−ln .25).
        let l = Tensor(shape: [1, 2], values: [0, Float(Foundation.log(3.0))])
        #expect(abs(crossEntropy(logits: l, targets: [1]).item() - Float(-Foundation.log(0.75))) < 1e-6)
        let smoothed = 0.9 * -Foundation.log(0.75) + 0.1 * -Foundation.log(0.25)
        #expect(abs(crossEntropy(logits: l, targets: [1], labelSmoothing: 0.2).item() - Float(smoothed)) < 1e-6)
    }

    @Test func attentionMatchesLoopWithCausalMask() {
        let q = randomTensor([1, 1, 3, 2], seed: 5), k = randomTensor([1, 1, 3, 2], seed: 6), v = randomTensor([1, 1, 3, 2], seed: 7)
        let out = scaledDotProductAttention(queries: q, keys: k, values: v, causal: true)
        for t in 0..<3 {
            var scores = (0...t).map { s in (q[0, 0, t, 0] * k[0, 0, s, 0] + q[0, 0, t, 1] * k[0, 0, s, 1]) / Float(2).squareRoot() }
            let m = scores.max()!
            scores = scores.map { Foundation.exp($0 - m) }
            let z = scores.reduce(0, +)
            for d in 0..<2 {
                let expected = (0...t).reduce(Float(0)) { $0 + scores[$1] / z * v[0, 0, $1, d] }
                #expect(abs(out[0, 0, t, d] - expected) < 1e-5)
            }
        }
    }

    @Test func vectorizedMathAccuracy() {
        var worstExp = 0.0, worstTanh = 0.0, worstSigmoid = 0.0
        var x = -87.0
        while x < 88 {
            let v = SIMD8<Float>((0..<8).map { Float(x + Double($0) * 0.0013) })
            let e = vexp(v), t = vtanh(v * 0.1), s = vsigmoid(v * 0.2)
            for j in 0..<8 {
                let xd = Double(v[j])
                worstExp = Swift.max(worstExp, abs(Double(e[j]) - Foundation.exp(xd)) / Foundation.exp(xd))
                worstTanh = Swift.max(worstTanh, abs(Double(t[j]) - Foundation.tanh(Double(v[j] * 0.1))))
                let sd = 1 / (1 + Foundation.exp(-Double(v[j] * 0.2)))
                worstSigmoid = Swift.max(worstSigmoid, abs(Double(s[j]) - sd))
            }
            x += 0.0173
        }
        #expect(worstExp < 4e-7, "exp relative error \(worstExp)")
        #expect(worstTanh < 3e-7, "tanh absolute error \(worstTanh)")
        #expect(worstSigmoid < 2e-7, "sigmoid absolute error \(worstSigmoid)")
        #expect(vexp(SIMD8(repeating: -100))[0] == 0)
        #expect(vexp(SIMD8(repeating: 100))[0] > 1e38)
        let tiny = vtanh(SIMD8(repeating: 1e-6))[0]
        #expect(abs(tiny - 1e-6) < 1e-12)
    }

    @Test func largeElementwiseOpsSplitAcrossThreadsGiveSameValues() {
        let x = randomTensor([600_000], seed: 8)
        let y = x.tanh() * 2 + x
        let part = x.slice(axis: 0, 1000..<1800)  // small: one thread
        let yPart = part.tanh() * 2 + part
        #expect(Array(y.scalars[1000..<1800]) == yPart.scalars)
        for i in stride(from: 0, to: x.count, by: 9973) {
            #expect(abs(y.data[i] - (Foundation.tanh(x.data[i]) * 2 + x.data[i])) < 1e-6)
        }
        let rows = randomTensor([300, 2048], seed: 9)
        let s = rows.softmax()
        let single = rows.slice(axis: 0, 150..<151).softmax()
        #expect(Array(s.scalars[(150 * 2048)..<(151 * 2048)]) == single.scalars)
    }
}
