// The Llama family (Llama 2/3, Qwen2, Mistral-style): pre-norm decoder blocks with RMSNorm, rotary
// position embeddings (Su et al. 2021; HF's rotate-half layout), grouped-query attention, SwiGLU
// MLPs (Shazeer 2020), optional q/k/v biases (Qwen2) and tied or untied embeddings. Parameter keys
// are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`), so checkpoints load strictly.
//
// Shapes: B batch, T tokens, H hidden, nH heads, nKV key-value heads, d head dimension.

import Foundation
import NudgeNN
import NudgeTensor

/// Rotary embedding tables for given positions: cos and sin of shape (B, 1, T, d), frequencies
/// θ^(−2i/d) duplicated over both halves (HF's layout).
func rotaryTables(positions: [[Int]], dimension d: Int, theta: Float) -> (cos: Tensor, sin: Tensor) {
    let b = positions.count, t = positions.first?.count ?? 0
    let cos = Tensor(uninitializedShape: [b, 1, t, d]), sin = Tensor(uninitializedShape: [b, 1, t, d])
    let half = d / 2
    for (r, row) in positions.enumerated() {
        for (j, p) in row.enumerated() {
            for i in 0..<half {
                // Computed in Double then rounded, as HF computes inv_freq·position in float32 closely enough (< 1e-6 here).
                let inverseFrequency = 1 / Foundation.pow(Double(theta), Double(2 * i) / Double(d))
                let angle = Double(p) * Double(Float(inverseFrequency))
                let c = Float(Foundation.cos(angle)), s = Float(Foundation.sin(angle))
                let base = (r * t + j) * d
                cos.data[base + i] = c; cos.data[base + i + half] = c
                sin.data[base + i] = s; sin.data[base + i + half] = s
            }
        }
    }
    return (cos, sin)
}

/// x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁) over the last axis.
func applyRotary(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
    let d = x.shape[x.rank - 1]
    let rotated = Tensor.concat([-x.slice(axis: -1, (d / 2)..<d), x.slice(axis: -1, 0..<(d / 2))], axis: -1)
    return x * cos + rotated * sin
}

/// Multi-head attention with grouped key-value heads and rotary positions.
public final class LlamaAttention: Module {
    /// Checkpoint key `q_proj`.
    @Key public var queryProjection: any LinearLayer
    /// Checkpoint key `k_proj`.
    @Key public var keyProjection: any LinearLayer
    /// Checkpoint key `v_proj`.
    @Key public var valueProjection: any LinearLayer
    /// Checkpoint key `o_proj`.
    @Key public var outputProjection: any LinearLayer
    public let headCount: Int
    public let keyValueHeadCount: Int
    public let headDimension: Int

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        headCount = c.headCount
        keyValueHeadCount = c.keyValueHeadCount
        headDimension = c.headDimension
        let h = c.hiddenSize, q = c.headCount * c.headDimension, kv = c.keyValueHeadCount * c.headDimension
        _queryProjection = Key(wrappedValue: Linear(inputCount: h, outputCount: q, bias: c.attentionBias, using: &rng), "q_proj")
        _keyProjection = Key(wrappedValue: Linear(inputCount: h, outputCount: kv, bias: c.attentionBias, using: &rng), "k_proj")
        _valueProjection = Key(wrappedValue: Linear(inputCount: h, outputCount: kv, bias: c.attentionBias, using: &rng), "v_proj")
        _outputProjection = Key(wrappedValue: Linear(inputCount: q, outputCount: h, bias: c.outputProjectionBias, using: &rng), "o_proj")
    }

    /// (B, T, nHeads·d) → (B, nHeads, T, d).
    func heads(_ x: Tensor, _ n: Int) -> Tensor {
        x.reshaped([x.shape[0], x.shape[1], n, headDimension]).transposed(1, 2)
    }

    /// Repeats each key-value head for the query heads of its group: (B, nKV, S, d) → (B, nH, S, d).
    func repeatKeyValue(_ x: Tensor) -> Tensor {
        let groups = headCount / keyValueHeadCount
        if groups == 1 { return x }
        let (b, s) = (x.shape[0], x.shape[2])
        return x.reshaped([b, keyValueHeadCount, 1, s, headDimension])
            .expand(to: [b, keyValueHeadCount, groups, s, headDimension])
            .reshaped([b, headCount, s, headDimension])
    }

    /// x: (B, T, H); mask: additive, broadcast to (B, nH, T, S); returns (B, T, H).
    public func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let q = applyRotary(heads(queryProjection(x), headCount), cos: cos, sin: sin)
        var k = applyRotary(heads(keyProjection(x), keyValueHeadCount), cos: cos, sin: sin)
        var v = heads(valueProjection(x), keyValueHeadCount)
        if let cache { (k, v) = cache.append(layer: layer, keys: k, values: v) }
        let out = scaledDotProductAttention(queries: q, keys: repeatKeyValue(k), values: repeatKeyValue(v), mask: mask, causal: true)
        return outputProjection(out.transposed(1, 2).reshaped([b, t, headCount * headDimension]))
    }
}

/// The SwiGLU feed-forward block: down(silu(gate(x)) ⊙ up(x)).
public final class LlamaMLP: Module {
    /// Checkpoint key `gate_proj`.
    @Key public var gate: any LinearLayer
    /// Checkpoint key `up_proj`.
    @Key public var up: any LinearLayer
    /// Checkpoint key `down_proj`.
    @Key public var down: any LinearLayer

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _gate = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.intermediateSize, bias: c.mlpBias, using: &rng), "gate_proj")
        _up = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.intermediateSize, bias: c.mlpBias, using: &rng), "up_proj")
        _down = Key(wrappedValue: Linear(inputCount: c.intermediateSize, outputCount: c.hiddenSize, bias: c.mlpBias, using: &rng), "down_proj")
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { down(gate(x).silu() * up(x)) }
}

/// One pre-norm decoder block.
public final class LlamaBlock: Module {
    /// Checkpoint key `self_attn`.
    @Key public var attention: LlamaAttention
    public let mlp: LlamaMLP
    /// Checkpoint key `input_layernorm`.
    @Key public var inputNorm: RMSNorm
    /// Checkpoint key `post_attention_layernorm`.
    @Key public var postAttentionNorm: RMSNorm

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _attention = Key(wrappedValue: LlamaAttention(c, rng: &rng), "self_attn")
        mlp = LlamaMLP(c, rng: &rng)
        _inputNorm = Key(wrappedValue: RMSNorm(dimensions: c.hiddenSize, eps: c.normEpsilon), "input_layernorm")
        _postAttentionNorm = Key(wrappedValue: RMSNorm(dimensions: c.hiddenSize, eps: c.normEpsilon), "post_attention_layernorm")
    }

    public func callAsFunction(_ h: Tensor, cos: Tensor, sin: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let h1 = h + attention(inputNorm(h), cos: cos, sin: sin, mask: mask, cache: cache, layer: layer)
        return h1 + mlp(postAttentionNorm(h1))
    }
}

/// The decoder trunk (`model.*` keys).
public final class LlamaBackbone: Module {
    /// Checkpoint key `embed_tokens`.
    @Key public var embedding: Embedding
    public let layers: [LlamaBlock]
    public let norm: RMSNorm

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _embedding = Key(wrappedValue: Embedding(count: c.vocabularySize, dimensions: c.hiddenSize, using: &rng), "embed_tokens")
        layers = (0..<c.layerCount).map { _ in LlamaBlock(c, rng: &rng) }
        norm = RMSNorm(dimensions: c.hiddenSize, eps: c.normEpsilon)
    }
}

/// A Llama-family causal language model (`LlamaForCausalLM`, `Qwen2ForCausalLM`).
public final class LlamaModel: Module, CausalLanguageModel {
    public let configuration: TransformerConfiguration
    public let model: LlamaBackbone
    /// The output projection; nil when tied to the embedding.
    @Key("lm_head") public var head: Linear? = nil

    public init(_ c: TransformerConfiguration, seed: UInt64 = 0) {
        configuration = c
        var rng = RandomGenerator(seed: seed)
        model = LlamaBackbone(c, rng: &rng)
        super.init()
        if !c.tieWordEmbeddings {
            _head = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.vocabularySize, bias: false, using: &rng), "lm_head")
        }
    }

    /// Final hidden states (after the last norm) and, when asked, every layer's input.
    public func hiddenStates(_ input: TokenBatch, collect: Bool = false, cache: KVCache? = nil) -> (last: Tensor, all: [Tensor]) {
        let (cos, sin) = rotaryTables(positions: input.positions, dimension: configuration.headDimension, theta: configuration.ropeTheta)
        let mask = input.attentionBias
        var h = model.embedding(input.ids.flatMap { $0 }, shape: [input.batchSize, input.length])
        var all: [Tensor] = collect ? [h] : []
        for (i, layer) in model.layers.enumerated() {
            h = layer(h, cos: cos, sin: sin, mask: mask, cache: cache, layer: i)
            if collect && i < model.layers.count - 1 { all.append(h) }
        }
        let last = model.norm(h)
        if collect { all.append(last) }
        return (last, all)
    }

    /// Logits (B, T, V).
    public func callAsFunction(_ input: TokenBatch) -> Tensor { logits(hiddenStates(input).last) }

    public func forward(_ input: TokenBatch, cache: KVCache?) -> Tensor { logits(hiddenStates(input, cache: cache).last) }

    public func finalHiddenStates(_ input: TokenBatch) -> Tensor { hiddenStates(input).last }

    /// The language-model head on hidden states (tied: hidden · embeddingᵀ).
    public func logits(_ hidden: Tensor) -> Tensor {
        if let head { return head(hidden) }
        return linear(hidden, weight: model.embedding.weight, bias: nil)
    }
}
