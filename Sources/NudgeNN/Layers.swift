// Layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout, Sequential, MLP and activations.
// Weight layouts and default initializations are PyTorch's, so checkpoints and seeds map 1:1.

import Foundation
import NudgeTensor

/// y = x·Wᵀ + b, with W of shape (outputCount, inputCount) as in PyTorch.
public final class Linear: Module, UnaryLayer {
    public var weight: Tensor
    public var bias: Tensor?

    /// PyTorch's default init: U(−1/√in, 1/√in) for the weight and the bias.
    public init(inputCount: Int, outputCount: Int, bias: Bool = true, using rng: inout RandomGenerator) {
        let bound = 1 / Float(inputCount).squareRoot()
        weight = Tensor.uniform([outputCount, inputCount], low: -bound, high: bound, using: &rng)
        self.bias = bias ? Tensor.uniform([outputCount], low: -bound, high: bound, using: &rng) : nil
    }

    /// A layer with the given weight (and bias) initializers.
    public init(inputCount: Int, outputCount: Int, bias: Bool = true, weightInit: Initializer,
                biasInit: Initializer = .constant(0), using rng: inout RandomGenerator) {
        weight = weightInit.make([outputCount, inputCount], using: &rng)
        self.bias = bias ? biasInit.make([outputCount], using: &rng) : nil
    }

    /// A layer holding the given tensors.
    public init(weight: Tensor, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }

    public override var summary: String { "Linear(\(weight.shape[1]) → \(weight.shape[0])\(bias == nil ? ", no bias" : ""))" }
}

/// A frozen `Linear` whose weight is held quantized (y = x·Wᵀ + b). The weight is not a parameter
/// (it neither trains nor appears in `parameters()`); the bias, if any, is a frozen parameter.
/// Gradients flow to the input, so adapters in earlier layers still train.
public final class QuantizedLinear: Module, UnaryLayer {
    /// The quantized weight (out, in).
    public let quantizedWeight: QuantizedMatrix
    /// The bias (out), if any.
    public let bias: Tensor?

    /// Quantizes `linear`'s weight (sharing its bias); the `Linear` is left as it was.
    public init(quantizing linear: Linear, format: WeightQuantization = .q8_0) {
        quantizedWeight = QuantizedMatrix(quantizing: linear.weight, format: format)
        bias = linear.bias
        super.init()
        freeze()
        train(linear.isTraining)
    }

    /// A layer over an already quantized weight.
    public init(weight: QuantizedMatrix, bias: Tensor? = nil) {
        quantizedWeight = weight
        self.bias = bias
        super.init()
        freeze()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: quantizedWeight, bias: bias) }

    public override var summary: String {
        "QuantizedLinear(\(quantizedWeight.columns) → \(quantizedWeight.rows), \(quantizedWeight.format.rawValue)\(bias == nil ? ", no bias" : ""))"
    }
}

/// A lookup table of `count` vectors of `dimensions` (PyTorch init: N(0, 1)).
public final class Embedding: Module {
    public var weight: Tensor

    public init(count: Int, dimensions: Int, using rng: inout RandomGenerator) {
        weight = Tensor.normal([count, dimensions], using: &rng)
    }

    public init(weight: Tensor) { self.weight = weight }

    /// Vectors for `ids` laid out in `shape` (default: a flat list); output `shape + [dimensions]`.
    public func callAsFunction(_ ids: [Int], shape: [Int]? = nil) -> Tensor {
        weight.indexSelect(ids, indexShape: shape)
    }

    public override var summary: String { "Embedding(\(weight.shape[0]), \(weight.shape[1]))" }
}

/// Layer normalization over the last axis with learned gain and bias.
public final class LayerNorm: Module, UnaryLayer {
    public var weight: Tensor?
    public var bias: Tensor?
    public let eps: Float

    public init(dimensions: Int, eps: Float = 1e-5, affine: Bool = true, bias: Bool = true) {
        weight = affine ? Tensor.ones([dimensions]) : nil
        self.bias = affine && bias ? Tensor.zeros([dimensions]) : nil
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }

    public override var summary: String { "LayerNorm(\(weight?.count ?? 0), eps: \(eps))" }
}

/// RMS normalization over the last axis with a learned gain.
public final class RMSNorm: Module, UnaryLayer {
    public var weight: Tensor
    public let eps: Float

    public init(dimensions: Int, eps: Float = 1e-6) {
        weight = Tensor.ones([dimensions])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight, eps: eps) }

    public override var summary: String { "RMSNorm(\(weight.count), eps: \(eps))" }
}

/// Zeroes each element with probability p during training and scales the rest by 1/(1−p).
/// Seeded: the mask sequence depends only on the seed and the number of calls.
public final class Dropout: Module, UnaryLayer {
    public let probability: Float
    private var rng: RandomGenerator

    public init(probability: Float, seed: UInt64 = 0) {
        precondition(probability >= 0 && probability < 1, "dropout probability \(probability) not in [0, 1)")
        self.probability = probability
        rng = RandomGenerator(seed: seed)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return x }
        let mask = Tensor(uninitializedShape: x.shape)
        let keep = 1 / (1 - probability)
        for i in 0..<mask.count { mask.data[i] = rng.uniform() < Double(probability) ? 0 : keep }
        return x * mask
    }

    /// The mask stream's position (`RandomGenerator.snapshot`), which a training checkpoint keeps so
    /// a resumed run draws the masks the uninterrupted one would. Setting an invalid snapshot is ignored.
    public var randomState: [UInt64] {
        get { rng.snapshot }
        set { if let restored = RandomGenerator(snapshot: newValue) { rng = restored } }
    }

    public override var summary: String { "Dropout(p: \(probability))" }
}

/// An activation function as a layer.
public final class Activation: Module, UnaryLayer {
    public enum Kind: String, Sendable {
        case relu, tanh, sigmoid, gelu, geluTanh, silu, identity

        /// The function applied to `x`.
        public func callAsFunction(_ x: Tensor) -> Tensor {
            switch self {
        case .relu: x.relu()
        case .tanh: x.tanh()
        case .sigmoid: x.sigmoid()
        case .gelu: x.gelu()
        case .geluTanh: x.gelu(approximate: true)
        case .silu: x.silu()
        case .identity: x
            }
        }
    }

    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public func callAsFunction(_ x: Tensor) -> Tensor { kind(x) }

    public override var summary: String { kind.rawValue.capitalized }
}

/// Layers applied in order; keys are "0", "1", … as in PyTorch's nn.Sequential.
public final class Sequential: Module, UnaryLayer {
    public let layers: [Module]

    public init(_ layers: [any UnaryLayer]) { self.layers = layers }

    public override func items() -> (parameters: [(String, Tensor)], children: [(String, Module)]) {
        ([], layers.enumerated().map { ("\($0.offset)", $0.element) })
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { ($1 as! any UnaryLayer)($0) }
    }
}

/// A multilayer perceptron: Linear layers with an activation between them (none after the last).
public final class MLP: Module, UnaryLayer {
    public let layers: [Linear]
    public let activation: Activation.Kind

    /// `sizes` = [input, hidden…, output]. `hiddenInit`/`outputInit` override PyTorch's default
    /// init (e.g. CleanRL's orthogonal √2 and 0.01) with zero biases.
    public init(sizes: [Int], activation: Activation.Kind = .tanh, hiddenInit: Initializer? = nil,
                outputInit: Initializer? = nil, using rng: inout RandomGenerator) {
        precondition(sizes.count >= 2, "MLP needs at least input and output sizes")
        var layers: [Linear] = []
        for i in 0..<(sizes.count - 1) {
            let initializer = i == sizes.count - 2 ? outputInit : hiddenInit
            if let initializer {
                layers.append(Linear(inputCount: sizes[i], outputCount: sizes[i + 1], weightInit: initializer, using: &rng))
            } else {
                layers.append(Linear(inputCount: sizes[i], outputCount: sizes[i + 1], using: &rng))
            }
        }
        self.layers = layers
        self.activation = activation
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = layer(h)
            if i < layers.count - 1 { h = activation(h) }
        }
        return h
    }

    public override var summary: String { "MLP(\(activation.rawValue))" }
}
