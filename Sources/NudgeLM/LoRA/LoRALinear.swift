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

/// A `Linear` layer with a LoRA adapter. The base weight and bias are frozen; `lora_A` and
/// `lora_B` (bias-free `Linear`s) are the trainable parameters.
public final class LoRALinear: Module, LinearLayer {
    /// The base weight (out, in); holds W + s·B·A while merged.
    public let weight: Tensor
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
    private let replaced: LoRAStash<Linear>
    /// The base weight as it was before `merge()` (boxed: not a parameter).
    private var unmergedWeight: LoRAStash<Tensor>?

    /// Wraps `base` (its weight and bias tensors are shared, not copied) with a rank-`rank` adapter.
    /// A is drawn from `rng`; the dropout mask stream is seeded from it too.
    public init(base: Linear, rank: Int, alpha: Float, dropout: Float = 0, useRSLoRA: Bool = false,
                using rng: inout RandomGenerator) {
        precondition(rank > 0, "LoRA rank must be positive, got \(rank)")
        precondition(dropout >= 0 && dropout < 1, "LoRA dropout \(dropout) not in [0, 1)")
        let outCount = base.weight.shape[0], inCount = base.weight.shape[1]
        weight = base.weight
        bias = base.bias
        self.rank = rank
        self.alpha = alpha
        scale = useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
        replaced = LoRAStash(base)
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

    /// The original layer this one replaced (its weight tensor is `weight`).
    public var baseLayer: Linear { replaced.value }

    /// s·B·A, shape (out, in).
    public var deltaWeight: Tensor { withoutGradients { matmul(loraB.weight, loraA.weight) * scale } }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let unmergedWeight {
            return linear(x, weight: isEnabled ? weight : unmergedWeight.value, bias: bias)
        }
        let base = linear(x, weight: weight, bias: bias)
        guard isEnabled else { return base }
        let input = dropout.map { $0(x) } ?? x
        return base + loraB(loraA(input)) * scale
    }

    /// Folds the adapter into the weight (W ← W + s·B·A); the forward pass then skips the adapter
    /// path. A copy of W is kept so `unmerge()` restores it exactly. No-op when merged.
    public func merge() {
        guard unmergedWeight == nil else { return }
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
        "LoRALinear(\(weight.shape[1]) → \(weight.shape[0])\(bias == nil ? ", no bias" : ""), r: \(rank), α: \(alpha)"
            + "\(isMerged ? ", merged" : "")\(isEnabled ? "" : ", disabled"))"
    }
}

/// Holds a value out of reach of parameter discovery (a struct's fields are not visited).
struct LoRAStash<Value> {
    let value: Value
    init(_ value: Value) { self.value = value }
}
