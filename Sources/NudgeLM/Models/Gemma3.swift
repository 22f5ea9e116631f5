// Gemma 3 text (Gemma Team 2025, "Gemma 3 Technical Report"; transformers' `Gemma3ForCausalLM`,
// model_type "gemma3_text", models/gemma3/modeling_gemma3.py). A pre-norm decoder like Llama's, with:
//
//   * embeddings scaled by √H (the scale rounded to the weights' dtype, Float here);
//   * RMSNorm as x/rms(x) · (1 + w): the stored gains are offsets from 1 (zeros at init);
//   * "sandwich" norms, four per block:
//       h ← h + post_attention_layernorm(attn(input_layernorm(h)))
//       h ← h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)));
//   * q_norm / k_norm, the same (1 + w) RMSNorm over each head's d values before RoPE;
//   * attention scores scaled by query_pre_attn_scalar^(−1/2), not d^(−1/2);
//   * GeGLU MLPs: down(gelu_tanh(gate(x)) ⊙ up(x));
//   * two kinds of layer (`layer_types`): sliding_attention layers see only the last `sliding_window`
//     keys (themselves included) and rotate with θ = rope_local_base_freq; full_attention layers see
//     every earlier key and rotate with θ = rope_theta, inverse frequencies divided by the linear
//     rope_scaling factor when there is one (released 4B+ models: 8);
//   * optional final logit soft-capping cap·tanh(logits/cap); attn_logit_softcapping is read and
//     written back but, as in transformers' Gemma3Attention (which never passes it on), not applied;
//   * tied embeddings by default; head_dim decoupled from H/nH.
//
// Shapes: B batch, T new tokens, S keys (cached and new), H hidden, nH query heads, nKV key-value
// heads, d head dimension, I intermediate size, V vocabulary. Activations stay token-major
// (B, T, heads·d); heads are split only to normalize each (B, T, heads, d) and inside
// `causalAttention`. Parameter keys are Hugging Face's, so checkpoints load strictly.

import Foundation
import NudgeNN
import NudgeTensor

/// Gemma's RMSNorm: x / √(mean(x²) + ε) · (1 + w), w stored as the offset (checkpoint key `weight`).
public final class Gemma3RMSNorm: Module, UnaryLayer {
    public var weight: Tensor
    public let eps: Float

    public init(dimensions: Int, eps: Float = 1e-6) {
        weight = Tensor.zeros([dimensions])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight + 1, eps: eps) }

    public override var summary: String { "Gemma3RMSNorm(\(weight.count), eps: \(eps))" }
}

/// Grouped-query attention with per-head q/k norms, a query_pre_attn_scalar scale and, on sliding
/// layers, a window (applied through the mask `Gemma3Model` builds).
public final class Gemma3Attention: Module {
    /// Checkpoint key `q_proj`: H → nH·d.
    @Key public var queryProjection: any LinearLayer
    /// Checkpoint key `k_proj`: H → nKV·d.
    @Key public var keyProjection: any LinearLayer
    /// Checkpoint key `v_proj`: H → nKV·d.
    @Key public var valueProjection: any LinearLayer
    /// Checkpoint key `o_proj`: nH·d → H.
    @Key public var outputProjection: any LinearLayer
    /// Checkpoint key `q_norm` (d gains).
    @Key public var queryNorm: Gemma3RMSNorm
    /// Checkpoint key `k_norm` (d gains).
    @Key public var keyNorm: Gemma3RMSNorm
    public let headCount: Int
    public let keyValueHeadCount: Int
    public let headDimension: Int
    /// query_pre_attn_scalar^(−1/2).
    public let scale: Float

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        headCount = c.headCount
        keyValueHeadCount = c.keyValueHeadCount
        headDimension = c.headDimension
        scale = 1 / c.queryPreAttentionScalar.squareRoot()
        let h = c.hiddenSize, q = c.headCount * c.headDimension, kv = c.keyValueHeadCount * c.headDimension
        _queryProjection = Key(wrappedValue: Linear(inputCount: h, outputCount: q, bias: c.attentionBias, using: &rng), "q_proj")
        _keyProjection = Key(wrappedValue: Linear(inputCount: h, outputCount: kv, bias: c.attentionBias, using: &rng), "k_proj")
        _valueProjection = Key(wrappedValue: Linear(inputCount: h, outputCount: kv, bias: c.attentionBias, using: &rng), "v_proj")
        _outputProjection = Key(wrappedValue: Linear(inputCount: q, outputCount: h, bias: c.attentionBias, using: &rng), "o_proj")
        _queryNorm = Key(wrappedValue: Gemma3RMSNorm(dimensions: c.headDimension, eps: c.normEpsilon), "q_norm")
        _keyNorm = Key(wrappedValue: Gemma3RMSNorm(dimensions: c.headDimension, eps: c.normEpsilon), "k_norm")
    }

    /// Normalized, rotated queries (B, T, nH·d) and keys (B, T, nKV·d) of x (B, T, H).
    func rotatedQueriesKeys(_ x: Tensor, cos: Tensor, sin: Tensor) -> (Tensor, Tensor) {
        let (b, t) = (x.shape[0], x.shape[1])
        // The head split: (B, T, heads·d) viewed as (B, T, heads, d) to normalize each head, then back.
        let q = queryNorm(queryProjection(x).reshaped([b, t, headCount, headDimension])).reshaped([b, t, headCount * headDimension])
        let k = keyNorm(keyProjection(x).reshaped([b, t, keyValueHeadCount, headDimension])).reshaped([b, t, keyValueHeadCount * headDimension])
        return (rotaryEmbedding(q, cos: cos, sin: sin, heads: headCount), rotaryEmbedding(k, cos: cos, sin: sin, heads: keyValueHeadCount))
    }

    /// x: (B, T, H); cos, sin: (B, T, d/2) of this layer's kind; mask: additive, B·S or B·T·S values
    /// (the causal part is the attention's own). Returns (B, T, H).
    public func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let (queries, keys) = rotatedQueriesKeys(x, cos: cos, sin: sin)
        return outputProjection(cachedCausalAttention(queries: queries, keys: keys, values: valueProjection(x), heads: headCount,
                                                      keyValueHeads: keyValueHeadCount, mask: mask, cache: cache, layer: layer, scale: scale))
    }

    /// The same on a shared-prompt layout (1, N, H) (see `SharedPrefixLayout`); `window` (sliding
    /// layers) is added to each part's padding mask: in both parts a key's distance to its query is
    /// its index distance, as in the unshared rows.
    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, shared: SharedPrefixLayout, window: Int?) -> Tensor {
        let (queries, keys) = rotatedQueriesKeys(x, cos: cos, sin: sin)
        let out = shared.attend(queries, keys, valueProjection(x)) { q, k, v, mask in
            let windowed = window.map { Gemma3Model.slidingMask(base: mask, batch: q.shape[0], queries: q.shape[1], keys: k.shape[1], window: $0) } ?? mask
            return causalAttention(queries: q, keys: k, values: v, heads: headCount, keyValueHeads: keyValueHeadCount, mask: windowed, scale: scale)
        }
        return outputProjection(out)
    }
}

/// The GeGLU feed-forward block: down(gelu_tanh(gate(x)) ⊙ up(x)), H → I → H.
public final class Gemma3MLP: Module {
    /// Checkpoint key `gate_proj`.
    @Key public var gate: any LinearLayer
    /// Checkpoint key `up_proj`.
    @Key public var up: any LinearLayer
    /// Checkpoint key `down_proj`.
    @Key public var down: any LinearLayer

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _gate = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.intermediateSize, bias: false, using: &rng), "gate_proj")
        _up = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.intermediateSize, bias: false, using: &rng), "up_proj")
        _down = Key(wrappedValue: Linear(inputCount: c.intermediateSize, outputCount: c.hiddenSize, bias: false, using: &rng), "down_proj")
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { down(gate(x).gelu(approximate: true) * up(x)) }
}

/// One decoder block with sandwich norms (a norm before and after each of attention and MLP).
public final class Gemma3Block: Module {
    /// Checkpoint key `self_attn`.
    @Key public var attention: Gemma3Attention
    public let mlp: Gemma3MLP
    /// Checkpoint key `input_layernorm`: before attention.
    @Key public var inputNorm: Gemma3RMSNorm
    /// Checkpoint key `post_attention_layernorm`: on the attention output, before the residual add.
    @Key public var postAttentionNorm: Gemma3RMSNorm
    /// Checkpoint key `pre_feedforward_layernorm`: before the MLP.
    @Key public var preFeedForwardNorm: Gemma3RMSNorm
    /// Checkpoint key `post_feedforward_layernorm`: on the MLP output, before the residual add.
    @Key public var postFeedForwardNorm: Gemma3RMSNorm
    /// Whether this is a sliding-window (local) layer.
    public let isSliding: Bool

    public init(_ c: TransformerConfiguration, sliding: Bool, rng: inout RandomGenerator) {
        isSliding = sliding
        _attention = Key(wrappedValue: Gemma3Attention(c, rng: &rng), "self_attn")
        mlp = Gemma3MLP(c, rng: &rng)
        let h = c.hiddenSize, eps = c.normEpsilon
        _inputNorm = Key(wrappedValue: Gemma3RMSNorm(dimensions: h, eps: eps), "input_layernorm")
        _postAttentionNorm = Key(wrappedValue: Gemma3RMSNorm(dimensions: h, eps: eps), "post_attention_layernorm")
        _preFeedForwardNorm = Key(wrappedValue: Gemma3RMSNorm(dimensions: h, eps: eps), "pre_feedforward_layernorm")
        _postFeedForwardNorm = Key(wrappedValue: Gemma3RMSNorm(dimensions: h, eps: eps), "post_feedforward_layernorm")
    }

    public func callAsFunction(_ h: Tensor, cos: Tensor, sin: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let h1 = h + postAttentionNorm(attention(inputNorm(h), cos: cos, sin: sin, mask: mask, cache: cache, layer: layer))
        return h1 + postFeedForwardNorm(mlp(preFeedForwardNorm(h1)))
    }

    func callAsFunction(_ h: Tensor, cos: Tensor, sin: Tensor, shared: SharedPrefixLayout, window: Int) -> Tensor {
        let h1 = h + postAttentionNorm(attention(inputNorm(h), cos: cos, sin: sin, shared: shared, window: isSliding ? window : nil))
        return h1 + postFeedForwardNorm(mlp(preFeedForwardNorm(h1)))
    }
}

/// The decoder trunk (`model.*` keys).
public final class Gemma3Backbone: Module {
    /// Checkpoint key `embed_tokens` (V × H; scaled by √H when read, not when used as the tied head).
    @Key public var embedding: Embedding
    public let layers: [Gemma3Block]
    public let norm: Gemma3RMSNorm

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _embedding = Key(wrappedValue: Embedding(count: c.vocabularySize, dimensions: c.hiddenSize, using: &rng), "embed_tokens")
        layers = (0..<c.layerCount).map { i in Gemma3Block(c, sliding: c.slidingLayers.indices.contains(i) && c.slidingLayers[i], rng: &rng) }
        norm = Gemma3RMSNorm(dimensions: c.hiddenSize, eps: c.normEpsilon)
    }
}

/// A Gemma 3 text causal language model (`Gemma3ForCausalLM`).
public final class Gemma3Model: Module, CausalLanguageModel {
    public let configuration: TransformerConfiguration
    public let model: Gemma3Backbone
    /// The output projection; nil when tied to the embedding (Gemma's default).
    @Key("lm_head") public var head: Linear? = nil
    /// Activation checkpointing (transformers' `gradient_checkpointing`): each decoder block keeps
    /// only its input during a training forward and is recomputed in backward (`decoderBlock`).
    public var gradientCheckpointing = false

    public init(_ c: TransformerConfiguration, seed: UInt64 = 0) {
        precondition(c.family == .gemma3, "Gemma3Model: a \(c.family.rawValue) configuration")
        configuration = c
        var rng = RandomGenerator(seed: seed)
        model = Gemma3Backbone(c, rng: &rng)
        super.init()
        if !c.tieWordEmbeddings {
            _head = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.vocabularySize, bias: false, using: &rng), "lm_head")
        }
    }

    /// √H rounded to Float, as transformers' `embed_scale.to(weight.dtype)`.
    var embeddingScale: Float { Float(Double(configuration.hiddenSize).squareRoot()) }

    /// The sliding layers' additive mask: the batch's own mask (`base`, B·S or B·T·S values, nil for
    /// none) plus `maskedScore` on keys at or beyond `window` before their query. Query i of the T new
    /// tokens sits at key index S − T + i (cache rows count, padding included, as transformers' cache
    /// indices do). nil when the window hides nothing (S ≤ window) and there is no base mask.
    static func slidingMask(base: Tensor?, batch b: Int, queries t: Int, keys s: Int, window: Int) -> Tensor? {
        guard s > window else { return base }
        let mask = Tensor(repeating: 0, shape: [b, 1, t, s])
        let perQuery = base.map { $0.count == b * t * s } ?? false
        for r in 0..<b {
            for i in 0..<t {
                let row = mask.data + (r * t + i) * s, query = s - t + i
                if let base {
                    row.update(from: base.data + (perQuery ? (r * t + i) * s : r * s), count: s)
                }
                for j in 0..<Swift.max(0, query - window + 1) { row[j] += maskedScore }
            }
        }
        return mask
    }

    /// Final hidden states (after the last norm) and, when asked, transformers' `hidden_states`
    /// (the scaled embeddings, each layer's output but the last, then the final normed states).
    public func hiddenStates(_ input: TokenBatch, collect: Bool = false, cache: KVCache? = nil) -> (last: Tensor, all: [Tensor]) {
        let c = configuration, (b, t) = (input.batchSize, input.length)
        let global = rotaryTables(positions: input.positions, dimension: c.headDimension, theta: c.ropeTheta, linearScaling: c.ropeScalingFactor)
        let local = rotaryTables(positions: input.positions, dimension: c.headDimension, theta: c.localRopeTheta, linearScaling: c.localRopeScalingFactor)
        let fullMask = input.attentionBias
        let keys = (cache?.length ?? 0) + t
        let windowMask = c.slidingLayers.contains(true)
            ? Self.slidingMask(base: fullMask, batch: b, queries: t, keys: keys, window: c.slidingWindow) : nil
        return decoderHiddenStates(model.embedding(input.ids.flatMap { $0 }, shape: [b, t]) * embeddingScale,
                                   layerCount: model.layers.count, collect: collect,
                                   block: { i, h in
                                       let layer = model.layers[i], (cos, sin) = layer.isSliding ? local : global
                                       let mask = layer.isSliding ? windowMask : fullMask
                                       return decoderBlock(layer, h, cached: cache != nil) { layer($0, cos: cos, sin: sin, mask: mask, cache: cache, layer: i) }
                                   },
                                   norm: { model.norm($0) })
    }

    public func finalHiddenStates(_ input: TokenBatch, cache: KVCache?) -> Tensor { hiddenStates(input, cache: cache).last }

    /// Prefix sharing: prompts and later tokens run as one (1, N, H) sequence through the per-token
    /// layers and split only inside attention, the window added to the sliding layers' masks.
    public func finalHiddenStates(_ input: TokenBatch, sharing: SharedPrefixes, keepingLast k: Int) -> Tensor? {
        let c = configuration
        return sharing.keptHiddenStates(input, keepingLast: k) { ids, positions, layout in
            let global = rotaryTables(positions: [positions], dimension: c.headDimension, theta: c.ropeTheta, linearScaling: c.ropeScalingFactor)
            let local = rotaryTables(positions: [positions], dimension: c.headDimension, theta: c.localRopeTheta, linearScaling: c.localRopeScalingFactor)
            var h = model.embedding(ids, shape: [1, ids.count]) * embeddingScale
            for layer in model.layers {
                let (cos, sin) = layer.isSliding ? local : global
                h = decoderBlock(layer, h, cached: false) { layer($0, cos: cos, sin: sin, shared: layout, window: c.slidingWindow) }
            }
            return model.norm(h)
        }
    }

    /// The language-model head on hidden states (tied: hidden · embeddingᵀ, unscaled), soft-capped
    /// when the configuration says so.
    public var plainHeadWeight: Tensor? {
        guard configuration.finalLogitSoftcap == nil else { return nil }
        guard let head else { return model.embedding.weight }
        return head.bias == nil ? head.weight : nil
    }

    public func logits(_ hidden: Tensor) -> Tensor {
        let raw = head.map { $0(hidden) } ?? linear(hidden, weight: model.embedding.weight, bias: nil)
        guard let cap = configuration.finalLogitSoftcap else { return raw }
        return (raw / cap).tanh() * cap
    }
}

extension Gemma3Attention: LoRAAdaptable {
    public var adaptableLayers: [String: ReferenceWritableKeyPath<Gemma3Attention, any LinearLayer>] {
        ["q_proj": \.queryProjection, "k_proj": \.keyProjection, "v_proj": \.valueProjection, "o_proj": \.outputProjection]
    }
}

extension Gemma3MLP: LoRAAdaptable {
    public var adaptableLayers: [String: ReferenceWritableKeyPath<Gemma3MLP, any LinearLayer>] {
        ["gate_proj": \.gate, "up_proj": \.up, "down_proj": \.down]
    }
}
