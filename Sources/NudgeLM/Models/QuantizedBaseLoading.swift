// Loading a model whose attention and MLP projections will stay frozen under LoRA adapters (QLoRA)
// straight into their quantized form.
//
// Loading in Float32 and quantizing afterwards (`quantizeFrozenBase`) peaks at the random initial
// weights plus a Float32 copy of every projection. Here each projection is read from the file
// (memory-mapped), quantized — or, for a GGUF tensor stored as Q8_0, Q4_1 or BF16 under
// `.fileBlocks`, copied block for block — and its Float32 values dropped before the next one is
// read; the model is then built around the finished `QuantizedLinear`s, so their random Float32
// weights are never allocated either. The other parameters (embeddings, norms, an untied head) are
// read into the model's own tensors one at a time. Every value is the one the Float32 load then
// `quantizeFrozenBase` computes, bit for bit (the quantizers see the same Float32 input).

import Foundation
import NudgeNN
import NudgeTensor

/// How a loader holds a model's frozen attention and MLP projections.
public enum FrozenProjections: Sendable, Equatable {
    /// Quantized to the format from the file's values (what `quantizeFrozenBase(of:to:)` makes).
    case quantized(WeightQuantization)
    /// A GGUF file's own Q8_0, Q4_1 or BF16 blocks; tensors of any other type, and a safetensors
    /// model's, quantized to `fallback` (what `quantizeFrozenBase(of:from:fallback:)` makes).
    case fileBlocks(fallback: WeightQuantization)
}

extension LanguageModelLoader {
    /// Whether `load(path:frozenProjections:)` builds models of `family` with quantized projections
    /// directly (the Llama family); others load in Float32.
    public static func loadsQuantizedProjections(_ family: TransformerConfiguration.Family) -> Bool {
        switch family {
        case .llama, .qwen2, .qwen3, .mistral: true
        case .gpt2, .gemma3: false
        }
    }

    /// A model directory's or GGUF file's model, with every attention and MLP projection a frozen
    /// `QuantizedLinear` held as `frozenProjections` says, and its checked tokenizer. The rest of the
    /// model is Float32 and trainable, as `loadWithTokenizer(path:)` gives it. For a family other
    /// than the Llama family (`loadsQuantizedProjections`) the model is loaded in Float32 as
    /// `loadWithTokenizer(path:)` does; quantize it afterwards with `quantizeFrozenBase`.
    public static func loadWithTokenizer(path url: URL, frozenProjections: FrozenProjections) throws -> (any CausalLanguageModel, any Tokenizer) {
        guard isGGUF(url) else {
            let model = try load(path: url, frozenProjections: frozenProjections)
            return (model, try tokenizer(directory: url, for: model))
        }
        let file = try GGUFFile(url: url)
        return try withGGUFTokenizer(try load(gguf: file, frozenProjections: frozenProjections), file)
    }

    /// The model alone (see `loadWithTokenizer(path:frozenProjections:)`).
    public static func load(path url: URL, frozenProjections: FrozenProjections) throws -> any CausalLanguageModel {
        if isGGUF(url) { return try load(gguf: GGUFFile(url: url), frozenProjections: frozenProjections) }
        let config = try TransformerConfiguration.load(url.appendingPathComponent("config.json"))
        guard loadsQuantizedProjections(config.family) else { return try load(directory: url) }
        return try load(directory: url, config: config, frozenProjections: frozenProjections)
    }

    private static func load(gguf file: GGUFFile, frozenProjections: FrozenProjections) throws -> any CausalLanguageModel {
        let config = try TransformerConfiguration(gguf: file)
        guard loadsQuantizedProjections(config.family) else { return try load(gguf: file) }
        return try load(gguf: file, config: config, frozenProjections: frozenProjections)
    }

    /// A safetensors model of the Llama family with quantized projections (see above).
    static func load(directory: URL, config: TransformerConfiguration, frozenProjections: FrozenProjections) throws -> any CausalLanguageModel {
        let checkpoint = try SafeTensorsCheckpoint(url: directory)
        let format: WeightQuantization
        switch frozenProjections {
        case .quantized(let f): format = f
        case .fileBlocks(let fallback): format = fallback  // safetensors hold no quantized blocks
        }
        /// Tensor `key` converted to Float32 into `target` (of the shape the model expects).
        func fill(_ target: Tensor, from key: String) throws {
            guard let entry = checkpoint.entry(key) else { throw ModuleError.missingKey(key) }
            guard entry.shape == target.shape else { throw ModuleError.shapeMismatch(key: key, expected: target.shape, actual: entry.shape) }
            try checkpoint.read(key, into: UnsafeMutableBufferPointer(start: target.data, count: target.count))
            // The file's pages for it are not needed again: without this the whole mapped file would stay resident.
            checkpoint.releasePages(of: key)
        }
        func read(_ key: String, shape: [Int]) throws -> Tensor {
            let t = Tensor(uninitializedShape: shape)
            try fill(t, from: key)
            return t
        }
        var projections: [String: any LinearLayer] = [:]
        for p in LlamaModel.projectionShapes(config) {
            let weight = try read(p.path + ".weight", shape: [p.outputs, p.inputs])
            try requireQuantizable(p.path, columns: p.inputs, format: format, file: directory)
            projections[p.path] = QuantizedLinear(weight: QuantizedMatrix(quantizing: weight, format: format),
                                                  bias: p.bias ? try read(p.path + ".bias", shape: [p.outputs]) : nil)
        }
        let model = skippingRandomFill { LlamaModel(config, projections: projections) }  // every parameter is filled below
        var known = Set(projections.keys.flatMap { [$0 + ".weight", $0 + ".bias"] })
        for (key, tensor, _) in model.namedParameters() {
            try fill(tensor, from: key)
            known.insert(key)
        }
        if config.tieWordEmbeddings { known.insert("lm_head.weight") }  // a tied head stored anyway is dropped, as `sanitize` does
        if let unused = checkpoint.names.first(where: { !known.contains($0) }) { throw ModuleError.unusedKey(unused) }
        // The Float32 projection buffers just quantized would otherwise stay in the buffer pool.
        BufferPool.trim()
        return model
    }

    /// A GGUF model of the Llama family with quantized projections (see above).
    static func load(gguf file: GGUFFile, config: TransformerConfiguration, frozenProjections: FrozenProjections) throws -> any CausalLanguageModel {
        var stored: [String: GGUFTensorInfo] = [:]
        for info in file.tensors { if let key = GGUFWeights.key(info.name, family: config.family) { stored[key] = info } }
        func info(_ key: String, shape: [Int]) throws -> GGUFTensorInfo {
            guard let info = stored[key] else {
                throw ModelLoadError.io(file: file.url.path, reason: "no tensor for \(key) (\(GGUFExport.ggmlName(key, family: config.family) ?? "?") in ggml's names)")
            }
            guard info.shape == shape else { throw ModuleError.shapeMismatch(key: key, expected: shape, actual: info.shape) }
            return info
        }
        var projections: [String: any LinearLayer] = [:]
        var projectionKeys = Set<String>()
        for p in LlamaModel.projectionShapes(config) {
            let weightInfo = try info(p.path + ".weight", shape: [p.outputs, p.inputs])
            var matrix: QuantizedMatrix? = nil
            let format: WeightQuantization
            switch frozenProjections {
            case .quantized(let f): format = f
            case .fileBlocks(let fallback):
                format = fallback
                matrix = GGUFWeights.storedMatrix(file, weightInfo, config: config)
            }
            if matrix == nil {
                try requireQuantizable(p.path, columns: p.inputs, format: format, file: file.url)
                matrix = QuantizedMatrix(quantizing: GGUFWeights.tensor(file, weightInfo, config: config), format: format)
            }
            let bias = p.bias ? GGUFWeights.tensor(file, try info(p.path + ".bias", shape: [p.outputs]), config: config) : nil
            projections[p.path] = QuantizedLinear(weight: matrix!, bias: bias)
            projectionKeys.insert(p.path + ".weight")  // a bias stays a (frozen) parameter, read again below
        }
        let model = skippingRandomFill { LlamaModel(config, projections: projections) }  // every parameter is filled below
        try assignGGUFTensors(file, config: config, to: model, skipping: projectionKeys)
        BufferPool.trim()
        return model
    }

    /// Refuses a projection Q4_1 cannot hold (columns not a whole number of blocks), naming it.
    private static func requireQuantizable(_ path: String, columns: Int, format: WeightQuantization, file: URL) throws {
        guard QuantizedMatrix.canQuantize(columns: columns, to: format) else {
            throw ModelLoadError.io(file: file.path, reason: "\(path) has \(columns) inputs; \(format.rawValue) needs a multiple of \(QuantizedMatrix.blockSize)")
        }
    }
}

extension GGUFWeights {
    /// Tensor `info` as a Float32 tensor in transformers' layout (dequantized and, for llama-arch q/k,
    /// un-permuted), as `forEach` gives it. Not for Gemma 3 norms (stored as 1 + w).
    static func tensor(_ file: GGUFFile, _ info: GGUFTensorInfo, config: TransformerConfiguration) -> Tensor {
        var values = file.floats(info)
        if let heads = permutedHeads(info.name, config: config) {
            values = reorderRotaryRows(values, rows: info.shape[0], heads: heads, toGGML: false)
        }
        return Tensor(shape: info.shape, values: values)
    }

    /// A 2-D tensor stored as Q8_0, Q4_1 or BF16, as the file's own blocks with rows in transformers'
    /// order; nil for another type.
    static func storedMatrix(_ file: GGUFFile, _ info: GGUFTensorInfo, config: TransformerConfiguration) -> QuantizedMatrix? {
        guard info.shape.count == 2 else { return nil }
        let format: WeightQuantization
        switch info.type {
        case .q8_0: format = .q8_0
        case .q4_1: format = .q4_1
        case .bf16: format = .bf16
        default: return nil
        }
        // llama.cpp's converter permuted llama-arch q/k rows; reading row gg for transformers' row hf undoes it.
        var order: [Int]? = nil
        if let heads = permutedHeads(info.name, config: config) {
            order = reorderRotaryRows((0..<info.shape[0]).map(Float.init), rows: info.shape[0], heads: heads, toGGML: false).map { Int($0) }
        }
        return file.withStoredBytes(info) {
            QuantizedMatrix(ggufBlocks: $0, format: format, rows: info.shape[0], columns: info.shape[1], rowOrder: order)
        }
    }
}
