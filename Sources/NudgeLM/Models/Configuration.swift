// Model configuration read from a Hugging Face `config.json`, for the Llama family (llama, qwen2,
// qwen3, mistral-style), Gemma 3 text (gemma3_text) and GPT-2. Both transformers 4 (`rope_theta`) and 5 (`rope_parameters`)
// spellings are accepted; a missing or mistyped field is an error naming it.

import Foundation

/// Errors loading a model directory.
public enum ModelLoadError: Error, CustomStringConvertible, Equatable {
    case missingField(file: String, field: String)
    case wrongType(file: String, field: String, expected: String)
    case unsupported(file: String, field: String, value: String)
    case io(file: String, reason: String)
    /// A field whose value is out of its range.
    case outOfRange(file: String, field: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .missingField(let f, let k): "\(f): missing field '\(k)'"
        case .wrongType(let f, let k, let e): "\(f): field '\(k)' should be \(e)"
        case .unsupported(let f, let k, let v): "\(f): \(k) '\(v)' is not supported"
        case .io(let f, let r): "\(f): \(r)"
        case .outOfRange(let f, let k, let v, let e): "\(f): field '\(k)' is \(v); expected \(e)"
        }
    }
}

/// The architecture hyperparameters of a decoder-only transformer.
public struct TransformerConfiguration: Sendable, Equatable {
    public enum Family: String, Sendable { case llama, qwen2, qwen3, mistral, gpt2, gemma3 = "gemma3_text" }

    public var family: Family
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    public var headDimension: Int
    /// ε of RMSNorm / LayerNorm.
    public var normEpsilon: Float
    /// θ of RoPE (Llama family).
    public var ropeTheta: Float
    public var maxPositions: Int
    public var tieWordEmbeddings: Bool
    /// Biases on the q, k, v projections (Qwen2; Llama's `attention_bias` adds one on o too).
    public var attentionBias: Bool
    public var outputProjectionBias: Bool
    public var mlpBias: Bool
    /// Activation: "silu" (Llama family) or "gelu_new" (GPT-2).
    public var activation: String
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?

    // Gemma 3 only (see Gemma3.swift).
    /// Per layer: true for a sliding-window (local) attention layer, false for a full (global) one.
    public var slidingLayers: [Bool] = []
    /// Keys a sliding layer's query sees: itself and the `slidingWindow − 1` before it.
    public var slidingWindow: Int = 0
    /// θ of RoPE on sliding layers (`rope_local_base_freq`); `ropeTheta` is the full layers'.
    public var localRopeTheta: Float = 10_000
    /// Llama 3.1+ RoPE scaling (`rope_type: llama3`), when the checkpoint has it.
    public var llama3RopeScaling: Llama3RopeScaling? = nil
    /// Per rotary frequency, what its inverse frequency is divided by (llama.cpp's `rope_freqs.weight`):
    /// from `llama3RopeScaling`, or read as stored in a GGUF. nil: no scaling.
    public var ropeFrequencyDivisors: [Float]? = nil
    /// Linear RoPE scaling factors (inverse frequencies ÷ factor) of full and sliding layers.
    public var ropeScalingFactor: Float = 1
    public var localRopeScalingFactor: Float = 1
    /// Attention scores are scaled by `queryPreAttentionScalar`^(−1/2) instead of d^(−1/2).
    public var queryPreAttentionScalar: Float = 0
    /// Tanh soft-capping of the logits: cap · tanh(logits / cap) (nil: none).
    public var finalLogitSoftcap: Float? = nil
    /// Read and written back, never applied: transformers' Gemma3Attention does not pass it to its
    /// attention either (released Gemma 3 sets it to null).
    public var attentionLogitSoftcap: Float? = nil

    /// Whether each attention head's queries and keys are RMS-normalized before RoPE (Qwen3's
    /// `q_norm`/`k_norm`, gains of size `headDimension`).
    public var queryKeyNorm: Bool { family == .qwen3 || family == .gemma3 }

    /// The transformers class of the family (`architectures` in config.json).
    public var architectureName: String {
        switch family {
        case .llama, .mistral: "LlamaForCausalLM"
        case .qwen2: "Qwen2ForCausalLM"
        case .qwen3: "Qwen3ForCausalLM"
        case .gpt2: "GPT2LMHeadModel"
        case .gemma3: "Gemma3ForCausalLM"
        }
    }

    public init(family: Family, vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
                keyValueHeadCount: Int? = nil, headDimension: Int? = nil, normEpsilon: Float = 1e-5, ropeTheta: Float = 10_000,
                maxPositions: Int = 2048, tieWordEmbeddings: Bool = false, attentionBias: Bool = false,
                outputProjectionBias: Bool = false, mlpBias: Bool = false, activation: String = "silu",
                bosTokenID: Int? = nil, eosTokenID: Int? = nil, padTokenID: Int? = nil) {
        self.family = family
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount ?? headCount
        self.headDimension = headDimension ?? (headCount > 0 ? hiddenSize / headCount : 0)  // 0 heads: refused by validate
        self.normEpsilon = normEpsilon
        self.ropeTheta = ropeTheta
        self.maxPositions = maxPositions
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.outputProjectionBias = outputProjectionBias
        self.mlpBias = mlpBias
        self.activation = activation
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
    }

    /// Reads `config.json` and checks its sizes (`validate`).
    public static func load(_ url: URL) throws -> TransformerConfiguration {
        let configuration = try parse(url)
        try configuration.validate(file: url.path)
        return configuration
    }

    /// The parameters a model of this configuration holds (embedding, blocks, head).
    public var estimatedParameterCount: Double {
        let h = Double(hiddenSize), v = Double(vocabularySize), i = Double(intermediateSize)
        let attention = h * Double(headCount) * Double(headDimension) * 2 + h * Double(keyValueHeadCount) * Double(headDimension) * 2
        let mlp = h * i * (family == .gpt2 ? 2 : 3)
        let qkNorms = queryKeyNorm ? 2 * Double(headDimension) : 0
        let positions = family == .gpt2 ? Double(maxPositions) * h : 0
        return v * h * (tieWordEmbeddings ? 1 : 2) + Double(layerCount) * (attention + mlp + 4 * h + qkNorms) + positions
    }

    /// Throws unless every size is positive, the heads divide evenly, ε and θ are positive and the
    /// weights fit in this machine's memory: a negative or absurd size would otherwise trap or abort
    /// in an allocation instead of naming the field.
    public func validate(file: String) throws {
        func positive(_ value: Int, _ field: String) throws {
            guard value >= 1 else { throw ModelLoadError.outOfRange(file: file, field: field, value: "\(value)", expected: "an integer ≥ 1") }
        }
        let gpt2 = family == .gpt2
        try positive(vocabularySize, "vocab_size")
        try positive(hiddenSize, gpt2 ? "n_embd" : "hidden_size")
        try positive(intermediateSize, gpt2 ? "n_inner" : "intermediate_size")
        try positive(layerCount, gpt2 ? "n_layer" : "num_hidden_layers")
        try positive(headCount, gpt2 ? "n_head" : "num_attention_heads")
        try positive(keyValueHeadCount, "num_key_value_heads")
        try positive(headDimension, "head_dim")
        try positive(maxPositions, gpt2 ? "n_positions" : "max_position_embeddings")
        guard headCount % keyValueHeadCount == 0 else {
            throw ModelLoadError.outOfRange(file: file, field: "num_key_value_heads", value: "\(keyValueHeadCount)",
                                            expected: "a divisor of num_attention_heads (\(headCount))")
        }
        if gpt2, hiddenSize % headCount != 0 {
            throw ModelLoadError.outOfRange(file: file, field: "n_head", value: "\(headCount)", expected: "a divisor of n_embd (\(hiddenSize))")
        }
        guard normEpsilon.isFinite, normEpsilon > 0 else {
            throw ModelLoadError.outOfRange(file: file, field: gpt2 ? "layer_norm_epsilon" : "rms_norm_eps", value: "\(normEpsilon)", expected: "a number > 0")
        }
        guard ropeTheta.isFinite, ropeTheta > 0 else {
            throw ModelLoadError.outOfRange(file: file, field: "rope_theta", value: "\(ropeTheta)", expected: "a number > 0")
        }
        if family == .gemma3 {
            guard slidingLayers.count == layerCount else {
                throw ModelLoadError.outOfRange(file: file, field: "layer_types", value: "\(slidingLayers.count) entries",
                                                expected: "one per layer (\(layerCount))")
            }
            if slidingLayers.contains(true) { try positive(slidingWindow, "sliding_window") }
            for (value, field) in [(localRopeTheta, "rope_local_base_freq"), (ropeScalingFactor, "rope_scaling.factor"),
                                   (localRopeScalingFactor, "rope_parameters.sliding_attention.factor"),
                                   (queryPreAttentionScalar, "query_pre_attn_scalar"), (finalLogitSoftcap ?? 1, "final_logit_softcapping")] {
                guard value.isFinite, value > 0 else {
                    throw ModelLoadError.outOfRange(file: file, field: field, value: "\(value)", expected: "a number > 0")
                }
            }
        }
        for (id, field) in [(bosTokenID, "bos_token_id"), (eosTokenID, "eos_token_id"), (padTokenID, "pad_token_id")] {
            if let id, id < 0 || id >= vocabularySize {
                throw ModelLoadError.outOfRange(file: file, field: field, value: "\(id)", expected: "an id below vocab_size (\(vocabularySize))")
            }
        }
        // The Float32 weights alone must fit (training needs about four times that).
        let bytes = estimatedParameterCount * 4
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes < memory else {
            throw ModelLoadError.io(
                file: file,
                reason: String(format: "its sizes make a model of %.3g parameters (%.1f GB of Float32 weights), more than this machine's %.1f GB of memory",
                               estimatedParameterCount, bytes / 1e9, memory / 1e9))
        }
    }

    /// Reads `config.json` without checking its sizes.
    static func parse(_ url: URL) throws -> TransformerConfiguration {
        let file = url.path
        guard let data = try? Data(contentsOf: url) else { throw ModelLoadError.io(file: file, reason: "cannot read the file") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelLoadError.wrongType(file: file, field: "(root)", expected: "a JSON object")
        }
        // No size or id of a real model comes near 2⁴⁰; refusing larger ones here keeps every later
        // product of sizes (4 · n_embd, heads · head_dim) from overflowing Int.
        func bounded(_ n: Int, _ key: String) throws -> Int {
            guard n.magnitude < 1 << 40 else { throw ModelLoadError.outOfRange(file: file, field: key, value: "\(n)", expected: "a size below 2^40") }
            return n
        }
        func int(_ key: String) throws -> Int {
            guard let v = json[key] else { throw ModelLoadError.missingField(file: file, field: key) }
            guard let n = v as? Int else { throw ModelLoadError.wrongType(file: file, field: key, expected: "an integer") }
            return try bounded(n, key)
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard let v = json[key], !(v is NSNull) else { return nil }
            if let list = v as? [Int] { return try list.first.map { try bounded($0, key) } }  // eos_token_id may be a list
            guard let n = v as? Int else { throw ModelLoadError.wrongType(file: file, field: key, expected: "an integer") }
            return try bounded(n, key)
        }
        func double(_ key: String, default value: Double? = nil) throws -> Double {
            guard let v = json[key] else {
                if let value { return value }
                throw ModelLoadError.missingField(file: file, field: key)
            }
            guard let n = v as? NSNumber, !(v is Bool) else { throw ModelLoadError.wrongType(file: file, field: key, expected: "a number") }
            return n.doubleValue
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            guard let v = json[key] else { return value }
            guard let b = v as? Bool else { throw ModelLoadError.wrongType(file: file, field: key, expected: "true or false") }
            return b
        }
        guard let type = json["model_type"] as? String else { throw ModelLoadError.missingField(file: file, field: "model_type") }
        switch type {
        case "gemma3_text":
            return try parseGemma3(json, file: file, int: int, optionalInt: optionalInt, double: double, bool: bool)
        case "llama", "qwen2", "qwen3", "mistral":
            let family = Family(rawValue: type)!
            if family == .qwen3, try bool("use_sliding_window", default: false) {
                throw ModelLoadError.unsupported(file: file, field: "use_sliding_window", value: "true (sliding-window attention)")
            }
            var theta = 10_000.0
            var scaling: (params: [String: Any], field: String)?
            if let params = json["rope_parameters"] as? [String: Any] {
                guard let t = params["rope_theta"] as? NSNumber else {
                    throw ModelLoadError.missingField(file: file, field: "rope_parameters.rope_theta")
                }
                theta = t.doubleValue
                if let t = params["rope_type"] as? String, t != "default" { scaling = (params, "rope_parameters") }
            } else if json["rope_theta"] != nil {
                theta = try double("rope_theta")
            }
            if let value = json["rope_scaling"], !(value is NSNull), scaling == nil {
                guard let params = value as? [String: Any] else {
                    throw ModelLoadError.wrongType(file: file, field: "rope_scaling", expected: "an object or null")
                }
                scaling = (params, "rope_scaling")
            }
            var llama3: Llama3RopeScaling?
            if let (params, field) = scaling {
                let type = (params["rope_type"] ?? params["type"]) as? String ?? "?"
                guard type == "llama3" else {
                    throw ModelLoadError.unsupported(file: file, field: "\(field).rope_type", value: "\(type) (default and llama3 are supported)")
                }
                func number(_ key: String, _ fallback: Double?) throws -> Double {
                    if let n = params[key] as? NSNumber, n.doubleValue.isFinite, n.doubleValue > 0 { return n.doubleValue }
                    if params[key] == nil, let fallback { return fallback }
                    throw ModelLoadError.wrongType(file: file, field: "\(field).\(key)", expected: "a positive number")
                }
                llama3 = Llama3RopeScaling(
                    factor: try number("factor", nil), lowFrequencyFactor: try number("low_freq_factor", 1),
                    highFrequencyFactor: try number("high_freq_factor", 4),
                    originalMaxPositions: try number("original_max_position_embeddings", 8192))
                guard llama3!.highFrequencyFactor > llama3!.lowFrequencyFactor else {
                    throw ModelLoadError.unsupported(file: file, field: "\(field).high_freq_factor", value: "not above low_freq_factor")
                }
            }
            let act = json["hidden_act"] as? String ?? "silu"
            guard act == "silu" else { throw ModelLoadError.unsupported(file: file, field: "hidden_act", value: act) }
            let attentionBias = try bool("attention_bias", default: false)
            var c = TransformerConfiguration(
                family: family, vocabularySize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
                intermediateSize: try int("intermediate_size"), layerCount: try int("num_hidden_layers"),
                headCount: try int("num_attention_heads"), keyValueHeadCount: try optionalInt("num_key_value_heads"),
                headDimension: try optionalInt("head_dim") ?? (family == .qwen3 ? 128 : nil), normEpsilon: Float(try double("rms_norm_eps", default: 1e-6)),
                ropeTheta: Float(theta), maxPositions: try optionalInt("max_position_embeddings") ?? 2048,
                tieWordEmbeddings: try bool("tie_word_embeddings", default: false),
                attentionBias: family == .qwen2 ? true : attentionBias, outputProjectionBias: family == .qwen2 ? false : attentionBias,
                mlpBias: try bool("mlp_bias", default: false), activation: act,
                bosTokenID: try optionalInt("bos_token_id"), eosTokenID: try optionalInt("eos_token_id"), padTokenID: try optionalInt("pad_token_id"))
            if let llama3 {
                c.llama3RopeScaling = llama3
                c.ropeFrequencyDivisors = llama3.divisors(dimension: c.headDimension, theta: Double(theta))
            }
            return c
        case "gpt2":
            let act = json["activation_function"] as? String ?? "gelu_new"
            guard ["gelu_new", "gelu_pytorch_tanh", "gelu"].contains(act) else {
                throw ModelLoadError.unsupported(file: file, field: "activation_function", value: act)
            }
            let hidden = try int("n_embd")
            return TransformerConfiguration(
                family: .gpt2, vocabularySize: try int("vocab_size"), hiddenSize: hidden,
                intermediateSize: try optionalInt("n_inner") ?? 4 * hidden, layerCount: try int("n_layer"), headCount: try int("n_head"),
                normEpsilon: Float(try double("layer_norm_epsilon", default: 1e-5)), maxPositions: try int("n_positions"),
                tieWordEmbeddings: try bool("tie_word_embeddings", default: true), attentionBias: true, outputProjectionBias: true,
                mlpBias: true, activation: act, bosTokenID: try optionalInt("bos_token_id"), eosTokenID: try optionalInt("eos_token_id"),
                padTokenID: try optionalInt("pad_token_id"))
        default:
            throw ModelLoadError.unsupported(file: file, field: "model_type", value: type)
        }
    }

    /// A `gemma3_text` config.json (Gemma3TextConfig): transformers 5's `rope_parameters` per layer
    /// type or transformers 4's `rope_theta`, `rope_local_base_freq` and `rope_scaling`; `layer_types`
    /// or the older `sliding_window_pattern` (every n-th layer full); Gemma3TextConfig's defaults.
    static func parseGemma3(_ json: [String: Any], file: String, int: (String) throws -> Int, optionalInt: (String) throws -> Int?,
                            double: (String, Double?) throws -> Double, bool: (String, Bool) throws -> Bool) throws -> TransformerConfiguration {
        func optionalNumber(_ key: String) throws -> Double? {
            guard let v = json[key], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, !(v is Bool) else { throw ModelLoadError.wrongType(file: file, field: key, expected: "a number or null") }
            return n.doubleValue
        }
        if try bool("use_bidirectional_attention", false) {
            throw ModelLoadError.unsupported(file: file, field: "use_bidirectional_attention", value: "true")
        }
        let act = json["hidden_activation"] as? String ?? json["hidden_act"] as? String ?? "gelu_pytorch_tanh"
        guard act == "gelu_pytorch_tanh" || act == "gelu_new" else { throw ModelLoadError.unsupported(file: file, field: "hidden_activation", value: act) }
        let layers = try int("num_hidden_layers")
        var sliding: [Bool]
        if let types = json["layer_types"], !(types is NSNull) {
            guard let names = types as? [String] else { throw ModelLoadError.wrongType(file: file, field: "layer_types", expected: "a list of strings") }
            sliding = try names.map {
                switch $0 {
                case "sliding_attention": return true
                case "full_attention": return false
                default: throw ModelLoadError.unsupported(file: file, field: "layer_types", value: $0)
                }
            }
        } else {
            let pattern = try optionalInt("sliding_window_pattern") ?? optionalInt("_sliding_window_pattern") ?? 6
            guard pattern >= 1 else { throw ModelLoadError.outOfRange(file: file, field: "sliding_window_pattern", value: "\(pattern)", expected: "an integer ≥ 1") }
            sliding = (0..<max(layers, 0)).map { ($0 + 1) % pattern != 0 }
        }
        // RoPE of each layer type: θ and a linear factor.
        func rope(_ params: [String: Any], _ field: String, theta defaultTheta: Double) throws -> (Float, Float) {
            let kind = params["rope_type"] as? String ?? params["type"] as? String ?? "default"
            guard kind == "default" || kind == "linear" else { throw ModelLoadError.unsupported(file: file, field: field + ".rope_type", value: kind) }
            let theta = (params["rope_theta"] as? NSNumber)?.doubleValue ?? defaultTheta
            var factor = 1.0
            if kind == "linear" {
                guard let f = params["factor"] as? NSNumber else { throw ModelLoadError.missingField(file: file, field: field + ".factor") }
                factor = f.doubleValue
            }
            return (Float(theta), Float(factor))
        }
        let global, local: (Float, Float)
        if let params = json["rope_parameters"] as? [String: Any], params["full_attention"] != nil || params["sliding_attention"] != nil {
            global = try rope(params["full_attention"] as? [String: Any] ?? [:], "rope_parameters.full_attention", theta: try double("rope_theta", 1_000_000))
            local = try rope(params["sliding_attention"] as? [String: Any] ?? [:], "rope_parameters.sliding_attention", theta: try double("rope_local_base_freq", 10_000))
        } else {
            var scaling = (json["rope_scaling"] as? [String: Any]) ?? [:]
            if let s = json["rope_scaling"], !(s is NSNull), !(s is [String: Any]) {
                throw ModelLoadError.wrongType(file: file, field: "rope_scaling", expected: "an object or null")
            }
            scaling["rope_theta"] = try double("rope_theta", 1_000_000)
            global = try rope(scaling, "rope_scaling", theta: 1_000_000)
            local = (Float(try double("rope_local_base_freq", 10_000)), 1)
        }
        let attentionBias = try bool("attention_bias", false)
        var c = TransformerConfiguration(
            family: .gemma3, vocabularySize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
            intermediateSize: try int("intermediate_size"), layerCount: layers, headCount: try int("num_attention_heads"),
            keyValueHeadCount: try optionalInt("num_key_value_heads") ?? 4, headDimension: try optionalInt("head_dim") ?? 256,
            normEpsilon: Float(try double("rms_norm_eps", 1e-6)), ropeTheta: global.0,
            maxPositions: try optionalInt("max_position_embeddings") ?? 131_072, tieWordEmbeddings: try bool("tie_word_embeddings", true),
            attentionBias: attentionBias, outputProjectionBias: attentionBias, mlpBias: false, activation: act,
            bosTokenID: try optionalInt("bos_token_id"), eosTokenID: try optionalInt("eos_token_id"), padTokenID: try optionalInt("pad_token_id"))
        c.slidingLayers = sliding
        c.slidingWindow = try optionalInt("sliding_window") ?? 4096
        c.ropeScalingFactor = global.1
        (c.localRopeTheta, c.localRopeScalingFactor) = local
        c.queryPreAttentionScalar = Float(try double("query_pre_attn_scalar", 256))
        c.finalLogitSoftcap = try optionalNumber("final_logit_softcapping").map(Float.init)
        c.attentionLogitSoftcap = try optionalNumber("attn_logit_softcapping").map(Float.init)
        return c
    }
}

extension TransformerConfiguration {
    /// Small from-scratch Llama configurations for built-in tasks and benchmarks: "tiny" (the test
    /// fixtures’ shape, 0.13M parameters at vocab 256), and the peer benchmark's "S" (0.94M at vocab
    /// 512) and "M" (5.8M at vocab 2048): untied head, no GQA, θ = 10000.
    public static func preset(_ name: String, vocabularySize: Int? = nil) -> TransformerConfiguration? {
        switch name {
        case "tiny":
            return TransformerConfiguration(family: .llama, vocabularySize: vocabularySize ?? 256, hiddenSize: 64, intermediateSize: 176,
                                            layerCount: 2, headCount: 4, keyValueHeadCount: 2, normEpsilon: 1e-5, maxPositions: 512)
        case "S":
            return TransformerConfiguration(family: .llama, vocabularySize: vocabularySize ?? 512, hiddenSize: 128, intermediateSize: 352,
                                            layerCount: 4, headCount: 4, normEpsilon: 1e-6, maxPositions: 512)
        case "M":
            return TransformerConfiguration(family: .llama, vocabularySize: vocabularySize ?? 2048, hiddenSize: 256, intermediateSize: 688,
                                            layerCount: 6, headCount: 8, normEpsilon: 1e-6, maxPositions: 512)
        default:
            return nil
        }
    }

    /// The configuration as a transformers `config.json` (Llama family and Gemma 3).
    public func configJSON() -> Data {
        if family == .gemma3 { return gemma3ConfigJSON() }
        var object: [String: Any] = [
            "model_type": family.rawValue, "architectures": [architectureName],
            "vocab_size": vocabularySize, "hidden_size": hiddenSize, "intermediate_size": intermediateSize,
            "num_hidden_layers": layerCount, "num_attention_heads": headCount, "num_key_value_heads": keyValueHeadCount,
            "head_dim": headDimension, "rms_norm_eps": Double(normEpsilon), "rope_theta": Double(ropeTheta),
            "max_position_embeddings": maxPositions, "tie_word_embeddings": tieWordEmbeddings,
            "attention_bias": attentionBias, "mlp_bias": mlpBias, "hidden_act": activation, "torch_dtype": "float32",
        ]
        if family == .qwen3 { object["use_sliding_window"] = false }
        if let scaling = llama3RopeScaling ?? ropeFrequencyDivisors.flatMap({ Llama3RopeScaling.inferred(from: $0, dimension: headDimension, theta: Double(ropeTheta)) }) {
            object["rope_scaling"] = [
                "rope_type": "llama3", "factor": scaling.factor, "low_freq_factor": scaling.lowFrequencyFactor,
                "high_freq_factor": scaling.highFrequencyFactor, "original_max_position_embeddings": scaling.originalMaxPositions,
            ]
        }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}

extension TransformerConfiguration {
    /// A Gemma3TextConfig `config.json` that transformers 5 (`rope_parameters`) and 4 (`rope_theta`,
    /// `rope_local_base_freq`, `rope_scaling`) both read back.
    func gemma3ConfigJSON() -> Data {
        func rope(_ theta: Float, _ factor: Float) -> [String: Any] {
            factor == 1 ? ["rope_type": "default", "rope_theta": Double(theta)]
                : ["rope_type": "linear", "rope_theta": Double(theta), "factor": Double(factor)]
        }
        var object: [String: Any] = [
            "model_type": family.rawValue, "architectures": [architectureName],
            "vocab_size": vocabularySize, "hidden_size": hiddenSize, "intermediate_size": intermediateSize,
            "num_hidden_layers": layerCount, "num_attention_heads": headCount, "num_key_value_heads": keyValueHeadCount,
            "head_dim": headDimension, "rms_norm_eps": Double(normEpsilon), "max_position_embeddings": maxPositions,
            "tie_word_embeddings": tieWordEmbeddings, "attention_bias": attentionBias, "hidden_activation": activation,
            "layer_types": slidingLayers.map { $0 ? "sliding_attention" : "full_attention" }, "sliding_window": slidingWindow,
            "query_pre_attn_scalar": Double(queryPreAttentionScalar),
            "final_logit_softcapping": finalLogitSoftcap.map { Double($0) as Any } ?? NSNull(),
            "attn_logit_softcapping": attentionLogitSoftcap.map { Double($0) as Any } ?? NSNull(),
            "rope_parameters": ["full_attention": rope(ropeTheta, ropeScalingFactor), "sliding_attention": rope(localRopeTheta, localRopeScalingFactor)],
            "rope_theta": Double(ropeTheta), "rope_local_base_freq": Double(localRopeTheta),
            "rope_scaling": ropeScalingFactor == 1 ? NSNull() as Any : ["rope_type": "linear", "factor": Double(ropeScalingFactor)] as Any,
            "use_bidirectional_attention": false, "torch_dtype": "float32",
        ]
        for (key, id) in [("bos_token_id", bosTokenID), ("eos_token_id", eosTokenID), ("pad_token_id", padTokenID)] {
            if let id { object[key] = id }
        }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}

/// Llama 3.1's RoPE scaling (`rope_type: llama3`): low frequencies (wavelength above
/// `originalMaxPositions / lowFrequencyFactor`) are divided by `factor`, high ones (wavelength below
/// `originalMaxPositions / highFrequencyFactor`) kept, the band between interpolated smoothly.
public struct Llama3RopeScaling: Sendable, Equatable {
    public var factor: Double
    public var lowFrequencyFactor: Double
    public var highFrequencyFactor: Double
    public var originalMaxPositions: Double

    /// What each of the `dimension / 2` inverse frequencies is divided by (llama.cpp's `rope_freqs`).
    public func divisors(dimension: Int, theta: Double) -> [Float] {
        let lowWavelength = originalMaxPositions / lowFrequencyFactor
        let highWavelength = originalMaxPositions / highFrequencyFactor
        return (0..<(dimension / 2)).map { i in
            // transformers computes the base frequencies in Float32.
            let frequency = Double(Float(1 / Foundation.pow(Double(Float(theta)), Double(2 * i) / Double(dimension))))
            let wavelength = 2 * Double.pi / frequency
            if wavelength < highWavelength { return 1 }
            if wavelength > lowWavelength { return Float(factor) }
            let smooth = (originalMaxPositions / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor)
            return Float(1 / ((1 - smooth) / factor + smooth))
        }
    }

    /// The Llama 3.x parameters that give `divisors` (a GGUF keeps only those), if the usual ones do.
    static func inferred(from divisors: [Float], dimension: Int, theta: Double) -> Llama3RopeScaling? {
        guard let factor = divisors.max(), factor > 1 else { return nil }
        let f = Double(factor)
        for (low, high) in [(1.0, 4.0), (1.0, 2.0), (1.0, 8.0)] {
            // A divisor strictly inside (1, factor) pins the original context length; without one,
            // try the lengths Llama 3.x uses.
            var originals = [8192.0, 4096, 2048, 16384, 32768, 131072]
            if let i = divisors.firstIndex(where: { $0 > 1 && $0 < factor }) {
                let frequency = Double(Float(1 / Foundation.pow(Double(Float(theta)), Double(2 * i) / Double(dimension))))
                let smooth = (1 / Double(divisors[i]) - 1 / f) / (1 - 1 / f)
                originals = [((smooth * (high - low) + low) * 2 * Double.pi / frequency).rounded()]
            }
            for original in originals {
                let candidate = Llama3RopeScaling(
                    factor: Double(factor), lowFrequencyFactor: low, highFrequencyFactor: high, originalMaxPositions: original)
                let recomputed = candidate.divisors(dimension: dimension, theta: theta)
                if recomputed.count == divisors.count, zip(recomputed, divisors).allSatisfy({ Swift.abs($0 - $1) <= 1e-5 * Swift.abs($1) }) {
                    return candidate
                }
            }
        }
        return nil
    }
}
