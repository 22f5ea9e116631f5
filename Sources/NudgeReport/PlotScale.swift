// PlotScale.swift
//
// The numbers behind the plots: "nice" linear ticks (1, 2, 5 × 10^k), decade
// ticks for log axes, compact tick labels (`0.001`, `2.5k`, `1M`, `1e-4`), the
// trailing moving average used for smoothing, and `AxisMap`, which turns data
// values into pixel offsets (nil for values an axis cannot show).

import Foundation

/// How an axis maps values to positions.
public enum AxisScale: Sendable, Hashable {
    case linear
    /// Base-10 logarithmic; non-positive values are not drawn.
    case log
}

/// Evenly spaced round ticks inside `lower...upper`, ascending: the step is 1, 2 or 5 × 10^k,
/// chosen so that `lower...upper` spans about `count` steps. Values are built as integer × 10^k,
/// so e.g. `0.3` is exactly the literal `0.3`. A single point gives `[lower]`; non-finite bounds none.
public func niceTicks(from lower: Double, to upper: Double, count: Int = 5) -> [Double] {
    let lo = min(lower, upper)
    let hi = max(lower, upper)
    guard lo.isFinite, hi.isFinite else { return [] }
    guard hi > lo, let step = NiceStep(dividing: hi - lo, into: count),
        max(abs(lo), abs(hi)) / step.value < 1e15
    else { return [lo] }
    let first = Int((lo / step.value - 1e-9).rounded(.up))
    let last = Int((hi / step.value + 1e-9).rounded(.down))
    return first <= last ? (first...last).map(step.multiple) : []
}

/// Ticks for a log axis over `lower...upper`: powers of ten (every n-th decade when there are many);
/// 1, 2, 5 × 10^k when fewer than three decades are in view. Empty unless `lower > 0`.
public func logTicks(from lower: Double, to upper: Double) -> [Double] {
    let lo = min(lower, upper)
    let hi = max(lower, upper)
    guard lo > 0, hi.isFinite else { return [] }
    let first = Int((log10(lo) - 1e-9).rounded(.up))
    let last = Int((log10(hi) + 1e-9).rounded(.down))
    if last - first >= 2 {
        return stride(from: first, through: last, by: (last - first) / 8 + 1).map { decimal(1, $0) }
    }
    var ticks: [Double] = []
    for k in (first - 1)...(last + 1) {
        for m in [1, 2, 5] {
            let v = decimal(m, k)
            if v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9) { ticks.append(v) }
        }
    }
    return ticks.count >= 2 ? ticks : niceTicks(from: lo, to: hi)
}

/// A short label for `value`: `0`, `0.25`, `12.5`, `2.5k`, `10M`, `1e-4`, `3e20`; rounded to
/// `significantDigits`. Suffixes k, M, B, T stand for 10^3, 10^6, 10^9, 10^12.
public func compactNumber(_ value: Double, significantDigits: Int = 3) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value < 0 ? "-∞" : "∞" }
    if value == 0 { return "0" }
    let digits = max(significantDigits, 1)
    let exponent = Int(log10(abs(value)).rounded(.down))
    let scale = decimal(1, digits - 1 - exponent)
    let scaled = (value * scale).rounded() / scale
    let rounded = scaled.isFinite && scaled != 0 ? scaled : value
    let magnitude = abs(rounded)
    if magnitude >= 1e15 || magnitude < 1e-3 {
        let e = Int(log10(magnitude).rounded(.down))
        return fixedDigits(rounded / pow(10, Double(e)), digits) + "e\(e)"
    }
    for (unit, suffix) in [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")] where magnitude >= unit {
        return fixedDigits(rounded / unit, digits) + suffix
    }
    return fixedDigits(rounded, digits)
}

/// Trailing moving average: element `i` is the mean of the finite values among
/// `values[i - window + 1 ... i]` (fewer at the start; NaN if none are finite).
public func movingAverage(_ values: [Double], window: Int) -> [Double] {
    let window = max(window, 1)
    var result: [Double] = []
    result.reserveCapacity(values.count)
    var sum = 0.0
    var count = 0
    for (i, v) in values.enumerated() {
        if v.isFinite {
            sum += v
            count += 1
        }
        if i >= window, values[i - window].isFinite {
            sum -= values[i - window]
            count -= 1
        }
        if count == 0 { sum = 0 }
        result.append(count > 0 ? sum / Double(count) : .nan)
    }
    return result
}

/// Labels for `ticks`, with the fewest significant digits (at least 3) that keep them distinct.
func tickLabels(_ ticks: [Double]) -> [String] {
    for digits in 3...15 {
        let labels = ticks.map { compactNumber($0, significantDigits: digits) }
        if Set(labels).count == labels.count { return labels }
    }
    return ticks.map { compactNumber($0, significantDigits: 17) }
}

/// `n × 10^exponent`, with a single rounding (10^k is exact for |k| ≤ 22).
func decimal(_ n: Int, _ exponent: Int) -> Double {
    let power =
        abs(exponent) <= 22 ? (0..<abs(exponent)).reduce(1.0) { p, _ in p * 10 } : pow(10, Double(abs(exponent)))
    return exponent >= 0 ? Double(n) * power : Double(n) / power
}

/// `x` with `digits` significant digits in fixed notation, trailing zeros removed.
private func fixedDigits(_ x: Double, _ digits: Int) -> String {
    let decimals = max(0, digits - 1 - Int(log10(abs(x)).rounded(.down)))
    var s = String(format: "%.\(decimals)f", x)
    if s.contains(".") {
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
    }
    return s == "-0" ? "0" : s
}

/// A round step `mantissa × 10^exponent` with mantissa 1, 2 or 5.
struct NiceStep {
    var mantissa: Int
    var exponent: Int

    /// The round step that divides `span` into the number of intervals closest to `count`
    /// (the larger step on a tie); nil unless `span` is positive and finite.
    init?(dividing span: Double, into count: Int) {
        let target = Double(max(count, 1))
        guard span > 0, (span / target).isFinite else { return nil }
        let e = Int(log10(span / target).rounded(.down))
        let candidates = [(1, e), (2, e), (5, e), (1, e + 1), (2, e + 1)]
        let best = candidates.reversed().min { a, b in
            abs(span / decimal(a.0, a.1) - target) < abs(span / decimal(b.0, b.1) - target)
        }!
        (mantissa, exponent) = best
    }

    var value: Double { decimal(mantissa, exponent) }

    func multiple(_ i: Int) -> Double { decimal(i * mantissa, exponent) }
}

/// Maps data values on one axis to pixel offsets in `0...length`.
struct AxisMap {
    let scale: AxisScale
    let lower: Double
    let upper: Double
    let length: Double
    /// True for vertical axes, whose pixel offsets grow downwards.
    let inverted: Bool

    /// The pixel offset of `value`, or nil when it is not finite (or not positive on a log axis).
    func position(_ value: Double) -> Double? {
        guard value.isFinite, scale == .linear || value > 0 else { return nil }
        let t =
            scale == .log
            ? (log10(value) - log10(lower)) / (log10(upper) - log10(lower)) : (value - lower) / (upper - lower)
        return min(max((inverted ? 1 - t : t) * length, -1e5), 1e5)
    }

    var ticks: [Double] { scale == .log ? logTicks(from: lower, to: upper) : niceTicks(from: lower, to: upper) }

    /// Unlabelled ticks at 2…9 × 10^k on log axes showing a few whole decades.
    var minorTicks: [Double] {
        guard scale == .log else { return [] }
        let first = Int(log10(lower).rounded(.down))
        let last = Int(log10(upper).rounded(.up))
        guard last - first <= 6 else { return [] }
        return (first..<last).flatMap { k in (2...9).map { decimal($0, k) } }.filter { $0 > lower && $0 < upper }
    }

    /// The axis range: `explicit` when usable on `scale`; otherwise the data's range, widened to whole
    /// decades on log axes and by a 4% margin on linear ones (not below or above 0 when `stickyZero`
    /// and the data ends there, so bars stand on the frame). Unusable data gives `0...1` or `1...10`.
    static func range(
        for data: [Double], scale: AxisScale, explicit: ClosedRange<Double>?, stickyZero: Bool = false
    ) -> (Double, Double) {
        if let r = explicit, r.lowerBound.isFinite, r.upperBound.isFinite, r.lowerBound < r.upperBound,
            scale == .linear || r.lowerBound > 0
        {
            return (r.lowerBound, r.upperBound)
        }
        let usable = data.filter { $0.isFinite && (scale == .linear || $0 > 0) }
        guard var lo = usable.min(), var hi = usable.max() else { return scale == .log ? (1, 10) : (0, 1) }
        if scale == .log {
            let first = Int((log10(lo) + 1e-9).rounded(.down))
            let last = max(Int((log10(hi) - 1e-9).rounded(.up)), first + 1)
            return (decimal(1, first), decimal(1, last))
        }
        if lo == hi {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            (lo, hi) = (lo - pad, hi + pad)
        }
        let margin = (hi - lo) * 0.04
        return (stickyZero && lo == 0 ? 0 : lo - margin, stickyZero && hi == 0 ? 0 : hi + margin)
    }
}
