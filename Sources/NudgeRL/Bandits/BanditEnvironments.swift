// Multi-armed and contextual bandits as environments (Sutton & Barto ch. 2; Lattimore &
// Szepesvári ch. 4, 19): one state, K arms, a reward distribution per arm. Each pull is a
// one-step episode when used through the Environment contract.

import Foundation
import NudgeTensor

/// A K-armed bandit.
public protocol Bandit: AnyObject {
    var armCount: Int { get }
    /// The mean reward of each arm now (for regret and % optimal action).
    var expectedRewards: [Double] { get }
    /// Draws a reward for `arm` (and advances non-stationary means).
    func pull(_ arm: Int) -> Double
    /// Re-draws the bandit's randomness (and its means, where they are random) from `seed`.
    func reseed(_ seed: UInt64)
}

extension Bandit {
    /// The best arm's mean.
    public var optimalReward: Double { expectedRewards.max() ?? 0 }
    /// The arm with the highest mean (lowest index on ties).
    public var optimalArm: Int { expectedRewards.indices.max { expectedRewards[$0] < expectedRewards[$1] || (expectedRewards[$0] == expectedRewards[$1] && $0 > $1) } ?? 0 }
}

/// Arms paying 1 with probability p[a], else 0.
public final class BernoulliBandit: Bandit {
    public let probabilities: [Double]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(probabilities: [Double], seed: UInt64 = 0) {
        precondition(probabilities.allSatisfy { (0...1).contains($0) }, "Bernoulli probabilities must be in [0, 1]: \(probabilities)")
        self.probabilities = probabilities
        rng = RandomGenerator(seed: seed)
    }

    public var armCount: Int { probabilities.count }
    public var expectedRewards: [Double] { probabilities }
    public func pull(_ arm: Int) -> Double { rng.bernoulli(probabilities[arm]) ? 1 : 0 }
    public func reseed(_ seed: UInt64) { rng = RandomGenerator(seed: seed) }
}

/// Arms paying Normal(mean[a], std[a]).
public final class GaussianBandit: Bandit {
    public let means: [Double]
    public let standardDeviations: [Double]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(means: [Double], standardDeviation: Double = 1, seed: UInt64 = 0) {
        self.means = means
        standardDeviations = Array(repeating: standardDeviation, count: means.count)
        rng = RandomGenerator(seed: seed)
    }

    public var armCount: Int { means.count }
    public var expectedRewards: [Double] { means }
    public func pull(_ arm: Int) -> Double { rng.normal(mean: means[arm], std: standardDeviations[arm]) }
    public func reseed(_ seed: UInt64) { rng = RandomGenerator(seed: seed) }
}

/// Sutton & Barto's 10-armed testbed (§2.3): q*(a) ~ N(0, 1), rewards ~ N(q*(a), 1). The
/// non-stationary variant (exercise 2.5) starts every q*(a) equal (0) and adds N(0, 0.01²) to each
/// after every pull.
public final class Testbed: Bandit {
    public let armCount: Int
    public let nonstationary: Bool
    public let walkStandardDeviation: Double
    @exclusivity(unchecked) public private(set) var expectedRewards: [Double]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator

    public init(arms: Int = 10, nonstationary: Bool = false, walkStandardDeviation: Double = 0.01, seed: UInt64 = 0) {
        armCount = arms
        self.nonstationary = nonstationary
        self.walkStandardDeviation = walkStandardDeviation
        rng = RandomGenerator(seed: seed)
        expectedRewards = []
        reseed(seed)
    }

    public func reseed(_ seed: UInt64) {
        rng = RandomGenerator(seed: seed)
        expectedRewards = nonstationary ? Array(repeating: 0, count: armCount) : (0..<armCount).map { _ in rng.normal() }
    }

    public func pull(_ arm: Int) -> Double {
        let r = rng.normal(mean: expectedRewards[arm], std: 1)
        if nonstationary {
            for a in 0..<armCount { expectedRewards[a] += rng.normal(mean: 0, std: walkStandardDeviation) }
        }
        return r
    }
}

/// A bandit as a one-state environment: each step pulls an arm and ends the episode.
public final class BanditEnvironment<B: Bandit>: Environment {
    public let bandit: B
    public let id: String

    public init(_ bandit: B, id: String = "Bandit-v0") {
        self.bandit = bandit
        self.id = id
    }

    public var observationSpace: Space { .discrete(n: 1) }
    public var actionSpace: Space { .discrete(n: bandit.armCount) }

    public func reset(seed: UInt64?, options: [String: Double]?) -> (observation: Int, info: Info) {
        if let seed { bandit.reseed(seed) }
        return (0, [:])
    }

    public func step(_ action: Int) throws -> Step<Int> {
        try validate(action, actionSpace, id)
        let regret = bandit.optimalReward - bandit.expectedRewards[action]
        return Step(observation: 0, reward: bandit.pull(action), terminated: true, truncated: false,
                    info: ["regret": .double(regret), "optimal": .bool(action == bandit.optimalArm)])
    }
}

// MARK: - Contextual bandits

/// A contextual bandit: observe a context x, choose an arm, receive r(x, a).
public protocol ContextualBandit: AnyObject {
    var armCount: Int { get }
    var contextDimension: Int { get }
    /// Draws the next context.
    func nextContext() -> [Double]
    /// The reward of `arm` for the current context.
    func pull(_ arm: Int) -> Double
    /// The mean reward of each arm for the current context.
    var expectedRewards: [Double] { get }
}

/// Linear-Gaussian rewards: r = θ_aᵀx + N(0, σ²), x ~ N(0, I_d), θ_a ~ N(0, I_d/d) fixed by the seed.
public final class LinearGaussianBandit: ContextualBandit {
    public let armCount: Int
    public let contextDimension: Int
    public let noise: Double
    /// The true parameters θ_a.
    public let parameters: [[Double]]
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator
    private var context: [Double]

    public init(arms: Int, dimension: Int, noise: Double = 0.1, seed: UInt64 = 0) {
        armCount = arms
        contextDimension = dimension
        self.noise = noise
        var init_ = RandomGenerator(seed: seed).derive(stream: 1)
        parameters = (0..<arms).map { _ in (0..<dimension).map { _ in init_.normal() / Double(dimension).squareRoot() } }
        rng = RandomGenerator(seed: seed).derive(stream: 2)
        context = Array(repeating: 0, count: dimension)
    }

    public func nextContext() -> [Double] {
        context = (0..<contextDimension).map { _ in rng.normal() }
        return context
    }

    public var expectedRewards: [Double] { parameters.map { zip($0, context).reduce(0) { $0 + $1.0 * $1.1 } } }
    public func pull(_ arm: Int) -> Double { expectedRewards[arm] + noise * rng.normal() }
}

/// Classification as a bandit: the context is a sample's features, reward 1 when the arm is its
/// label, else 0. Samples are drawn uniformly with replacement.
public final class ClassificationBandit: ContextualBandit {
    public let features: [[Double]]
    public let labels: [Int]
    public let armCount: Int
    // Unchecked exclusivity: mutated on every step; dynamic checks cost more than the work.
    @exclusivity(unchecked) private var rng: RandomGenerator
    private var index = 0

    public init(features: [[Double]], labels: [Int], classes: Int? = nil, seed: UInt64 = 0) {
        precondition(features.count == labels.count && !features.isEmpty, "features and labels must pair up")
        self.features = features
        self.labels = labels
        armCount = classes ?? ((labels.max() ?? 0) + 1)
        rng = RandomGenerator(seed: seed)
    }

    /// A seeded synthetic dataset: `classes` Gaussian blobs in `dimension` dimensions.
    public static func blobs(classes: Int = 4, dimension: Int = 5, samples: Int = 1000, spread: Double = 1, seed: UInt64 = 0) -> ClassificationBandit {
        var rng = RandomGenerator(seed: seed)
        let centers = (0..<classes).map { _ in (0..<dimension).map { _ in rng.normal() * 2 } }
        var x: [[Double]] = [], y: [Int] = []
        for _ in 0..<samples {
            let c = rng.int(below: classes)
            x.append(centers[c].map { $0 + spread * rng.normal() })
            y.append(c)
        }
        return ClassificationBandit(features: x, labels: y, classes: classes, seed: seed &+ 1)
    }

    public var contextDimension: Int { features[0].count }

    public func nextContext() -> [Double] {
        index = rng.int(below: features.count)
        return features[index]
    }

    public var expectedRewards: [Double] { (0..<armCount).map { $0 == labels[index] ? 1 : 0 } }
    public func pull(_ arm: Int) -> Double { arm == labels[index] ? 1 : 0 }
}
