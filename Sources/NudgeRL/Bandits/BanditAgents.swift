// Multi-armed bandit agents: greedy / ε-greedy with sample-average or constant step sizes and
// optimistic initial values (Sutton & Barto §2.2–2.6), softmax/Boltzmann, UCB1 (§2.7; Auer et al.
// 2002), KL-UCB (Garivier & Cappé 2011), Thompson sampling (Beta-Bernoulli, Gaussian), the
// gradient bandit (§2.8), a REINFORCE bandit (softmax logits, EMA baseline, Adam) and EXP3
// (Auer et al. 2002). Every agent owns a generator seeded at construction.

import Foundation
import NudgeNN
import NudgeTensor

/// An agent for a K-armed bandit.
public protocol BanditAgent: AnyObject {
    var name: String { get }
    var armCount: Int { get }
    /// Chooses an arm.
    func selectArm() -> Int
    /// Learns from the reward of `arm`.
    func update(arm: Int, reward: Double)
}

/// The index of the largest value, ties broken uniformly at random.
/// No allocation: one pass finds the maximum and counts ties, a second finds the chosen tie.
func argmaxRandomTies(_ values: [Double], _ rng: inout RandomGenerator) -> Int {
    guard !values.isEmpty else { return 0 }
    var best = values[0], at = 0, ties = 1
    for i in 1..<values.count {
        let v = values[i]
        if v > best { best = v; at = i; ties = 1 } else if v == best { ties += 1 }
    }
    if ties == 1 { return at }
    var k = rng.int(below: ties)
    for i in at..<values.count where values[i] == best {
        if k == 0 { return i }
        k -= 1
    }
    return at
}

/// Action-value estimates with sample-average (1/n) or constant (α) step sizes.
public struct ActionValues: Sendable {
    public var estimates: [Double]
    public var counts: [Int]
    /// α; nil means sample averages.
    public let stepSize: Double?

    public init(arms: Int, initialValue: Double = 0, stepSize: Double? = nil) {
        estimates = Array(repeating: initialValue, count: arms)
        counts = Array(repeating: 0, count: arms)
        self.stepSize = stepSize
    }

    /// Q(a) ← Q(a) + α (r − Q(a)).
    public mutating func update(_ arm: Int, _ reward: Double) {
        counts[arm] += 1
        let alpha = stepSize ?? 1 / Double(counts[arm])
        estimates[arm] += alpha * (reward - estimates[arm])
    }
}

/// ε-greedy (greedy when ε = 0): explore uniformly with probability ε.
public final class EpsilonGreedy: BanditAgent {
    public let epsilon: Double
    @exclusivity(unchecked) public private(set) var values: ActionValues
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, epsilon: Double, stepSize: Double? = nil, initialValue: Double = 0, seed: UInt64 = 0) {
        self.epsilon = epsilon
        values = ActionValues(arms: arms, initialValue: initialValue, stepSize: stepSize)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { epsilon == 0 ? "greedy" : "ε-greedy (ε = \(epsilon))" }
    public var armCount: Int { values.estimates.count }

    public func selectArm() -> Int {
        if epsilon > 0 && rng.uniform() < epsilon { return rng.int(below: armCount) }
        return argmaxRandomTies(values.estimates, &rng)
    }

    public func update(arm: Int, reward: Double) { values.update(arm, reward) }
}

/// Softmax (Boltzmann) exploration: π(a) ∝ exp(Q(a)/τ).
public final class SoftmaxAgent: BanditAgent {
    public let temperature: Double
    @exclusivity(unchecked) public private(set) var values: ActionValues
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, temperature: Double, stepSize: Double? = nil, initialValue: Double = 0, seed: UInt64 = 0) {
        precondition(temperature > 0, "temperature must be positive")
        self.temperature = temperature
        values = ActionValues(arms: arms, initialValue: initialValue, stepSize: stepSize)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "softmax (τ = \(temperature))" }
    public var armCount: Int { values.estimates.count }

    /// The current action probabilities.
    public var probabilities: [Double] { softmax(values.estimates.map { $0 / temperature }) }

    public func selectArm() -> Int { rng.categorical(probabilities: probabilities) }
    public func update(arm: Int, reward: Double) { values.update(arm, reward) }
}

/// A numerically stable softmax of doubles.
public func softmax(_ x: [Double]) -> [Double] {
    let m = x.max() ?? 0
    let e = x.map { Foundation.exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

/// The choice of an index policy (UCB, KL-UCB) at step `t`: the first untried arm, else the arm with
/// the largest `index(arm, ln t)`, ties broken at random.
func indexPolicyArm(_ values: ActionValues, t: Int, _ rng: inout RandomGenerator, index: (Int, Double) -> Double) -> Int {
    if let untried = values.counts.indices.filter({ values.counts[$0] == 0 }).first { return untried }
    let logT = Foundation.log(Double(t))
    return argmaxRandomTies(values.estimates.indices.map { index($0, logT) }, &rng)
}

/// UCB: argmax Q(a) + c·√(ln t / N(a)), untried arms first (c = 2 in Sutton & Barto's figures,
/// c = √2 is Auer et al.'s UCB1).
public final class UCB: BanditAgent {
    public let c: Double
    @exclusivity(unchecked) public private(set) var values: ActionValues
    private var t = 0
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, c: Double = 2, seed: UInt64 = 0) {
        self.c = c
        values = ActionValues(arms: arms)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "UCB (c = \(c))" }
    public var armCount: Int { values.estimates.count }

    public func selectArm() -> Int {
        t += 1
        return indexPolicyArm(values, t: t, &rng) { a, logT in values.estimates[a] + c * (logT / Double(values.counts[a])).squareRoot() }
    }

    public func update(arm: Int, reward: Double) { values.update(arm, reward) }
}

/// Bernoulli KL divergence kl(p, q), with p and q kept inside (0, 1).
public func bernoulliKL(_ p: Double, _ q: Double) -> Double {
    let eps = 1e-15
    let p = Swift.min(Swift.max(p, eps), 1 - eps), q = Swift.min(Swift.max(q, eps), 1 - eps)
    return p * Foundation.log(p / q) + (1 - p) * Foundation.log((1 - p) / (1 - q))
}

/// KL-UCB for rewards in [0, 1]: argmax of max{q : N(a)·kl(μ̂(a), q) ≤ log t + c·log log t}.
public final class KLUCB: BanditAgent {
    public let c: Double
    @exclusivity(unchecked) public private(set) var values: ActionValues
    private var t = 0
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, c: Double = 0, seed: UInt64 = 0) {
        self.c = c
        values = ActionValues(arms: arms)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "KL-UCB" }
    public var armCount: Int { values.estimates.count }

    /// The upper confidence bound for mean `p` after `n` pulls with exploration budget `budget`.
    public static func upperBound(mean p: Double, pulls n: Int, budget: Double) -> Double {
        var lo = Swift.min(Swift.max(p, 0), 1), hi = 1.0
        for _ in 0..<40 {
            let mid = (lo + hi) / 2
            if Double(n) * bernoulliKL(p, mid) <= budget { lo = mid } else { hi = mid }
        }
        return lo
    }

    public func selectArm() -> Int {
        t += 1
        return indexPolicyArm(values, t: t, &rng) { a, logT in
            Self.upperBound(mean: values.estimates[a], pulls: values.counts[a], budget: logT + c * Foundation.log(Swift.max(logT, 1)))
        }
    }

    public func update(arm: Int, reward: Double) { values.update(arm, reward) }
}

/// Thompson sampling with Beta(α, β) posteriors for Bernoulli rewards (a fractional reward r
/// counts as a success with probability r).
public final class ThompsonBeta: BanditAgent {
    public private(set) var alpha: [Double]
    public private(set) var beta: [Double]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, priorAlpha: Double = 1, priorBeta: Double = 1, seed: UInt64 = 0) {
        alpha = Array(repeating: priorAlpha, count: arms)
        beta = Array(repeating: priorBeta, count: arms)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "Thompson (Beta)" }
    public var armCount: Int { alpha.count }

    public func selectArm() -> Int {
        let samples = alpha.indices.map { rng.beta(alpha[$0], beta[$0]) }
        return argmaxRandomTies(samples, &rng)
    }

    public func update(arm: Int, reward: Double) {
        let success = reward == 1 || (reward > 0 && reward < 1 && rng.bernoulli(reward))
        if success { alpha[arm] += 1 } else { beta[arm] += 1 }
    }
}

/// Thompson sampling for Gaussian rewards with known noise variance σ² and a Normal(μ₀, σ₀²)
/// prior per arm: posterior precision τ = 1/σ₀² + n/σ², mean = (μ₀/σ₀² + Σr/σ²)/τ.
public final class ThompsonGaussian: BanditAgent {
    public let noiseVariance: Double
    public private(set) var posteriorMeans: [Double]
    public private(set) var posteriorPrecisions: [Double]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, priorMean: Double = 0, priorVariance: Double = 1, noiseVariance: Double = 1, seed: UInt64 = 0) {
        self.noiseVariance = noiseVariance
        posteriorMeans = Array(repeating: priorMean, count: arms)
        posteriorPrecisions = Array(repeating: 1 / priorVariance, count: arms)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "Thompson (Gaussian)" }
    public var armCount: Int { posteriorMeans.count }

    public func selectArm() -> Int {
        let samples = posteriorMeans.indices.map { rng.normal(mean: posteriorMeans[$0], std: 1 / posteriorPrecisions[$0].squareRoot()) }
        return argmaxRandomTies(samples, &rng)
    }

    public func update(arm: Int, reward: Double) {
        let tau = posteriorPrecisions[arm] + 1 / noiseVariance
        posteriorMeans[arm] = (posteriorMeans[arm] * posteriorPrecisions[arm] + reward / noiseVariance) / tau
        posteriorPrecisions[arm] = tau
    }
}

/// The gradient bandit (Sutton & Barto §2.8): preferences H with π = softmax(H),
/// H(a) ← H(a) + α(R − R̄)(1{a = A} − π(a)), R̄ the running average reward (or 0 without baseline).
public final class GradientBandit: BanditAgent {
    public let stepSize: Double
    public let useBaseline: Bool
    public private(set) var preferences: [Double]
    public private(set) var averageReward = 0.0
    private var t = 0
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, stepSize: Double = 0.1, useBaseline: Bool = true, seed: UInt64 = 0) {
        self.stepSize = stepSize
        self.useBaseline = useBaseline
        preferences = Array(repeating: 0, count: arms)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "gradient bandit (α = \(stepSize)\(useBaseline ? "" : ", no baseline"))" }
    public var armCount: Int { preferences.count }
    public var probabilities: [Double] { softmax(preferences) }

    public func selectArm() -> Int { rng.categorical(probabilities: probabilities) }

    public func update(arm: Int, reward: Double) {
        t += 1
        if useBaseline { averageReward += (reward - averageReward) / Double(t) }
        let pi = probabilities
        let advantage = reward - (useBaseline ? averageReward : 0)
        for a in preferences.indices {
            preferences[a] += stepSize * advantage * ((a == arm ? 1 : 0) - pi[a])
        }
    }
}

/// One REINFORCE step on a softmax policy over arms (the REINFORCE bandit's, the contextual softmax
/// agent's): loss −(r − b)·log π(arm) through `logits`, one optimizer update, then the baseline's
/// moving average b ← βb + (1 − β)r, which it returns.
func reinforceStep<M: Module>(_ policy: M, optimizer: Adam, arm: Int, reward: Double, baseline: Double, decay: Double,
                              logits: (M) -> Tensor) -> Double {
    let advantage = Float(reward - baseline)
    let (_, grads) = valueAndGrad(policy) { p in
        -logits(p).logSoftmax().slice(axis: 0, arm..<(arm + 1)).sum() * advantage
    }
    optimizer.update(policy, gradients: grads)
    return decay * baseline + (1 - decay) * reward
}

/// The policy of the REINFORCE bandit: one logit per arm.
public final class LogitPolicy: Module {
    public var logits: Tensor
    public init(arms: Int) { logits = Tensor.zeros([arms]) }
}

/// REINFORCE on a bandit (the seed's version): π = softmax(logits), loss −(r − b)·log π(a),
/// b an exponential moving average of rewards (b ← βb + (1 − β)r), logits updated with Adam.
public final class REINFORCEBandit: BanditAgent {
    public let policy: LogitPolicy
    public let optimizer: Adam
    public let baselineDecay: Double
    public private(set) var baseline = 0.0
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, learningRate: Float = 0.1, baselineDecay: Double = 0.9, seed: UInt64 = 0) {
        policy = LogitPolicy(arms: arms)
        optimizer = Adam(learningRate: learningRate)
        self.baselineDecay = baselineDecay
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "REINFORCE" }
    public var armCount: Int { policy.logits.count }
    public var probabilities: [Double] { softmax(policy.logits.scalars.map(Double.init)) }

    public func selectArm() -> Int { rng.categorical(probabilities: probabilities) }

    public func update(arm: Int, reward: Double) {
        baseline = reinforceStep(policy, optimizer: optimizer, arm: arm, reward: reward, baseline: baseline, decay: baselineDecay) { $0.logits }
    }
}

/// EXP3 for adversarial bandits with rewards in [0, 1]: p = (1 − γ)·w/Σw + γ/K,
/// w(a) ← w(a)·exp(γ·r̂/K) with the importance-weighted r̂ = r/p(a). Log-weights keep it stable.
public final class EXP3: BanditAgent {
    public let gamma: Double
    public private(set) var logWeights: [Double]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, gamma: Double = 0.1, seed: UInt64 = 0) {
        self.gamma = gamma
        logWeights = Array(repeating: 0, count: arms)
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "EXP3 (γ = \(gamma))" }
    public var armCount: Int { logWeights.count }

    public var probabilities: [Double] {
        let w = softmax(logWeights)
        let k = Double(armCount)
        return w.map { (1 - gamma) * $0 + gamma / k }
    }

    public func selectArm() -> Int { rng.categorical(probabilities: probabilities) }

    public func update(arm: Int, reward: Double) {
        let estimate = reward / probabilities[arm]
        logWeights[arm] += gamma * estimate / Double(armCount)
    }
}

/// The Lai–Robbins constant Σ_{a: Δa > 0} Δa / kl(μa, μ*) for Bernoulli arms: any consistent
/// policy has regret at least (this constant)·log T asymptotically.
public func laiRobbinsConstant(probabilities: [Double]) -> Double {
    let best = probabilities.max() ?? 0
    return probabilities.filter { $0 < best }.reduce(0) { $0 + (best - $1) / bernoulliKL($1, best) }
}
