// Reward modeling from pairwise preferences (Bradley & Terry 1952; Ouyang et al. 2022, eq. 1): the Bradley–Terry model
// P(y_w ≻ y_l) = σ(r_w − r_l) and its loss −log σ(r_w − r_l − m) with an optional margin m and
// TRL's reward-centering term c·mean((r_w + r_l)²); and the seed's item-level fit, where each
// response has one free reward and comparisons are sampled from the true model.

import Foundation
import NudgeNN
import NudgeTensor

/// Bradley–Terry metrics with TRL's names.
public struct RewardMetrics: Sendable {
    public var loss: Float
    /// Fraction of pairs where r_w > r_l.
    public var accuracy: Float
    /// Mean r_w − r_l.
    public var margin: Float
}

/// Mean −log σ(r_w − r_l − margin) + centering·mean((r_w + r_l)²) over a batch of pairs.
public func bradleyTerryLoss(chosen: Tensor, rejected: Tensor, margin: Tensor? = nil, centeringCoefficient: Float = 0)
    -> (loss: Tensor, metrics: RewardMetrics) {
    var difference = chosen - rejected
    if let margin { difference = difference - margin }
    var loss = -difference.logSigmoid().mean()
    if centeringCoefficient > 0 { loss = loss + (chosen + rejected).square().mean() * centeringCoefficient }
    let metrics = withoutGradients { () -> RewardMetrics in
        let c = chosen.scalars, r = rejected.scalars
        let wins = zip(c, r).filter { $0 > $1 }.count
        return RewardMetrics(loss: loss.item(), accuracy: Float(wins) / Float(max(c.count, 1)),
                             margin: zip(c, r).reduce(0) { $0 + $1.0 - $1.1 } / Float(max(c.count, 1)))
    }
    return (loss, metrics)
}

/// One reward per item, fitted to comparisons (the seed's item-level Bradley–Terry fit).
public final class ItemRewards: Module {
    public var rewards: Tensor
    public init(count: Int) { rewards = Tensor.zeros([count]) }
}

/// Comparisons (winner, loser) sampled from P(i ≻ j) = σ(r_i − r_j) for uniformly drawn pairs.
public func sampleComparisons(trueRewards: [Double], count: Int, seed: UInt64) -> [(winner: Int, loser: Int)] {
    var rng = RandomGenerator(seed: seed)
    let n = trueRewards.count
    return (0..<count).map { _ in
        let i = rng.int(below: n)
        var j = rng.int(below: n - 1)
        if j >= i { j += 1 }
        let p = 1 / (1 + Foundation.exp(-(trueRewards[i] - trueRewards[j])))
        return rng.uniform() < p ? (i, j) : (j, i)
    }
}

/// Fits item rewards to comparisons by full-batch Adam on the Bradley–Terry loss; returns the
/// centered rewards (mean 0; the model is invariant to a shared shift) and the final loss.
public func fitItemRewards(comparisons: [(winner: Int, loser: Int)], itemCount: Int, steps: Int = 2000,
                           learningRate: Float = 0.05) -> (rewards: [Double], loss: Float) {
    let model = ItemRewards(count: itemCount)
    let optimizer = Adam(learningRate: learningRate)
    let winners = comparisons.map(\.winner), losers = comparisons.map(\.loser)
    var last: Float = 0
    for _ in 0..<steps {
        let (loss, grads) = valueAndGrad(model) { m in
            bradleyTerryLoss(chosen: m.rewards.indexSelect(winners), rejected: m.rewards.indexSelect(losers)).loss
        }
        optimizer.update(model, gradients: grads)
        last = loss.item()
    }
    let r = model.rewards.scalars.map(Double.init)
    let mean = r.reduce(0, +) / Double(r.count)
    return (r.map { $0 - mean }, last)
}
