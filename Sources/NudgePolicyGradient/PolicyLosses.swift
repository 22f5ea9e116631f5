// Policy-gradient losses, written once: the PPO clipped surrogate (Schulman et al. 2017, eq. 7),
// the clipped value loss, and the KL estimators k1, k2, k3 (Schulman 2020, "Approximating
// KL divergence"). PPO here and the language-model trainers (PPO-RLHF, GRPO) call these.

import Foundation
import NudgeTensor

/// The clipped surrogate loss −min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A), averaged, with
/// r = exp(log π_new − log π_old). Also returns the fraction of samples whose ratio was clipped
/// (`ClipStatistics.cleanRL`) and the mean k3 and k1 estimates of the KL, as CleanRL reports them.
public func clippedSurrogateLoss(
    logProbs: Tensor, oldLogProbs: Tensor, advantages: Tensor, clipLow: Float, clipHigh: Float? = nil
) -> (loss: Tensor, clipFraction: Float, approxKL: Float, oldApproxKL: Float) {
    let high = clipHigh ?? clipLow
    let logRatio = logProbs - oldLogProbs
    let ratio = logRatio.exp()
    let loss = clippedSurrogateTerms(ratio: ratio, advantages: advantages, clipLow: clipLow, clipHigh: high).mean()
    let (fraction, kl, oldKL) = withoutGradients { () -> (Float, Float, Float) in
        let clipped = ClipStatistics.cleanRL(ratios: ratio.scalars, clipLow: clipLow, clipHigh: high)
        return (Float(clipped.fractions.region), KLEstimator.k3.mean(logRatio: logRatio), KLEstimator.k1.mean(logRatio: logRatio))
    }
    return (loss, fraction, kl, oldKL)
}

/// The per-element clipped surrogate −min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A), before any
/// averaging, for losses that aggregate over tokens themselves (GRPO's grpo/bnpo/dr_grpo/dapo).
/// `advantages` broadcasts against `ratio` (e.g. (B, 1) against (B, T)).
public func clippedSurrogateTerms(ratio: Tensor, advantages: Tensor, clipLow: Float, clipHigh: Float? = nil) -> Tensor {
    // max(−A·r, −A·clip(r)) = −min(A·r, A·clip(r)); the clamp passes no gradient outside the range.
    let unclipped = -advantages * ratio
    let clipped = -advantages * ratio.clamp(min: 1 - clipLow, max: 1 + (clipHigh ?? clipLow))
    return Tensor.maximum(unclipped, clipped)
}

/// ½·mean((V − G)²), or with clipping ½·mean(max((V − G)², (V_old + clip(V − V_old, ±ε) − G)²))
/// (CleanRL's clip_vloss). With a 0/1 `mask` the mean runs over the masked elements only (tokens of
/// padded completions, as TRL's masked_mean).
public func valueLoss(values: Tensor, oldValues: Tensor, returns: Tensor, clip: Float?, mask: Tensor? = nil) -> Tensor {
    var terms = (values - returns).square()
    if let clip {
        let clippedValues = oldValues + (values - oldValues).clamp(min: -clip, max: clip)
        terms = Tensor.maximum(terms, (clippedValues - returns).square())
    }
    guard let mask else { return terms.mean() * 0.5 }
    return maskedMean(terms, mask: mask, scale: 0.5)
}

/// Per-sample estimators of KL(q ‖ p) from log r = log p(x) − log q(x) with x ~ q. For PPO's
/// approx_kl, q = π_old and p = π_new; for the KL leash KL(π ‖ π_ref), q = π and p = π_ref.
public enum KLEstimator: String, Sendable, CaseIterable {
    /// k1 = −log r: unbiased, high variance, can be negative.
    case k1
    /// k2 = ½(log r)²: biased, low variance, non-negative.
    case k2
    /// k3 = (r − 1) − log r: unbiased, low variance, non-negative.
    case k3

    /// The per-sample estimate from log r (differentiable).
    public func callAsFunction(logRatio: Tensor) -> Tensor {
        switch self {
        case .k1: -logRatio
        case .k2: logRatio.square() * 0.5
        case .k3: logRatio.exp() - 1 - logRatio
        }
    }

    /// The mean estimate over every element of `logRatio`, summed left to right, without gradients
    /// (CleanRL's approx_kl is k3's, its old_approx_kl k1's).
    public func mean(logRatio: Tensor) -> Float {
        let estimates = withoutGradients { self(logRatio: logRatio).scalars }
        return estimates.reduce(0, +) / Float(max(estimates.count, 1))
    }
}
