// Routing bulk elementwise work to the C kernels (CNudgeKernels/elementwise.c).
//
// Swift here is compiled for baseline x86-64 (SSE: 4 lanes, no FMA); the C kernels carry AVX2 or
// AVX-512F target attributes and are chosen at run time, like the sgemm. Tensors of at least
// `minimumCount` elements take them; smaller ones keep the Swift loops, where the cost of an op
// is its fixed overhead, not its width. The maps (binary, scalar, exp, tanh, σ, SiLU and their
// backward rules) give the same bits as the Swift path, so the size cut changes no result; the
// softmax-family row kernels use their own fixed summation order (16 lanes, see elementwise.c)
// and run for every row length when a kernel is active, so a row's result does not depend on the
// tensor's size either. AVX2 and AVX-512 give the same bits, and results do not depend on threads.

import CNudgeKernels
import Foundation

/// Which C kernel runs the bulk elementwise ops.
public enum ElementwiseKernels {
    /// The kernel large elementwise ops use: the fastest this CPU runs, or the one
    /// `NUDGE_ELEMENTWISE_KERNEL` names (`avx512`, `avx2`, `portable`) when the CPU runs it.
    public static let kernel = BuiltinGemm.Kernel.chosen(by: "NUDGE_ELEMENTWISE_KERNEL")

    /// Elements from which maps go to the C kernels (below, the Swift loops' fixed cost is lower).
    public static let minimumCount = 1 << 12

    /// The C id of `kernel` (`NUDGE_SGEMM_NONE` for the Swift path).
    static let active: Int32 = kernel.cKernel

    /// The C kernel for a map over `count` elements, or nil for the Swift path.
    @inline(__always)
    static func forMap(_ count: Int) -> Int32? {
        guard count >= minimumCount else { return nil }
        let k = active
        return k == Int32(NUDGE_SGEMM_NONE) ? nil : k
    }

    /// A row's maximum m and Σ exp(x − m), writing exp(x − m) to `exponentials` when given: the
    /// unnormalized sampling distribution of a vocabulary row. A row of −∞ gives (−∞, 0). On the C
    /// kernels the sum has the softmax rows' fixed order, so AVX2 and AVX-512 agree bit for bit.
    public static func maxAndExpSum(_ x: UnsafeBufferPointer<Float>,
                                    exponentials: UnsafeMutablePointer<Float>? = nil) -> (max: Float, sum: Float) {
        guard let base = x.baseAddress, !x.isEmpty else { return (-.infinity, 0) }
        if let k = forRows() {
            var m: Float = 0
            let sum = nudge_max_exp_sum(k, base, exponentials, x.count, &m)
            return (m, sum)
        }
        let m = x.max()!
        if m == -.infinity { return (m, 0) }
        var sum = 0.0
        for i in x.indices {
            let e = Foundation.exp(x[i] - m)
            exponentials?[i] = e
            sum += Double(e)
        }
        return (m, Float(sum))
    }

    /// The C kernel for row kernels (any size), or nil for the Swift path.
    @inline(__always)
    static func forRows() -> Int32? {
        let k = active
        return k == Int32(NUDGE_SGEMM_NONE) ? nil : k
    }
}

extension Tensor {
    /// `a op b` elementwise on the C kernel for large same-shape operands, or a large operand and a
    /// one-element one; nil when the Swift path should run.
    static func kernelBinary(_ a: Tensor, _ b: Tensor, _ op: Int32) -> Tensor? {
        let big = Swift.max(a.count, b.count)
        guard let k = ElementwiseKernels.forMap(big) else { return nil }
        if a.shape == b.shape {
            let out = Tensor(shape: a.shape, count: a.count)
            let x = a.data, y = b.data, z = out.data
            parallelRanges(a.count) { r in nudge_ew_binary(k, op, x + r.lowerBound, y + r.lowerBound, z + r.lowerBound, r.count) }
            return out
        }
        if b.count == 1 || a.count == 1 {
            let outShape = broadcastShape(a.shape, b.shape)
            guard outShape.reduce(1, *) == big else { return nil }
            let scalarOnRight = b.count == 1
            let s = scalarOnRight ? b.data[0] : a.data[0]
            let scalarOp: Int32 = switch (op, scalarOnRight) {
            case (Int32(NUDGE_EW_ADD), _): Int32(NUDGE_EW_SCALAR_ADD)
            case (Int32(NUDGE_EW_MUL), _): Int32(NUDGE_EW_SCALAR_MUL)
            case (Int32(NUDGE_EW_SUB), true): Int32(NUDGE_EW_SCALAR_ADD)
            case (Int32(NUDGE_EW_SUB), false): Int32(NUDGE_EW_SCALAR_RSUB)
            case (_, true): Int32(NUDGE_EW_SCALAR_DIV)
            default: Int32(NUDGE_EW_SCALAR_RDIV)
            }
            // x − s is x + (−s) exactly (IEEE subtraction adds the negation).
            let operand = op == Int32(NUDGE_EW_SUB) && scalarOnRight ? -s : s
            let src = scalarOnRight ? a : b
            return src.kernelScalar(scalarOp, operand, k, shape: outShape)
        }
        // A row broadcast (a bias): b's shape is a suffix of a's, so b repeats over a's rows.
        if b.shape.count <= a.shape.count && Array(a.shape.suffix(b.shape.count)) == b.shape && b.count > 0 {
            let out = Tensor(shape: a.shape, count: a.count)
            let n = b.count, x = a.data, y = b.data, z = out.data
            Tensor.forRows(count: a.count, n: n) { start, rows in
                for r in 0..<rows { nudge_ew_binary(k, op, x + start + r * n, y, z + start + r * n, n) }
            }
            return out
        }
        return nil
    }

    /// `self op s` elementwise on kernel `k`, shaped `shape`.
    func kernelScalar(_ op: Int32, _ s: Float, _ k: Int32, shape outShape: [Int]) -> Tensor {
        let out = Tensor(shape: outShape, count: count)
        let x = data, z = out.data
        parallelRanges(count) { r in nudge_ew_scalar(k, op, x + r.lowerBound, s, z + r.lowerBound, r.count) }
        return out
    }

    /// `self op s` (NUDGE_EW_SCALAR_*): the C kernel when large, else `f` per element.
    @inline(__always)
    func scalarMap(_ op: Int32, _ s: Float, _ f: (Float) -> Float) -> Tensor {
        if let k = ElementwiseKernels.forMap(count) { return kernelScalar(op, s, k, shape: shape) }
        return map(f)
    }

    /// A unary map (NUDGE_EW_EXP …): the C kernel when large, else the SIMD8 function `F`
    /// (the same bits).
    @inline(__always)
    func unaryMap<F: VectorFunction>(_ op: Int32, _: F.Type) -> Tensor {
        if let k = ElementwiseKernels.forMap(count) {
            let out = Tensor(shape: shape, count: count)
            let x = data, y = out.data
            parallelRanges(count) { r in nudge_ew_unary(k, op, x + r.lowerBound, y + r.lowerBound, r.count) }
            return out
        }
        return simdMap(F.self)
    }

    /// −self: the C kernel when large, else a Swift map.
    func negatedValues() -> Tensor {
        if let k = ElementwiseKernels.forMap(count) {
            let out = Tensor(shape: shape, count: count)
            let x = data, y = out.data
            parallelRanges(count) { r in nudge_ew_unary(k, Int32(NUDGE_EW_NEG), x + r.lowerBound, y + r.lowerBound, r.count) }
            return out
        }
        return map { -$0 }
    }

    /// The backward rule `op` over this output gradient and the saved input x / output y on the C
    /// kernel, or nil when the tensor is small or no kernel runs here.
    func kernelUnaryBackward(_ op: Int32, x: UnsafePointer<Float>?, y: UnsafePointer<Float>?) -> Tensor? {
        guard let k = ElementwiseKernels.forMap(count) else { return nil }
        let out = Tensor(shape: shape, count: count)
        let g = data, d = out.data
        parallelRanges(count) { r in
            nudge_ew_unary_backward(k, op, g + r.lowerBound, x.map { $0 + r.lowerBound }, y.map { $0 + r.lowerBound }, d + r.lowerBound, r.count)
        }
        return out
    }

    /// Runs a row kernel over the contiguous rows of n values of `count` elements, threaded by rows.
    static func forRows(count: Int, n: Int, _ body: (_ start: Int, _ rows: Int) -> Void) {
        let rows = count / Swift.max(n, 1)
        parallelRanges(rows, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(n, 1)), grain: 1) { r in
            body(r.lowerBound * n, r.count)
        }
    }
}
