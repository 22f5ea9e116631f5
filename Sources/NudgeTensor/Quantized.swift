// Quantized frozen weights (QLoRA-style training on the CPU): a matrix held as Q8_0 (llama.cpp's
// layout: blocks of 32 int8 values along a row, one scale per block; the scale is kept as Float32
// rather than f16, so dequantized values are exactly d·q as computed here), and the two products
// LoRA training needs over it: y = x·Wᵀ (forward) and dx = g·W (the gradient reaching earlier
// layers' adapters). There is no weight gradient: the matrix is a constant, not a parameter.
//
// The AVX2+FMA kernels (CNudgeKernels/quantized.c) widen int8 to float in registers; the Swift
// kernels below are the portable fallback. Work is split over output columns of y (rows of W) or
// over column blocks of dx; each value is one sum in a fixed order, so results do not depend on the
// thread count.

import CNudgeKernels
import Foundation

/// How a frozen weight is quantized.
public enum WeightQuantization: String, Sendable, CaseIterable {
    /// Blocks of 32 int8 values along each row with one scale per block (llama.cpp's Q8_0).
    case q8_0
}

/// A frozen matrix of `rows` × `columns` held quantized: about 1.1 bytes per value for Q8_0
/// instead of 4. Immutable once made.
public final class QuantizedMatrix: @unchecked Sendable {
    /// Values per block (along a row).
    public static let blockSize = 32
    /// The number of rows (a linear layer's outputs).
    public let rows: Int
    /// The number of columns (a linear layer's inputs).
    public let columns: Int
    /// The quantization format.
    public let format: WeightQuantization
    /// Columns rounded up to a whole block; the padding holds zeros.
    let paddedColumns: Int
    /// int8 values, `paddedColumns` per row.
    let values: UnsafeMutablePointer<Int8>
    /// One scale per block, `paddedColumns / 32` per row.
    let scales: UnsafeMutablePointer<Float>

    private init(rows: Int, columns: Int, format: WeightQuantization) {
        self.rows = rows
        self.columns = columns
        self.format = format
        paddedColumns = (columns + Self.blockSize - 1) / Self.blockSize * Self.blockSize
        values = UnsafeMutableRawPointer.allocate(byteCount: max(rows * paddedColumns, 1), alignment: 64)
            .bindMemory(to: Int8.self, capacity: max(rows * paddedColumns, 1))
        scales = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * paddedColumns / Self.blockSize, 1))
    }

    /// Quantizes a 2-D tensor (rows × columns), as llama.cpp's `quantize_row_q8_0`: per block
    /// d = max|w|/127 and q = round(w/d).
    public convenience init(quantizing tensor: Tensor, format: WeightQuantization = .q8_0) {
        precondition(tensor.rank == 2, "QuantizedMatrix: a 2-D tensor is needed, got shape \(tensor.shape)")
        self.init(rows: tensor.shape[0], columns: tensor.shape[1], format: format)
        let blocksPerRow = paddedColumns / Self.blockSize
        for r in 0..<rows {
            let source = tensor.data + r * columns
            for b in 0..<blocksPerRow {
                let start = b * Self.blockSize, end = min(start + Self.blockSize, columns)
                var amax: Float = 0
                for c in start..<end { amax = max(amax, abs(source[c])) }
                let d = amax / 127
                let inverse: Float = d == 0 ? 0 : 1 / d
                scales[r * blocksPerRow + b] = d
                let q = values + r * paddedColumns
                for c in start..<(start + Self.blockSize) {
                    q[c] = c < end ? Int8((source[c] * inverse).rounded(.toNearestOrAwayFromZero)) : 0
                }
            }
        }
    }

    deinit {
        UnsafeMutableRawPointer(values).deallocate()
        scales.deallocate()
    }

    /// `[rows, columns]`.
    public var shape: [Int] { [rows, columns] }

    /// Bytes held (values and scales).
    public var byteCount: Int { rows * paddedColumns + rows * (paddedColumns / Self.blockSize) * MemoryLayout<Float>.size }

    /// The Float32 matrix the quantized values stand for (a new tensor, d·q per value).
    public func dequantized() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        dequantize(into: t.data)
        return t
    }

    /// Writes the Float32 matrix (rows × columns, row-major) to `out`, block by block so each
    /// block's loop has one scale and vectorizes; rows split over threads for a large matrix.
    func dequantize(into out: UnsafeMutablePointer<Float>) {
        let blocksPerRow = paddedColumns / Self.blockSize, columns = columns, paddedColumns = paddedColumns
        let values = values, scales = scales
        parallelRanges(rows, minimum: rows * columns >= 1 << 20 ? 2 : Int.max, grain: 16) { range in
            for r in range {
                let q = values + r * paddedColumns, o = out + r * columns
                for b in 0..<blocksPerRow {
                    let d = scales[r * blocksPerRow + b], start = b * Self.blockSize
                    for c in start..<Swift.min(start + Self.blockSize, columns) { o[c] = Float(q[c]) * d }
                }
            }
        }
    }
}

/// Which kernels the quantized products use: the AVX2+FMA ones where the CPU has them, else Swift.
enum QuantizedKernels {
    static let vectorized = nudge_has_avx2_fma() != 0
}

/// y (m × rows of W, row stride ldy) = x (m × columns, row stride ldx) · Wᵀ.
func quantizedProduct(
    m: Int, x: UnsafePointer<Float>, ldx: Int, weight w: QuantizedMatrix, y: UnsafeMutablePointer<Float>, ldy: Int,
    portable: Bool = !QuantizedKernels.vectorized
) {
    let n = w.rows, k = w.columns, kp = w.paddedColumns, nbp = kp / QuantizedMatrix.blockSize
    guard m > 0, n > 0 else { return }
    // A weight read from memory (a million values or more of work) is split by output columns.
    parallelRanges(n, minimum: m * n * k >= 1 << 20 ? 2 : Int.max, grain: 16) { outputs in
        let q = w.values + outputs.lowerBound * kp, d = w.scales + outputs.lowerBound * nbp
        if !portable {
            nudge_q8_linear(Int32(m), Int32(outputs.count), Int32(k), x, ldx, q, d, y + outputs.lowerBound, ldy)
            return
        }
        for r in 0..<m {
            let xr = x + r * ldx
            for o in 0..<outputs.count {
                let qo = q + o * kp, dq = d + o * nbp
                var s: Float = 0
                for b in 0..<nbp {
                    let scale = dq[b], start = b * QuantizedMatrix.blockSize
                    for c in start..<min(start + QuantizedMatrix.blockSize, k) { s += xr[c] * (Float(qo[c]) * scale) }
                }
                y[r * ldy + outputs.lowerBound + o] = s
            }
        }
    }
}

/// dx (m × columns of W, row stride lddx) = g (m × rows of W, row stride ldg) · W.
func quantizedProductTransposed(
    m: Int, g: UnsafePointer<Float>, ldg: Int, weight w: QuantizedMatrix, dx: UnsafeMutablePointer<Float>, lddx: Int,
    portable: Bool = !QuantizedKernels.vectorized
) {
    let n = w.rows, k = w.columns, kp = w.paddedColumns, nbp = kp / QuantizedMatrix.blockSize
    guard m > 0, k > 0 else { return }
    if n == 0 {
        for r in 0..<m { (dx + r * lddx).update(repeating: 0, count: k) }
        return
    }
    // Split by blocks of dx's columns; each value sums over W's rows in order.
    parallelRanges(nbp, minimum: m * n * k >= 1 << 20 ? 2 : Int.max, grain: 1) { blocks in
        if !portable {
            nudge_q8_linear_backward(Int32(m), Int32(n), Int32(k), Int32(blocks.lowerBound), Int32(blocks.upperBound),
                                     g, ldg, w.values, w.scales, dx, lddx)
            return
        }
        for r in 0..<m {
            let gr = g + r * ldg, out = dx + r * lddx
            let start = blocks.lowerBound * QuantizedMatrix.blockSize
            let end = min(blocks.upperBound * QuantizedMatrix.blockSize, k)
            for c in start..<end { out[c] = 0 }
            for o in 0..<n {
                let qo = w.values + o * kp
                for b in blocks {
                    let coefficient = gr[o] * w.scales[o * nbp + b], c0 = b * QuantizedMatrix.blockSize
                    for c in c0..<min(c0 + QuantizedMatrix.blockSize, k) { out[c] += Float(qo[c]) * coefficient }
                }
            }
        }
    }
}

/// Rows of x from which a quantized product dequantizes W into a scratch matrix and runs sgemm:
/// the in-register kernels compute one dot product per output value, which for many rows loses
/// to the packed, cache-blocked sgemm by more than dequantizing costs (1/rows of the product's work).
/// The scratch lives for one call only, so no Float32 copy of W stays resident.
let quantizedGemmRows = 16

/// Calls `body` with W dequantized into a scratch matrix (rows × columns). The scratch comes from
/// the caching allocator, so it is reused across calls rather than mapped and faulted in each time.
private func withDequantized(_ w: QuantizedMatrix, _ body: (UnsafePointer<Float>) -> Void) {
    let scratch = Tensor(uninitializedShape: w.shape)
    w.dequantize(into: scratch.data)
    body(scratch.data)
    withExtendedLifetime(scratch) {}
}

/// y (m × rows of W) = x (m × columns) · Wᵀ: the in-register kernel for a few rows, else sgemm on W dequantized.
func quantizedLinearProduct(m: Int, x: UnsafePointer<Float>, weight w: QuantizedMatrix, y: UnsafeMutablePointer<Float>) {
    guard m >= quantizedGemmRows, w.rows > 0, w.columns > 0 else {
        return quantizedProduct(m: m, x: x, ldx: w.columns, weight: w, y: y, ldy: w.rows)
    }
    withDequantized(w) { sgemm(transA: false, transB: true, m: m, n: w.rows, k: w.columns, a: x, lda: w.columns, b: $0, ldb: w.columns, c: y, ldc: w.rows) }
}

/// dx (m × columns of W) = g (m × rows of W) · W, as `quantizedLinearProduct` chooses.
func quantizedLinearInputGradient(m: Int, g: UnsafePointer<Float>, weight w: QuantizedMatrix, dx: UnsafeMutablePointer<Float>) {
    guard m >= quantizedGemmRows, w.rows > 0, w.columns > 0 else {
        return quantizedProductTransposed(m: m, g: g, ldg: w.rows, weight: w, dx: dx, lddx: w.columns)
    }
    withDequantized(w) { sgemm(transA: false, transB: false, m: m, n: w.columns, k: w.rows, a: g, lda: w.rows, b: $0, ldb: w.columns, c: dx, ldc: w.columns) }
}

/// y = x·Wᵀ + b for a quantized frozen W of shape (out, in); x is (…, in). Only x (and a tracked
/// bias) get gradients: dx = g·W, db = Σ_rows g.
public func linear(_ x: Tensor, weight: QuantizedMatrix, bias: Tensor?) -> Tensor {
    let inCount = weight.columns, outCount = weight.rows
    precondition(x.shape.last == inCount, "linear: input \(x.shape) for quantized weight \(weight.shape)")
    let rows = x.count / Swift.max(inCount, 1)
    let out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outCount])
    quantizedLinearProduct(m: rows, x: x.data, weight: weight, y: out.data)
    if let bias {
        precondition(bias.count == outCount, "linear: bias \(bias.shape) for quantized weight \(weight.shape)")
        for r in 0..<rows {
            let y = out.data + r * outCount
            for o in 0..<outCount { y[o] += bias.data[o] }
        }
    }
    let inputs = bias.map { [x, $0] } ?? [x]
    if let tape = Tape.active(inputs) {
        let inShape = x.shape
        let needX = x.tape === tape, needB = bias?.tape === tape
        tape.record(out, inputs) { g in
            var grads: [Tensor?] = [nil]
            if needX {
                let dx = Tensor(uninitializedShape: inShape)
                quantizedLinearInputGradient(m: rows, g: g.data, weight: weight, dx: dx.data)
                grads[0] = dx
            }
            if bias != nil { grads.append(needB ? g.reshaped([rows, outCount]).sum(axis: 0) : nil) }
            return grads
        }
    }
    return out
}
