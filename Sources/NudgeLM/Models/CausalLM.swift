// What every causal language model offers the trainers: token batches with padding masks and
// position ids, logits, and loading/saving Hugging Face directories with strict key checking.

import Foundation
import NudgeNN
import NudgeTensor

/// A batch of token sequences of equal length (padded), with position ids and an optional mask.
public struct TokenBatch: Sendable {
    public var ids: [[Int]]
    /// Position of each token (0-based); for left padding, count from the first real token.
    public var positions: [[Int]]
    /// false where a token is padding (nil: none is).
    public var attentionMask: [[Bool]]?
    /// Packed rows: the 1-based example (segment) of each token, 0 for padding (nil: unpacked).
    /// A token then attends only to earlier tokens of its own segment.
    public var segments: [[Int]]?

    public init(ids: [[Int]], attentionMask: [[Bool]]? = nil) {
        self.ids = ids
        self.attentionMask = attentionMask
        positions = ids.enumerated().map { r, row in
            guard let mask = attentionMask?[r] else { return Array(0..<row.count) }
            // A real token's position counts the real tokens before it; padding gets 0 (masked anyway).
            var seen = 0
            return mask.map { valid in
                guard valid else { return 0 }
                defer { seen += 1 }
                return seen
            }
        }
    }

    /// A batch with explicit positions (decoding with a cache); `attentionMask` then covers every
    /// key, cached ones included.
    public init(ids: [[Int]], positions: [[Int]], attentionMask: [[Bool]]?) {
        self.ids = ids
        self.positions = positions
        self.attentionMask = attentionMask
    }

    /// Packed rows: several examples per row, each with its own positions (restarting at 0) and
    /// attention confined to its segment, so no example sees another.
    public init(ids: [[Int]], positions: [[Int]], segments: [[Int]]) {
        self.ids = ids
        self.positions = positions
        self.segments = segments
        attentionMask = segments.map { $0.map { $0 != 0 } }
    }

    public var batchSize: Int { ids.count }
    public var length: Int { ids.first?.count ?? 0 }

    /// The additive attention mask the models add to their scores: block-diagonal for packed rows,
    /// key padding otherwise (the causal part is added by the attention itself).
    public var attentionBias: Tensor? {
        if let segments { return segmentMask(segments) }
        return attentionMask.map { paddingMask($0) }
    }
}

/// Keys and values of earlier positions, per layer: token-major buffers (B, capacity, nKV·d) whose
/// first `length` rows are filled. New rows are written in place; a full buffer doubles.
public final class KVCache {
    public private(set) var keys: [Tensor?]
    public private(set) var values: [Tensor?]
    private var lengths: [Int]
    private let initialCapacity: Int

    /// A cache for `layers` layers; `capacity` positions are reserved on first use.
    public init(layers: Int, capacity: Int = 0) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
        lengths = Array(repeating: 0, count: layers)
        initialCapacity = capacity
    }

    /// Positions cached so far.
    public var length: Int { lengths.first ?? 0 }

    /// Appends this step's keys and values (B, T, nKV·d) for `layer`; returns the buffers and the
    /// number of filled rows.
    func append(layer: Int, keys k: Tensor, values v: Tensor) -> (Tensor, Tensor, Int) {
        let (b, t, width) = (k.shape[0], k.shape[1], k.shape[2])
        let used = lengths[layer]
        let capacity = keys[layer]?.shape[1] ?? 0
        if used + t > capacity {
            let grown = Swift.max(used + t, initialCapacity, 2 * capacity)
            keys[layer] = Self.resized(keys[layer], rows: used, capacity: grown, batch: b, width: width)
            values[layer] = Self.resized(values[layer], rows: used, capacity: grown, batch: b, width: width)
        }
        let keyBuffer = keys[layer]!, valueBuffer = values[layer]!
        let rowStride = keyBuffer.shape[1] * width
        for r in 0..<b {
            (keyBuffer.data + r * rowStride + used * width).update(from: k.data + r * t * width, count: t * width)
            (valueBuffer.data + r * rowStride + used * width).update(from: v.data + r * t * width, count: t * width)
        }
        lengths[layer] = used + t
        return (keyBuffer, valueBuffer, used + t)
    }

    /// A cache whose row i is a copy of this cache's row `rows[i]` (prompts prefilled once, then
    /// sampled several times), with the same capacity.
    public func selecting(rows: [Int]) -> KVCache {
        let copy = KVCache(layers: keys.count, capacity: initialCapacity)
        copy.lengths = lengths
        func select(_ buffer: Tensor?) -> Tensor? {
            guard let buffer else { return nil }
            let stride = buffer.shape[1] * buffer.shape[2], used = lengths.max() ?? 0
            let out = Tensor(uninitializedShape: [rows.count, buffer.shape[1], buffer.shape[2]])
            for (i, r) in rows.enumerated() {
                (out.data + i * stride).update(from: buffer.data + r * stride, count: used * buffer.shape[2])
            }
            return out
        }
        copy.keys = keys.map(select)
        copy.values = values.map(select)
        return copy
    }

    /// A (B, capacity, width) buffer holding the first `rows` rows of `old`.
    private static func resized(_ old: Tensor?, rows: Int, capacity: Int, batch: Int, width: Int) -> Tensor {
        let buffer = Tensor(uninitializedShape: [batch, capacity, width])
        if let old, rows > 0 {
            let oldStride = old.shape[1] * width
            for r in 0..<batch {
                (buffer.data + r * capacity * width).update(from: old.data + r * oldStride, count: rows * width)
            }
        }
        return buffer
    }
}

/// A decoder-only language model.
public protocol CausalLanguageModel: Module {
    var configuration: TransformerConfiguration { get }
    /// Logits (B, T, V) for a batch.
    func callAsFunction(_ input: TokenBatch) -> Tensor
    /// Hidden states after the final norm (B, T, H) for the batch's tokens, reading and extending
    /// `cache` when given (the batch's mask then covers cached and new keys).
    func finalHiddenStates(_ input: TokenBatch, cache: KVCache?) -> Tensor
    /// The language-model head on hidden states (…, H) → (…, V).
    func logits(_ hidden: Tensor) -> Tensor
    /// Final hidden states (B, k, H) of the last `k` positions of `input`, with each shared prompt
    /// computed once (see `SharedPrefixes`); positions before a row's last prompt token are zero.
    /// nil when the model does not implement prefix sharing.
    func finalHiddenStates(_ input: TokenBatch, sharing: SharedPrefixes, keepingLast k: Int) -> Tensor?
    /// The (V, H) weight when the head is exactly `hidden · weightᵀ` (no bias, no soft-capping), so
    /// log-probs can be computed without materializing the logits; nil otherwise.
    var plainHeadWeight: Tensor? { get }
    /// Activation checkpointing (transformers' `gradient_checkpointing`): during a training forward
    /// each decoder block keeps only its input and is recomputed in backward; gradients are unchanged.
    var gradientCheckpointing: Bool { get set }
}

extension CausalLanguageModel {
    public func finalHiddenStates(_ input: TokenBatch, sharing: SharedPrefixes, keepingLast k: Int) -> Tensor? { nil }
    public var plainHeadWeight: Tensor? { nil }

    /// Final hidden states (B, k, H) of the last `k` positions, each shared prompt computed once where
    /// the model implements it (see `logits(_:keepingLast:sharing:)`).
    public func finalHiddenStates(_ input: TokenBatch, keepingLast k: Int, sharing: SharedPrefixes?) -> Tensor {
        if let sharing, let hidden = finalHiddenStates(input, sharing: sharing, keepingLast: k) { return hidden }
        let hidden = finalHiddenStates(input, cache: nil)
        let t = input.length
        return k >= t ? hidden : hidden.slice(axis: 1, (t - k)..<t)
    }

    /// Hidden states after the final norm (B, T, H).
    public func finalHiddenStates(_ input: TokenBatch) -> Tensor { finalHiddenStates(input, cache: nil) }

    /// Logits (B, T, V): the head on the final hidden states.
    public func callAsFunction(_ input: TokenBatch) -> Tensor { logits(finalHiddenStates(input, cache: nil)) }

    /// Logits (B, T, V) for new tokens, reading and extending `cache`.
    public func forward(_ input: TokenBatch, cache: KVCache?) -> Tensor { logits(finalHiddenStates(input, cache: cache)) }
}

/// Causal grouped-query attention (B, T, heads·d) of the new tokens' queries, over their keys and
/// values appended first to `layer`'s entries of `cache` when there is one (so over every cached key).
func cachedCausalAttention(queries: Tensor, keys: Tensor, values: Tensor, heads: Int, keyValueHeads: Int, mask: Tensor?,
                           cache: KVCache?, layer: Int, scale: Float? = nil) -> Tensor {
    var (k, v, length): (Tensor, Tensor, Int?) = (keys, values, nil)
    if let cache { (k, v, length) = cache.append(layer: layer, keys: keys, values: values) }
    return causalAttention(queries: queries, keys: k, values: v, heads: heads, keyValueHeads: keyValueHeads, keyLength: length,
                           mask: mask, scale: scale)
}

extension CausalLanguageModel {
    /// A decoder block's forward `body(h)` (`layer` holds its parameters and dropout layers):
    /// checkpointed when `gradientCheckpointing` is on and no KV cache is read (a training forward).
    func decoderBlock(_ layer: Module, _ h: Tensor, cached: Bool, _ body: @escaping (Tensor) -> Tensor) -> Tensor {
        gradientCheckpointing && !cached ? layer.checkpointed(h, body) : body(h)
    }
}

/// A decoder's pass from its input embeddings `h`: `layerCount` blocks (`block(i, h)`), then the
/// final `norm`. Returns the final hidden states and, with `collect`, transformers' `hidden_states`:
/// the embeddings, every block's output but the last, then the final normed states.
func decoderHiddenStates(_ h: Tensor, layerCount: Int, collect: Bool, block: (Int, Tensor) -> Tensor, norm: (Tensor) -> Tensor)
    -> (last: Tensor, all: [Tensor])
{
    var h = h
    var all: [Tensor] = collect ? [h] : []
    for i in 0..<layerCount {
        h = block(i, h)
        if collect && i < layerCount - 1 { all.append(h) }
    }
    let last = norm(h)
    if collect { all.append(last) }
    return (last, all)
}

/// Rows of a batch that begin with the same prompt (GRPO's G samples of one prompt): the prompt's
/// keys and values are computed once and every row's later tokens attend to them. Row r holds prompt
/// `group[r]` in its first `lengths[group[r]]` tokens, all real; its later tokens continue the
/// positions and may end in right padding.
public struct SharedPrefixes: Sendable, Equatable {
    /// The prompt of each row.
    public var group: [Int]
    /// Each prompt's length.
    public var lengths: [Int]
    /// A row that holds each prompt.
    public var firstRow: [Int]

    /// Groups rows by equal prompts; nil when no prompt repeats (sharing would save nothing).
    public init?(prompts: [[Int]]) {
        var index: [[Int]: Int] = [:]
        group = []
        lengths = []
        firstRow = []
        for (r, p) in prompts.enumerated() {
            if let g = index[p] {
                group.append(g)
            } else {
                index[p] = lengths.count
                group.append(lengths.count)
                lengths.append(p.count)
                firstRow.append(r)
            }
        }
        if lengths.count == prompts.count || lengths.contains(0) { return nil }
    }

    /// The prompts left-padded to the longest (ids, mask), the rows' later tokens right-padded to
    /// the longest (ids, positions, mask) from a right-padded `input` whose rows hold their prompts.
    func split(_ input: TokenBatch) -> (prompts: TokenBatch, later: TokenBatch) {
        let padID = 0  // any valid id: padding is masked
        let t = input.length, p = lengths.max() ?? 0, c = t - (lengths.min() ?? 0)
        precondition(input.segments == nil && group.count == input.batchSize,
                     "SharedPrefixes: \(group.count) rows for a batch of \(input.batchSize)")
        let promptIDs = lengths.indices.map { g in
            Array(repeating: padID, count: p - lengths[g]) + input.ids[firstRow[g]].prefix(lengths[g])
        }
        let promptMask = lengths.map { Array(repeating: false, count: p - $0) + Array(repeating: true, count: $0) }
        var ids: [[Int]] = [], positions: [[Int]] = [], mask: [[Bool]] = []
        for (r, g) in group.enumerated() {
            let n = lengths[g], extra = c - (t - n)
            precondition(input.ids[r].prefix(n).elementsEqual(promptIDs[g].suffix(n)) && input.attentionMask.map { !$0[r].prefix(n).contains(false) } ?? true,
                         "SharedPrefixes: row \(r) does not begin with its prompt's \(n) real tokens")
            ids.append(Array(input.ids[r][n...]) + Array(repeating: padID, count: extra))
            positions.append(Array(input.positions[r][n...]) + Array(repeating: 0, count: extra))
            mask.append((input.attentionMask.map { Array($0[r][n...]) } ?? Array(repeating: true, count: t - n)) + Array(repeating: false, count: extra))
        }
        return (TokenBatch(ids: promptIDs, attentionMask: promptMask), TokenBatch(ids: ids, positions: positions, attentionMask: mask))
    }

    /// Final hidden states (B, k, H) of the last `k` positions of `input`, from `trunk`, which
    /// maps the joint layout's token ids and positions (N each) to final hidden states (1, N, H);
    /// nil when no row has tokens after its prompt.
    func keptHiddenStates(_ input: TokenBatch, keepingLast k: Int,
                          _ trunk: (_ ids: [Int], _ positions: [Int], _ layout: SharedPrefixLayout) -> Tensor) -> Tensor? {
        let (prompts, later) = split(input)
        guard later.length > 0 else { return nil }
        let layout = SharedPrefixLayout(group: group, promptMask: prompts.attentionMask!, laterMask: later.attentionMask!)
        let hidden = trunk(prompts.ids.flatMap { $0 } + later.ids.flatMap { $0 }, prompts.positions.flatMap { $0 } + later.positions.flatMap { $0 },
                           layout)
        let (n, width) = (layout.tokens, hidden.shape[2])
        let table = Tensor.concat([hidden.reshaped([n, width]), Tensor(repeating: 0, shape: [1, width])])
        return table.indexSelect(keptRows(length: input.length, keep: k), indexShape: [input.batchSize, k])
    }

    /// For the last `k` of `t` positions of each row, the row of the table [prompt tokens (U·P) |
    /// later tokens (B·C) | a zero row] that holds its hidden state: a prompt's last token, a later
    /// token, or the zero row for earlier prompt tokens.
    func keptRows(length t: Int, keep k: Int) -> [Int] {
        let p = lengths.max() ?? 0, c = t - (lengths.min() ?? 0)
        let later = lengths.count * p, zero = later + group.count * c
        return group.enumerated().flatMap { r, g in
            (0..<k).map { column in
                let position = t - k + column, n = lengths[g]
                if position == n - 1 { return g * p + p - 1 }
                return position >= n ? later + r * c + position - n : zero
            }
        }
    }
}

extension CausalLanguageModel {
    /// Logits (B, k, V) of the last `k` positions only (TRL's `logits_to_keep`): the head, and
    /// whatever is computed from the logits, skip positions that score no completion token.
    /// With `cache`, the batch's new tokens are read against it and appended (decoding keeps 1).
    public func logits(_ input: TokenBatch, keepingLast k: Int, cache: KVCache? = nil) -> Tensor {
        let hidden = finalHiddenStates(input, cache: cache)
        let t = input.length
        return logits(k >= t ? hidden : hidden.slice(axis: 1, (t - k)..<t))
    }

    /// The same with each shared prompt computed once where the model implements it (Llama and
    /// GPT-2 families); the logits of kept positions before a row's last prompt token are then 0, so `k`
    /// must start no later than the shortest prompt's last token, as `completionLogProbs` needs.
    public func logits(_ input: TokenBatch, keepingLast k: Int, sharing: SharedPrefixes?) -> Tensor {
        if let sharing, let hidden = finalHiddenStates(input, sharing: sharing, keepingLast: k) { return logits(hidden) }
        return logits(input, keepingLast: k)
    }
}

/// Loading and saving Hugging Face model directories.
public enum LanguageModelLoader {
    /// Reads `config.json` and the safetensors weights (single or sharded) into a new model.
    public static func load(directory: URL) throws -> any CausalLanguageModel {
        let config = try TransformerConfiguration.load(directory.appendingPathComponent("config.json"))
        let weights = try Checkpoint.load(directory)
        // Every parameter is then assigned (strictly), so the random fill would be thrown away.
        let model = try skippingRandomFill { try blank(config) }
        try model.update(parameters: sanitize(weights, for: config))
        // The freshly initialized weights just replaced would otherwise stay in the buffer
        // pool's free lists, as much memory again as the model.
        BufferPool.trim()
        return model
    }

    /// A model of `config`'s family and shapes with default-initialized parameters.
    static func blank(_ config: TransformerConfiguration) throws -> any CausalLanguageModel {
        switch config.family {
        case .llama, .qwen2, .qwen3, .mistral: LlamaModel(config)
        case .gpt2: try GPT2Model.make(config)
        case .gemma3: Gemma3Model(config)
        }
    }

    /// A frozen copy of `model` (same family and configuration, parameters copied): a reference
    /// policy when the policy itself is fully fine-tuned.
    public static func frozenCopy(of model: any CausalLanguageModel) throws -> any CausalLanguageModel {
        let copy = try skippingRandomFill { try blank(model.configuration) }
        try copy.update(parameters: model.parameters())
        copy.freeze()
        return copy
    }

    /// Per-family checkpoint quirks, applied in one place: a tied head stored anyway is dropped;
    /// GPT-2's Conv1D weights (stored in × out) are transposed to Linear's out × in.
    public static func sanitize(_ weights: NamedTensors, for config: TransformerConfiguration) -> NamedTensors {
        var out: [(String, Tensor)] = []
        for (key, tensor) in weights {
            if config.tieWordEmbeddings && key == "lm_head.weight" { continue }
            if config.family == .gpt2 {
                if key.hasSuffix(".attn.bias") || key.hasSuffix(".attn.masked_bias") { continue }  // causal-mask buffers
                let name = key.hasPrefix("transformer.") ? key : "transformer." + key
                if GPT2Model.isConv1D(name) && tensor.rank == 2 {
                    out.append((name, tensor.transposed()))
                    continue
                }
                out.append((name, tensor))
                continue
            }
            out.append((key, tensor))
        }
        return NamedTensors(out)
    }

    /// Writes `model.safetensors` (and the GPT-2 layout back) into `directory`.
    public static func save(_ model: any CausalLanguageModel, configJSON: Data, to directory: URL) throws {
        if let bad = model.firstNonFiniteParameter() {
            throw CheckpointError.invalid(path: directory.path, reason: "parameter \(bad.name) is \(bad.value); non-finite weights are never saved")
        }
        let c = model.configuration
        if c.ropeFrequencyDivisors != nil && c.llama3RopeScaling == nil {
            // A GGUF's rope_freqs that no Llama 3.x parameters reproduce: config.json could not say it.
            throw CheckpointError.invalid(
                path: directory.path,
                reason: "the model's RoPE frequency divisors (rope_freqs.weight) match no Llama 3 rope_scaling, so config.json cannot describe them; export it as GGUF instead")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Merged LoRA weights are made one at a time as the file is written: a QLoRA model never holds
        // a Float32 copy of all its projections, not even to save them.
        var makers: [(name: String, shape: [Int], make: () -> Tensor)] = []
        for (key, shape, make) in mergedLoRAParameterMakers(of: model) {
            if model.configuration.family == .gpt2 && GPT2Model.isConv1D(key) && shape.count == 2 {
                makers.append((key, shape.reversed(), { make().transposed() }))
            } else {
                makers.append((key, shape, make))
            }
        }
        try SafeTensors.write(computing: makers, metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
        try configJSON.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
    }
}

/// Attention over a joint token layout (1, N, ·), N = U·P prompt tokens then B·C later tokens:
/// prompts attend causally within themselves; each row's later tokens attend to its prompt's keys
/// (gathered, so their gradients flow back to the one shared copy) and causally to their own.
struct SharedPrefixLayout {
    let prompts: Int, promptLength: Int, rows: Int, laterLength: Int
    let group: [Int]
    /// Additive masks: (U, 1, 1, P) over prompt keys, (B, 1, 1, P + C) over a row's keys.
    let promptBias: Tensor, laterBias: Tensor

    /// `promptMask` (U, P) and `laterMask` (B, C) mark real tokens; row r extends prompt `group[r]`.
    init(group: [Int], promptMask: [[Bool]], laterMask: [[Bool]]) {
        prompts = promptMask.count
        promptLength = promptMask.first?.count ?? 0
        rows = laterMask.count
        laterLength = laterMask.first?.count ?? 0
        self.group = group
        promptBias = paddingMask(promptMask)
        laterBias = paddingMask(zip(group, laterMask).map { promptMask[$0] + $1 })
    }

    var tokens: Int { prompts * promptLength + rows * laterLength }

    /// `attention(queries, keys, values, mask)` on the prompt part and on the later part, joined
    /// back into the (1, N, width) layout.
    func attend(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ attention: (Tensor, Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        let split = prompts * promptLength
        func parts(_ x: Tensor) -> (Tensor, Tensor) {
            let w = x.shape[2]
            return (x.slice(axis: 1, 0..<split).reshaped([prompts, promptLength, w]),
                    x.slice(axis: 1, split..<tokens).reshaped([rows, laterLength, w]))
        }
        let (qp, ql) = parts(q), (kp, kl) = parts(k), (vp, vl) = parts(v)
        let promptOut = attention(qp, kp, vp, promptBias)
        let keys = Tensor.concat([kp.indexSelect(group), kl], axis: 1)
        let values = Tensor.concat([vp.indexSelect(group), vl], axis: 1)
        let laterOut = attention(ql, keys, values, laterBias)
        let w = promptOut.shape[2]
        return Tensor.concat([promptOut.reshaped([1, split, w]), laterOut.reshaped([1, rows * laterLength, w])], axis: 1)
    }
}
