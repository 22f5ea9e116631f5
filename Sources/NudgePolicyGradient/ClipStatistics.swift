// How often the PPO clip acted, counted once for every trainer, in the three ways the reference
// implementations count it (their logged numbers differ, so each is named after its source):
//
// - CleanRL's `clipfrac`: the ratio lies outside [1 − ε_low, 1 + ε_high], whatever the advantage.
// - TRL's GRPOTrainer `clip_ratio/{low,high,region}_mean`: the ratio is below 1 − ε_low with A < 0
//   (low), above 1 + ε_high with A > 0 (high), or either (region): where the clip cut the gradient.
// - TRL's PPOTrainer `pg_clipfrac`: the clipped branch −A·clip(r) is the larger loss, compared as
//   computed (products rounded), so it is not always the same count as TRL's GRPO region.

import Foundation
import NudgeTensor

/// Counts of clipped importance ratios over the positions counted.
public struct ClipStatistics: Sendable, Equatable {
    /// Positions counted (the masked ones).
    public var count = 0
    /// Clipped at the low side (ratio < 1 − ε_low).
    public var low = 0
    /// Clipped at the high side (ratio > 1 + ε_high).
    public var high = 0
    /// Clipped at either side.
    public var region = 0

    public init(count: Int = 0, low: Int = 0, high: Int = 0, region: Int = 0) {
        self.count = count
        self.low = low
        self.high = high
        self.region = region
    }

    /// The fractions of the counted positions clipped low, high and at either side (0 when none
    /// was counted).
    public var fractions: (low: Double, high: Double, region: Double) {
        guard count > 0 else { return (0, 0, 0) }
        let n = Double(count)
        return (Double(low) / n, Double(high) / n, Double(region) / n)
    }

    /// CleanRL's clipfrac: every ratio counts, clipped where it lies outside [1 − ε_low, 1 + ε_high].
    public static func cleanRL(ratios: [Float], clipLow: Float, clipHigh: Float) -> ClipStatistics {
        var s = ClipStatistics(count: ratios.count)
        for r in ratios {
            let isLow = r < 1 - clipLow, isHigh = r > 1 + clipHigh
            s.add(low: isLow, high: isHigh)
        }
        return s
    }

    /// TRL GRPOTrainer's clip ratios over the positions where `mask` (B × `width`) is nonzero: low
    /// where the ratio is below 1 − ε_low with A < 0, high where it is above 1 + ε_high with A > 0. A
    /// per-sequence ratio or advantage is (B, 1); counted per sequence (`width` 1), a per-token
    /// advantage is read at the row's first position (GRPO's are equal along the row).
    public static func trl(ratio: Tensor, advantages: Tensor, mask: [Float], width: Int, epsilonLow: Float, epsilonHigh: Float)
        -> ClipStatistics
    {
        let r = ratio.scalars, a = advantages.scalars
        let b = mask.count / max(width, 1)
        var s = ClipStatistics()
        for row in 0..<b {
            for t in 0..<width where mask[row * width + t] != 0 {
                let ratioValue = ratio.shape[1] == 1 ? r[row] : r[row * ratio.shape[1] + t]
                let advantage = advantages.shape[1] == 1 ? a[row] : a[row * advantages.shape[1] + t]
                s.count += 1
                s.add(low: ratioValue < 1 - epsilonLow && advantage < 0, high: ratioValue > 1 + epsilonHigh && advantage > 0)
            }
        }
        return s
    }

    /// TRL PPOTrainer's pg_clipfrac over the positions where `mask` is nonzero: clipped where the
    /// clipped branch −A·clip(r, 1 ± ε) is the larger loss (low or high by the ratio's side of 1).
    public static func trlPPO(ratios: [Float], advantages: [Float], mask: [Float], clipRange: Float) -> ClipStatistics {
        var s = ClipStatistics()
        for i in mask.indices where mask[i] != 0 {
            let r = ratios[i], a = advantages[i]
            let unclippedLoss = -a * r, clippedLoss = -a * min(max(r, 1 - clipRange), 1 + clipRange)
            let clipped = clippedLoss > unclippedLoss
            s.count += 1
            s.add(low: clipped && r < 1, high: clipped && r >= 1)
        }
        return s
    }

    mutating func add(low isLow: Bool, high isHigh: Bool) {
        low += isLow ? 1 : 0
        high += isHigh ? 1 : 0
        region += (isLow || isHigh) ? 1 : 0
    }
}
