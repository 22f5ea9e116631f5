// Exporting a model as a GGUF file for llama.cpp, Ollama, LM Studio and transformers' GGUF loader:
// the architecture keys llama.cpp reads, ggml tensor names, llama's Q/K rows permuted for ggml's
// RoPE (the inverse of what loading undoes), Gemma 3's norm gains as llama.cpp's 1 + w (with the
// window, its every-n-th-layer pattern and the local θ as gemma3.* keys), 1-D tensors (norms, biases) in F32 and matrices in
// the requested type, and the tokenizer and chat template carried over — copied key by key from a
// source GGUF, or converted from a Hugging Face tokenizer.json.

import Foundation
import NudgeNN
import NudgeTensor

/// Writing models as GGUF files.
public enum GGUFExport {
    /// The ggml name of a Nudge parameter key (the inverse of loading's mapping).
    static func ggmlName(_ key: String, family: TransformerConfiguration.Family) -> String? {
        if let fixed = GGUFWeights.fixedNames(family).first(where: { $0.0 == key }) { return fixed.1 }
        let (prefix, modules) = GGUFWeights.layerNames(family)
        guard key.hasPrefix(prefix) else { return nil }
        let rest = key.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let tail = String(rest[rest.index(after: dot)...])
        guard let lastDot = tail.lastIndex(of: "."),
              let name = modules.first(where: { $0.0 == String(tail[..<lastDot]) })?.1 else { return nil }
        return "blk.\(layer).\(name).\(tail[tail.index(after: lastDot)...])"
    }

    /// The architecture name llama.cpp uses for a family.
    static func architecture(_ family: TransformerConfiguration.Family) -> String {
        switch family {
        case .llama, .mistral: "llama"
        case .qwen2: "qwen2"
        case .qwen3: "qwen3"
        case .gpt2: "gpt2"
        case .gemma3: "gemma3"
        }
    }

    /// Writes `model` to `url` with matrices stored as `type` (F32, F16, BF16 or Q8_0) and the given
    /// tokenizer metadata (every `tokenizer.*` key).
    public static func write(_ model: any CausalLanguageModel, tokenizer: [(String, GGUFTypedValue)], name: String?,
                             type: GGMLType, to url: URL) throws {
        if let bad = model.firstNonFiniteParameter() {
            throw CheckpointError.invalid(path: url.path, reason: "parameter \(bad.name) is \(bad.value); non-finite weights are never exported")
        }
        guard [.f32, .f16, .bf16, .q8_0].contains(type) else {
            throw GGUFError.io(file: url.path, reason: "export writes f32, f16, bf16 or q8_0, not \(type.name)")
        }
        let c = model.configuration, arch = architecture(c.family)
        var gemma3Pattern = 0
        if c.family == .gemma3 {
            // llama.cpp knows Gemma 3's layout only as "every n-th layer full" and derives the
            // attention scale from the shape; refuse what it would read differently.
            guard let n = (1...(c.layerCount + 1)).first(where: { n in c.slidingLayers.indices.allSatisfy { c.slidingLayers[$0] == (($0 + 1) % n != 0) } }) else {
                throw GGUFError.io(file: url.path, reason: "Gemma 3 layer_types are not every n-th layer full, which GGUF cannot describe")
            }
            gemma3Pattern = n
            let scalar = TransformerConfiguration.gemma3GGUFAttentionScalar(layers: c.layerCount, hidden: c.hiddenSize, heads: c.headCount, headDimension: c.headDimension)
            guard c.queryPreAttentionScalar == scalar, c.localRopeScalingFactor == 1 else {
                throw GGUFError.io(file: url.path, reason: "query_pre_attn_scalar \(c.queryPreAttentionScalar) (llama.cpp assumes \(scalar)) or scaled local RoPE cannot be described in GGUF")
            }
        }
        var w = GGUFWriter()
        w.set("general.architecture", .string(arch))
        if let name { w.set("general.name", .string(name)) }
        let fileType: UInt32 = switch type {
        case .f16: 1
        case .q8_0: 7
        case .bf16: 32
        default: 0
        }
        w.set("general.file_type", .u32(fileType))
        w.set("\(arch).context_length", .u32(UInt32(c.maxPositions)))
        w.set("\(arch).embedding_length", .u32(UInt32(c.hiddenSize)))
        w.set("\(arch).block_count", .u32(UInt32(c.layerCount)))
        w.set("\(arch).feed_forward_length", .u32(UInt32(c.intermediateSize)))
        w.set("\(arch).attention.head_count", .u32(UInt32(c.headCount)))
        if c.family == .gpt2 {
            w.set("\(arch).attention.layer_norm_epsilon", .f32(c.normEpsilon))
        } else {
            w.set("\(arch).attention.head_count_kv", .u32(UInt32(c.keyValueHeadCount)))
            w.set("\(arch).rope.freq_base", .f32(c.ropeTheta))
            w.set("\(arch).attention.layer_norm_rms_epsilon", .f32(c.normEpsilon))
            w.set("\(arch).rope.dimension_count", .u32(UInt32(c.headDimension)))
            if c.family == .gemma3 {
                w.set("\(arch).attention.sliding_window", .u32(UInt32(c.slidingWindow)))
                w.set("\(arch).attention.sliding_window_pattern", .u32(UInt32(gemma3Pattern)))
                w.set("\(arch).rope.freq_base_swa", .f32(c.localRopeTheta))
                if c.ropeScalingFactor != 1 {
                    w.set("\(arch).rope.scaling.type", .string("linear"))
                    w.set("\(arch).rope.scaling.factor", .f32(c.ropeScalingFactor))
                }
                if let cap = c.finalLogitSoftcap { w.set("\(arch).final_logit_softcapping", .f32(cap)) }
            }
            if c.headDimension * c.headCount != c.hiddenSize || c.family == .gemma3 {
                w.set("\(arch).attention.key_length", .u32(UInt32(c.headDimension)))
                w.set("\(arch).attention.value_length", .u32(UInt32(c.headDimension)))
            }
        }
        w.set("\(arch).vocab_size", .u32(UInt32(c.vocabularySize)))
        for (key, value) in tokenizer { w.set(key, value) }
        if let divisors = c.ropeFrequencyDivisors {
            w.add("rope_freqs.weight", shape: [divisors.count], values: divisors, type: .f32)
        }
        for (key, tensor) in model.parameters() {
            guard let ggml = ggmlName(key, family: c.family) else {
                throw GGUFError.io(file: url.path, reason: "parameter \(key) has no GGUF name (LoRA adapters must be merged before export)")
            }
            var values = tensor.scalars
            if let heads = GGUFWeights.permutedHeads(ggml, config: c) {
                values = GGUFWeights.reorderRotaryRows(values, rows: tensor.shape[0], heads: heads, toGGML: true)
            }
            if c.family == .gemma3 && ggml.hasSuffix("norm.weight") { values = values.map { $0 + 1 } }  // llama.cpp's gain is 1 + w
            w.add(ggml, shape: tensor.shape, values: values, type: tensor.rank >= 2 ? type : .f32)
        }
        try w.write(to: url)
    }

    /// Every `tokenizer.*` key of a GGUF file, typed for writing.
    public static func tokenizerMetadata(from file: GGUFFile) -> [(String, GGUFTypedValue)] {
        file.metadataKeys.filter { $0.hasPrefix("tokenizer.") }.compactMap { key in
            file.metadata[key].flatMap(GGUFTypedValue.init).map { (key, $0) }
        }
    }

    /// GGUF tokenizer metadata from a Hugging Face directory's tokenizer.json (byte-level BPE) and
    /// tokenizer_config.json (role tokens, chat template) or chat_template.jinja.
    public static func tokenizerMetadata(directory: URL) throws -> [(String, GGUFTypedValue)] {
        let file = directory.appendingPathComponent("tokenizer.json")
        func object(_ url: URL) throws -> [String: Any] {
            do {
                guard let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as? [String: Any] else {
                    throw ModelLoadError.io(file: url.path, reason: "not a JSON object")
                }
                return object
            } catch let error as ModelLoadError {
                throw error
            } catch {
                throw ModelLoadError.io(file: url.path, reason: "cannot read: \(error.localizedDescription)")
            }
        }
        let json = try object(file)
        guard let model = json["model"] as? [String: Any], (model["type"] as? String ?? "BPE") == "BPE",
              let vocab = model["vocab"] as? [String: Int] else {
            throw ModelLoadError.io(file: file.path, reason: "only byte-level BPE tokenizers (model.type BPE with a vocab) can be exported to GGUF")
        }
        var tokens: [String: Int] = vocab
        var kinds: [Int: Int32] = [:]
        for item in json["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = item["id"] as? Int, let content = item["content"] as? String else { continue }
            tokens[content] = id
            kinds[id] = (item["special"] as? Bool ?? false) ? 3 : 4
        }
        let count = (tokens.values.max() ?? -1) + 1
        var list = (0..<count).map { "[PAD\($0)]" }
        var types = [Int32](repeating: 1, count: count)
        for (token, id) in tokens where id >= 0 { list[id] = token }
        for (id, kind) in kinds where id >= 0 && id < count { types[id] = kind }
        for id in 0..<count where list[id] == "[PAD\(id)]" && tokens[list[id]] == nil { types[id] = 5 }  // unused
        let merges: [String] = (model["merges"] as? [Any] ?? []).compactMap { item in
            if let line = item as? String { return line }
            if let pair = item as? [String], pair.count == 2 { return pair[0] + " " + pair[1] }
            return nil
        }
        let pre = try preTokenizerName(json["pre_tokenizer"], file: file.path)
        var out: [(String, GGUFTypedValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .strings(list)), ("tokenizer.ggml.token_type", .i32s(types)),
            ("tokenizer.ggml.merges", .strings(merges)),
        ]
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try object(configURL) : [:]
        func role(_ key: String) -> Int? {
            let value = config[key]
            let text = (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
            return text.flatMap { tokens[$0] }
        }
        for (key, ggml) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("pad_token", "padding_token_id"), ("unk_token", "unknown_token_id")] {
            if let id = role(key) { out.append(("tokenizer.ggml.\(ggml)", .u32(UInt32(id)))) }
        }
        if let add = config["add_bos_token"] as? Bool { out.append(("tokenizer.ggml.add_bos_token", .bool(add))) }
        let jinja = directory.appendingPathComponent("chat_template.jinja")
        if let template = try? String(contentsOf: jinja, encoding: .utf8) {
            out.append(("tokenizer.chat_template", .string(template)))
        } else if let template = config["chat_template"] as? String {
            out.append(("tokenizer.chat_template", .string(template)))
        }
        return out
    }

    /// llama.cpp's `tokenizer.ggml.pre` name for a tokenizer.json pre-tokenizer Nudge can read back.
    static func preTokenizerName(_ pre: Any?, file: String) throws -> String {
        // The steps of a (possibly nested) Sequence as (type, Split regex).
        func steps(_ value: Any?) -> [(String, String?)] {
            guard let object = value as? [String: Any], let type = object["type"] as? String else { return [] }
            if type == "Sequence" { return (object["pretokenizers"] as? [Any] ?? []).flatMap(steps) }
            return [(type, (object["pattern"] as? [String: Any])?["Regex"] as? String)]
        }
        let list = steps(pre)
        let regexes = list.compactMap(\.1)
        if list.contains(where: { $0.0 == "Digits" }) || regexes.contains("\\p{N}") { return "smollm" }
        if regexes.contains(where: { $0.contains("\\p{N}{1,3}") }) { return "llama-bpe" }
        if regexes.contains(where: { $0.contains("\\p{N}|") }) { return "qwen2" }
        if list.map(\.0) == ["ByteLevel"] { return "default" }
        throw ModelLoadError.io(file: file, reason: "its pre_tokenizer is not one GGUF export knows (GPT-2, SmolLM, Llama 3, Qwen2)")
    }

    /// Writes tokenizer.json and tokenizer_config.json (role tokens, chat template) for a GGUF file's
    /// tokenizer into a Hugging Face model directory.
    public static func writeTokenizerFiles(from file: GGUFFile, to directory: URL) throws {
        let (json, roles) = try GGUFTokenizer.tokenizerJSON(file)
        try json.write(to: directory.appendingPathComponent("tokenizer.json"), options: .atomic)
        var config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false]
        if let bos = roles.bos { config["bos_token"] = bos }
        if let eos = roles.eos { config["eos_token"] = eos }
        if let pad = roles.pad { config["pad_token"] = pad }
        if let add = try file.bool("tokenizer.ggml.add_bos_token") { config["add_bos_token"] = add }
        if let template = try file.string("tokenizer.chat_template") { config["chat_template"] = template }
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: directory.appendingPathComponent("tokenizer_config.json"), options: .atomic)
    }
}

extension LanguageModelLoader {
    /// Saves `model` as a Hugging Face directory together with the tokenizer of `source` (a model
    /// directory's tokenizer files, or a GGUF file's tokenizer metadata written as tokenizer.json and
    /// tokenizer_config.json), so the saved directory loads, evaluates and exports on its own.
    public static func save(_ model: any CausalLanguageModel, tokenizerFrom source: URL?, to directory: URL) throws {
        try save(model, configJSON: model.configuration.configJSON(), to: directory)
        guard let source else { return }
        if isGGUF(source) {
            try GGUFExport.writeTokenizerFiles(from: try GGUFFile(url: source), to: directory)
            return
        }
        for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"] {
            let from = source.appendingPathComponent(name), to = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: from.path), from.standardizedFileURL != to.standardizedFileURL else { continue }
            try? FileManager.default.removeItem(at: to)
            try FileManager.default.copyItem(at: from, to: to)
        }
    }
}
