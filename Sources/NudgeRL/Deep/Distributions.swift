// Action distributions for policies: categorical over logits, a diagonal Gaussian with a
// state-independent log-std (PPO continuous), and the tanh-squashed Gaussian of SAC with its
// change-of-variables correction (Haarnoja et al. 2018, appendix C).

import Foundation
import NudgeTensor

/// A batch of categorical distributions given by logits (B, K).
public struct CategoricalDistribution {
    public let logits: Tensor
    public let logProbabilities: Tensor

    public init(logits: Tensor) {
        self.logits = logits
        logProbabilities = logits.logSoftmax(axis: -1)
    }

    /// One sample per row.
    public func sample(using rng: inout RandomGenerator) -> [Int] { logits.sampleCategorical(using: &rng) }

    /// The most likely action per row.
    public var mode: [Int] { logits.argmax(axis: -1) }

    /// log π(a) per row (differentiable).
    public func logProb(_ actions: [Int]) -> Tensor { logProbabilities.pick(actions) }

    /// Entropy per row (differentiable).
    public var entropy: Tensor { Tensor.categoricalEntropy(logProbabilities: logProbabilities) }
}

/// A batch of diagonal Gaussians: mean (B, A), log-std (A) shared across the batch.
public struct DiagonalGaussian {
    public let mean: Tensor
    public let logStd: Tensor

    public init(mean: Tensor, logStd: Tensor) {
        self.mean = mean
        self.logStd = logStd
    }

    /// One sample per row, as a (B, A) tensor (not tracked).
    public func sample(using rng: inout RandomGenerator) -> Tensor {
        withoutGradients {
            let noise = Tensor.normal(mean.shape, using: &rng)
            return mean.detached() + noise * logStd.detached().exp()
        }
    }

    /// Σₐ log N(actions | mean, std) per row (differentiable).
    public func logProb(_ actions: Tensor) -> Tensor {
        normalLogProb(actions, mean: mean, logStd: logStd.expand(to: mean.shape)).sum(axis: -1)
    }

    /// Σₐ (½ + ½·log 2π + log σ) per row.
    public var entropy: Tensor {
        (logStd.expand(to: mean.shape) + Float(0.5 + 0.5 * Foundation.log(2 * Double.pi))).sum(axis: -1)
    }
}

/// An actor-critic's policy: categorical (discrete actions) or diagonal Gaussian (continuous).
public enum PolicyDistribution {
    case categorical(CategoricalDistribution)
    case gaussian(DiagonalGaussian)

    /// Entropy per row (differentiable).
    public var entropy: Tensor {
        switch self {
        case .categorical(let d): d.entropy
        case .gaussian(let d): d.entropy
        }
    }
}

/// a = tanh(u)·scale + bias with u ~ N(mean, exp(logStd)) (SAC's policy).
public struct TanhGaussian {
    public let mean: Tensor
    public let logStd: Tensor
    public let scale: [Float]
    public let bias: [Float]

    public init(mean: Tensor, logStd: Tensor, scale: [Float], bias: [Float]) {
        self.mean = mean
        self.logStd = logStd
        self.scale = scale
        self.bias = bias
    }

    /// A reparameterized sample (differentiable in mean and logStd) and its log-density
    /// Σₐ [log N(u) − log(1 − tanh²u) − log scale].
    public func sample(using rng: inout RandomGenerator) -> (action: Tensor, logProb: Tensor) {
        let noise = Tensor.normal(mean.shape, using: &rng)
        let u = mean + noise * logStd.exp()
        let s = Tensor(scale), b = Tensor(bias)
        let action = u.tanh() * s + b
        let logScale = scale.reduce(Float(0)) { $0 + Foundation.log($1) }
        let logProb = tanhNormalLogProb(preTanh: u, mean: mean, logStd: logStd).sum(axis: -1) - logScale
        return (action, logProb)
    }

    /// The deterministic action tanh(mean)·scale + bias.
    public var mode: Tensor { mean.tanh() * Tensor(scale) + Tensor(bias) }
}
