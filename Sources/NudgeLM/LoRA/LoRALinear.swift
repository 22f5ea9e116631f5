// LoRA layers (Hu et al. 2021): a frozen linear map plus a trainable low-rank update,
// y = x·Wᵀ + b + s·dropout(x)·Aᵀ·Bᵀ with A (r, in), B (out, r) and s = α/r (α/√r for rsLoRA).
// Initialization is PEFT's: A Kaiming-uniform with a = √5 (U(−1/√in, 1/√in)), B zero, so a fresh
// adapter leaves the model's outputs unchanged.
//
// Keys: the base weight and bias keep their own keys (`q_proj.weight`, `q_proj.bias`) and the
// adapters sit beside them (`q_proj.lora_A.weight`, `q_proj.lora_B.weight`), so a model with
// adapters still maps its base parameters to Hugging Face keys (PEFT's in-memory
// `base_layer.weight` nesting is not used). Model projections are stored as `any LinearLayer`,
// which lets `applyLoRA` swap a `Linear` for a `LoRALinear` in place.

import Foundation
import NudgeNN
import NudgeTensor

/// A layer computing x·Wᵀ + b: a `Linear`, or a `LoRALinear` wrapping one.
public protocol LinearLayer: UnaryLayer {
    /// The weight (out, in); for a LoRA layer the base weight (merged while merged).
    var weight: Tensor { get }
    /// The bias (out), if any.
    var bias: Tensor? { get }
}

extension Linear: LinearLayer {}

extension QuantizedLinear: LinearLayer {
    /// The weight dequantized to Float32 (a new tensor on each read).
    public var weight: Tensor { quantizedWeight.dequantized() }
}

/// A `Linear` layer with a LoRA adapter. The base weight and bias are frozen; `lora_A` and
/// `lora_B` (bias-free `Linear`s) are the trainable parameters.
public final class LoRALinear: Module, LinearLayer {
    /// The base weight (out, in); holds W + s·B·A while merged. With a quantized base
    /// (`quantizeBase`), a dequantized copy made on each read.
    public var weight: Tensor { baseWeight ?? quantizedBase!.dequantized() }
    /// The Float32 base weight under its own key (`weight`); nil once the base is quantized, so
    /// the quantized weight is no parameter.
    @Key private var baseWeight: Tensor?
    /// The base bias.
    public let bias: Tensor?
    /// A: in → r (weight (r, in)). Checkpoint key `lora_A`.
    @Key public private(set) var loraA: Linear
    /// B: r → out (weight (out, r)). Checkpoint key `lora_B`.
    @Key public private(set) var loraB: Linear
    /// Dropout on the adapter's input (nil when p = 0). Key `lora_dropout` (no parameters).
    @Key public private(set) var dropout: Dropout?
    /// The rank r.
    public let rank: Int
    /// The scaling numerator α.
    public let alpha: Float
    /// s = α/r (or α/√r with rsLoRA).
    public let scale: Float
    /// Whether the adapter contributes; when false the output is exactly the base layer's.
    public var isEnabled = true
    /// The layer replaced, kept to put back on unloading (boxed: not a child).
    private var replaced: LoRAStash<Linear>?
    /// The base weight when held quantized (`quantizeBase`); not a parameter.
    public private(set) var quantizedBase: QuantizedMatrix?
    /// The base weight as it was before `merge()` (boxed: not a parameter).
    private var unmergedWeight: LoRAStash<Tensor>?

    /// Wraps `base` (its weight and bias tensors are shared, not copied) with a rank-`rank` adapter.
    /// A is drawn from `rng`; the dropout mask stream is seeded from it too.
    public convenience init(base: Linear, rank: Int, alpha: Float, dropout: Float = 0, useRSLoRA: Bool = false,
                            using rng: inout RandomGenerator) {
        self.init(weight: base.weight, quantized: nil, bias: base.bias, replaced: base, rank: rank, alpha: alpha,
                  dropout: dropout, useRSLoRA: useRSLoRA, using: &rng)
    }

    /// Wraps a quantized projection (its weight and bias shared, not copied) with a rank-`rank`
    /// adapter: the same layer as wrapping the Float32 `Linear` it was quantized from and then
    /// calling `replaceBase(with:)`, with A and the dropout seed drawn identically.
    public convenience init(base: QuantizedLinear, rank: Int, alpha: Float, dropout: Float = 0, useRSLoRA: Bool = false,
                            using rng: inout RandomGenerator) {
        self.init(weight: nil, quantized: base.quantizedWeight, bias: base.bias, replaced: nil, rank: rank, alpha: alpha,
                  dropout: dropout, useRSLoRA: useRSLoRA, using: &rng)
    }

    private init(weight: Tensor?, quantized: QuantizedMatrix?, bias: Tensor?, replaced: Linear?, rank: Int, alpha: Float,
                 dropout: Float, useRSLoRA: Bool, using rng: inout RandomGenerator) {
        precondition(rank > 0, "LoRA rank must be positive, got \(rank)")
        precondition(dropout >= 0 && dropout < 1, "LoRA dropout \(dropout) not in [0, 1)")
        let shape = weight?.shape ?? quantized!.shape
        let outCount = shape[0], inCount = shape[1]
        _baseWeight = Key(wrappedValue: weight, "weight")
        quantizedBase = quantized
        self.bias = bias
        self.rank = rank
        self.alpha = alpha
        scale = useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
        self.replaced = replaced.map(LoRAStash.init)
        // PEFT: kaiming_uniform_(A, a=√5) → gain √(2/(1+5)), bound gain·√(3/in) = 1/√in.
        _loraA = Key(wrappedValue: Linear(inputCount: inCount, outputCount: rank, bias: false,
                                          weightInit: .kaimingUniform(gain: (1 / Float(3)).squareRoot()), using: &rng), "lora_A")
        _loraB = Key(wrappedValue: Linear(weight: Tensor.zeros([outCount, rank])), "lora_B")
        let dropoutSeed = rng.next()
        _dropout = Key(wrappedValue: dropout > 0 ? Dropout(probability: dropout, seed: dropoutSeed) : nil, "lora_dropout")
        super.init()
        freezeBase()
    }

    /// Freezes the base weight and bias and leaves only A and B trainable.
    func freezeBase() {
        freeze()
        loraA.unfreeze()
        loraB.unfreeze()
    }

    /// Whether the adapter is folded into `weight`.
    public var isMerged: Bool { unmergedWeight != nil }

    /// The original layer this one replaced (its weight tensor is `weight`); with a quantized base,
    /// a new `Linear` holding the dequantized weight and the bias.
    public var baseLayer: Linear { replaced?.value ?? Linear(weight: weight, bias: bias) }

    /// Whether the base weight is held quantized.
    public var isBaseQuantized: Bool { quantizedBase != nil }

    /// Holds the base weight quantized to `format` from now on and drops the Float32 copy (memory
    /// for the frozen base shrinks about 3.6× with Q8_0); the adapter is unchanged and trains as
    /// before. No-op when already quantized; not allowed while merged. Call
    /// `invalidateParameterCache()` on the root module afterwards.
    public func quantizeBase(_ format: WeightQuantization = .q8_0) {
        guard quantizedBase == nil, let baseWeight else { return }
        replaceBase(with: QuantizedMatrix(quantizing: baseWeight, format: format))
    }

    /// Holds the base weight as `matrix` (already quantized, e.g. a GGUF file's own blocks, whose
    /// values the Float32 base was loaded from) and drops the Float32 copy, as `quantizeBase` does.
    public func replaceBase(with matrix: QuantizedMatrix) {
        precondition(!isMerged, "LoRALinear: unmerge before quantizing the base weight")
        precondition(matrix.shape == baseShape, "LoRALinear: quantized base \(matrix.shape) for a \(baseShape) layer")
        quantizedBase = matrix
        self.baseWeight = nil
        // The replaced Linear shares the Float32 tensor; keeping it would keep the memory.
        replaced = nil
    }

    /// The layer to put back when the adapter is removed: the base (merged when `merge`). A
    /// quantized base comes back quantized unmerged, or as a Float32 `Linear` of the dequantized
    /// weight plus s·B·A merged.
    func unloadedLayer(merge: Bool) -> any LinearLayer {
        if let quantizedBase {
            guard merge else { return QuantizedLinear(weight: quantizedBase, bias: bias) }
            return Linear(weight: withoutGradients { weight + matmul(loraB.weight, loraA.weight) * scale }, bias: bias)
        }
        if merge { self.merge() } else { unmerge() }
        return baseLayer
    }

    private var baseShape: [Int] { baseWeight?.shape ?? quantizedBase!.shape }

    /// s·B·A, shape (out, in).
    public var deltaWeight: Tensor { withoutGradients { matmul(loraB.weight, loraA.weight) * scale } }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let unmergedWeight {
            return linear(x, weight: isEnabled ? weight : unmergedWeight.value, bias: bias)
        }
        let base = quantizedBase.map { linear(x, weight: $0, bias: bias) } ?? linear(x, weight: weight, bias: bias)
        guard isEnabled else { return base }
        let input = dropout.map { $0(x) } ?? x
        return base + loraB(loraA(input)) * scale
    }

    /// Folds the adapter into the weight (W ← W + s·B·A); the forward pass then skips the adapter
    /// path. A copy of W is kept so `unmerge()` restores it exactly. No-op when merged.
    public func merge() {
        guard unmergedWeight == nil else { return }
        precondition(quantizedBase == nil, "LoRALinear: merging into a quantized base is not supported (unload with merge instead)")
        withoutGradients {
            let original = weight.copy()
            weight.assign(original + matmul(loraB.weight, loraA.weight) * scale)
            unmergedWeight = LoRAStash(original)
        }
    }

    /// Restores the base weight saved by `merge()` bit for bit. No-op when not merged.
    public func unmerge() {
        guard let unmergedWeight else { return }
        weight.assign(unmergedWeight.value)
        self.unmergedWeight = nil
    }

    public override var summary: String {
        "LoRALinear(\(baseShape[1]) → \(baseShape[0])\(bias == nil ? ", no bias" : ""), r: \(rank), α: \(alpha)"
            + "\(quantizedBase.map { ", base \($0.format.rawValue)" } ?? "")"
            + "\(isMerged ? ", merged" : "")\(isEnabled ? "" : ", disabled"))"
    }
}

/// Holds a value out of reach of parameter discovery (a struct's fields are not visited).
struct LoRAStash<Value> {
    let value: Value
    init(_ value: Value) { self.value = value }
}
