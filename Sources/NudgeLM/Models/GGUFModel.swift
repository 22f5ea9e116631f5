// Models and tokenizers read from a GGUF file (llama.cpp, Ollama, LM Studio).
//
// The architecture's hyperparameters come from `<arch>.*` metadata keys, the weights from ggml's
// tensor names (`blk.N.attn_q.weight`, …) mapped onto Nudge's Hugging Face keys and dequantized to
// Float32. llama.cpp's converter reorders the rows of a llama-arch model's q and k projections so
// that ggml's RoPE rotates adjacent pairs; transformers' RoPE rotates the two halves of each head,
// so loading undoes that permutation (qwen2, qwen3 and gpt2 are stored unpermuted). Qwen3's per-head
// q/k norms are `blk.N.attn_q_norm` / `attn_k_norm`. Gemma 3 (arch gemma3) adds `post_attention_norm`,
// `ffn_norm` (pre-feedforward) and `post_ffw_norm`, and llama.cpp's converter stores every Gemma norm
// gain as 1 + w (its RMSNorm multiplies by the gain itself), so loading subtracts 1. The tokenizer is
// rebuilt from `tokenizer.ggml.*` as the tokenizer.json a Hugging Face checkout would carry.

import Foundation
import NudgeNN
import NudgeTensor

/// What a GGUF file holds beyond the weights: the chat template and the role tokens.
public struct GGUFModelInfo: Sendable {
    /// `general.architecture`.
    public var architecture: String
    /// `general.name`, when given.
    public var name: String?
    /// `tokenizer.chat_template`, when given.
    public var chatTemplate: String?
    /// The BOS and EOS token texts, for templates that print them.
    public var bosToken: String?
    public var eosToken: String?
    /// The file this came from, for template names in errors.
    public var fileName: String = ""

    /// The chat template with the special tokens it refers to, when the file has one.
    public var templateSource: ChatTemplateSource? {
        guard let chatTemplate else { return nil }
        var tokens: [String: String] = [:]
        if let bosToken { tokens["bos_token"] = bosToken }
        if let eosToken { tokens["eos_token"] = eosToken }
        return ChatTemplateSource(source: chatTemplate, name: fileName + ":tokenizer.chat_template", specialTokens: tokens)
    }
}

extension LanguageModelLoader {
    /// Whether `path` names a GGUF file rather than a model directory.
    public static func isGGUF(_ url: URL) -> Bool { url.pathExtension.lowercased() == "gguf" }

    /// Reads a model directory or a `.gguf` file.
    public static func load(path url: URL) throws -> any CausalLanguageModel {
        isGGUF(url) ? try load(gguf: GGUFFile(url: url)) : try load(directory: url)
    }

    /// A model directory's or GGUF file's model and its checked tokenizer.
    public static func loadWithTokenizer(path url: URL) throws -> (any CausalLanguageModel, any Tokenizer) {
        guard isGGUF(url) else { return try loadWithTokenizer(directory: url) }
        let file = try GGUFFile(url: url)
        return try withGGUFTokenizer(try load(gguf: file), file)
    }

    /// `model`, read from `file`, with the file's checked tokenizer and chat template.
    static func withGGUFTokenizer(_ model: any CausalLanguageModel, _ file: GGUFFile) throws -> (any CausalLanguageModel, any Tokenizer) {
        let url = file.url
        let tokenizer = try GGUFTokenizer.make(file)
        guard tokenizer.vocabularySize <= model.configuration.vocabularySize else {
            throw ModelLoadError.io(file: url.path, reason: "the tokenizer has \(tokenizer.vocabularySize) tokens but the model only \(model.configuration.vocabularySize) embeddings")
        }
        guard let source = try info(gguf: file).templateSource else { return (model, tokenizer) }
        return (model, TemplatedTokenizer(tokenizer, format: JinjaChatFormat(try source.renderer())))
    }

    /// The tokenizer of a model directory or GGUF file, with its chat template, without loading the
    /// weights (a vocabulary-only GGUF is enough). A directory without tokenizer.json loads its model
    /// to check the byte tokenizer fits.
    public static func tokenizer(path url: URL) throws -> any Tokenizer {
        if isGGUF(url) {
            let file = try GGUFFile(url: url)
            let tokenizer = try GGUFTokenizer.make(file)
            guard let source = try info(gguf: file).templateSource else { return tokenizer }
            return TemplatedTokenizer(tokenizer, format: JinjaChatFormat(try source.renderer()))
        }
        guard FileManager.default.fileExists(atPath: url.appendingPathComponent("tokenizer.json").path) else {
            return try loadWithTokenizer(directory: url).1
        }
        return try withChatTemplate(try BPETokenizer.load(directory: url), directory: url)
    }

    /// The model in an opened GGUF file.
    public static func load(gguf file: GGUFFile) throws -> any CausalLanguageModel {
        let config = try TransformerConfiguration(gguf: file)
        // assignGGUFTensors fills every parameter (strictly), so the random fill would be thrown away.
        let model = try skippingRandomFill { try LanguageModelLoader.blank(config) }
        try assignGGUFTensors(file, config: config, to: model)
        return model
    }

    /// Reads every tensor of `file` but those under `skipping` (keys) into `model`'s parameters,
    /// strictly: a tensor with no parameter, a shape that differs or a parameter without a tensor is an error.
    static func assignGGUFTensors(_ file: GGUFFile, config: TransformerConfiguration, to model: any CausalLanguageModel,
                                  skipping: Set<String> = []) throws {
        // One tensor at a time into the model's own storage: peak memory is the model plus its
        // largest tensor, not two copies of every weight.
        var targets: [String: Tensor] = [:]
        for (key, tensor, _) in model.namedParameters() { targets[key] = tensor }
        var assigned = Set<String>()
        try GGUFWeights.forEach(file, config: config, skipping: skipping) { key, tensor in
            guard let target = targets[key] else { throw ModuleError.unusedKey(key) }
            guard target.shape == tensor.shape else { throw ModuleError.shapeMismatch(key: key, expected: target.shape, actual: tensor.shape) }
            target.assign(tensor)
            assigned.insert(key)
        }
        if let missing = targets.keys.sorted().first(where: { !assigned.contains($0) }) {
            throw ModelLoadError.io(file: file.url.path, reason: "no tensor for \(missing) (\(GGUFExport.ggmlName(missing, family: config.family) ?? "?") in ggml's names)")
        }
    }

    /// The chat template and role tokens stored in a GGUF file.
    public static func info(gguf file: GGUFFile) throws -> GGUFModelInfo {
        let tokens = try file.strings("tokenizer.ggml.tokens")
        func token(_ key: String) throws -> String? {
            guard let id = try file.int(key), let tokens, id >= 0, id < tokens.count else { return nil }
            return tokens[id]
        }
        return GGUFModelInfo(architecture: try file.string("general.architecture") ?? "", name: try file.string("general.name"),
                             chatTemplate: try file.string("tokenizer.chat_template"),
                             bosToken: try token("tokenizer.ggml.bos_token_id"), eosToken: try token("tokenizer.ggml.eos_token_id"),
                             fileName: file.url.lastPathComponent)
    }
}

extension TransformerConfiguration {
    /// The configuration described by a GGUF file's metadata.
    public init(gguf file: GGUFFile) throws {
        let path = file.url.path
        guard let arch = try file.string("general.architecture") else { throw GGUFError.missingKey(file: path, key: "general.architecture") }
        let family: Family
        switch arch {
        case "llama": family = .llama
        case "qwen2": family = .qwen2
        case "qwen3": family = .qwen3
        case "gpt2": family = .gpt2
        case "gemma3": family = .gemma3
        default:
            throw ModelLoadError.io(file: path, reason: "general.architecture '\(arch)' is not supported (supported: llama, qwen2, qwen3, gemma3, gpt2)")
        }
        func int(_ key: String) throws -> Int { try file.requiredInt("\(arch).\(key)") }
        let scaling = try file.string("\(arch).rope.scaling.type")
        if scaling != nil && scaling != "none" && !(family == .gemma3 && scaling == "linear") {
            throw ModelLoadError.io(file: path, reason: "\(arch).rope.scaling.type '\(scaling!)' is not supported (Llama 3.1's scaling comes as rope_freqs.weight, which is)")
        }
        if file.tensor("rope_freqs.weight") != nil, family == .gemma3 || family == .gpt2 {
            throw ModelLoadError.io(file: path, reason: "rope_freqs.weight is only supported for llama, qwen2 and qwen3 files")
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let tokens = try file.strings("tokenizer.ggml.tokens")
        let embedding = file.tensor("token_embd.weight")
        let vocabulary = try file.int("\(arch).vocab_size") ?? embedding?.shape.first ?? tokens?.count ?? 0
        let headDimension = try file.int("\(arch).attention.key_length") ?? (heads > 0 ? hidden / heads : 0)
        let epsilonKey = family == .gpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"
        guard let epsilon = try file.double("\(arch).\(epsilonKey)") else { throw GGUFError.missingKey(file: path, key: "\(arch).\(epsilonKey)") }
        self.init(
            family: family, vocabularySize: vocabulary, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            layerCount: try int("block_count"), headCount: heads,
            keyValueHeadCount: try file.int("\(arch).attention.head_count_kv") ?? heads, headDimension: headDimension,
            normEpsilon: Float(epsilon), ropeTheta: Float(try file.double("\(arch).rope.freq_base") ?? 10_000),
            maxPositions: try int("context_length"),
            tieWordEmbeddings: file.tensor("output.weight") == nil,
            attentionBias: family != .gpt2 && file.tensor("blk.0.attn_q.bias") != nil,
            outputProjectionBias: family == .gpt2 || file.tensor("blk.0.attn_output.bias") != nil,
            mlpBias: family == .gpt2 || file.tensor("blk.0.ffn_up.bias") != nil,
            activation: family == .gpt2 ? "gelu_new" : family == .gemma3 ? "gelu_pytorch_tanh" : "silu",
            bosTokenID: try file.int("tokenizer.ggml.bos_token_id"), eosTokenID: try file.int("tokenizer.ggml.eos_token_id"),
            padTokenID: try file.int("tokenizer.ggml.padding_token_id"))
        if let count = try file.int("\(arch).rope.dimension_count"), family != .gpt2, count != headDimension {
            throw ModelLoadError.io(file: path, reason: "\(arch).rope.dimension_count is \(count) but the head size is \(headDimension); partial rotary embeddings are not supported")
        }
        if family == .gemma3 { try readGemma3(file, scaling: scaling) }
        if let freqs = file.tensor("rope_freqs.weight") {
            // Llama 3.1+: what llama.cpp divides each rotary frequency by.
            let divisors = file.floats(freqs)
            guard divisors.count == headDimension / 2, divisors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw GGUFError.invalid(file: path, reason: "rope_freqs.weight has \(divisors.count) values (expected \(headDimension / 2) positive ones)")
            }
            ropeFrequencyDivisors = divisors
            llama3RopeScaling = Llama3RopeScaling.inferred(from: divisors, dimension: headDimension, theta: Double(ropeTheta))
        }
        try validate(file: path)
    }

    /// Gemma 3's keys as llama.cpp reads them: the window, its layer pattern (every n-th layer full,
    /// 6 when absent), the sliding layers' θ (`rope.freq_base_swa`, 10⁴ when absent), linear scaling
    /// of the full layers, and the attention scale llama.cpp derives (1/√d; 1/√(H/nH) for the
    /// 62-layer 27B), since GGUF does not store query_pre_attn_scalar.
    mutating func readGemma3(_ file: GGUFFile, scaling: String?) throws {
        let path = file.url.path
        slidingWindow = try file.int("gemma3.attention.sliding_window") ?? 4096
        let pattern = try file.int("gemma3.attention.sliding_window_pattern") ?? 6
        guard pattern >= 1 else { throw GGUFError.invalid(file: path, reason: "gemma3.attention.sliding_window_pattern is \(pattern)") }
        slidingLayers = (0..<layerCount).map { ($0 + 1) % pattern != 0 }
        localRopeTheta = Float(try file.double("gemma3.rope.freq_base_swa") ?? 10_000)
        if scaling == "linear" {
            guard let factor = try file.double("gemma3.rope.scaling.factor") else { throw GGUFError.missingKey(file: path, key: "gemma3.rope.scaling.factor") }
            ropeScalingFactor = Float(factor)
        }
        queryPreAttentionScalar = Self.gemma3GGUFAttentionScalar(layers: layerCount, hidden: hiddenSize, heads: headCount, headDimension: headDimension)
        finalLogitSoftcap = try file.double("gemma3.final_logit_softcapping").map(Float.init)
    }

    /// The query_pre_attn_scalar llama.cpp's attention scale amounts to for a Gemma 3 shape.
    static func gemma3GGUFAttentionScalar(layers: Int, hidden: Int, heads: Int, headDimension: Int) -> Float {
        Float(layers == 62 && heads > 0 ? hidden / heads : headDimension)
    }
}

/// Tensor names and layouts between ggml and Nudge.
enum GGUFWeights {
    /// Whole-model tensors as (Nudge key, ggml name).
    static func fixedNames(_ family: TransformerConfiguration.Family) -> [(String, String)] {
        family == .gpt2 ? [
            ("transformer.wte.weight", "token_embd.weight"), ("transformer.wpe.weight", "position_embd.weight"),
            ("transformer.ln_f.weight", "output_norm.weight"), ("transformer.ln_f.bias", "output_norm.bias"), ("lm_head.weight", "output.weight"),
        ] : [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"), ("lm_head.weight", "output.weight")]
    }

    /// A block's modules as (Nudge module path, ggml name), and the Nudge prefix of block N.
    static func layerNames(_ family: TransformerConfiguration.Family) -> (prefix: String, modules: [(String, String)]) {
        if family == .gemma3 {
            return ("model.layers.", [
                ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
                ("self_attn.q_norm", "attn_q_norm"), ("self_attn.k_norm", "attn_k_norm"),
                ("post_attention_layernorm", "post_attention_norm"), ("pre_feedforward_layernorm", "ffn_norm"),
                ("post_feedforward_layernorm", "post_ffw_norm"),
                ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
            ])
        }
        return family == .gpt2 ? ("transformer.h.", [
            ("ln_1", "attn_norm"), ("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"),
            ("ln_2", "ffn_norm"), ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down"),
        ]) : ("model.layers.", [
            ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
            ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("post_attention_layernorm", "ffn_norm"),
            ("self_attn.q_norm", "attn_q_norm"), ("self_attn.k_norm", "attn_k_norm"),
            ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
        ])
    }

    /// The Nudge key of a ggml tensor name, or nil for tensors Nudge does not use.
    static func key(_ name: String, family: TransformerConfiguration.Family) -> String? {
        if let fixed = fixedNames(family).first(where: { $0.1 == name }) { return fixed.0 }
        let parts = name.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        let pieces = parts[2].split(separator: ".").map(String.init)
        let (prefix, modules) = layerNames(family)
        guard pieces.count == 2, let module = modules.first(where: { $0.1 == pieces[0] })?.0 else { return nil }
        return prefix + "\(layer)." + module + "." + pieces[1]
    }

    /// Calls `body` with each tensor's Nudge key and value, mapped, dequantized and, for llama-arch
    /// q/k, un-permuted; tensors whose keys are in `skipping` are left unread.
    static func forEach(_ file: GGUFFile, config: TransformerConfiguration, skipping: Set<String> = [],
                        _ body: (String, Tensor) throws -> Void) throws {
        for info in file.tensors {
            guard let key = key(info.name, family: config.family) else {
                if info.name == "rope_freqs.weight" { continue }
                throw ModelLoadError.io(file: file.url.path, reason: "tensor '\(info.name)' has no place in a \(config.family.rawValue) model")
            }
            if skipping.contains(key) { continue }
            var values = file.floats(info)
            if let heads = permutedHeads(info.name, config: config) {
                values = reorderRotaryRows(values, rows: info.shape[0], heads: heads, toGGML: false)
            }
            if config.family == .gemma3 && info.name.hasSuffix("norm.weight") { values = values.map { $0 - 1 } }  // stored as 1 + w
            try body(key, Tensor(shape: info.shape, values: values))
        }
    }

    /// The head count whose rows llama.cpp's converter permuted in tensor `ggmlName` (llama-arch q and k
    /// projections), or nil for tensors stored as transformers lays them out.
    static func permutedHeads(_ ggmlName: String, config: TransformerConfiguration) -> Int? {
        guard config.family == .llama || config.family == .mistral else { return nil }
        if ggmlName.hasSuffix("attn_q.weight") || ggmlName.hasSuffix("attn_q.bias") { return config.headCount }
        if ggmlName.hasSuffix("attn_k.weight") || ggmlName.hasSuffix("attn_k.bias") { return config.keyValueHeadCount }
        return nil
    }

    /// llama.cpp's `permute` (`toGGML`) and its inverse: within each head, transformers' row s·d/2 + i
    /// is ggml's row 2i + s, because ggml's RoPE rotates adjacent pairs and transformers' the two halves.
    static func reorderRotaryRows(_ values: [Float], rows: Int, heads: Int, toGGML: Bool) -> [Float] {
        guard heads > 0, rows > 0, values.count % rows == 0, rows % heads == 0, (rows / heads) % 2 == 0 else { return values }
        let columns = values.count / rows, head = rows / heads, half = head / 2
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for s in 0..<2 {
                        for i in 0..<half {
                            let hf = (h * head + s * half + i) * columns, gg = (h * head + 2 * i + s) * columns
                            let (from, to) = toGGML ? (hf, gg) : (gg, hf)
                            for c in 0..<columns { dst[to + c] = src[from + c] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Undoes llama.cpp's `permute`.
    static func unpermute(_ values: [Float], rows: Int, heads: Int) -> [Float] {
        reorderRotaryRows(values, rows: rows, heads: heads, toGGML: false)
    }
}

