// Q8_0 frozen weights: quantization per llama.cpp's rule, both products (AVX2+FMA kernel and the
// portable Swift one) against a Double-accumulated product with the dequantized matrix, results
// independent of how the work is split, and the autodiff op's input gradient by finite differences.

import CNudgeKernels
import Foundation
import Testing
@testable import NudgeTensor

private func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.normal(shape, std: scale, using: &rng)
}

/// The kernels to check: the portable one always, the vectorized one where the CPU has it.
private let kernelChoices: [Bool] = QuantizedKernels.vectorized ? [true, false] : [true]

/// Checks `got` against `reference` (Double) with a bound relative to Σ|terms| of each value.
private func expectClose(_ got: [Float], _ reference: [Double], magnitude: [Double], _ label: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    var worst = 0.0
    for i in got.indices {
        worst = max(worst, abs(Double(got[i]) - reference[i]) / max(magnitude[i], 1e-30))
    }
    #expect(worst <= 1e-5, "\(label): worst relative error \(worst)", sourceLocation: sourceLocation)
}

@Suite("Quantized Q8_0 weights") struct QuantizedTests {
    @Test func quantizationFollowsQ8_0() {
        let w = randomTensor([5, 70], seed: 1)
        let q = QuantizedMatrix(quantizing: w)
        #expect(q.shape == [5, 70] && q.paddedColumns == 96)
        #expect(q.byteCount == 5 * 96 + 5 * 3 * 4)
        let back = q.dequantized()
        for r in 0..<5 {
            for b in 0..<3 {
                let columns = (b * 32)..<min(b * 32 + 32, 70)
                let amax = columns.map { abs(w[r, $0]) }.max()!
                #expect(q.scales[r * 3 + b] == amax / 127)
                for c in columns {
                    // Round to nearest: off by at most half a step.
                    #expect(abs(back[r, c] - w[r, c]) <= amax / 127 / 2 * 1.0001)
                }
                // The largest value maps to ±127.
                #expect(columns.contains { abs(Int(q.values[r * 96 + $0])) == 127 })
            }
            for c in 70..<96 { #expect(q.values[r * 96 + c] == 0) }
        }
        // An all-zero block has scale 0 and dequantizes to zeros.
        let zero = QuantizedMatrix(quantizing: Tensor.zeros([2, 32]))
        #expect(zero.dequantized().scalars.allSatisfy { $0 == 0 })
    }

    @Test(arguments: [(1, 1, 32), (3, 7, 64), (4, 33, 40), (5, 16, 176), (9, 5, 5), (2, 3, 100)])
    func productsMatchTheDequantizedMatrix(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let x = randomTensor([m, k], seed: 2), g = randomTensor([m, n], seed: 3)
        let q = QuantizedMatrix(quantizing: randomTensor([n, k], seed: 4, scale: 0.3))
        let w = q.dequantized()
        var y = [Double](repeating: 0, count: m * n), ya = y
        var dx = [Double](repeating: 0, count: m * k), dxa = dx
        for r in 0..<m {
            for o in 0..<n {
                for c in 0..<k {
                    let t = Double(x[r, c]) * Double(w[o, c]), u = Double(g[r, o]) * Double(w[o, c])
                    y[r * n + o] += t; ya[r * n + o] += abs(t)
                    dx[r * k + c] += u; dxa[r * k + c] += abs(u)
                }
            }
        }
        for portable in kernelChoices {
            let out = Tensor(uninitializedShape: [m, n]), back = Tensor(uninitializedShape: [m, k])
            quantizedProduct(m: m, x: x.data, ldx: k, weight: q, y: out.data, ldy: n, portable: portable)
            quantizedProductTransposed(m: m, g: g.data, ldg: n, weight: q, dx: back.data, lddx: k, portable: portable)
            expectClose(out.scalars, y, magnitude: ya, "x·Wᵀ \(shape) portable: \(portable)")
            expectClose(back.scalars, dx, magnitude: dxa, "g·W \(shape) portable: \(portable)")
        }
    }

    /// Each value is one sum in a fixed order: pieces over output columns (forward) or column
    /// blocks (backward) give the bits of one call, so any thread count gives the same result.
    @Test func splittingTheWorkGivesTheSameBits() throws {
        try #require(QuantizedKernels.vectorized, "no AVX2+FMA on this CPU")
        let (m, n, k) = (7, 45, 200)
        let x = randomTensor([m, k], seed: 5), g = randomTensor([m, n], seed: 6)
        let q = QuantizedMatrix(quantizing: randomTensor([n, k], seed: 7))
        let whole = Tensor(uninitializedShape: [m, n]), pieces = Tensor(uninitializedShape: [m, n])
        nudge_q8_linear(Int32(m), Int32(n), Int32(k), x.data, k, q.values, q.scales, whole.data, n)
        let kp = q.paddedColumns, blocks = kp / 32
        for range in [0..<16, 16..<17, 17..<45] {
            nudge_q8_linear(Int32(m), Int32(range.count), Int32(k), x.data, k, q.values + range.lowerBound * kp,
                            q.scales + range.lowerBound * blocks, pieces.data + range.lowerBound, n)
        }
        #expect(whole.scalars == pieces.scalars)
        let dxWhole = Tensor(uninitializedShape: [m, k]), dxPieces = Tensor(uninitializedShape: [m, k])
        nudge_q8_linear_backward(Int32(m), Int32(n), Int32(k), 0, Int32(blocks), g.data, n, q.values, q.scales, dxWhole.data, k)
        for range in [0..<2, 2..<3, 3..<blocks] {
            nudge_q8_linear_backward(Int32(m), Int32(n), Int32(k), Int32(range.lowerBound), Int32(range.upperBound),
                                     g.data, n, q.values, q.scales, dxPieces.data, k)
        }
        #expect(dxWhole.scalars == dxPieces.scalars)
        // And through the threaded entry point on a problem big enough to split.
        let (bm, bn, bk) = (16, 256, 320)
        let bx = randomTensor([bm, bk], seed: 8), bq = QuantizedMatrix(quantizing: randomTensor([bn, bk], seed: 9))
        let threaded = Tensor(uninitializedShape: [bm, bn]), single = Tensor(uninitializedShape: [bm, bn])
        quantizedProduct(m: bm, x: bx.data, ldx: bk, weight: bq, y: threaded.data, ldy: bn)
        nudge_q8_linear(Int32(bm), Int32(bn), Int32(bk), bx.data, bk, bq.values, bq.scales, single.data, bn)
        #expect(threaded.scalars == single.scalars)
    }

    @Test(arguments: [[2, 3, 40], [4, 5, 40]])
    func linearOpGradientsByFiniteDifferences(shape: [Int]) {
        let q = QuantizedMatrix(quantizing: randomTensor([6, 40], seed: 10, scale: 0.5))
        let x = randomTensor(shape, seed: 11), b = randomTensor([6], seed: 12)
        checkGradients([x, b]) { linear($0[0], weight: q, bias: $0[1]) }
        checkGradients([x]) { linear($0[0], weight: q, bias: nil).tanh() }
    }

    /// Few rows go to the in-register kernels, many (≥ quantizedGemmRows) to sgemm on the dequantized matrix.
    @Test(arguments: [5, 40])
    func linearOpMatchesTheFloatLinear(rows: Int) {
        let q = QuantizedMatrix(quantizing: randomTensor([24, 96], seed: 13, scale: 0.2))
        let w = q.dequantized(), b = randomTensor([24], seed: 14)
        let x = randomTensor([rows, 96], seed: 15)
        let (y, gq) = valueAndGrad([x]) { linear($0[0], weight: q, bias: b).square().sum() }
        let (z, gf) = valueAndGrad([x]) { linear($0[0], weight: w, bias: b).square().sum() }
        #expect(abs(y.item() - z.item()) <= 1e-5 * abs(z.item()))
        let scale = gf[0].scalars.map(abs).max()!
        #expect(zip(gq[0].scalars, gf[0].scalars).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
    }
}

/// GGUF Q4_1 blocks (f16 d, f16 m, 16 bytes of nibbles) with random contents, `rows` × `columns / 32` of them.
func randomQ4_1Blocks(rows: Int, columns: Int, seed: UInt64) -> [UInt8] {
    var rng = RandomGenerator(seed: seed)
    var bytes: [UInt8] = []
    for _ in 0..<(rows * columns / 32) {
        let d = Float16(Float(rng.uniform()) * 0.02 + 0.001), m = Float16(-Float(rng.uniform()) * 0.15)
        for h in [d.bitPattern, m.bitPattern] { bytes += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        for _ in 0..<16 { bytes.append(UInt8(rng.next() & 0xFF)) }
    }
    return bytes
}

@Suite("Quantized Q4_1 weights from GGUF blocks") struct Q4_1Tests {
    func matrix(rows: Int, columns: Int, seed: UInt64, rowOrder: [Int]? = nil) throws -> (QuantizedMatrix, [UInt8]) {
        let blocks = randomQ4_1Blocks(rows: rows, columns: columns, seed: seed)
        let q = try #require(blocks.withUnsafeBytes {
            QuantizedMatrix(ggufBlocks: $0, format: .q4_1, rows: rows, columns: columns, rowOrder: rowOrder)
        })
        return (q, blocks)
    }

    /// Each value is q·d + m with q the nibble (low nibbles are values 0–15 of a block, high ones 16–31).
    @Test func dequantizedValuesFollowTheBlockLayout() throws {
        let (q, blocks) = try matrix(rows: 3, columns: 64, seed: 1)
        #expect(q.byteCount == 3 * 32 + 2 * 6 * 4)
        let w = q.dequantized()
        for r in 0..<3 {
            for b in 0..<2 {
                let block = Array(blocks[((r * 2 + b) * 20)..<((r * 2 + b) * 20 + 20)])
                let d = Float(Float16(bitPattern: UInt16(block[0]) | UInt16(block[1]) << 8))
                let m = Float(Float16(bitPattern: UInt16(block[2]) | UInt16(block[3]) << 8))
                for j in 0..<16 {
                    #expect(w[r, b * 32 + j] == Float(block[4 + j] & 0x0F) * d + m)
                    #expect(w[r, b * 32 + j + 16] == Float(block[4 + j] >> 4) * d + m)
                }
            }
        }
        // A row order reads stored row rowOrder[r] into row r.
        let (p, _) = try matrix(rows: 3, columns: 64, seed: 1, rowOrder: [2, 0, 1])
        let pw = p.dequantized()
        for (r, source) in [2, 0, 1].enumerated() { #expect((0..<64).allSatisfy { pw[r, $0] == w[source, $0] }) }
    }

    @Test func malformedBlocksAreRefused() {
        let blocks = randomQ4_1Blocks(rows: 2, columns: 64, seed: 2)
        blocks.withUnsafeBytes { raw in
            #expect(QuantizedMatrix(ggufBlocks: raw, format: .q4_1, rows: 2, columns: 48) == nil)  // not whole blocks
            #expect(QuantizedMatrix(ggufBlocks: raw, format: .q4_1, rows: 3, columns: 64) == nil)  // wrong size
            #expect(QuantizedMatrix(ggufBlocks: raw, format: .q8_0, rows: 2, columns: 64) == nil)  // Q8_0 blocks are 34 bytes
            #expect(QuantizedMatrix(ggufBlocks: raw, format: .q4_1, rows: 2, columns: 64, rowOrder: [0, 2]) == nil)
        }
    }

    @Test(arguments: [(1, 1, 32), (3, 7, 64), (5, 16, 160), (6, 33, 96)])
    func productsMatchTheDequantizedMatrix(shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape
        let x = randomTensor([m, k], seed: 2), g = randomTensor([m, n], seed: 3)
        let (q, _) = try matrix(rows: n, columns: k, seed: 4)
        let w = q.dequantized()
        var y = [Double](repeating: 0, count: m * n), ya = y
        var dx = [Double](repeating: 0, count: m * k), dxa = dx
        for r in 0..<m {
            for o in 0..<n {
                for c in 0..<k {
                    let t = Double(x[r, c]) * Double(w[o, c]), u = Double(g[r, o]) * Double(w[o, c])
                    y[r * n + o] += t; ya[r * n + o] += abs(t)
                    dx[r * k + c] += u; dxa[r * k + c] += abs(u)
                }
            }
        }
        for portable in kernelChoices {
            let out = Tensor(uninitializedShape: [m, n]), back = Tensor(uninitializedShape: [m, k])
            quantizedProduct(m: m, x: x.data, ldx: k, weight: q, y: out.data, ldy: n, portable: portable)
            quantizedProductTransposed(m: m, g: g.data, ldg: n, weight: q, dx: back.data, lddx: k, portable: portable)
            expectClose(out.scalars, y, magnitude: ya, "x·Wᵀ \(shape) portable: \(portable)")
            expectClose(back.scalars, dx, magnitude: dxa, "g·W \(shape) portable: \(portable)")
        }
    }

    /// Many rows dequantize W and run sgemm: the same bits as the Float32 linear on the dequantized W.
    @Test(arguments: [5, 40])
    func linearOpMatchesTheFloatLinear(rows: Int) throws {
        let (q, _) = try matrix(rows: 24, columns: 96, seed: 13)
        let w = q.dequantized(), b = randomTensor([24], seed: 14)
        let x = randomTensor([rows, 96], seed: 15)
        let (y, gq) = valueAndGrad([x]) { linear($0[0], weight: q, bias: b).square().sum() }
        let (z, gf) = valueAndGrad([x]) { linear($0[0], weight: w, bias: b).square().sum() }
        if rows >= quantizedGemmRows {
            #expect(y.item() == z.item())
            #expect(gq[0].scalars == gf[0].scalars)
        } else {
            #expect(abs(y.item() - z.item()) <= 1e-5 * abs(z.item()))
            let scale = gf[0].scalars.map(abs).max()!
            #expect(zip(gq[0].scalars, gf[0].scalars).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
        }
        checkGradients([randomTensor([2, 96], seed: 16)]) { linear($0[0], weight: q, bias: nil).tanh() }
    }
}
