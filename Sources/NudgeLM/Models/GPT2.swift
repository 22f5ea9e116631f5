// GPT-2 (Radford et al. 2019) as Hugging Face's GPT2LMHeadModel: learned positions, pre-norm
// blocks with LayerNorm, fused q/k/v projection, gelu_new MLP, biases everywhere, and the output
// head tied to the token embedding. HF stores the projections as Conv1D (in × out); the loader's
// `sanitize` transposes them into Linear's (out × in) once, and `save` transposes them back.

import Foundation
import NudgeNN
import NudgeTensor

/// One GPT-2 attention layer (`attn.c_attn`, `attn.c_proj`).
public final class GPT2Attention: Module {
    /// Checkpoint key `c_attn`.
    @Key public var qkv: any LinearLayer
    /// Checkpoint key `c_proj`.
    @Key public var projection: any LinearLayer
    public let headCount: Int

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        headCount = c.headCount
        _qkv = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: 3 * c.hiddenSize, using: &rng), "c_attn")
        _projection = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.hiddenSize, using: &rng), "c_proj")
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let h = x.shape[2]
        let fused = qkv(x)  // (B, T, 3H)
        let q = fused.slice(axis: 2, 0..<h), k = fused.slice(axis: 2, h..<(2 * h)), v = fused.slice(axis: 2, (2 * h)..<(3 * h))
        return projection(cachedCausalAttention(queries: q, keys: k, values: v, heads: headCount, keyValueHeads: headCount, mask: mask,
                                                cache: cache, layer: layer))
    }

    /// The same on a shared-prompt layout (1, N, H) (see `SharedPrefixLayout`).
    func callAsFunction(_ x: Tensor, shared: SharedPrefixLayout) -> Tensor {
        let h = x.shape[2]
        let fused = qkv(x)
        let out = shared.attend(fused.slice(axis: 2, 0..<h), fused.slice(axis: 2, h..<(2 * h)), fused.slice(axis: 2, (2 * h)..<(3 * h))) {
            q, k, v, mask in causalAttention(queries: q, keys: k, values: v, heads: headCount, keyValueHeads: headCount, mask: mask)
        }
        return projection(out)
    }
}

/// The GPT-2 MLP (`mlp.c_fc`, `mlp.c_proj`).
public final class GPT2MLP: Module {
    /// Checkpoint key `c_fc`.
    @Key public var expand: any LinearLayer
    /// Checkpoint key `c_proj`.
    @Key public var projection: any LinearLayer
    public let approximateGELU: Bool

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _expand = Key(wrappedValue: Linear(inputCount: c.hiddenSize, outputCount: c.intermediateSize, using: &rng), "c_fc")
        _projection = Key(wrappedValue: Linear(inputCount: c.intermediateSize, outputCount: c.hiddenSize, using: &rng), "c_proj")
        approximateGELU = c.activation != "gelu"
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { projection(expand(x).gelu(approximate: approximateGELU)) }
}

/// One GPT-2 block (`h.{i}`).
public final class GPT2Block: Module {
    /// Checkpoint key `ln_1`.
    @Key public var attentionNorm: LayerNorm
    /// Checkpoint key `attn`.
    @Key public var attention: GPT2Attention
    /// Checkpoint key `ln_2`.
    @Key public var mlpNorm: LayerNorm
    public let mlp: GPT2MLP

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _attentionNorm = Key(wrappedValue: LayerNorm(dimensions: c.hiddenSize, eps: c.normEpsilon), "ln_1")
        _attention = Key(wrappedValue: GPT2Attention(c, rng: &rng), "attn")
        _mlpNorm = Key(wrappedValue: LayerNorm(dimensions: c.hiddenSize, eps: c.normEpsilon), "ln_2")
        mlp = GPT2MLP(c, rng: &rng)
    }

    public func callAsFunction(_ h: Tensor, mask: Tensor?, cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let h1 = h + attention(attentionNorm(h), mask: mask, cache: cache, layer: layer)
        return h1 + mlp(mlpNorm(h1))
    }

    func callAsFunction(_ h: Tensor, shared: SharedPrefixLayout) -> Tensor {
        let h1 = h + attention(attentionNorm(h), shared: shared)
        return h1 + mlp(mlpNorm(h1))
    }
}

/// The GPT-2 trunk (`transformer.*`).
public final class GPT2Backbone: Module {
    /// Checkpoint key `wte`.
    @Key public var tokenEmbedding: Embedding
    /// Checkpoint key `wpe`.
    @Key public var positionEmbedding: Embedding
    /// Checkpoint key `h`.
    @Key public var layers: [GPT2Block]
    /// Checkpoint key `ln_f`.
    @Key public var finalNorm: LayerNorm

    public init(_ c: TransformerConfiguration, rng: inout RandomGenerator) {
        _tokenEmbedding = Key(wrappedValue: Embedding(count: c.vocabularySize, dimensions: c.hiddenSize, using: &rng), "wte")
        _positionEmbedding = Key(wrappedValue: Embedding(count: c.maxPositions, dimensions: c.hiddenSize, using: &rng), "wpe")
        _layers = Key(wrappedValue: (0..<c.layerCount).map { _ in GPT2Block(c, rng: &rng) }, "h")
        _finalNorm = Key(wrappedValue: LayerNorm(dimensions: c.hiddenSize, eps: c.normEpsilon), "ln_f")
    }
}

/// GPT2LMHeadModel with the head tied to `wte`.
public final class GPT2Model: Module, CausalLanguageModel {
    public let configuration: TransformerConfiguration
    public let transformer: GPT2Backbone
    /// Activation checkpointing (transformers' `gradient_checkpointing`): each decoder block keeps
    /// only its input during a training forward and is recomputed in backward (`decoderBlock`).
    public var gradientCheckpointing = false

    public init(_ c: TransformerConfiguration, seed: UInt64 = 0) {
        configuration = c
        var rng = RandomGenerator(seed: seed)
        transformer = GPT2Backbone(c, rng: &rng)
    }

    /// A GPT-2 for `c` (an untied head is not supported: GPT-2 always ties it).
    static func make(_ c: TransformerConfiguration) throws -> GPT2Model {
        guard c.tieWordEmbeddings else {
            throw ModelLoadError.unsupported(file: "config.json", field: "tie_word_embeddings", value: "false")
        }
        return GPT2Model(c)
    }

    /// Whether a checkpoint key is one of GPT-2's Conv1D weights (stored in × out).
    static func isConv1D(_ key: String) -> Bool {
        key.hasSuffix("attn.c_attn.weight") || key.hasSuffix("attn.c_proj.weight") || key.hasSuffix("mlp.c_fc.weight")
            || key.hasSuffix("mlp.c_proj.weight")
    }

    public func hiddenStates(_ input: TokenBatch, collect: Bool = false, cache: KVCache? = nil) -> (last: Tensor, all: [Tensor]) {
        let mask = input.attentionBias
        let (b, t) = (input.batchSize, input.length)
        let h = transformer.tokenEmbedding(input.ids.flatMap { $0 }, shape: [b, t])
            + transformer.positionEmbedding(input.positions.flatMap { $0 }, shape: [b, t])
        return decoderHiddenStates(h, layerCount: transformer.layers.count, collect: collect,
                                   block: { i, h in
                                       let layer = transformer.layers[i]
                                       return decoderBlock(layer, h, cached: cache != nil) { layer($0, mask: mask, cache: cache, layer: i) }
                                   },
                                   norm: { transformer.finalNorm($0) })
    }

    /// The tied head: hidden · embeddingᵀ.
    public func logits(_ hidden: Tensor) -> Tensor { linear(hidden, weight: transformer.tokenEmbedding.weight, bias: nil) }
    public var plainHeadWeight: Tensor? { transformer.tokenEmbedding.weight }

    public func finalHiddenStates(_ input: TokenBatch, cache: KVCache?) -> Tensor { hiddenStates(input, cache: cache).last }

    /// Prefix sharing (see `SharedPrefixes`): prompts and later tokens as one (1, N, H) sequence.
    public func finalHiddenStates(_ input: TokenBatch, sharing: SharedPrefixes, keepingLast k: Int) -> Tensor? {
        sharing.keptHiddenStates(input, keepingLast: k) { ids, positions, layout in
            var h = transformer.tokenEmbedding(ids, shape: [1, ids.count]) + transformer.positionEmbedding(positions, shape: [1, ids.count])
            for layer in transformer.layers { h = decoderBlock(layer, h, cached: false) { layer($0, shared: layout) } }
            return transformer.finalNorm(h)
        }
    }
}
