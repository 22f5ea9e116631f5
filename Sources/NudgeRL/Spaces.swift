// Spaces (Gymnasium's Discrete, Box, MultiDiscrete): what observations and actions look like, a
// membership test, and seeded sampling.

import Foundation
import NudgeTensor

/// The set of valid observations or actions.
public enum Space: Sendable, Equatable, CustomStringConvertible {
    /// Integers `start ..< start + n`.
    case discrete(n: Int, start: Int = 0)
    /// Float32 arrays of `shape` with elementwise bounds (±infinity for unbounded).
    case box(low: [Float], high: [Float], shape: [Int])
    /// Integer vectors with `nvec[i]` choices in position i.
    case multiDiscrete(nvec: [Int])

    /// A box with the same bounds in every element.
    public static func box(low: Float, high: Float, shape: [Int]) -> Space {
        let n = shape.reduce(1, *)
        return .box(low: Array(repeating: low, count: n), high: Array(repeating: high, count: n), shape: shape)
    }

    /// Whether `value` is in a discrete space.
    public func contains(_ value: Int) -> Bool {
        if case .discrete(let n, let start) = self { return value >= start && value < start + n }
        return false
    }

    /// Whether `values` is in a box or multi-discrete space (NaN is never contained).
    public func contains(_ values: [Float]) -> Bool {
        switch self {
        case .box(let low, let high, _):
            guard values.count == low.count else { return false }
            for i in values.indices where !(values[i] >= low[i] && values[i] <= high[i]) { return false }
            return true
        case .multiDiscrete(let nvec):
            guard values.count == nvec.count else { return false }
            return zip(values, nvec).allSatisfy { v, n in v >= 0 && v < Float(n) && v == v.rounded() }
        case .discrete:
            return values.count == 1 && contains(Int(values[0])) && Float(Int(values[0])) == values[0]
        }
    }

    /// The number of elements of one value (1 for discrete).
    public var flatCount: Int {
        switch self {
        case .discrete: 1
        case .box(_, _, let shape): shape.reduce(1, *)
        case .multiDiscrete(let nvec): nvec.count
        }
    }

    /// The number of choices of a discrete space (nil otherwise).
    public var choiceCount: Int? {
        if case .discrete(let n, _) = self { return n }
        return nil
    }

    /// A uniformly sampled element of a discrete space.
    public func sampleDiscrete(using rng: inout RandomGenerator) -> Int {
        guard case .discrete(let n, let start) = self else { preconditionFailure("sampleDiscrete on \(self)") }
        return start + rng.int(below: n)
    }

    /// A sampled element as floats: uniform in bounded boxes, normal where unbounded on both
    /// sides, shifted exponential where bounded on one side (Gymnasium's rule).
    public func sample(using rng: inout RandomGenerator) -> [Float] {
        switch self {
        case .discrete: return [Float(sampleDiscrete(using: &rng))]
        case .multiDiscrete(let nvec): return nvec.map { Float(rng.int(below: $0)) }
        case .box(let low, let high, _):
            return zip(low, high).map { lo, hi in
                switch (lo.isFinite, hi.isFinite) {
                case (true, true): Float(rng.uniform(Double(lo), Double(hi)))
                case (false, false): Float(rng.normal())
                case (true, false): lo + Float(-Foundation.log(1 - rng.uniform()))
                case (false, true): hi - Float(-Foundation.log(1 - rng.uniform()))
                }
            }
        }
    }

    public var description: String {
        switch self {
        case .discrete(let n, let start): start == 0 ? "Discrete(\(n))" : "Discrete(\(n), start=\(start))"
        case .box(let low, let high, let shape):
            "Box(\(low.min() ?? 0), \(high.max() ?? 0), \(shape), float32)"
        case .multiDiscrete(let nvec): "MultiDiscrete(\(nvec))"
        }
    }
}
