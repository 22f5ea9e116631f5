// The sample statistics every policy-gradient trainer and its metrics share, written once: mean and
// variance (population or unbiased), masked means over a (B, T) token frame, and masked whitening.
// Each sums left to right in one place, so every caller gets the same bits.

import Foundation
import NudgeTensor

/// The mean Σx/n and the variance Σ(x − mean)²/(n − `correction`), each summed left to right;
/// `correction` 1 gives the unbiased (Bessel) variance, 0 the population one. The variance's
/// denominator is at least 1, so a single value has variance 0; an empty input has mean NaN and
/// variance 0.
public func meanAndVariance<C: Collection>(_ x: C, correction: Int = 1) -> (mean: C.Element, variance: C.Element)
    where C.Element: FloatingPoint
{
    let mean = x.reduce(0, +) / C.Element(x.count)
    let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / C.Element(Swift.max(x.count - correction, 1))
    return (mean, variance)
}

/// The mean of `values` over the positions where `mask` is nonzero (0 when there are none), summed
/// in Double, for metrics (no gradient).
public func maskedMean(_ values: [Float], _ mask: [Float]) -> Double {
    var total = 0.0, count = 0.0
    for (v, m) in zip(values, mask) where m != 0 { total += Double(v); count += 1 }
    return count > 0 ? total / count : 0
}

/// `scale` · Σ(values · mask) / max(Σmask, 1): the (differentiable) mean of `values` over a 0/1
/// `mask` of the same shape (TRL's masked_mean), scaled, e.g. by a loss coefficient.
public func maskedMean(_ values: Tensor, mask: Tensor, scale: Float = 1) -> Tensor {
    (values * mask).sum() * (scale / Swift.max(mask.scalars.reduce(0, +), 1))
}

/// (x − mean)/std over the masked entries (TRL's masked_whiten; unbiased variance); with
/// `shiftMean` false the mean is added back.
public func maskedWhiten(_ x: [[Float]], mask: [[Bool]], shiftMean: Bool = true) -> [[Float]] {
    let values = zip(x, mask).flatMap { zip($0, $1).filter(\.1).map { Double($0.0) } }
    guard values.count > 1 else { return x }
    let (mean, variance) = meanAndVariance(values)
    let scale = 1 / (variance + 1e-8).squareRoot()
    return zip(x, mask).map { row, m in
        zip(row, m).map { v, keep in
            guard keep else { return v }
            let w = (Double(v) - mean) * scale
            return Float(shiftMean ? w : w + mean)
        }
    }
}
