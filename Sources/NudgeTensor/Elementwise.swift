// Elementwise ops with broadcasting, and their backward rules.
//
// Unary ops are one forward function f(x) and one local derivative rule g·f'(x) (written with
// the saved input x and output y); both run as single fused passes. Binary ops broadcast with
// NumPy rules and sum their gradients back to each operand's shape.

import CNudgeKernels
import Foundation

// MARK: - Fused elementwise kernels (not recorded)

/// A binary elementwise function as a type, so kernels specialize on it even inside the
/// closures that split work across threads (a closure value would be an indirect call per element).
public protocol BinaryFunction {
    static func apply(_ x: Float, _ y: Float) -> Float
}

public enum AddFunction: BinaryFunction { @inlinable @inline(__always) public static func apply(_ x: Float, _ y: Float) -> Float { x + y } }
public enum SubtractFunction: BinaryFunction { @inlinable @inline(__always) public static func apply(_ x: Float, _ y: Float) -> Float { x - y } }
public enum MultiplyFunction: BinaryFunction { @inlinable @inline(__always) public static func apply(_ x: Float, _ y: Float) -> Float { x * y } }
public enum DivideFunction: BinaryFunction { @inlinable @inline(__always) public static func apply(_ x: Float, _ y: Float) -> Float { x / y } }

/// A binary elementwise function as a value: what the broadcasting kernel is specialized on, for a
/// `BinaryFunction` type (inlined) or a closure (one call per element).
@usableFromInline
protocol BinaryKernel {
    func callAsFunction(_ x: Float, _ y: Float) -> Float
}

@usableFromInline
struct StaticKernel<F: BinaryFunction>: BinaryKernel {
    @inlinable init() {}
    @inlinable @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float { F.apply(x, y) }
}

@usableFromInline
struct ClosureKernel: BinaryKernel {
    @usableFromInline let f: (Float, Float) -> Float
    @inlinable init(_ f: @escaping (Float, Float) -> Float) { self.f = f }
    @inlinable @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float { f(x, y) }
}

extension Tensor {
    /// A new tensor with `f` applied to every element.
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(shape: shape, count: count)
        let x = data, y = out.data
        parallelRanges(count) { r in for i in r { y[i] = f(x[i]) } }
        return out
    }

    /// A new tensor with `f` applied to matching elements of two same-count tensors.
    @inlinable
    public static func zipMap(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.count == b.count, "zipMap: shapes \(a.shape) and \(b.shape)")
        let out = Tensor(shape: a.shape, count: a.count)
        let x = a.data, y = b.data, z = out.data
        parallelRanges(a.count) { r in for i in r { z[i] = f(x[i], y[i]) } }
        return out
    }

    /// A new tensor with `f` applied to matching elements of three same-count tensors.
    @inlinable
    public static func zipMap(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float
    ) -> Tensor {
        precondition(a.count == b.count && a.count == c.count, "zipMap: shapes \(a.shape), \(b.shape), \(c.shape)")
        let out = Tensor(shape: a.shape, count: a.count)
        let x = a.data, y = b.data, w = c.data, z = out.data
        parallelRanges(a.count) { r in for i in r { z[i] = f(x[i], y[i], w[i]) } }
        return out
    }

    /// Applies `f` with NumPy broadcasting (not recorded).
    @inlinable
    public static func broadcastMap(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        withoutActuallyEscaping(f) { f in broadcast(a, b, ClosureKernel(f)) }
    }

    /// Applies `F` with NumPy broadcasting (not recorded), specialized on `F`.
    @inlinable
    public static func broadcastMap<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, _: F.Type) -> Tensor {
        broadcast(a, b, StaticKernel<F>())
    }

    /// The one broadcasting kernel behind both `broadcastMap`s: same shapes, a scalar operand, a row
    /// (bias) broadcast, or general strides, each a loop specialized on `K`.
    @inlinable
    static func broadcast<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _ f: K) -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(shape: a.shape, count: a.count)
            let x = a.data, y = b.data, z = out.data
            parallelRanges(a.count) { r in for i in r { z[i] = f(x[i], y[i]) } }
            return out
        }
        let outShape = broadcastShape(a.shape, b.shape)
        let total = outShape.reduce(1, *)
        if b.count == 1 && total == a.count {
            let s = b.data[0], x = a.data
            let out = Tensor(shape: outShape, count: total)
            let z = out.data
            parallelRanges(total) { r in for i in r { z[i] = f(x[i], s) } }
            return out
        }
        if a.count == 1 && total == b.count {
            let s = a.data[0], y = b.data
            let out = Tensor(shape: outShape, count: total)
            let z = out.data
            parallelRanges(total) { r in for i in r { z[i] = f(s, y[i]) } }
            return out
        }
        // Row broadcast (a bias): one operand's shape is a suffix of the other's.
        if outShape == a.shape && b.shape.count <= a.shape.count && Array(a.shape.suffix(b.shape.count)) == b.shape {
            let out = Tensor(shape: outShape, count: total)
            let n = b.count, x = a.data, y = b.data, z = out.data
            for row in 0..<(total / Swift.max(n, 1)) {
                let p = x + row * n, r = z + row * n
                for i in 0..<n { r[i] = f(p[i], y[i]) }
            }
            return out
        }
        let out = Tensor(shape: outShape, count: total)
        let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
        let ia = sa.last ?? 0, ib = sb.last ?? 0
        let x = a.data, y = b.data, z = out.data
        forEachRow(outShape, [sa, sb]) { o, off, n in
            let p = x + off[0], q = y + off[1], r = z + o
            switch (ia, ib) {
            case (1, 1): for i in 0..<n { r[i] = f(p[i], q[i]) }
            case (1, _): let v = q[0]; for i in 0..<n { r[i] = f(p[i], v) }
            case (_, 1): let v = p[0]; for i in 0..<n { r[i] = f(v, q[i]) }
            default: let v = f(p[0], q[0]); for i in 0..<n { r[i] = v }
            }
        }
        return out
    }

    /// A unary op: forward `f` per element, and `backward(g, x, y)` giving the input's gradient
    /// from the output gradient and the saved input and output buffers.
    @inlinable
    func unary(
        _ f: (Float) -> Float,
        _ backward: @escaping (Tensor, UnsafePointer<Float>, UnsafePointer<Float>) -> Tensor
    ) -> Tensor {
        recordUnary(map(f), backward)
    }

    /// Records `out = op(self)` when tracked. The backward closure keeps the input and output
    /// buffers alive, not their tensors.
    @inlinable
    func recordUnary(
        _ out: Tensor, _ backward: @escaping (Tensor, UnsafePointer<Float>, UnsafePointer<Float>) -> Tensor
    ) -> Tensor {
        if let tape = Tape.active(self) {
            let xs = storage, ys = out.storage
            tape.record(out, self) { g in [backward(g, xs.pointer, ys.pointer)] }
        }
        return out
    }

    /// `d(g, x, y)` over this gradient and two saved buffers of the same count (for backward rules).
    @inlinable
    public func pointwise(
        _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ d: (Float, Float, Float) -> Float
    ) -> Tensor {
        let out = Tensor(shape: shape, count: count)
        let gp = data, o = out.data
        parallelRanges(count) { r in for i in r { o[i] = d(gp[i], x[i], y[i]) } }
        return out
    }
}

// MARK: - Binary ops

extension Tensor {
    /// Elementwise sum with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = kernelBinary(a, b, Int32(NUDGE_EW_ADD)) ?? broadcastMap(a, b, AddFunction.self)
        if let tape = Tape.active(a, b) {
            let sa = a.shape, sb = b.shape
            tape.record(out, a, b) { g in [g.sum(toShape: sa), g.sum(toShape: sb)] }
        }
        return out
    }

    /// Elementwise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = kernelBinary(a, b, Int32(NUDGE_EW_SUB)) ?? broadcastMap(a, b, SubtractFunction.self)
        if let tape = Tape.active(a, b) {
            let sa = a.shape, sb = b.shape
            tape.record(out, a, b) { g in [g.sum(toShape: sa), g.negatedValues().sum(toShape: sb)] }
        }
        return out
    }

    /// Elementwise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = product(a, b)
        if let tape = Tape.active(a, b) {
            // Capturing the inputs is safe: the tape drops its nodes after backward (or on error).
            tape.record(out, a, b) { g in
                [product(g, b).sum(toShape: a.shape), product(g, a).sum(toShape: b.shape)]
            }
        }
        return out
    }

    /// a ⊙ b with broadcasting, not recorded (the C kernel for large operands).
    static func product(_ a: Tensor, _ b: Tensor) -> Tensor {
        kernelBinary(a, b, Int32(NUDGE_EW_MUL)) ?? broadcastMap(a, b, MultiplyFunction.self)
    }

    /// Elementwise quotient with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = kernelBinary(a, b, Int32(NUDGE_EW_DIV)) ?? broadcastMap(a, b, DivideFunction.self)
        if let tape = Tape.active(a, b) {
            let y = b.detached(), z = out.detached(), sa = a.shape
            tape.record(out, a, b) { g in
                let ga = kernelBinary(g, y, Int32(NUDGE_EW_DIV)) ?? broadcastMap(g, y, DivideFunction.self)
                // d(a/b)/db = -(a/b)/b
                let gb = Tensor.zipMap(ga, z) { -$0 * $1 }
                return [ga.sum(toShape: sa), gb.sum(toShape: y.shape)]
            }
        }
        return out
    }

    /// Elementwise power `a ** b` with broadcasting (the gradient for b needs a > 0).
    public static func pow(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = broadcastMap(a, b) { Foundation.pow($0, $1) }
        if let tape = Tape.active(a, b) {
            let x = a.detached(), y = b.detached(), z = out.detached()
            tape.record(out, a, b) { g in
                let xe = x.expand(to: z.shape), ye = y.expand(to: z.shape)
                let ga = Tensor.zipMap(g, xe, ye) { g, x, y in g * y * Foundation.pow(x, y - 1) }
                let gb = Tensor.zipMap(g, xe, z) { g, x, z in x > 0 ? g * z * Foundation.log(x) : 0 }
                return [ga.sum(toShape: x.shape), gb.sum(toShape: y.shape)]
            }
        }
        return out
    }

    static func select(_ a: Tensor, _ b: Tensor, takeA: @escaping (Float, Float) -> Bool) -> Tensor {
        let out = broadcastMap(a, b) { takeA($0, $1) ? $0 : $1 }
        if let tape = Tape.active(a, b) {
            let x = a.detached(), y = b.detached()
            tape.record(out, a, b) { g in
                let xe = x.expand(to: g.shape), ye = y.expand(to: g.shape)
                let ga = Tensor.zipMap(g, xe, ye) { g, x, y in takeA(x, y) ? g : 0 }
                let gb = Tensor.zipMap(g, xe, ye) { g, x, y in takeA(x, y) ? 0 : g }
                return [ga.sum(toShape: x.shape), gb.sum(toShape: y.shape)]
            }
        }
        return out
    }

    /// Elementwise minimum; the gradient goes to the chosen side (to `a` on ties).
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { select(a, b) { $0 <= $1 } }
    /// Elementwise maximum; the gradient goes to the chosen side (to `a` on ties).
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { select(a, b) { $0 >= $1 } }

    /// `condition ? a : b` elementwise (nonzero means true), all three broadcast together.
    /// The condition gets no gradient.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let outShape = broadcastShape(condition.shape, broadcastShape(a.shape, b.shape))
        let c = condition.detached().expand(to: outShape)
        let out = Tensor.zipMap(c, a.detached().expand(to: outShape), b.detached().expand(to: outShape)) {
            $0 != 0 ? $1 : $2
        }
        if let tape = Tape.active(a, b) {
            let sa = a.shape, sb = b.shape
            tape.record(out, a, b) { g in
                [Tensor.zipMap(g, c) { $1 != 0 ? $0 : 0 }.sum(toShape: sa),
                 Tensor.zipMap(g, c) { $1 != 0 ? 0 : $0 }.sum(toShape: sb)]
            }
        }
        return out
    }

    /// 1 where `a > b`, else 0 (no gradient).
    public static func greater(_ a: Tensor, _ b: Tensor) -> Tensor { broadcastMap(a.detached(), b.detached()) { $0 > $1 ? 1 : 0 } }
    /// 1 where `a < b`, else 0 (no gradient).
    public static func less(_ a: Tensor, _ b: Tensor) -> Tensor { broadcastMap(a.detached(), b.detached()) { $0 < $1 ? 1 : 0 } }
    /// 1 where `a == b`, else 0 (no gradient).
    public static func equal(_ a: Tensor, _ b: Tensor) -> Tensor { broadcastMap(a.detached(), b.detached()) { $0 == $1 ? 1 : 0 } }
}

// MARK: - Scalar operands

extension Tensor {
    // Large tensors run on the C kernels (`scalarMap`), with the same bits as the closures.
    public static func + (a: Tensor, s: Float) -> Tensor {
        a.recordUnary(a.scalarMap(Int32(NUDGE_EW_SCALAR_ADD), s) { $0 + s }) { g, _, _ in g }
    }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func - (s: Float, a: Tensor) -> Tensor {
        a.recordUnary(a.scalarMap(Int32(NUDGE_EW_SCALAR_RSUB), s) { s - $0 }) { g, _, _ in g.negatedValues() }
    }
    public static func * (a: Tensor, s: Float) -> Tensor {
        a.recordUnary(a.scalarMap(Int32(NUDGE_EW_SCALAR_MUL), s) { $0 * s }) { g, _, _ in
            g.scalarMap(Int32(NUDGE_EW_SCALAR_MUL), s) { $0 * s }
        }
    }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func / (s: Float, a: Tensor) -> Tensor {
        a.recordUnary(a.scalarMap(Int32(NUDGE_EW_SCALAR_RDIV), s) { s / $0 }) { g, x, y in g.pointwise(x, y) { g, x, y in -g * y / x } }
    }
    public static prefix func - (a: Tensor) -> Tensor { a.recordUnary(a.negatedValues()) { g, _, _ in g.negatedValues() } }
}

// MARK: - Unary ops

@inlinable @inline(__always)
func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
    let e = Foundation.exp(x)
    return e / (1 + e)
}

@inlinable @inline(__always)
func stableSoftplus(_ x: Float) -> Float {
    Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
}

extension Tensor {
    public func exp() -> Tensor {
        recordUnary(unaryMap(Int32(NUDGE_EW_EXP), ExpFunction.self)) { g, x, y in
            g.kernelUnaryBackward(Int32(NUDGE_EW_EXP), x: nil, y: y) ?? g.pointwise(x, y) { g, _, y in g * y }
        }
    }
    public func log() -> Tensor { unary({ Foundation.log($0) }) { g, x, y in g.pointwise(x, y) { g, x, _ in g / x } } }
    public func log1p() -> Tensor { unary({ Foundation.log1p($0) }) { g, x, y in g.pointwise(x, y) { g, x, _ in g / (1 + x) } } }
    public func sqrt() -> Tensor { unary({ $0.squareRoot() }) { g, x, y in g.pointwise(x, y) { g, _, y in g * 0.5 / y } } }
    public func rsqrt() -> Tensor { unary({ 1 / $0.squareRoot() }) { g, x, y in g.pointwise(x, y) { g, _, y in -0.5 * g * y * y * y } } }
    public func square() -> Tensor { unary({ $0 * $0 }) { g, x, y in g.pointwise(x, y) { g, x, _ in 2 * g * x } } }
    public func abs() -> Tensor { unary({ Swift.abs($0) }) { g, x, y in g.pointwise(x, y) { g, x, _ in x > 0 ? g : (x < 0 ? -g : 0) } } }
    /// `x ** p` for a scalar exponent.
    public func pow(_ p: Float) -> Tensor {
        unary({ Foundation.pow($0, p) }) { g, x, y in g.pointwise(x, y) { g, x, _ in g * p * Foundation.pow(x, p - 1) } }
    }
    public func tanh() -> Tensor {
        recordUnary(unaryMap(Int32(NUDGE_EW_TANH), TanhFunction.self)) { g, x, y in
            g.kernelUnaryBackward(Int32(NUDGE_EW_TANH), x: nil, y: y) ?? g.pointwise(x, y) { g, _, y in g * (1 - y * y) }
        }
    }
    public func sigmoid() -> Tensor {
        recordUnary(unaryMap(Int32(NUDGE_EW_SIGMOID), SigmoidFunction.self)) { g, x, y in
            g.kernelUnaryBackward(Int32(NUDGE_EW_SIGMOID), x: nil, y: y) ?? g.pointwise(x, y) { g, _, y in g * y * (1 - y) }
        }
    }
    /// log σ(x), stable for large |x|.
    public func logSigmoid() -> Tensor {
        unary({ -stableSoftplus(-$0) }) { g, x, y in g.pointwise(x, y) { g, x, _ in g * stableSigmoid(-x) } }
    }
    /// log(1 − eˣ) for x < 0, without cancellation: log(−expm1(x)) above −ln 2, log1p(−eˣ) below
    /// (Mächler 2012; TRL's ORPO branches the same way). d/dx = −1 / expm1(−x).
    public func log1mexp() -> Tensor {
        unary({ x in
            let d = Double(x)
            return Float(d > -0.6931471805599453 ? Foundation.log(-Foundation.expm1(d)) : Foundation.log1p(-Foundation.exp(d)))
        }) { g, x, y in g.pointwise(x, y) { g, x, _ in Float(Double(g) * (-1 / Foundation.expm1(-Double(x)))) } }
    }
    /// log(1 + eˣ), stable for large |x|.
    public func softplus() -> Tensor { unary(stableSoftplus) { g, x, y in g.pointwise(x, y) { g, x, _ in g * stableSigmoid(x) } } }
    public func relu() -> Tensor { unary({ $0 > 0 ? $0 : 0 }) { g, x, y in g.pointwise(x, y) { g, x, _ in x > 0 ? g : 0 } } }
    /// x·σ(x) (SiLU / swish), vectorized both ways.
    public func silu() -> Tensor {
        recordUnary(unaryMap(Int32(NUDGE_EW_SILU), SiLUFunction.self)) { g, x, _ in
            if let out = g.kernelUnaryBackward(Int32(NUDGE_EW_SILU), x: x, y: nil) { return out }
            let out = Tensor(uninitializedShape: g.shape)
            let gp = g.data, o = out.data
            parallelRanges(g.count) { r in siluBackwardKernel(gp + r.lowerBound, x + r.lowerBound, o + r.lowerBound, r.count) }
            return out
        }
    }
    /// GELU: exact (erf) or the tanh approximation (`gelu_new` / `gelu_pytorch_tanh`).
    public func gelu(approximate: Bool = false) -> Tensor {
        if approximate {
            // Vectorized with vtanh (absolute error below 1.5e-7 against libm's tanh), the same bits
            // on the Swift path and the C kernels.
            return recordUnary(unaryMap(Int32(NUDGE_EW_GELU_TANH), GeluTanhFunction.self)) { g, x, _ in
                if let out = g.kernelUnaryBackward(Int32(NUDGE_EW_GELU_TANH), x: x, y: nil) { return out }
                let out = Tensor(uninitializedShape: g.shape)
                let gp = g.data, o = out.data
                parallelRanges(g.count) { r in geluTanhBackwardKernel(gp + r.lowerBound, x + r.lowerBound, o + r.lowerBound, r.count) }
                return out
            }
        }
        return unary({ x in 0.5 * x * (1 + Foundation.erf(x * 0.7071067811865476)) }) { g, x, y in g.pointwise(x, y) { g, x, _ in
            let cdf = 0.5 * (1 + Foundation.erf(x * 0.7071067811865476))
            let pdf = Foundation.exp(-0.5 * x * x) * 0.3989422804014327
            return g * (cdf + x * pdf)
        } }
    }
    /// Values limited to `[lower, upper]`; the gradient is zero outside (as PPO's clip needs).
    public func clamp(min lower: Float = -.infinity, max upper: Float = .infinity) -> Tensor {
        unary({ $0 < lower ? lower : ($0 > upper ? upper : $0) }) { g, x, y in g.pointwise(x, y) { g, x, _ in x >= lower && x <= upper ? g : 0 } }
    }
}
