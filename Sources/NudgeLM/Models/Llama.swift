// The Llama family (Llama 2/3, Qwen2, Qwen3, Mistral-style): pre-norm decoder blocks with RMSNorm,
// rotary position embeddings (Su et al. 2021; HF's rotate-half layout), grouped-query attention,
// SwiGLU MLPs (Shazeer 2020), optional q/k/v biases (Qwen2), optional per-head RMSNorm of queries and
// keys before RoPE (Qwen3's q_norm/k_norm, with a head size decoupled from hidden/heads) and tied or
// untied embeddings. Parameter keys are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`),
// so checkpoints load strictly.
//
// Shapes: B batch, T tokens, H hidden, nH heads, nKV key-value heads, d head dimension. Activations
// stay token-major (B, T, heads·d) throughout; `causalAttention` reads each head in place.

import Foundation
import NudgeNN
import NudgeTensor

/// Rotary angle tables for given positions: cos and sin of shape (B, T, d/2), one row per token,
/// at frequencies θ^(−2i/d) (`rotaryEmbedding` applies them to both halves, HF's layout), divided by
/// `linearScaling` (HF's "linear" rope type; Gemma 3's global layers).
func rotaryTables(
    positions: [[Int]], dimension d: Int, theta: Float, linearScaling: Float = 1, divisors: [Float]? = nil
) -> (cos: Tensor, sin: Tensor) {
    let b = positions.count, t = positions.first?.count ?? 0
    let half = d / 2
    let cos = Tensor(uninitializedShape: [b, t, half]), sin = Tensor(uninitializedShape: [b, t, half])
    // Rounded to Float as HF's float32 inv_freq is; the angle itself in Double (< 1e-6 from HF here).
    // `divisors`: Llama 3.1's per-frequency scaling (llama.cpp's rope_freqs), one per frequency.
    let inverseFrequencies = (0..<half).map { i in
        Double(Float(1 / Foundation.pow(Double(theta), Double(2 * i) / Double(d))) / linearScaling / (divisors?[i] ?? 1))
    }
    for (r, row) in positions.enumerated() {
        for (j, p) in row.enumerated() {
            let base = (r * t + j) * half
            for i in 0..<half {
                let angle = Double(p) * inverseFrequencies[i]
                cos.data[base + i] = Float(Foundation.cos(angle))
                sin.data[base + i] = Float(Foundation.sin(angle))
            }
        }
    }
    return (cos, sin)
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
    /// Checkpoint key `q_norm`: RMSNorm over each query head's d values before RoPE (Qwen3); nil otherwise.
    @Key("q_norm") public var queryNorm: RMSNorm? = nil
    /// Checkpoint key `k_norm`: the same for each key head.
    @Key("k_norm") public var keyNorm: RMSNorm? = nil
    public let headCount: Int
    public let keyValueHeadCount: Int
    public let headDimension: Int

    /// - Parameter prebuilt: projections already made, by key (`q_proj`, …), used instead of new
    ///   randomly initialized ones (see `LlamaModel.init(_:seed:projections:)`).
    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator, prebuilt: [String: any LinearLayer] = [:]) {
        headCount = c.headCount
        keyValueHeadCount = c.keyValueHeadCount
        headDimension = c.headDimension
        let h = c.hiddenSize, q = c.headCount * c.headDimension, kv = c.keyValueHeadCount * c.headDimension
        func make(_ key: String, _ input: Int, _ output: Int, _ bias: Bool) -> Key<any LinearLayer> {
            Key(wrappedValue: prebuilt[key] ?? Linear(inputCount: input, outputCount: output, bias: bias, using: &rng), key)
        }
        _queryProjection = make("q_proj", h, q, c.attentionBias)
        _keyProjection = make("k_proj", h, kv, c.attentionBias)
        _valueProjection = make("v_proj", h, kv, c.attentionBias)
        _outputProjection = make("o_proj", q, h, c.outputProjectionBias)
        if c.queryKeyNorm {
            _queryNorm = Key(wrappedValue: RMSNorm(dimensions: c.headDimension, eps: c.normEpsilon), "q_norm")
            _keyNorm = Key(wrappedValue: RMSNorm(dimensions: c.headDimension, eps: c.normEpsilon), "k_norm")
        }
    }

    /// Rotated queries and keys (B, T, heads·d) of `x`, each head RMS-normalized first where the
    /// family does (Qwen3: `q_norm(q_proj(x).view(…, heads, d))`, then RoPE).
    func rotatedQueriesKeys(_ x: Tensor, cos: Tensor, sin: Tensor) -> (Tensor, Tensor) {
        func perHead(_ y: Tensor, _ norm: RMSNorm?) -> Tensor {
            guard let norm else { return y }
            let shape = y.shape
            return norm(y.reshaped(Array(shape.dropLast()) + [-1, headDimension])).reshaped(shape)
        }
        return (rotaryEmbedding(perHead(queryProjection(x), queryNorm), cos: cos, sin: sin, heads: headCount),
                rotaryEmbedding(perHead(keyProjection(x), keyNorm), cos: cos, sin: sin, heads: keyValueHeadCount))
    }

    /// x: (B, T, H); mask: additive, B·S or B·T·S values (see `causalAttention`); returns (B, T, H).
    public func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let (q, k) = rotatedQueriesKeys(x, cos: cos, sin: sin)
        return outputProjection(cachedCausalAttention(queries: q, keys: k, values: valueProjection(x), heads: headCount,
                                                      keyValueHeads: keyValueHeadCount, mask: mask, cache: cache, layer: layer))
    }

    /// The same on a shared-prompt layout (1, N, H) (see `SharedPrefixLayout`).
    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, shared: SharedPrefixLayout) -> Tensor {
        let (q, k) = rotatedQueriesKeys(x, cos: cos, sin: sin)
        let out = shared.attend(q, k, valueProjection(x)) { q, k, v, mask in
            causalAttention(queries: q, keys: k, values: v, heads: headCount, keyValueHeads: keyValueHeadCount, mask: mask)
        }
        return outputProjection(out)
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

    /// - Parameter prebuilt: projections already made, by key (`gate_proj`, …), used instead of new
    ///   randomly initialized ones.
    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator, prebuilt: [String: any LinearLayer] = [:]) {
        func make(_ key: String, _ input: Int, _ output: Int) -> Key<any LinearLayer> {
            Key(wrappedValue: prebuilt[key] ?? Linear(inputCount: input, outputCount: output, bias: c.mlpBias, using: &rng), key)
        }
        _gate = make("gate_proj", c.hiddenSize, c.intermediateSize)
        _up = make("up_proj", c.hiddenSize, c.intermediateSize)
        _down = make("down_proj", c.intermediateSize, c.hiddenSize)
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

    /// - Parameter prebuilt: projections already made, by path below the block (`self_attn.q_proj`, `mlp.up_proj`, …).
    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator, prebuilt: [String: any LinearLayer] = [:]) {
        func below(_ prefix: String) -> [String: any LinearLayer] {
            Dictionary(uniqueKeysWithValues: prebuilt.compactMap { $0.hasPrefix(prefix) ? (String($0.dropFirst(prefix.count)), $1) : nil })
        }
        _attention = Key(wrappedValue: LlamaAttention(c, rng: &rng, prebuilt: below("self_attn.")), "self_attn")
        mlp = LlamaMLP(c, rng: &rng, prebuilt: below("mlp."))
        _inputNorm = Key(wrappedValue: RMSNorm(dimensions: c.hiddenSize, eps: c.normEpsilon), "input_layernorm")
        _postAttentionNorm = Key(wrappedValue: RMSNorm(dimensions: c.hiddenSize, eps: c.normEpsilon), "post_attention_layernorm")
    }

    public func callAsFunction(_ h: Tensor, cos: Tensor, sin: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let h1 = h + attention(inputNorm(h), cos: cos, sin: sin, mask: mask, cache: cache, layer: layer)
        return h1 + mlp(postAttentionNorm(h1))
    }

    func callAsFunction(_ h: Tensor, cos: Tensor, sin: Tensor, shared: SharedPrefixLayout) -> Tensor {
        let h1 = h + attention(inputNorm(h), cos: cos, sin: sin, shared: shared)
        return h1 + mlp(postAttentionNorm(h1))
    }
}

/// The decoder trunk (`model.*` keys).
public final class LlamaBackbone: Module {
    /// Checkpoint key `embed_tokens`.
    @Key public var embedding: Embedding
    public let layers: [LlamaBlock]
    public let norm: RMSNorm

    /// - Parameter prebuilt: projections already made, by path below the backbone (`layers.0.self_attn.q_proj`, …).
    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator, prebuilt: [String: any LinearLayer] = [:]) {
        _embedding = Key(wrappedValue: Embedding(count: c.vocabularySize, dimensions: c.hiddenSize, using: &rng), "embed_tokens")
        var byLayer = [[String: any LinearLayer]](repeating: [:], count: c.layerCount)
        for (path, layer) in prebuilt {
            let parts = path.split(separator: ".", maxSplits: 2)
            guard parts.count == 3, parts[0] == "layers", let i = Int(parts[1]), byLayer.indices.contains(i) else { continue }
            byLayer[i][String(parts[2])] = layer
        }
        layers = (0..<c.layerCount).map { LlamaBlock(c, rng: &rng, prebuilt: byLayer[$0]) }
        norm = RMSNorm(dimensions: c.hiddenSize, eps: c.normEpsilon)
    }
}

/// A Llama-family causal language model (`LlamaForCausalLM`, `Qwen2ForCausalLM`, `Qwen3ForCausalLM`).
public final class LlamaModel: Module, CausalLanguageModel {
    public let configuration: TransformerConfiguration
    public let model: LlamaBackbone
    /// The output projection; nil when tied to the embedding.
    @Key("lm_head") public var head: Linear? = nil
    /// Activation checkpointing (transformers' `gradient_checkpointing`): each decoder block keeps
    /// only its input during a training forward and is recomputed in backward (`decoderBlock`).
    public var gradientCheckpointing = false

    /// A model with randomly initialized weights drawn from `seed`, except the attention and MLP
    /// projections given in `projections` by module path (`model.layers.0.self_attn.q_proj`, …),
    /// which are used as they are: a loader that makes them (e.g. quantized from a file, one at a
    /// time) never allocates their Float32 random weights. Their shapes must be the configuration's.
    public init(_ c: TransformerConfiguration, seed: UInt64 = 0, projections: [String: any LinearLayer] = [:]) {
        configuration = c
        var rng = RandomGenerator(seed: seed)
        model = LlamaBackbone(c, rng: &rng, prebuilt: Dictionary(uniqueKeysWithValues: projections.compactMap {
            $0.hasPrefix("model.") ? (String($0.dropFirst("model.".count)), $1) : nil
        }))
        super.init()
        if !c.tieWordEmbeddings {
            _head = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.vocabularySize, bias: false, using: &rng), "lm_head")
        }
    }

    /// The attention and MLP projections a model of configuration `c` has: module path, weight shape
    /// (outputs, inputs) and whether it has a bias — what `projections` may supply.
    public static func projectionShapes(_ c: TransformerConfiguration) -> [(path: String, outputs: Int, inputs: Int, bias: Bool)] {
        let h = c.hiddenSize, q = c.headCount * c.headDimension, kv = c.keyValueHeadCount * c.headDimension, f = c.intermediateSize
        return (0..<c.layerCount).flatMap { i -> [(path: String, outputs: Int, inputs: Int, bias: Bool)] in
            let p = "model.layers.\(i)."
            return [(p + "self_attn.q_proj", q, h, c.attentionBias), (p + "self_attn.k_proj", kv, h, c.attentionBias),
                    (p + "self_attn.v_proj", kv, h, c.attentionBias), (p + "self_attn.o_proj", h, q, c.outputProjectionBias),
                    (p + "mlp.gate_proj", f, h, c.mlpBias), (p + "mlp.up_proj", f, h, c.mlpBias), (p + "mlp.down_proj", h, f, c.mlpBias)]
        }
    }

    /// Final hidden states (after the last norm) and, when asked, every layer's input.
    public func hiddenStates(_ input: TokenBatch, collect: Bool = false, cache: KVCache? = nil) -> (last: Tensor, all: [Tensor]) {
        let (cos, sin) = rotaryTables(positions: input.positions, dimension: configuration.headDimension, theta: configuration.ropeTheta, divisors: configuration.ropeFrequencyDivisors)
        let mask = input.attentionBias
        return decoderHiddenStates(model.embedding(input.ids.flatMap { $0 }, shape: [input.batchSize, input.length]),
                                   layerCount: model.layers.count, collect: collect,
                                   block: { i, h in
                                       let layer = model.layers[i]
                                       return decoderBlock(layer, h, cached: cache != nil) { layer($0, cos: cos, sin: sin, mask: mask, cache: cache, layer: i) }
                                   },
                                   norm: { model.norm($0) })
    }

    public func finalHiddenStates(_ input: TokenBatch, cache: KVCache?) -> Tensor { hiddenStates(input, cache: cache).last }

    /// Prefix sharing: prompts and later tokens run as one (1, N, H) sequence of tokens through
    /// the per-token layers, so every product covers both, and split only inside attention.
    public func finalHiddenStates(_ input: TokenBatch, sharing: SharedPrefixes, keepingLast k: Int) -> Tensor? {
        sharing.keptHiddenStates(input, keepingLast: k) { ids, positions, layout in
            let (cos, sin) = rotaryTables(positions: [positions], dimension: configuration.headDimension, theta: configuration.ropeTheta, divisors: configuration.ropeFrequencyDivisors)
            var h = model.embedding(ids, shape: [1, ids.count])
            for layer in model.layers { h = decoderBlock(layer, h, cached: false) { layer($0, cos: cos, sin: sin, shared: layout) } }
            return model.norm(h)
        }
    }

    /// The language-model head on hidden states (tied: hidden · embeddingᵀ).
    public var plainHeadWeight: Tensor? {
        guard let head else { return model.embedding.weight }
        return head.bias == nil ? head.weight : nil
    }

    public func logits(_ hidden: Tensor) -> Tensor {
        if let head { return head(hidden) }
        return linear(hidden, weight: model.embedding.weight, bias: nil)
    }
}
