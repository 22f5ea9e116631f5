// Model-free tabular control (Sutton & Barto ch. 6): Q-learning, SARSA, expected SARSA, and soft
// Q-learning (Haarnoja et al. 2017, tabular form) with target r + γ·α·log Σ exp(Q(s', ·)/α).
// Behaviour is ε-greedy with ε decayed linearly (Boltzmann at temperature α for soft Q-learning).
// Truncation (a time limit) still bootstraps; only termination stops it.

import Foundation
import NudgeTensor

/// The TD control method.
public enum TDMethod: Sendable, Equatable {
    case qLearning
    case sarsa
    case expectedSarsa
    /// Soft Q-learning with temperature α.
    case softQLearning(temperature: Double)

    public var name: String {
        switch self {
        case .qLearning: "Q-learning"
        case .sarsa: "SARSA"
        case .expectedSarsa: "expected SARSA"
        case .softQLearning(let t): "soft Q-learning (α = \(t))"
        }
    }
}

/// Hyperparameters for tabular TD control.
public struct TDConfig: Sendable {
    public var episodes = 20_000
    /// Step size α.
    public var learningRate = 0.1
    /// Discount γ.
    public var gamma = 0.99
    public var epsilonStart = 1.0
    public var epsilonEnd = 0.01
    /// Fraction of the episodes over which ε decays linearly.
    public var epsilonDecayFraction = 0.8
    public var seed: UInt64 = 0

    public init() {}

    /// ε at `episode`.
    public func epsilon(at episode: Int) -> Double {
        let span = Swift.max(1, Double(episodes) * epsilonDecayFraction)
        return epsilonEnd + (epsilonStart - epsilonEnd) * Swift.max(0, 1 - Double(episode) / span)
    }
}

/// What a TD run produced.
public struct TDResult: Sendable {
    public var q: [[Double]]
    /// The return of every training episode.
    public var episodeReturns: [Double]
    public var episodeLengths: [Int]
}

/// Trains a Q table on a discrete environment.
public func trainTD<E: Environment>(
    _ env: E, stateCount: Int, actionCount: Int, method: TDMethod, config: TDConfig
) throws -> TDResult where E.Observation == Int, E.Action == Int {
    var q = [[Double]](repeating: [Double](repeating: 0, count: actionCount), count: stateCount)
    var rng = RandomGenerator(seed: config.seed).derive(stream: 1)
    var returns: [Double] = [], lengths: [Int] = []
    returns.reserveCapacity(config.episodes)

    func behave(_ s: Int, _ epsilon: Double) -> Int {
        if case .softQLearning(let alpha) = method { return rng.categorical(probabilities: softmax(q[s].map { $0 / alpha })) }
        if rng.uniform() < epsilon { return rng.int(below: actionCount) }
        return argmaxRandomTies(q[s], &rng)
    }

    for episode in 0..<config.episodes {
        let epsilon = config.epsilon(at: episode)
        var (s, _) = env.reset(seed: episode == 0 ? config.seed : nil, options: nil)
        var a = behave(s, epsilon)
        var total = 0.0, length = 0
        while true {
            let step = try env.step(a)
            total += step.reward
            length += 1
            let s2 = step.observation
            let a2 = behave(s2, epsilon)
            var next: Double
            switch method {
            case .qLearning: next = q[s2].max() ?? 0
            case .sarsa: next = q[s2][a2]
            case .expectedSarsa:
                let greedy = q[s2].max() ?? 0
                let greedyCount = Double(q[s2].filter { $0 == greedy }.count)
                next = q[s2].reduce(0) { acc, value in
                    let p = epsilon / Double(actionCount) + (value == greedy ? (1 - epsilon) / greedyCount : 0)
                    return acc + p * value
                }
            case .softQLearning(let alpha): next = softMaximum(q[s2], temperature: alpha)
            }
            if step.terminated { next = 0 }
            q[s][a] += config.learningRate * (step.reward + config.gamma * next - q[s][a])
            if step.done { break }
            s = s2
            a = a2
        }
        returns.append(total)
        lengths.append(length)
    }
    return TDResult(q: q, episodeReturns: returns, episodeLengths: lengths)
}

/// The mean return of the greedy policy of `q` over `episodes` evaluation episodes.
public func evaluateGreedy<E: Environment>(_ env: E, q: [[Double]], episodes: Int, seed: UInt64) throws -> Double
where E.Observation == Int, E.Action == Int {
    var total = 0.0
    for episode in 0..<episodes {
        var (s, _) = env.reset(seed: episode == 0 ? seed : nil, options: nil)
        while true {
            let row = q[s]
            let a = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) } ?? 0
            let step = try env.step(a)
            total += step.reward
            if step.done { break }
            s = step.observation
        }
    }
    return total / Double(episodes)
}
