// Vectorized exp, tanh and sigmoid on SIMD8<Float>.
//
// libm's scalar expf/tanhf cost 10–20 ns per element and do not vectorize; a small policy's
// forward pass is dominated by them. exp uses Cephes' range reduction (x = n·ln2 + r, |r| ≤ ½ln2)
// and degree-6 polynomial (about 1 ulp), with 2ⁿ built from exponent bits; rounding uses the
// 1.5·2²³ magic constant and clamping uses `replacing(with:where:)`, because `rounded` and
// `pointwiseMin/Max` are not inlined on this toolchain. tanh is a rational function (no exp)
// evaluated at x/2 and doubled.

import Foundation
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// √x lane by lane. `SIMD8.squareRoot()` is computed one lane at a time on this toolchain, so
/// x86 uses the SSE instruction directly.
@inlinable @inline(__always)
public func vsqrt(_ v: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(x86_64)
    return SIMD8(lowHalf: _mm_sqrt_ps(v.lowHalf), highHalf: _mm_sqrt_ps(v.highHalf))
    #else
    return v.squareRoot()
    #endif
}

@inlinable @inline(__always)
func bits(_ x: SIMD8<Float>) -> SIMD8<UInt32> { unsafeBitCast(x, to: SIMD8<UInt32>.self) }

@inlinable @inline(__always)
func floats(_ x: SIMD8<UInt32>) -> SIMD8<Float> { unsafeBitCast(x, to: SIMD8<Float>.self) }

@usableFromInline let expHi: Float = 88.3762626647949
@usableFromInline let expLo: Float = -87.3365447504019

/// eˣ lane by lane (relative error about 2e-7; underflows to 0 below −87.3, overflows above 88.4).
@inlinable @inline(__always)
public func vexp(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    var x = x0.replacing(with: expHi, where: x0 .> expHi)
    x = x.replacing(with: expLo, where: x .< expLo)
    let magic: Float = 12_582_912  // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
    let t = x * 1.44269504088896341 + magic
    let n = t - magic
    var r = x - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p: SIMD8<Float> = SIMD8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    let exponent = (bits(t) &- magic.bitPattern) &+ 127
    let scale = floats(exponent &<< 23)
    let result = p * scale
    return result.replacing(with: 0, where: x0 .< expLo)
}

/// tanh by a [13/6] rational approximation (the coefficients of Eigen's float tanh; no exp):
/// absolute error below 2.2e-7 for |x| < 3, up to 3.4e-7 beyond; x itself below |x| < 0.0004.
/// The numerator p(x) and denominator q(x) of a [13/6] rational approximation of tanh on
/// [−7.9, 7.9] (the coefficients of Eigen's float tanh): tanh x ≈ p/q.
@inlinable @inline(__always)
func tanhRationalParts(_ x0: SIMD8<Float>) -> (p: SIMD8<Float>, q: SIMD8<Float>) {
    let limit: Float = 7.90531110763549805
    var x = x0.replacing(with: limit, where: x0 .> limit)
    x = x.replacing(with: -limit, where: x .< -limit)
    let x2 = x * x
    var p: SIMD8<Float> = SIMD8(repeating: -2.76076847742355e-16)
    p = p * x2 + 2.00018790482477e-13
    p = p * x2 - 8.60467152213735e-11
    p = p * x2 + 5.12229709037114e-08
    p = p * x2 + 1.48572235717979e-05
    p = p * x2 + 6.37261928875436e-04
    p = p * x2 + 4.89352455891786e-03
    p = p * x
    var q: SIMD8<Float> = SIMD8(repeating: 1.19825839466702e-06)
    q = q * x2 + 1.18534705686654e-04
    q = q * x2 + 2.26843463243900e-03
    q = q * x2 + 4.89352518554385e-03
    return (p, q)
}

/// tanh lane by lane (absolute error below 1.5e-7, relative below 3.5e-7). The rational form
/// p/q alone errs up to 3.4e-7 at large |x|; evaluating it at x/2 and doubling,
/// tanh x = 2t/(1 + t²), damps that error to about 1e-8. Branch-free, no exp. (Folding the two
/// divisions into 2pq/(p² + q²) compiled to partly scalar code here and ran 2× slower.)
@inlinable @inline(__always)
public func vtanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let (p, q) = tanhRationalParts(x * 0.5)
    let t = p / q
    return (t + t) / (1 + t * t)
}

/// σ(x) = 1/(1 + e⁻ˣ) lane by lane.
@inlinable @inline(__always)
public func vsigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
    1 / (1 + vexp(-x))
}

/// Applies `F` over `n` floats with the call to `F.apply` written in the loop itself (through a
/// closure it was an out-of-line call per vector).
@inlinable
func vectorLoop<F: VectorFunction>(_: F.Type, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    while i + 8 <= n {
        ry.storeBytes(of: F.apply(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)),
                      toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    if i < n {
        var v = SIMD8<Float>()
        for j in 0..<(n - i) { v[j] = x[i + j] }
        let out = F.apply(v)
        for j in 0..<(n - i) { y[i + j] = out[j] }
    }
}

/// A SIMD8 function as a type, so kernels specialize on it inside threaded closures.
public protocol VectorFunction {
    static func apply(_ x: SIMD8<Float>) -> SIMD8<Float>
}

public enum ExpFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { vexp(x) } }
public enum TanhFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { vtanh(x) } }
public enum SiLUFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { x * vsigmoid(x) } }
public enum GeluTanhFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { 0.5 * x * (1 + geluTanhInner(x)) } }
public enum SigmoidFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { vsigmoid(x) } }

extension Tensor {
    /// A new tensor with a SIMD8 function applied to every element.
    @inlinable
    func simdMap<F: VectorFunction>(_: F.Type) -> Tensor {
        let out = Tensor(shape: shape, count: count)
        let x = data, y = out.data
        parallelRanges(count) { r in vectorLoop(F.self, x + r.lowerBound, y + r.lowerBound, r.count) }
        return out
    }
}

/// The SiLU backward pass g·σ(x)·(1 + x·(1 − σ(x))) over `n` floats, eight lanes at a time.
@inlinable
func siluBackwardKernel(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let rg = UnsafeRawPointer(g), rx = UnsafeRawPointer(x), ro = UnsafeMutableRawPointer(out)
    while i + 8 <= n {
        let xv = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let gv = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let s = vsigmoid(xv)
        ro.storeBytes(of: gv * s * (1 + xv * (1 - s)), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    if i < n {
        // The tail zero-padded through the same vector code, so every element gets the same bits
        // as the C kernel's (and as it would in a full vector).
        var xv = SIMD8<Float>(), gv = SIMD8<Float>()
        for j in 0..<(n - i) { xv[j] = x[i + j]; gv[j] = g[i + j] }
        let s = vsigmoid(xv)
        let d = gv * s * (1 + xv * (1 - s))
        for j in 0..<(n - i) { out[i + j] = d[j] }
    }
}

/// tanh(√(2/π)·(x + 0.044715·x³)), the inner term of the tanh GELU (`gelu_new`, `gelu_pytorch_tanh`).
@inlinable @inline(__always)
func geluTanhInner(_ x: SIMD8<Float>) -> SIMD8<Float> {
    vtanh(0.7978845608028654 * (x + 0.044715 * x * x * x))
}

/// The tanh-GELU backward pass g·(½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)) over `n` floats,
/// t = `geluTanhInner(x)`, eight lanes at a time (the tail zero-padded; the C kernel's bits).
@inlinable
func geluTanhBackwardKernel(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    @inline(__always) func rule(_ gv: SIMD8<Float>, _ xv: SIMD8<Float>) -> SIMD8<Float> {
        let c: Float = 0.7978845608028654, k3: Float = 3 * 0.044715
        let t = geluTanhInner(xv)
        let a = 0.5 * (1 + t)
        let b = 0.5 * xv * (1 - t * t) * c
        let slope = 1 + k3 * xv * xv
        return gv * (a + b * slope)
    }
    var i = 0
    let rg = UnsafeRawPointer(g), rx = UnsafeRawPointer(x), ro = UnsafeMutableRawPointer(out)
    while i + 8 <= n {
        let d = rule(rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
        ro.storeBytes(of: d, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    if i < n {
        var xv = SIMD8<Float>(), gv = SIMD8<Float>()
        for j in 0..<(n - i) { xv[j] = x[i + j]; gv[j] = g[i + j] }
        let d = rule(gv, xv)
        for j in 0..<(n - i) { out[i + j] = d[j] }
    }
}
