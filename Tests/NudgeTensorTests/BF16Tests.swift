// bf16 frozen weights: rounding to nearest even (checked against an independent oracle that picks
// the nearer of the two neighbouring bf16 values), every kernel this CPU runs (AVX512_BF16,
// AVX-512, AVX2, portable Swift) against a Double product with the widened matrix, results
// independent of how the work is split, GGUF/safetensors BF16 bytes copied as they are, and the
// autodiff op's input gradient by finite differences.

import CNudgeKernels
import Foundation
import Testing
@testable import NudgeTensor

private func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.normal(shape, std: scale, using: &rng)
}

private func widen(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// The bf16 bits of `x` by definition: of the two bf16 values around x, the nearer one; on a tie, the one with an even last bit.
private func oracle(_ x: Float) -> UInt16 {
    let low = UInt16(x.bitPattern >> 16), high = low &+ 1
    let dLow = abs(Double(x) - Double(widen(low))), dHigh = abs(Double(widen(high)) - Double(x))
    if dLow < dHigh { return low }
    if dHigh < dLow { return high }
    return low & 1 == 0 ? low : high
}

/// The kernels this CPU runs.
private let supportedKernels = BF16Kernel.allCases.filter(\.isSupported)

private func expectClose(_ got: [Float], _ reference: [Double], magnitude: [Double], bound: Double, _ label: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    var worst = 0.0
    for i in got.indices { worst = max(worst, abs(Double(got[i]) - reference[i]) / max(magnitude[i], 1e-30)) }
    #expect(worst <= bound, "\(label): worst relative error \(worst)", sourceLocation: sourceLocation)
}

@Suite("bf16 weights") struct BF16Tests {
    @Test func roundingIsToNearestEven() {
        func bits(_ x: Float) -> UInt16 {
            var out: UInt16 = 0
            withUnsafePointer(to: x) { nudge_f32_to_bf16(1, $0, &out) }
            return out
        }
        #expect(bits(1) == 0x3F80 && bits(-2) == 0xC000 && bits(0) == 0 && bits(-0.0) == 0x8000)
        // Ties: 1 + 2⁻⁸ lies halfway between 1 (even) and 1 + 2⁻⁷; 1 + 3·2⁻⁸ between 1 + 2⁻⁷ and 1 + 2⁻⁶ (even).
        #expect(bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80 && bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81 && bits(Float(bitPattern: 0x3F80_7FFF)) == 0x3F80)
        // Rounding up past the largest finite bf16 gives infinity, as in torch; NaN stays NaN.
        #expect(bits(.greatestFiniteMagnitude) == 0x7F80 && bits(.infinity) == 0x7F80 && widen(bits(.nan)).isNaN)
        var rng = RandomGenerator(seed: 21)
        for _ in 0..<20000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0xBFFF_FFFF)  // finite, any exponent below 2
            #expect(bits(x) == oracle(x), "\(x)")
        }
        // Whole arrays (the vector loop, then the scalar tail) give each value's bits, NaN and infinities included.
        let values = (0..<20011).map { i in
            i % 97 == 0 ? Float.nan : i % 89 == 0 ? -Float.infinity : Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
        }
        var converted = [UInt16](repeating: 0, count: values.count)
        nudge_f32_to_bf16(values.count, values, &converted)
        #expect(converted == values.map(bits))
        let w = randomTensor([3, 50], seed: 22), q = QuantizedMatrix(quantizing: w, format: .bf16)
        #expect(q.shape == [3, 50] && q.paddedColumns == 64 && q.byteCount == 3 * 64 * 2)
        let back = q.dequantized()
        for r in 0..<3 {
            for c in 0..<50 { #expect(back[r, c] == widen(oracle(w[r, c]))) }
            for c in 50..<64 { #expect(q.bf16Bits[r * 64 + c] == 0) }
        }
    }

    @Test func storedBF16TensorsAreCopiedAsTheyAre() throws {
        let (rows, columns) = (4, 40)
        let w = randomTensor([rows, columns], seed: 23)
        var stored = [UInt16](repeating: 0, count: rows * columns)
        nudge_f32_to_bf16(rows * columns, w.data, &stored)
        let order = [2, 0, 3, 1]
        let q = try #require(stored.withUnsafeBytes {
            QuantizedMatrix(ggufBlocks: $0, format: .bf16, rows: rows, columns: columns, rowOrder: order)
        })
        let back = q.dequantized()
        for r in 0..<rows { for c in 0..<columns { #expect(back[r, c] == widen(stored[order[r] * columns + c])) } }
        stored.withUnsafeBytes { raw in
            #expect(QuantizedMatrix(ggufBlocks: raw, format: .bf16, rows: rows + 1, columns: columns) == nil)  // wrong size
            #expect(QuantizedMatrix(ggufBlocks: raw, format: .bf16, rows: rows, columns: columns, rowOrder: [0, 1, 2, 4]) == nil)
        }
    }

    @Test(arguments: [(1, 1, 32), (3, 7, 64), (4, 33, 40), (5, 16, 176), (9, 5, 5), (2, 3, 100), (6, 9, 17), (1, 13, 600)])
    func productsMatchTheWidenedMatrix(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let x = randomTensor([m, k], seed: 24), g = randomTensor([m, n], seed: 25)
        let q = QuantizedMatrix(quantizing: randomTensor([n, k], seed: 26, scale: 0.3), format: .bf16)
        let w = q.dequantized()
        var xRounded = [UInt16](repeating: 0, count: m * k)
        nudge_f32_to_bf16(m * k, x.data, &xRounded)
        func reference(roundX: Bool) -> (y: [Double], ya: [Double], dx: [Double], dxa: [Double]) {
            var y = [Double](repeating: 0, count: m * n), ya = y, dx = [Double](repeating: 0, count: m * k), dxa = dx
            for r in 0..<m {
                for o in 0..<n {
                    for c in 0..<k {
                        let xv = roundX ? Double(widen(xRounded[r * k + c])) : Double(x[r, c])
                        let t = xv * Double(w[o, c]), u = Double(g[r, o]) * Double(w[o, c])
                        y[r * n + o] += t; ya[r * n + o] += abs(t)
                        dx[r * k + c] += u; dxa[r * k + c] += abs(u)
                    }
                }
            }
            return (y, ya, dx, dxa)
        }
        let exact = reference(roundX: false), rounded = reference(roundX: true)
        for kernel in supportedKernels {
            let out = Tensor(uninitializedShape: [m, n]), back = Tensor(uninitializedShape: [m, k])
            bf16Product(m: m, x: x.data, ldx: k, weight: q, y: out.data, ldy: n, kernel: kernel)
            bf16ProductTransposed(m: m, g: g.data, ldg: n, weight: q, dx: back.data, lddx: k, kernel: kernel)
            // The dot kernel multiplies x rounded to bf16; each pair of products is summed before
            // rounding into the accumulator, so its bound is Float32's with a little room.
            let yRef = kernel == .dot ? rounded : exact
            expectClose(out.scalars, yRef.y, magnitude: yRef.ya, bound: 1e-5, "x·Wᵀ \(shape) \(kernel.rawValue)")
            expectClose(back.scalars, exact.dx, magnitude: exact.dxa, bound: 1e-5, "g·W \(shape) \(kernel.rawValue)")
            if kernel == .dot {
                // Against Float32 x, the rounding of x shows: bounded by 2⁻⁸ of Σ|x·w| (one rounding of each x).
                expectClose(out.scalars, exact.y, magnitude: exact.ya, bound: 1.0 / 256, "x·Wᵀ \(shape) dot vs Float32 x")
            }
        }
    }

    /// Each value is one sum in a fixed order: pieces over outputs (forward) or column blocks
    /// (backward) give the bits of one call, so any thread count gives the same result.
    @Test func splittingTheWorkGivesTheSameBits() {
        let (m, n, k) = (7, 45, 200)
        let x = randomTensor([m, k], seed: 27), g = randomTensor([m, n], seed: 28)
        let q = QuantizedMatrix(quantizing: randomTensor([n, k], seed: 29), format: .bf16)
        let kp = q.paddedColumns, blocks = kp / 32, bits = q.bf16Bits
        var xb = [UInt16](repeating: 0, count: m * kp)
        for r in 0..<m { xb.withUnsafeMutableBufferPointer { nudge_f32_to_bf16(k, x.data + r * k, $0.baseAddress! + r * kp) } }
        for kernel in supportedKernels where kernel != .portable {
            let whole = Tensor(uninitializedShape: [m, n]), pieces = Tensor(uninitializedShape: [m, n])
            nudge_bf16_linear(kernel.cKernel, Int32(m), Int32(n), Int32(k), x.data, k, xb, kp, bits, kp, whole.data, n)
            for range in [0..<5, 5..<6, 6..<17, 17..<45] {
                nudge_bf16_linear(kernel.cKernel, Int32(m), Int32(range.count), Int32(k), x.data, k, xb, kp, bits + range.lowerBound * kp, kp,
                                  pieces.data + range.lowerBound, n)
            }
            #expect(whole.scalars == pieces.scalars, "\(kernel.rawValue)")
            let dxWhole = Tensor(uninitializedShape: [m, k]), dxPieces = Tensor(uninitializedShape: [m, k])
            nudge_bf16_linear_backward(kernel.cKernel, Int32(m), Int32(n), Int32(k), 0, Int32(blocks), g.data, n, bits, kp, dxWhole.data, k)
            for range in [0..<2, 2..<3, 3..<blocks] {
                nudge_bf16_linear_backward(kernel.cKernel, Int32(m), Int32(n), Int32(k), Int32(range.lowerBound), Int32(range.upperBound),
                                           g.data, n, bits, kp, dxPieces.data, k)
            }
            #expect(dxWhole.scalars == dxPieces.scalars, "\(kernel.rawValue)")
        }
        // And through the threaded entry point on a problem big enough to split.
        let (bm, bn, bk) = (8, 256, 640)
        let bx = randomTensor([bm, bk], seed: 30), bq = QuantizedMatrix(quantizing: randomTensor([bn, bk], seed: 31), format: .bf16)
        let threaded = Tensor(uninitializedShape: [bm, bn]), single = Tensor(uninitializedShape: [bm, bn])
        bf16Product(m: bm, x: bx.data, ldx: bk, weight: bq, y: threaded.data, ldy: bn)
        if BF16Kernel.active != .portable {
            nudge_bf16_linear(BF16Kernel.active.cKernel, Int32(bm), Int32(bn), Int32(bk), bx.data, bk, nil, 0, bq.bf16Bits, bq.paddedColumns,
                              single.data, bn)
            #expect(threaded.scalars == single.scalars)
        }
    }

    @Test(arguments: [[2, 3, 40], [4, 5, 40]])
    func linearOpGradientsByFiniteDifferences(shape: [Int]) {
        let q = QuantizedMatrix(quantizing: randomTensor([6, 40], seed: 32, scale: 0.5), format: .bf16)
        let x = randomTensor(shape, seed: 33), b = randomTensor([6], seed: 34)
        checkGradients([x, b]) { linear($0[0], weight: q, bias: $0[1]) }
        checkGradients([x]) { linear($0[0], weight: q, bias: nil).tanh() }
    }

    /// Few rows go to the in-register kernels, many (≥ quantizedGemmRows) to sgemm on the widened matrix.
    @Test(arguments: [5, 40])
    func linearOpMatchesTheFloatLinear(rows: Int) {
        let q = QuantizedMatrix(quantizing: randomTensor([24, 90], seed: 35, scale: 0.2), format: .bf16)
        let w = q.dequantized(), b = randomTensor([24], seed: 36)
        let x = randomTensor([rows, 90], seed: 37)
        let (y, gq) = valueAndGrad([x]) { linear($0[0], weight: q, bias: b).square().sum() }
        let (z, gf) = valueAndGrad([x]) { linear($0[0], weight: w, bias: b).square().sum() }
        #expect(abs(y.item() - z.item()) <= 1e-5 * abs(z.item()))
        let scale = gf[0].scalars.map(abs).max()!
        #expect(zip(gq[0].scalars, gf[0].scalars).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
    }
}
