// Vectorized exp, tanh and sigmoid on SIMD8<Float>.
//
// libm's scalar expf/tanhf cost 10–20 ns per element and do not vectorize; a small policy's
// forward pass is dominated by them. exp uses Cephes' range reduction (x = n·ln2 + r, |r| ≤ ½ln2)
// and degree-6 polynomial (about 1 ulp), with 2ⁿ built from exponent bits; rounding uses the
// 1.5·2²³ magic constant and clamping uses `replacing(with:where:)`, because `rounded` and
// `pointwiseMin/Max` are not inlined on this toolchain. tanh uses 1 − 2/(e²ˣ + 1) with a Taylor
// polynomial below |x| < 0.25, where that form would cancel.

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

/// tanh lane by lane (absolute error below 3e-7).
@inlinable @inline(__always)
public func vtanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let signBit = SIMD8<UInt32>(repeating: 0x8000_0000)
    let ax = floats(bits(x) & ~signBit)
    let e = vexp(ax * 2)
    var big = 1 - 2 / (e + 1)
    big = floats(bits(big) | (bits(x) & signBit))
    let x2 = x * x
    // x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835
    var p: SIMD8<Float> = SIMD8(repeating: 62.0 / 2835)
    p = p * x2 - 17.0 / 315
    p = p * x2 + 2.0 / 15
    p = p * x2 - 1.0 / 3
    let small = x + x * x2 * p
    return big.replacing(with: small, where: ax .< 0.25)
}

/// σ(x) = 1/(1 + e⁻ˣ) lane by lane.
@inlinable @inline(__always)
public func vsigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
    1 / (1 + vexp(-x))
}

/// Applies a SIMD8 function over `n` floats (the tail padded through a temporary vector).
@inlinable @inline(__always)
func simdApply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
               _ f: (SIMD8<Float>) -> SIMD8<Float>) {
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    while i + 8 <= n {
        ry.storeBytes(of: f(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)),
                      toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    if i < n {
        var v = SIMD8<Float>()
        for j in 0..<(n - i) { v[j] = x[i + j] }
        let out = f(v)
        for j in 0..<(n - i) { y[i + j] = out[j] }
    }
}

/// A SIMD8 function as a type, so kernels specialize on it inside threaded closures.
public protocol VectorFunction {
    static func apply(_ x: SIMD8<Float>) -> SIMD8<Float>
}

public enum ExpFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { vexp(x) } }
public enum TanhFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { vtanh(x) } }
public enum SigmoidFunction: VectorFunction { @inlinable @inline(__always) public static func apply(_ x: SIMD8<Float>) -> SIMD8<Float> { vsigmoid(x) } }

extension Tensor {
    /// A new tensor with a SIMD8 function applied to every element.
    @inlinable
    func simdMap<F: VectorFunction>(_: F.Type) -> Tensor {
        let out = Tensor(shape: shape, count: count)
        let x = data, y = out.data
        parallelRanges(count) { r in simdApply(x + r.lowerBound, y + r.lowerBound, r.count) { F.apply($0) } }
        return out
    }
}
