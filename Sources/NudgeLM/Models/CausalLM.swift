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

/// Keys and values of earlier positions, per layer: (B, nKV, S, d) each.
public final class KVCache {
    public var keys: [Tensor?]
    public var values: [Tensor?]

    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
    }

    /// Positions cached so far.
    public var length: Int { keys.first??.shape[2] ?? 0 }

    /// Appends this step's keys and values for `layer` and returns the full ones.
    func append(layer: Int, keys k: Tensor, values v: Tensor) -> (Tensor, Tensor) {
        let fullK = keys[layer].map { Tensor.concat([$0, k], axis: 2) } ?? k
        let fullV = values[layer].map { Tensor.concat([$0, v], axis: 2) } ?? v
        keys[layer] = fullK
        values[layer] = fullV
        return (fullK, fullV)
    }
}

/// A decoder-only language model.
public protocol CausalLanguageModel: Module {
    var configuration: TransformerConfiguration { get }
    /// Logits (B, T, V) for a batch.
    func callAsFunction(_ input: TokenBatch) -> Tensor
    /// Logits (B, T, V) for new tokens, reading and extending `cache` (the batch's mask covers
    /// cached and new keys).
    func forward(_ input: TokenBatch, cache: KVCache?) -> Tensor
    /// Hidden states after the final norm (B, T, H).
    func finalHiddenStates(_ input: TokenBatch) -> Tensor
}

/// Loading and saving Hugging Face model directories.
public enum LanguageModelLoader {
    /// Reads `config.json` and the safetensors weights (single or sharded) into a new model.
    public static func load(directory: URL) throws -> any CausalLanguageModel {
        let config = try TransformerConfiguration.load(directory.appendingPathComponent("config.json"))
        let weights = try Checkpoint.load(directory)
        let model: any CausalLanguageModel
        switch config.family {
        case .llama, .qwen2, .mistral: model = LlamaModel(config)
        case .gpt2: model = try GPT2Model.make(config)
        }
        try model.update(parameters: sanitize(weights, for: config))
        return model
    }

    /// A frozen copy of `model` (same family and configuration, parameters copied): a reference
    /// policy when the policy itself is fully fine-tuned.
    public static func frozenCopy(of model: any CausalLanguageModel) throws -> any CausalLanguageModel {
        let copy: any CausalLanguageModel
        switch model.configuration.family {
        case .llama, .qwen2, .mistral: copy = LlamaModel(model.configuration)
        case .gpt2: copy = try GPT2Model.make(model.configuration)
        }
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
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var pairs: [(String, Tensor)] = []
        for (key, tensor) in model.parameters() {
            if model.configuration.family == .gpt2 && GPT2Model.isConv1D(key) && tensor.rank == 2 {
                pairs.append((key, tensor.transposed()))
            } else {
                pairs.append((key, tensor))
            }
        }
        try Checkpoint.save(NamedTensors(pairs), to: directory.appendingPathComponent("model.safetensors"), metadata: ["format": "pt"])
        try configJSON.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
    }
}
