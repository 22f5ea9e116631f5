// Advantages and loss aggregation for the critic-free online methods, on the seeds' framing: each
// prompt is a context, each completion one action, and the other completions of the same prompt
// form the baseline.
//
// - GRPO (Shao et al. 2024, §4.1.2): A_i = (r_i − mean(r_group)) / (std(r_group) + ε), with the std
//   over the group, over the whole batch, or no scaling (Dr. GRPO). TRL uses the unbiased std and
//   ε = 1e-4; the seeds' worked example uses the population std.
// - RLOO (Ahmadian et al. 2024): A_i = r_i − mean of the other G − 1 rewards.
// - REINFORCE++ (Hu 2025), as OpenRLHF: per-token returns of the reward (KL penalty included, k1
//   clamped to ±10), whitened over every completion token of the batch (population variance); the
//   "baseline" variant first subtracts the group mean of the scored rows and fixes γ at 1.
// - Loss aggregation as TRL names it: grpo (mean over sequences of per-sequence token means), bnpo
//   (token mean over the batch), dr_grpo (sum over B · L_max), dapo (sum over the step's tokens).

import Foundation
import NudgePolicyGradient
import NudgeTensor

/// How GRPO divides the centered rewards (TRL's scale_rewards).
public enum RewardScaling: String, Sendable, CaseIterable {
    /// By each group's std.
    case group
    /// By the whole batch's std.
    case batch
    /// Not at all (Dr. GRPO).
    case none
}

/// How a baseline and advantages are made from the sampled rewards.
public enum AdvantageEstimator: Sendable, Equatable {
    /// GRPO's group-normalized rewards.
    case grpo(scaling: RewardScaling)
    /// The leave-one-out baseline.
    case rloo
    /// REINFORCE++: token returns whitened over the batch; `baseline` subtracts the group mean first.
    case reinforcePlusPlus(baseline: Bool)

    /// RLOO and REINFORCE++ subtract the KL penalty from the reward; GRPO adds it to the loss.
    public var penalizesKLInReward: Bool {
        if case .grpo = self { return false }
        return true
    }
}

/// How per-token losses become one number (TRL's loss_type).
public enum LossAggregation: String, Sendable, CaseIterable {
    case grpo, bnpo
    case drGRPO = "dr_grpo"
    case dapo
}

/// GRPO advantages for `rewards` laid out group after group (`groupSize` consecutive samples share a
/// prompt). nil rewards (no function applied) are left out of the statistics and get advantage 0.
/// `unbiased` selects the G − 1 denominator (TRL) over G (the population std).
public func groupRelativeAdvantages(rewards: [Double?], groupSize: Int, scaling: RewardScaling, unbiased: Bool = true,
                                    epsilon: Double = 1e-4) -> (advantages: [Double], groupStd: [Double]) {
    precondition(groupSize > 0 && rewards.count % groupSize == 0, "rewards must be whole groups of \(groupSize)")
    func stats(_ values: [Double]) -> (mean: Double, std: Double) {
        guard !values.isEmpty else { return (0, 0) }
        let (mean, variance) = meanAndVariance(values, correction: unbiased ? 1 : 0)
        return (mean, variance.squareRoot())
    }
    let batchStd = stats(rewards.compactMap { $0 }).std
    var advantages = [Double](repeating: 0, count: rewards.count)
    var groupStd = [Double](repeating: 0, count: rewards.count)
    for start in stride(from: 0, to: rewards.count, by: groupSize) {
        let group = rewards[start..<(start + groupSize)]
        let (mean, std) = stats(group.compactMap { $0 })
        for i in start..<(start + groupSize) {
            groupStd[i] = std
            guard let r = rewards[i] else { continue }
            switch scaling {
            case .group: advantages[i] = (r - mean) / (std + epsilon)
            case .batch: advantages[i] = (r - mean) / (batchStd + epsilon)
            case .none: advantages[i] = r - mean
            }
        }
    }
    return (advantages, groupStd)
}

/// Leave-one-out advantages r_i − mean_{j≠i} r_j within each group (nil rewards: excluded, advantage 0).
public func leaveOneOutAdvantages(rewards: [Double?], groupSize: Int) -> [Double] {
    precondition(groupSize > 1 && rewards.count % groupSize == 0, "RLOO needs whole groups of at least 2")
    var advantages = [Double](repeating: 0, count: rewards.count)
    for start in stride(from: 0, to: rewards.count, by: groupSize) {
        let valid = rewards[start..<(start + groupSize)].compactMap { $0 }
        guard valid.count > 1 else { continue }
        let total = valid.reduce(0, +)
        for i in start..<(start + groupSize) {
            guard let r = rewards[i] else { continue }
            advantages[i] = r - (total - r) / Double(valid.count - 1)
        }
    }
    return advantages
}

/// REINFORCE++ token advantages, as OpenRLHF computes them: per-token rewards (B, T) summed into
/// discounted returns-to-go, whitened with the mean and population variance over every masked token
/// of the batch, (x − mean) · rsqrt(max(var, `varianceFloor`)). Masked positions get 0.
public func reinforcePlusPlusAdvantages(tokenRewards: [[Double]], mask: [[Bool]], gamma: Double = 1,
                                        varianceFloor: Double = 1e-8) -> [[Double]] {
    var returns = tokenRewards.map { $0.map { _ in 0.0 } }
    for (r, row) in tokenRewards.enumerated() {
        var g = 0.0
        for t in stride(from: row.count - 1, through: 0, by: -1) where mask[r][t] {
            g = row[t] + gamma * g
            returns[r][t] = g
        }
    }
    let flat = zip(returns, mask).flatMap { zip($0, $1).filter(\.1).map(\.0) }
    guard !flat.isEmpty else { return returns.map { $0.map { _ in 0 } } }
    let (mean, variance) = meanAndVariance(flat, correction: 0)
    let rstd = 1 / max(variance, varianceFloor).squareRoot()
    return zip(returns, mask).map { row, m in zip(row, m).map { $1 ? ($0 - mean) * rstd : 0 } }
}

/// Aggregates per-token losses (B, T) over the 0/1 `mask` (B, T).
///
/// - `maxCompletionLength`: dr_grpo's constant L_max.
/// - `stepTokenCount`: dapo's normalizer, the masked tokens of the whole optimizer step (all
///   micro-batches); defaults to this batch's.
public func aggregateTokenLoss(_ perToken: Tensor, mask: Tensor, _ kind: LossAggregation, maxCompletionLength: Int,
                               stepTokenCount: Int? = nil) -> Tensor {
    let masked = perToken * mask
    let tokens = mask.scalars.reduce(0, +)
    switch kind {
    case .grpo:
        let b = mask.shape[0], t = mask.shape[1]
        let lengths = (0..<b).map { r in max(1, mask.scalars[(r * t)..<((r + 1) * t)].reduce(0, +)) }
        return (masked.sum(axis: 1) / Tensor(lengths)).mean()
    case .bnpo:
        return masked.sum() * (1 / max(tokens, 1))
    case .drGRPO:
        return masked.sum() * (1 / Float(mask.shape[0] * maxCompletionLength))
    case .dapo:
        return masked.sum() * (1 / Float(max(stepTokenCount ?? Int(tokens), 1)))
    }
}

/// GRPO's process supervision (Shao et al. 2024, DeepSeekMath §4.1.3): every step reward r_i^j of the
/// group's outputs is normalized by the mean and std of all of the group's step rewards, r̃ =
/// (r − mean) / (std + ε) (`scaling`: over the group, over the whole batch, or centered only), and
/// output i's token t gets Â_t = Σ of r̃_i^j over the steps j that end at or after t.
///
/// - Parameters:
///   - steps: per output (`groupSize` consecutive outputs share a prompt), each step's last
///     completion-token index and reward; nil: unscored (advantage 0, left out of the statistics).
///   - lengths: each output's completion length in tokens.
/// - Returns: per output, one advantage per completion token.
public func processSupervisionAdvantages(steps: [[(token: Int, score: Double)]?], lengths: [Int], groupSize: Int, scaling: RewardScaling,
                                         unbiased: Bool = true, epsilon: Double = 1e-4) -> [[Double]] {
    precondition(groupSize > 0 && steps.count % groupSize == 0 && lengths.count == steps.count, "steps must be whole groups of \(groupSize)")
    func stats(_ values: [Double]) -> (mean: Double, std: Double) {
        guard !values.isEmpty else { return (0, 0) }
        let (mean, variance) = meanAndVariance(values, correction: values.count > 1 && unbiased ? 1 : 0)
        return (mean, variance.squareRoot())
    }
    let batchStd = stats(steps.flatMap { $0?.map(\.score) ?? [] }).std
    var advantages = lengths.map { [Double](repeating: 0, count: $0) }
    for start in stride(from: 0, to: steps.count, by: groupSize) {
        let (mean, groupStd) = stats(steps[start..<(start + groupSize)].flatMap { $0?.map(\.score) ?? [] })
        let std: Double? = switch scaling {
        case .group: groupStd
        case .batch: batchStd
        case .none: nil
        }
        for i in start..<(start + groupSize) {
            guard let placed = steps[i] else { continue }
            for (end, score) in placed where end >= 0 && end < lengths[i] {
                let normalized = (score - mean) / (std.map { $0 + epsilon } ?? 1)
                // The step's normalized reward counts for every token up to its last one.
                for t in 0...end { advantages[i][t] += normalized }
            }
        }
    }
    return advantages
}

/// Outcome and process rewards together (GRPO's `reward_mode = mixed`), combined as PRIME does (Cui et
/// al. 2025, "Process Reinforcement through Implicit Rewards", §3.3: the outcome reward's and the
/// process rewards' advantages are each estimated against their own group baseline, then summed per
/// token): output i's token t gets Â_t = Â^outcome_i + w · Â^process_{i,t}, where Â^outcome_i is
/// GRPO's group-relative advantage of the outcome rewards (`groupRelativeAdvantages`, one value for
/// every token) and Â^process_{i,t} DeepSeekMath's process supervision of the step rewards
/// (`processSupervisionAdvantages`). The outcome term keeps what the answer is worth in every token, so
/// a policy cannot raise its return by writing fewer, safer steps; the process term keeps the
/// per-step credit. An unscored output (nil) gets 0 from that term.
public func mixedAdvantages(outcomeRewards: [Double?], steps: [[(token: Int, score: Double)]?], lengths: [Int], groupSize: Int,
                            scaling: RewardScaling, processWeight: Double, unbiased: Bool = true) -> [[Double]] {
    precondition(outcomeRewards.count == steps.count, "one outcome reward per output")
    let outcome = groupRelativeAdvantages(rewards: outcomeRewards, groupSize: groupSize, scaling: scaling, unbiased: unbiased).advantages
    let process = processSupervisionAdvantages(steps: steps, lengths: lengths, groupSize: groupSize, scaling: scaling, unbiased: unbiased)
    return zip(outcome, process).map { a, perToken in perToken.map { a + processWeight * $0 } }
}
