// Quantized frozen weights (QLoRA-style training on the CPU): a matrix held as bf16 (the top 16
// bits of each Float32 value, rounded to nearest even as torch does; GGUF and safetensors BF16
// tensors are copied as they are), as Q8_0 (llama.cpp's
// layout: blocks of 32 int8 values along a row, one scale per block; the scale is kept as Float32
// rather than f16, so dequantized values are exactly d·q as computed here) or as Q4_1 (blocks of 32
// 4-bit values q with a scale d and a minimum m, x = q·d + m, as a GGUF file stores them: a model
// shipped in Q4_1 keeps its own weights, 0.75 bytes per value, with no re-quantization), and the two products
// LoRA training needs over it: y = x·Wᵀ (forward) and dx = g·W (the gradient reaching earlier
// layers' adapters). There is no weight gradient: the matrix is a constant, not a parameter.
//
// The AVX2+FMA kernels (CNudgeKernels/quantized.c) widen int8 to float in registers; bf16 has
// AVX2, AVX-512 and AVX512_BF16 kernels (CNudgeKernels/bf16.c, see `BF16Kernel`); the Swift
// kernels below are the portable fallback. Work is split over output columns of y (rows of W) or
// over column blocks of dx; each value is one sum in a fixed order, so results do not depend on the
// thread count.

import CNudgeKernels
import Foundation

/// How a frozen weight is quantized.
public enum WeightQuantization: String, Sendable, CaseIterable {
    /// Blocks of 32 int8 values along each row with one scale per block (llama.cpp's Q8_0).
    case q8_0
    /// Blocks of 32 4-bit values along each row with a scale and a minimum per block (llama.cpp's
    /// Q4_1); read from a GGUF file's Q4_1 blocks, or quantized here as llama.cpp does.
    case q4_1
    /// bfloat16: each value's top 16 bits (8 bits of mantissa), rounded to nearest even from
    /// Float32, or copied from a GGUF or safetensors BF16 tensor.
    case bf16
}

/// A frozen matrix of `rows` × `columns` held quantized: 2 bytes per value for bf16, about 1.1 for
/// Q8_0 and 0.75 for Q4_1 instead of 4. Immutable once made.
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
    /// Q8_0: int8 values, `paddedColumns` per row. Q4_1: `paddedColumns / 2` bytes per row, each
    /// block's 16 bytes in GGUF's order (byte j holds value j in its low nibble, j + 16 in its high one).
    /// bf16: `paddedColumns` 16-bit values per row (`bf16Bits`).
    let values: UnsafeMutablePointer<Int8>
    /// One scale per block, `paddedColumns / 32` per row (bf16: unused, one value).
    let scales: UnsafeMutablePointer<Float>
    /// Q4_1: one minimum per block, as `scales`; nil for Q8_0.
    let minimums: UnsafeMutablePointer<Float>?

    private init(rows: Int, columns: Int, format: WeightQuantization) {
        self.rows = rows
        self.columns = columns
        self.format = format
        paddedColumns = (columns + Self.blockSize - 1) / Self.blockSize * Self.blockSize
        let valueBytes = max(format == .q4_1 ? rows * paddedColumns / 2 : format == .bf16 ? rows * paddedColumns * 2 : rows * paddedColumns, 1)
        values = UnsafeMutableRawPointer.allocate(byteCount: valueBytes, alignment: 64).bindMemory(to: Int8.self, capacity: valueBytes)
        scales = UnsafeMutablePointer<Float>.allocate(capacity: format == .bf16 ? 1 : max(rows * paddedColumns / Self.blockSize, 1))
        minimums = format == .q4_1 ? UnsafeMutablePointer<Float>.allocate(capacity: max(rows * paddedColumns / Self.blockSize, 1)) : nil
    }

    /// The matrix stored in a GGUF file as `format`'s blocks (Q8_0: f16 d, 32 int8; Q4_1: f16 d,
    /// f16 m, 16 bytes of nibbles), `rows` rows of `columns / 32` blocks each, copied without any
    /// loss: the dequantized values equal what llama.cpp and the GGUF reader compute. Row r of the
    /// result is stored row `rowOrder[r]` when given (undoing a converter's row permutation). Nil
    /// when `columns` is not a whole number of blocks or `blocks` has the wrong size.
    /// For bf16 the "blocks" are the tensor's 2-byte values, `columns` per row (any number), as GGUF
    /// and safetensors store BF16 tensors: copied as they are.
    public convenience init?(ggufBlocks blocks: UnsafeRawBufferPointer, format: WeightQuantization, rows: Int, columns: Int,
                             rowOrder: [Int]? = nil) {
        if format == .bf16 {
            guard rows > 0, columns > 0, rowOrder.map({ $0.count == rows && $0.allSatisfy { $0 >= 0 && $0 < rows } }) ?? true,
                  blocks.count == rows * columns * 2 else { return nil }
            self.init(rows: rows, columns: columns, format: format)
            let bits = bf16Bits, padded = paddedColumns
            for r in 0..<rows {
                let row = bits + r * padded
                UnsafeMutableRawPointer(row).copyMemory(from: blocks.baseAddress! + (rowOrder?[r] ?? r) * columns * 2, byteCount: columns * 2)
                (row + columns).update(repeating: 0, count: padded - columns)
            }
            return
        }
        let blockBytes = format == .q8_0 ? 34 : 20
        guard rows > 0, columns > 0, columns % Self.blockSize == 0, rowOrder.map({ $0.count == rows }) ?? true,
              blocks.count == rows * columns / Self.blockSize * blockBytes else { return nil }
        self.init(rows: rows, columns: columns, format: format)
        let blocksPerRow = columns / Self.blockSize
        func half(_ p: UnsafeRawPointer) -> Float { Float(Float16(bitPattern: p.loadUnaligned(as: UInt16.self))) }
        for r in 0..<rows {
            let source = rowOrder?[r] ?? r
            guard source >= 0, source < rows else { return nil }
            for b in 0..<blocksPerRow {
                let block = blocks.baseAddress! + (source * blocksPerRow + b) * blockBytes
                let index = r * blocksPerRow + b
                scales[index] = half(block)
                switch format {
                case .q8_0:
                    UnsafeMutableRawPointer(values + r * paddedColumns + b * Self.blockSize).copyMemory(from: block + 2, byteCount: 32)
                case .q4_1:
                    minimums![index] = half(block + 2)
                    UnsafeMutableRawPointer(values + (r * paddedColumns + b * Self.blockSize) / 2).copyMemory(from: block + 4, byteCount: 16)
                case .bf16: break  // copied above
                }
            }
        }
    }

    /// Quantizes a 2-D tensor (rows × columns): Q8_0 as llama.cpp's `quantize_row_q8_0` (per block
    /// d = max|w|/127 and q = round(w/d)); Q4_1 as llama.cpp's `quantize_row_q4_1_ref` (per block
    /// d = (max − min)/15, q = min(15, ⌊(w − min)/d + ½⌋), d and min stored as f16, so the blocks are
    /// the ones llama.cpp would write; columns must be a whole number of blocks,
    /// `canQuantize(columns:to:)`); bf16 rounded to nearest even (torch's `.bfloat16()`).
    public convenience init(quantizing tensor: Tensor, format: WeightQuantization = .q8_0) {
        precondition(tensor.rank == 2, "QuantizedMatrix: a 2-D tensor is needed, got shape \(tensor.shape)")
        precondition(Self.canQuantize(columns: tensor.shape[1], to: format),
                     "QuantizedMatrix: Q4_1 needs a whole number of \(Self.blockSize)-value blocks per row, got \(tensor.shape[1]) columns")
        self.init(rows: tensor.shape[0], columns: tensor.shape[1], format: format)
        if format == .q4_1 {
            quantizeQ4_1(tensor)
            return
        }
        if format == .bf16 {
            let bits = bf16Bits, padded = paddedColumns, columns = columns, source = tensor.data
            parallelRanges(rows, minimum: rows * columns >= 1 << 20 ? 2 : Int.max, grain: 16) { range in
                for r in range {
                    nudge_f32_to_bf16(columns, source + r * columns, bits + r * padded)
                    (bits + r * padded + columns).update(repeating: 0, count: padded - columns)
                }
            }
            withExtendedLifetime(tensor) {}
            return
        }
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

    /// Whether a matrix with `columns` columns can be quantized to `format` here: Q4_1 needs whole
    /// blocks (its padding could not dequantize to zero).
    public static func canQuantize(columns: Int, to format: WeightQuantization) -> Bool {
        format != .q4_1 || columns % blockSize == 0
    }

    /// llama.cpp's `quantize_row_q4_1_ref`, row by row: the nibbles are computed with the Float32 d
    /// and min, and both are then held at f16 precision, as the file format stores them.
    private func quantizeQ4_1(_ tensor: Tensor) {
        let blocksPerRow = columns / Self.blockSize, half = Self.blockSize / 2
        let bytes = UnsafeMutableRawPointer(values).assumingMemoryBound(to: UInt8.self)
        for r in 0..<rows {
            let source = tensor.data + r * columns
            for b in 0..<blocksPerRow {
                let x = source + b * Self.blockSize
                var low = Float.greatestFiniteMagnitude, high = -Float.greatestFiniteMagnitude
                for j in 0..<Self.blockSize {
                    low = min(low, x[j])
                    high = max(high, x[j])
                }
                let d = (high - low) / 15
                let inverse: Float = d != 0 ? 1 / d : 0
                scales[r * blocksPerRow + b] = Float(Float16(d))
                minimums![r * blocksPerRow + b] = Float(Float16(low))
                let q = bytes + (r * columns + b * Self.blockSize) / 2
                for j in 0..<half {
                    // C's (int8_t) conversion truncates toward zero; the values are ≥ 0 here.
                    let v0 = min(15, Int8(((x[j] - low) * inverse + 0.5).rounded(.towardZero)))
                    let v1 = min(15, Int8(((x[j + half] - low) * inverse + 0.5).rounded(.towardZero)))
                    q[j] = UInt8(v0) | UInt8(v1) << 4
                }
            }
        }
        withExtendedLifetime(tensor) {}
    }

    deinit {
        UnsafeMutableRawPointer(values).deallocate()
        scales.deallocate()
        minimums?.deallocate()
    }

    /// `[rows, columns]`.
    public var shape: [Int] { [rows, columns] }

    /// bf16: the values' bits, `paddedColumns` per row (the padding holds zeros).
    var bf16Bits: UnsafeMutablePointer<UInt16> { UnsafeMutableRawPointer(values).assumingMemoryBound(to: UInt16.self) }

    /// Bytes held (values and scales).
    public var byteCount: Int {
        let blocks = rows * (paddedColumns / Self.blockSize)
        if format == .bf16 { return rows * paddedColumns * 2 }
        return format == .q4_1 ? rows * paddedColumns / 2 + 2 * blocks * MemoryLayout<Float>.size
            : rows * paddedColumns + blocks * MemoryLayout<Float>.size
    }

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
        if format == .bf16 {
            let bits = bf16Bits
            parallelRanges(rows, minimum: rows * columns >= 1 << 20 ? 2 : Int.max, grain: 16) { range in
                for r in range {
                    let s = bits + r * paddedColumns, o = out + r * columns
                    for c in 0..<columns { o[c] = Float(bitPattern: UInt32(s[c]) << 16) }
                }
            }
            return
        }
        if let minimums {
            let bytes = UnsafeRawPointer(values).assumingMemoryBound(to: UInt8.self)
            parallelRanges(rows, minimum: rows * columns >= 1 << 20 ? 2 : Int.max, grain: 16) { range in
                for r in range {
                    for b in 0..<blocksPerRow {
                        let index = r * blocksPerRow + b, d = scales[index], m = minimums[index]
                        let q = bytes + (r * paddedColumns + b * Self.blockSize) / 2, o = out + r * columns + b * Self.blockSize
                        for j in 0..<16 {
                            o[j] = Float(q[j] & 0x0F) * d + m
                            o[j + 16] = Float(q[j] >> 4) * d + m
                        }
                    }
                }
            }
            return
        }
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

/// The kernels of bf16 products (CNudgeKernels/bf16.c).
public enum BF16Kernel: String, Sendable, CaseIterable {
    /// `vdpbf16ps` on x rounded to bf16 as well (AVX512_BF16): x·Wᵀ only; its input gradients run `.avx512`.
    case dot = "AVX512_BF16"
    /// Weights widened to Float32 in registers (a 16-bit shift), 16 lanes with FMA; x stays Float32.
    case avx512 = "AVX-512"
    /// The same on 8 lanes.
    case avx2 = "AVX2+FMA"
    /// The portable Swift loops.
    case portable = "portable Swift"

    /// The C library's id.
    var cKernel: Int32 {
        switch self {
        case .dot: Int32(NUDGE_BF16_DOT)
        case .avx512: Int32(NUDGE_BF16_AVX512)
        case .avx2: Int32(NUDGE_BF16_AVX2)
        case .portable: Int32(NUDGE_BF16_NONE)
        }
    }

    /// Whether this CPU runs the kernel.
    public var isSupported: Bool { self == .portable || nudge_bf16_best_kernel() >= cKernel }

    /// The kernel bf16 products use: the widening one on the widest vectors this CPU has (x stays
    /// Float32; see `dot` for why not the AVX512_BF16 one by default), or the one `NUDGE_BF16_KERNEL`
    /// names (`dot`, `avx512`, `avx2`, `portable`) when the CPU runs it.
    public static let active: BF16Kernel = {
        let requested: BF16Kernel? = switch ProcessInfo.processInfo.environment["NUDGE_BF16_KERNEL"]?.lowercased() {
        case "dot", "avx512_bf16", "avx512bf16": .dot
        case "avx512", "avx-512": .avx512
        case "avx2": .avx2
        case "portable", "swift": .portable
        default: nil
        }
        if let requested, requested.isSupported { return requested }
        return [.avx512, .avx2].first { $0.isSupported } ?? .portable
    }()
}

/// y (m × rows of W, row stride ldy) = x (m × columns) · Wᵀ for a bf16 W on `kernel` (supported).
func bf16Product(m: Int, x: UnsafePointer<Float>, ldx: Int, weight w: QuantizedMatrix, y: UnsafeMutablePointer<Float>, ldy: Int,
                 kernel: BF16Kernel = .active) {
    let n = w.rows, k = w.columns, kp = w.paddedColumns, bits = w.bf16Bits
    guard m > 0, n > 0 else { return }
    // The dot kernel reads x rounded to bf16 and zero-padded, converted once for every thread.
    let xb: UnsafeMutablePointer<UInt16>? = kernel == .dot ? .allocate(capacity: m * kp) : nil
    defer { xb?.deallocate() }
    if let xb {
        for r in 0..<m {
            nudge_f32_to_bf16(k, x + r * ldx, xb + r * kp)
            (xb + r * kp + k).initialize(repeating: 0, count: kp - k)
        }
    }
    parallelRanges(n, minimum: m * n * k >= 1 << 20 ? 2 : Int.max, grain: 16) { outputs in
        if kernel != .portable {
            nudge_bf16_linear(kernel.cKernel, Int32(m), Int32(outputs.count), Int32(k), x, ldx, xb, kp,
                              bits + outputs.lowerBound * kp, kp, y + outputs.lowerBound, ldy)
            return
        }
        for r in 0..<m {
            let xr = x + r * ldx
            for o in outputs {
                let wo = bits + o * kp
                var s: Float = 0
                for c in 0..<k { s += xr[c] * Float(bitPattern: UInt32(wo[c]) << 16) }
                y[r * ldy + o] = s
            }
        }
    }
}

/// dx (m × columns of W, row stride lddx) = g (m × rows of W) · W for a bf16 W on `kernel` (supported).
func bf16ProductTransposed(m: Int, g: UnsafePointer<Float>, ldg: Int, weight w: QuantizedMatrix, dx: UnsafeMutablePointer<Float>,
                           lddx: Int, kernel: BF16Kernel = .active) {
    let n = w.rows, k = w.columns, kp = w.paddedColumns, bits = w.bf16Bits
    guard m > 0, k > 0 else { return }
    // Split by blocks of 32 of dx's columns; each value sums over W's rows in order.
    parallelRanges(kp / 32, minimum: m * n * k >= 1 << 20 ? 2 : Int.max, grain: 1) { blocks in
        if kernel != .portable {
            nudge_bf16_linear_backward(kernel.cKernel, Int32(m), Int32(n), Int32(k), Int32(blocks.lowerBound), Int32(blocks.upperBound),
                                       g, ldg, bits, kp, dx, lddx)
            return
        }
        let start = blocks.lowerBound * 32, end = min(blocks.upperBound * 32, k)
        for r in 0..<m {
            let gr = g + r * ldg, out = dx + r * lddx
            for c in start..<end { out[c] = 0 }
            for o in 0..<n {
                let wo = bits + o * kp, coefficient = gr[o]
                for c in start..<end { out[c] += Float(bitPattern: UInt32(wo[c]) << 16) * coefficient }
            }
        }
    }
}

extension QuantizedMatrix {
    /// x (…, columns) · Wᵀ for a bf16 matrix on `kernel` (one this CPU runs), without the autodiff
    /// tape or the sgemm path: for benchmarks and side-by-side checks (`linear(_:weight:bias:)` runs
    /// `BF16Kernel.active`, or sgemm on the widened matrix for many rows).
    public func bf16Product(_ x: Tensor, kernel: BF16Kernel) -> Tensor {
        precondition(format == .bf16 && kernel.isSupported && x.shape.last == columns, "bf16Product: \(format) \(shape), x \(x.shape), \(kernel)")
        let m = x.count / max(columns, 1)
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [rows])
        NudgeTensor.bf16Product(m: m, x: x.data, ldx: columns, weight: self, y: y.data, ldy: rows, kernel: kernel)
        return y
    }
}

/// y (m × rows of W, row stride ldy) = x (m × columns, row stride ldx) · Wᵀ.
func quantizedProduct(
    m: Int, x: UnsafePointer<Float>, ldx: Int, weight w: QuantizedMatrix, y: UnsafeMutablePointer<Float>, ldy: Int,
    portable: Bool = !QuantizedKernels.vectorized
) {
    if w.format == .bf16 { return bf16Product(m: m, x: x, ldx: ldx, weight: w, y: y, ldy: ldy, kernel: portable ? .portable : .active) }
    let n = w.rows, k = w.columns, kp = w.paddedColumns, nbp = kp / QuantizedMatrix.blockSize
    guard m > 0, n > 0 else { return }
    // A weight read from memory (a million values or more of work) is split by output columns.
    parallelRanges(n, minimum: m * n * k >= 1 << 20 ? 2 : Int.max, grain: 16) { outputs in
        if let minimums = w.minimums {
            return q4_1Product(m: m, x: x, ldx: ldx, weight: w, minimums: minimums, outputs: outputs, y: y, ldy: ldy, portable: portable)
        }
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

/// Rows `outputs` of y = x · Wᵀ for a Q4_1 W (each weight q·d + m, widened in registers by the AVX2 kernel).
private func q4_1Product(m: Int, x: UnsafePointer<Float>, ldx: Int, weight w: QuantizedMatrix, minimums: UnsafeMutablePointer<Float>,
                         outputs: Range<Int>, y: UnsafeMutablePointer<Float>, ldy: Int, portable: Bool) {
    let k = w.columns, nb = k / QuantizedMatrix.blockSize
    let q = UnsafeRawPointer(w.values).assumingMemoryBound(to: UInt8.self) + outputs.lowerBound * k / 2
    let d = w.scales + outputs.lowerBound * nb, mins = minimums + outputs.lowerBound * nb
    if !portable {
        nudge_q4_1_linear(Int32(m), Int32(outputs.count), Int32(k), x, ldx, q, d, mins, y + outputs.lowerBound, ldy)
        return
    }
    for r in 0..<m {
        let xr = x + r * ldx
        for o in 0..<outputs.count {
            var s: Float = 0
            for b in 0..<nb {
                let qb = q + (o * nb + b) * 16, scale = d[o * nb + b], minimum = mins[o * nb + b], c = b * QuantizedMatrix.blockSize
                for j in 0..<16 {
                    s += xr[c + j] * (Float(qb[j] & 0x0F) * scale + minimum)
                    s += xr[c + j + 16] * (Float(qb[j] >> 4) * scale + minimum)
                }
            }
            y[r * ldy + outputs.lowerBound + o] = s
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
    if w.format == .bf16 {
        return bf16ProductTransposed(m: m, g: g, ldg: ldg, weight: w, dx: dx, lddx: lddx, kernel: portable ? .portable : .active)
    }
    // Split by blocks of dx's columns; each value sums over W's rows in order.
    parallelRanges(nbp, minimum: m * n * k >= 1 << 20 ? 2 : Int.max, grain: 1) { blocks in
        if let minimums = w.minimums {
            // Q4_1 (few rows only: many rows dequantize and use sgemm): portable code.
            let bytes = UnsafeRawPointer(w.values).assumingMemoryBound(to: UInt8.self)
            for r in 0..<m {
                let gr = g + r * ldg, out = dx + r * lddx
                for c in (blocks.lowerBound * QuantizedMatrix.blockSize)..<(blocks.upperBound * QuantizedMatrix.blockSize) { out[c] = 0 }
                for o in 0..<n {
                    for b in blocks {
                        let index = o * nbp + b, qb = bytes + index * 16, c0 = b * QuantizedMatrix.blockSize
                        let scale = w.scales[index], minimum = minimums[index]
                        for j in 0..<16 {
                            out[c0 + j] += (Float(qb[j] & 0x0F) * scale + minimum) * gr[o]
                            out[c0 + j + 16] += (Float(qb[j] >> 4) * scale + minimum) * gr[o]
                        }
                    }
                }
            }
            return
        }
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

/// Adds `bias` (outCount values) to each of the `rows` rows of `out`, untaped (after a product that
/// cannot start from the bias the way sgemm's β = 1 does).
func addBias(_ bias: Tensor, to out: Tensor, rows: Int) {
    let outCount = bias.count
    for r in 0..<rows {
        let y = out.data + r * outCount
        for o in 0..<outCount { y[o] += bias.data[o] }
    }
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
        addBias(bias, to: out, rows: rows)
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
