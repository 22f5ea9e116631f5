// Contextual bandit agents: LinUCB with disjoint models (Li et al. 2010, Algorithm 1), linear
// Thompson sampling (Agrawal & Goyal 2013), ε-greedy over per-arm ridge regressions, and a
// softmax policy over the context trained with REINFORCE. Per-arm inverses are kept up to date
// with the Sherman–Morrison formula: (A + xxᵀ)⁻¹ = A⁻¹ − A⁻¹xxᵀA⁻¹ / (1 + xᵀA⁻¹x).

import Foundation
import NudgeNN
import NudgeTensor

/// An agent for a contextual bandit.
public protocol ContextualAgent: AnyObject {
    var name: String { get }
    func selectArm(context: [Double]) -> Int
    func update(context: [Double], arm: Int, reward: Double)
}

/// A ridge regression per arm: A = λI + Σxxᵀ (kept as A⁻¹), b = Σ r x, θ̂ = A⁻¹b.
public struct RidgeModel: Sendable {
    public let dimension: Int
    /// A⁻¹, row-major d×d.
    public private(set) var inverse: [Double]
    public private(set) var b: [Double]

    public init(dimension: Int, regularization: Double = 1) {
        self.dimension = dimension
        inverse = (0..<(dimension * dimension)).map { $0 % (dimension + 1) == 0 ? 1 / regularization : 0 }
        b = Array(repeating: 0, count: dimension)
    }

    /// A⁻¹x.
    public func solve(_ x: [Double]) -> [Double] {
        (0..<dimension).map { i in (0..<dimension).reduce(0) { $0 + inverse[i * dimension + $1] * x[$1] } }
    }

    /// θ̂ = A⁻¹b.
    public var theta: [Double] { solve(b) }

    /// xᵀA⁻¹x.
    public func quadraticForm(_ x: [Double]) -> Double { zip(x, solve(x)).reduce(0) { $0 + $1.0 * $1.1 } }

    public mutating func update(_ x: [Double], _ reward: Double) {
        let ax = solve(x)
        let denom = 1 + zip(x, ax).reduce(0) { $0 + $1.0 * $1.1 }
        for i in 0..<dimension { for j in 0..<dimension { inverse[i * dimension + j] -= ax[i] * ax[j] / denom } }
        for i in 0..<dimension { b[i] += reward * x[i] }
    }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

/// What the ridge-regression agents (LinUCB, linear Thompson, ε-greedy ridge) share: one
/// `RidgeModel` per arm, updated with the rewards of its arm, and the generator that breaks ties.
public class PerArmRidgeAgent {
    public private(set) var models: [RidgeModel]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) final var rng: RandomGenerator

    init(arms: Int, dimension: Int, regularization: Double, seed: UInt64) {
        models = Array(repeating: RidgeModel(dimension: dimension, regularization: regularization), count: arms)
        rng = RandomGenerator(seed: seed)
    }

    public func update(context: [Double], arm: Int, reward: Double) { models[arm].update(context, reward) }
}

/// LinUCB (disjoint): argmax θ̂ₐᵀx + α·√(xᵀAₐ⁻¹x).
public final class LinUCB: PerArmRidgeAgent, ContextualAgent {
    public let alpha: Double

    public init(arms: Int, dimension: Int, alpha: Double = 1, regularization: Double = 1, seed: UInt64 = 0) {
        self.alpha = alpha
        super.init(arms: arms, dimension: dimension, regularization: regularization, seed: seed)
    }

    public var name: String { "LinUCB (α = \(alpha))" }

    public func selectArm(context x: [Double]) -> Int {
        let scores = models.map { dot($0.theta, x) + alpha * $0.quadraticForm(x).squareRoot() }
        return argmaxRandomTies(scores, &rng)
    }
}

/// Linear Thompson sampling: θ̃ₐ ~ N(θ̂ₐ, v²Aₐ⁻¹) per arm, then argmax θ̃ₐᵀx.
public final class LinearThompson: PerArmRidgeAgent, ContextualAgent {
    public let v: Double

    public init(arms: Int, dimension: Int, v: Double = 0.5, regularization: Double = 1, seed: UInt64 = 0) {
        self.v = v
        super.init(arms: arms, dimension: dimension, regularization: regularization, seed: seed)
    }

    public var name: String { "linear Thompson (v = \(v))" }

    public func selectArm(context x: [Double]) -> Int {
        let scores = models.map { model -> Double in
            let l = cholesky(model.inverse, model.dimension)
            let z = (0..<model.dimension).map { _ in rng.normal() }
            let mean = model.theta
            let sample = (0..<model.dimension).map { i in mean[i] + v * (0...i).reduce(0) { $0 + l[i * model.dimension + $1] * z[$1] } }
            return dot(sample, x)
        }
        return argmaxRandomTies(scores, &rng)
    }
}

/// The lower-triangular Cholesky factor L (LLᵀ = M) of a symmetric positive definite matrix
/// (tiny negative pivots from round-off are clamped to 0).
public func cholesky(_ m: [Double], _ n: Int) -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var s = m[i * n + j]
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            if i == j { l[i * n + i] = Swift.max(s, 0).squareRoot() } else { l[i * n + j] = l[j * n + j] > 0 ? s / l[j * n + j] : 0 }
        }
    }
    return l
}

/// ε-greedy over per-arm ridge regressions.
public final class EpsilonGreedyRidge: PerArmRidgeAgent, ContextualAgent {
    public let epsilon: Double

    public init(arms: Int, dimension: Int, epsilon: Double = 0.1, regularization: Double = 1, seed: UInt64 = 0) {
        self.epsilon = epsilon
        super.init(arms: arms, dimension: dimension, regularization: regularization, seed: seed)
    }

    public var name: String { "ε-greedy ridge (ε = \(epsilon))" }

    public func selectArm(context x: [Double]) -> Int {
        if rng.uniform() < epsilon { return rng.int(below: models.count) }
        return argmaxRandomTies(models.map { dot($0.theta, x) }, &rng)
    }
}

/// A linear softmax policy over the context, π(a|x) = softmax(Wx + c), trained with REINFORCE
/// (EMA baseline, Adam): the contextual bandit exactly as a language model's completion is one.
public final class SoftmaxPolicyAgent: ContextualAgent {
    public let policy: Linear
    public let optimizer: Adam
    public let baselineDecay: Double
    public private(set) var baseline = 0.0
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int, dimension: Int, learningRate: Float = 0.05, baselineDecay: Double = 0.95, seed: UInt64 = 0) {
        var initRNG = RandomGenerator(seed: seed).derive(stream: 1)
        policy = Linear(inputCount: dimension, outputCount: arms, weightInit: .constant(0), using: &initRNG)
        optimizer = Adam(learningRate: learningRate)
        self.baselineDecay = baselineDecay
        rng = RandomGenerator(seed: seed)
    }

    public var name: String { "softmax policy (REINFORCE)" }

    public func probabilities(_ x: [Double]) -> [Double] {
        let logits = withoutGradients { policy(Tensor(x.map(Float.init))) }
        return softmax(logits.scalars.map(Double.init))
    }

    public func selectArm(context x: [Double]) -> Int { rng.categorical(probabilities: probabilities(x)) }

    public func update(context x: [Double], arm: Int, reward: Double) {
        let input = Tensor(x.map(Float.init))
        baseline = reinforceStep(policy, optimizer: optimizer, arm: arm, reward: reward, baseline: baseline, decay: baselineDecay) { $0(input) }
    }
}
