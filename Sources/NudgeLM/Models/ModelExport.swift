// Models written to disk: a fresh preset (`nudge lm init`), and a model written elsewhere (`nudge lm
// export`): loaded from a Hugging Face directory or a GGUF file, with a LoRA adapter merged when
// given, then written as a GGUF file (llama.cpp, Ollama, transformers) or a Hugging Face directory.
// The tokenizer and chat template travel with the weights: from the source GGUF's metadata, or
// from the files beside a model directory.

import Foundation
import NudgeNN

/// A loaded model to write as a GGUF file or a Hugging Face directory, with its source's tokenizer.
public struct ModelExport {
    /// Where the model was loaded from: a model directory or a .gguf file.
    public let source: URL
    /// The model (with any merged adapter).
    public let model: any CausalLanguageModel
    private let gguf: GGUFFile?

    /// The storage types GGUF export writes matrices in, by name: f32, f16, bf16 and q8_0.
    public static let types: [String: GGMLType] = ["f32": .f32, "f16": .f16, "bf16": .bf16, "q8_0": .q8_0]

    /// Loads the model at `source`, a Hugging Face model directory or a .gguf file.
    public init(source: URL) throws {
        self.source = source
        gguf = LanguageModelLoader.isGGUF(source) ? try GGUFFile(url: source) : nil
        model = try gguf.map { try LanguageModelLoader.load(gguf: $0) } ?? LanguageModelLoader.load(directory: source)
    }

    /// Merges the PEFT LoRA adapter in `directory` (adapter_config.json, adapter_model.safetensors)
    /// into the weights, as PEFT's merge_and_unload does; returns the number of layers merged.
    public func mergeAdapter(from directory: URL) throws -> Int {
        try mergeLoRAAdapter(into: model, from: directory)
    }

    /// Checks that the model can be written to `destination`: a GGUF file needs a tokenizer, which a
    /// model directory has only with a tokenizer.json.
    ///
    /// - Throws: `ModelLoadError` naming the source when it has no tokenizer for a GGUF file.
    public func check(destination: URL) throws {
        guard LanguageModelLoader.isGGUF(destination), gguf == nil,
              !FileManager.default.fileExists(atPath: source.appendingPathComponent("tokenizer.json").path) else { return }
        throw ModelLoadError.io(file: source.path, reason: "no tokenizer.json; a GGUF file needs its tokenizer (llama.cpp cannot load one without it)")
    }

    /// Writes the model to `destination`: a GGUF file when it ends in .gguf, with matrices stored as
    /// `type` (f32, f16, bf16 or q8_0; norms and biases stay f32) and general.name `name` (default:
    /// the source's name), else a Hugging Face directory; the tokenizer goes with it either way.
    public func write(to destination: URL, type: GGMLType = .f16, name: String? = nil) throws {
        guard LanguageModelLoader.isGGUF(destination) else {
            return try LanguageModelLoader.save(model, tokenizerFrom: source, to: destination)
        }
        try check(destination: destination)
        let tokenizer = try gguf.map { GGUFExport.tokenizerMetadata(from: $0) } ?? GGUFExport.tokenizerMetadata(directory: source)
        try GGUFExport.write(model, tokenizer: tokenizer, name: name ?? source.deletingPathExtension().lastPathComponent, type: type, to: destination)
    }
}

extension LanguageModelLoader {
    /// Writes a freshly initialized model of `preset` (tiny, S or M) as a Hugging Face directory, its
    /// vocabulary `vocabularySize` (default: the byte tokenizer's, so it trains without a
    /// tokenizer.json); returns the model, or nil for an unknown preset.
    public static func writeFreshModel(preset: String, vocabularySize: Int? = nil, seed: UInt64 = 0, to directory: URL) throws -> LlamaModel? {
        guard let config = TransformerConfiguration.preset(preset, vocabularySize: vocabularySize ?? byteTokenizer.vocabularySize) else { return nil }
        let model = LlamaModel(config, seed: seed)
        try save(model, configJSON: config.configJSON(), to: directory)
        return model
    }
}
