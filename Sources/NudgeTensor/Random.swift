// Seeded randomness: xoshiro256** (Blackman & Vigna 2018) with SplitMix64 seeding, and the
// distributions RL needs (uniform, normal, categorical, Gumbel, Bernoulli, Gamma, Beta).
//
// There is no global generator: every trainer and environment takes a seed, and independent
// streams are derived from a generator by hashing its seed with a stream number, so adding a
// stream never shifts the numbers of another.

import Foundation

/// A seedable pseudo-random generator (xoshiro256**) with derivable independent streams.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    @usableFromInline var s0, s1, s2, s3: UInt64
    /// The seed this generator (or stream) started from.
    public let seed: UInt64

    /// A generator seeded with `seed`; equal seeds give equal sequences.
    public init(seed: UInt64) {
        self.seed = seed
        var sm = seed
        s0 = splitMix64(&sm); s1 = splitMix64(&sm); s2 = splitMix64(&sm); s3 = splitMix64(&sm)
    }

    /// The seed and the four state words: everything needed to continue this exact sequence.
    public var snapshot: [UInt64] { [seed, s0, s1, s2, s3] }

    /// A generator continuing where the one that gave `snapshot` stood; nil unless 5 words with a
    /// valid (not all-zero) state.
    public init?(snapshot words: [UInt64]) {
        guard words.count == 5, words[1...].contains(where: { $0 != 0 }) else { return nil }
        seed = words[0]
        (s0, s1, s2, s3) = (words[1], words[2], words[3], words[4])
    }

    /// An independent generator for stream `stream` of this generator's seed (its own state is
    /// not advanced). Stream numbers name uses, e.g. 0 for the env, 1 for the policy.
    public func derive(stream: UInt64) -> RandomGenerator {
        var sm = seed ^ 0x9E37_79B9_7F4A_7C15
        _ = splitMix64(&sm)
        sm ^= stream &* 0xD1B5_4A32_D192_ED03
        return RandomGenerator(seed: splitMix64(&sm))
    }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniform() }

    /// A uniform integer in `0..<n`.
    public mutating func int(below n: Int) -> Int { Int(next(upperBound: UInt64(n))) }

    /// A standard normal draw (the ziggurat method of Marsaglia & Tsang 2000, 128 layers; the
    /// layer index and the value come from disjoint bits of one 64-bit draw).
    public mutating func normal() -> Double {
        let z = Ziggurat.tables
        while true {
            let bits = next()
            let i = Int(bits & 127)
            let h = Int32(truncatingIfNeeded: bits >> 32)
            let x = Double(h) * z.w[i]
            if Swift.abs(Int64(h)) < z.k[i] { return x }  // inside the layer's rectangle: accept
            if i == 0 {
                // The tail beyond r: Marsaglia's exponential method.
                var tx: Double, ty: Double
                repeat {
                    tx = -Foundation.log(1 - uniform()) / Ziggurat.r
                    ty = -Foundation.log(1 - uniform())
                } while ty + ty < tx * tx
                return h > 0 ? Ziggurat.r + tx : -Ziggurat.r - tx
            }
            if z.f[i] + uniform() * (z.f[i - 1] - z.f[i]) < Foundation.exp(-0.5 * x * x) { return x }
        }
    }

    /// A normal draw with mean and standard deviation.
    public mutating func normal(mean: Double, std: Double) -> Double { mean + std * normal() }

    /// True with probability `p`.
    public mutating func bernoulli(_ p: Double) -> Bool { uniform() < p }

    /// Fisher–Yates in place, from the last element down (one `int(below:)` draw per position), so
    /// the same seed gives the same order everywhere it is used.
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ items: inout C) where C.Index == Int {
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            items.swapAt(items.startIndex + i, items.startIndex + int(below: i + 1))
        }
    }

    /// A standard Gumbel draw: −log(−log U).
    public mutating func gumbel() -> Double {
        var u = uniform()
        while u == 0 { u = uniform() }
        return -Foundation.log(-Foundation.log(u))
    }

    /// An index drawn with probability proportional to `weights` (non-negative, not all zero).
    public mutating func categorical(probabilities weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        precondition(total > 0, "categorical: weights sum to \(total)")
        let u = uniform() * total
        var acc = 0.0
        for (i, w) in weights.enumerated() {
            acc += w
            if u < acc { return i }
        }
        return weights.lastIndex { $0 > 0 } ?? 0
    }

    /// An index drawn from softmax(`logits`) by the Gumbel-max trick.
    public mutating func categorical(logits: UnsafeBufferPointer<Float>) -> Int {
        var best = -Double.infinity, at = 0
        for (i, l) in logits.enumerated() where l > -.infinity {
            let v = Double(l) + gumbel()
            if v > best { best = v; at = i }
        }
        return at
    }

    /// An index drawn from softmax(`logits`).
    public mutating func categorical(logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { categorical(logits: $0) }
    }

    /// A Gamma(shape, 1) draw (Marsaglia & Tsang 2000; shape < 1 boosted by U^(1/shape)).
    public mutating func gamma(shape: Double) -> Double {
        precondition(shape > 0, "gamma: shape must be positive, got \(shape)")
        if shape < 1 {
            return gamma(shape: shape + 1) * Foundation.pow(uniform(), 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = normal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = uniform()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if Foundation.log(u) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) { return d * v }
        }
    }

    /// A Beta(α, β) draw, as X / (X + Y) with X ~ Gamma(α), Y ~ Gamma(β).
    public mutating func beta(_ alpha: Double, _ beta: Double) -> Double {
        let x = gamma(shape: alpha), y = gamma(shape: beta)
        return x / (x + y)
    }
}

/// Ziggurat tables for the standard normal (Marsaglia & Tsang 2000, 128 layers, 32-bit values).
enum Ziggurat {
    static let r = 3.442619855899
    struct Tables: Sendable {
        var k = [Int64](repeating: 0, count: 128)
        var w = [Double](repeating: 0, count: 128)
        var f = [Double](repeating: 0, count: 128)
    }
    static let tables: Tables = {
        var t = Tables()
        let m1 = 2147483648.0, v = 9.91256303526217e-3
        var dn = r, tn = r
        let q = v / Foundation.exp(-0.5 * dn * dn)
        t.k[0] = Int64((dn / q) * m1)
        t.k[1] = 0
        t.w[0] = q / m1
        t.w[127] = dn / m1
        t.f[0] = 1
        t.f[127] = Foundation.exp(-0.5 * dn * dn)
        for i in stride(from: 126, through: 1, by: -1) {
            dn = (-2 * Foundation.log(v / dn + Foundation.exp(-0.5 * dn * dn))).squareRoot()
            t.k[i + 1] = Int64((dn / tn) * m1)
            tn = dn
            t.f[i] = Foundation.exp(-0.5 * dn * dn)
            t.w[i] = dn / m1
        }
        return t
    }()
}

@inlinable @inline(__always)
func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

@inline(__always)
func splitMix64(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Runs `body`, which builds a module whose every parameter is then overwritten (a model made to
/// load a checkpoint into, strictly), with `Tensor.uniform` and `Tensor.normal` returning
/// uninitialized storage and drawing nothing: a load no longer draws and writes a model's worth of
/// random numbers first (SmolLM2-135M: about a fifth of `nudge generate`'s start-up).
public func skippingRandomFill<R>(_ body: () throws -> R) rethrows -> R {
    try RandomFill.$skipped.withValue(true) { try body() }
}

enum RandomFill {
    @TaskLocal static var skipped = false
}

extension Tensor {
    /// Uniform values in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if RandomFill.skipped { return t }
        for i in 0..<t.count { t.data[i] = Float(rng.uniform(Double(low), Double(high))) }
        return t
    }

    /// Normal values with `mean` and `std`.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if RandomFill.skipped { return t }
        for i in 0..<t.count { t.data[i] = Float(rng.normal(mean: Double(mean), std: Double(std))) }
        return t
    }

    /// One categorical draw per row of a `[..., K]` logits tensor.
    public func sampleCategorical(using rng: inout RandomGenerator) -> [Int] {
        let k = shape.last ?? 1
        return (0..<(count / Swift.max(k, 1))).map { row in
            rng.categorical(logits: UnsafeBufferPointer(start: data + row * k, count: k))
        }
    }
}
