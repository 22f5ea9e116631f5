// Advantage estimation, written once and shared by every policy-gradient trainer (PPO, A2C,
// REINFORCE here; PPO-RLHF and GRPO over tokens later): generalized advantage estimation
// (Schulman et al. 2016, eq. 16), discounted returns, advantage normalization and explained
// variance.
//
// Bootstrapping follows the MDP: a terminated step has no future value; a truncated step (time
// limit) still has one, V(final observation), but the advantage does not flow back across it into
// the previous episode.

import Foundation

/// GAE(γ, λ) over a rollout of `steps × envs` (row-major: index t·envs + e).
///
/// - Parameters:
///   - rewards: r_t.
///   - values: V(s_t).
///   - nextValues: the value after step t: V(s_{t+1}) within an episode, V(final observation) on a
///     truncated step; ignored on a terminated step.
///   - terminated: the MDP ended after step t (no bootstrap).
///   - episodeEnded: the episode ended after step t for either reason (no advantage flows back).
/// - Returns: the advantages A_t and returns A_t + V(s_t).
public func generalizedAdvantages(
    rewards: [Float], values: [Float], nextValues: [Float], terminated: [Bool], episodeEnded: [Bool],
    envs: Int, gamma: Float, lambda: Float
) -> (advantages: [Float], returns: [Float]) {
    let n = rewards.count
    precondition(values.count == n && nextValues.count == n && terminated.count == n && episodeEnded.count == n && n % envs == 0,
                 "GAE: inputs must all have steps × envs = \(n) entries")
    let steps = n / envs
    var advantages = [Float](repeating: 0, count: n)
    for e in 0..<envs {
        var last: Float = 0
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let i = t * envs + e
            let bootstrap: Float = terminated[i] ? 0 : nextValues[i]
            let delta = rewards[i] + gamma * bootstrap - values[i]
            last = delta + gamma * lambda * (episodeEnded[i] ? 0 : last)
            advantages[i] = last
        }
    }
    return (advantages, zip(advantages, values).map { $0 + $1 })
}

/// GAE(γ, λ) over a vector-environment rollout (row-major t·envs + e) where V(s_{t+1}) is the next
/// row's value within an episode and `lastValues` after the last step; `nextValues` is used where
/// the episode ended (a truncated step's V(final observation); ignored where terminated).
public func rolloutAdvantages(
    rewards: [Float], values: [Float], lastValues: [Float], nextValues: [Float], terminated: [Bool], episodeEnded: [Bool],
    envs: Int, gamma: Float, lambda: Float
) -> (advantages: [Float], returns: [Float]) {
    var nextValues = nextValues
    let steps = rewards.count / max(envs, 1)
    for t in 0..<steps {
        for e in 0..<envs where !episodeEnded[t * envs + e] {
            nextValues[t * envs + e] = t + 1 < steps ? values[(t + 1) * envs + e] : lastValues[e]
        }
    }
    return generalizedAdvantages(rewards: rewards, values: values, nextValues: nextValues, terminated: terminated,
                                 episodeEnded: episodeEnded, envs: envs, gamma: gamma, lambda: lambda)
}

/// Discounted returns G_t = r_t + γ·G_{t+1} for one episode.
public func discountedReturns(_ rewards: [Float], gamma: Float, bootstrap: Float = 0) -> [Float] {
    var g = bootstrap
    var out = [Float](repeating: 0, count: rewards.count)
    for t in stride(from: rewards.count - 1, through: 0, by: -1) {
        g = rewards[t] + gamma * g
        out[t] = g
    }
    return out
}

/// (x − mean)/(std + ε) with the unbiased std, as CleanRL's advantage normalization.
public func normalized(_ x: [Float], epsilon: Float = 1e-8) -> [Float] {
    guard x.count > 1 else { return x.map { _ in 0 } }
    let (mean, variance) = meanAndVariance(x)
    let std = variance.squareRoot()
    return x.map { ($0 - mean) / (std + epsilon) }
}

/// 1 − Var(y − ŷ)/Var(y): how much of the return's variance the value function explains
/// (NaN when the returns do not vary).
public func explainedVariance(predicted: [Float], target: [Float]) -> Float {
    let vy = meanAndVariance(target, correction: 0).variance
    if vy == 0 { return .nan }
    return 1 - meanAndVariance(zip(target, predicted).map { $0 - $1 }, correction: 0).variance / vy
}
