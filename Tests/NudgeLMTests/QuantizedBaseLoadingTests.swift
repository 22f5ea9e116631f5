// Loading a QLoRA base straight into its quantized form (`loadWithTokenizer(path:frozenProjections:)`)
// against today's path (load Float32, freeze, apply LoRA, `quantizeFrozenBase`): the same model bit
// for bit — every quantized base, every parameter, the logits — for safetensors (F32 and BF16
// files) and GGUF (F32 tensors quantized here; Q8_0 and BF16 blocks copied; the real SmolLM2's Q4_1
// blocks when present), in each format. And the Q4_1 quantizer against gguf-py's (llama.cpp's).

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

private let batch = TokenBatch(ids: [[1, 5, 9, 200, 3, 7, 42], [2, 8, 100, 4, 6, 11, 250]])

private func fixture(_ name: String) throws -> URL {
    try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/lm"))
}

private func ggufFixture(_ name: String) throws -> URL {
    try #require(Bundle.module.url(forResource: name, withExtension: "gguf", subdirectory: "Fixtures/gguf"))
}

private func temporary(_ suffix: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("nudge-qload-\(UUID().uuidString)\(suffix)")
}

/// Adapters on q_proj and v_proj (the other projections stay plain frozen layers), B made non-zero
/// from a fixed seed so the adapters count in the logits.
private func adapt(_ model: any CausalLanguageModel) throws {
    model.freeze()
    try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, dropout: 0.1, targetModules: ["q_proj", "v_proj"], seed: 9))
    var rng = RandomGenerator(seed: 3)
    for (_, layer) in loraLayers(in: model) { layer.loraB.weight.assign(Tensor.normal(layer.loraB.weight.shape, std: 0.1, using: &rng)) }
}

/// Today's path: the Float32 model, adapted, then its frozen base quantized.
private func loadedThenQuantized(_ url: URL, _ frozen: FrozenProjections) throws -> any CausalLanguageModel {
    let model = try LanguageModelLoader.load(path: url)
    try adapt(model)
    switch frozen {
    case .quantized(let format): quantizeFrozenBase(of: model, to: format)
    case .fileBlocks(let fallback): quantizeFrozenBase(of: model, from: try GGUFFile(url: url), fallback: fallback)
    }
    return model
}

/// Every projection's quantized weight (LoRA base or plain frozen layer) by path, dequantized.
private func quantizedBases(_ model: Module) -> [String: (WeightQuantization, [Float], [Float]?)] {
    var out: [String: (WeightQuantization, [Float], [Float]?)] = [:]
    func walk(_ module: Module, _ prefix: String) {
        for (key, child) in module.items().children {
            if let lora = child as? LoRALinear, let base = lora.quantizedBase {
                out[prefix + key] = (base.format, base.dequantized().scalars, lora.bias?.scalars)
            } else if let layer = child as? QuantizedLinear {
                out[prefix + key] = (layer.quantizedWeight.format, layer.quantizedWeight.dequantized().scalars, layer.bias?.scalars)
            } else {
                walk(child, prefix + key + ".")
            }
        }
    }
    walk(model, "")
    return out
}

/// Bit-identical models: the same quantized bases (format, values, bias), the same parameters in
/// the same order, the same logits.
private func expectIdentical(_ a: any CausalLanguageModel, _ b: any CausalLanguageModel, _ label: String) {
    let qa = quantizedBases(a), qb = quantizedBases(b)
    #expect(qa.count == 7 * a.configuration.layerCount, "\(label): \(qa.count) quantized projections")
    #expect(Set(qa.keys) == Set(qb.keys), "\(label)")
    for (path, (format, values, bias)) in qa {
        guard let other = qb[path] else { continue }
        #expect(format == other.0, "\(label) \(path): \(format) vs \(other.0)")
        #expect(values.map(\.bitPattern) == other.1.map(\.bitPattern), "\(label) \(path): quantized values differ")
        #expect(bias?.map(\.bitPattern) == other.2?.map(\.bitPattern), "\(label) \(path): bias differs")
    }
    let pa = a.parameters(), pb = b.parameters()
    #expect(pa.keys == pb.keys, "\(label): parameter keys")
    for (key, tensor) in pa {
        #expect(tensor.scalars.map(\.bitPattern) == pb[key]?.scalars.map(\.bitPattern), "\(label) \(key)")
    }
    #expect(a.trainableParameters().keys == b.trainableParameters().keys, "\(label): trainable keys")
    let la = withoutGradients { a(batch).scalars }, lb = withoutGradients { b(batch).scalars }
    #expect(la.map(\.bitPattern) == lb.map(\.bitPattern), "\(label): logits differ")
}

/// A Qwen2-shaped fixture (biases, tied embedding) with every projection's inputs a whole number of
/// Q4_1 blocks, saved as safetensors of `dtype`.
private func blockShapedQwen2(dtype: SafeTensorsDType) throws -> URL {
    let source = try fixture("qwen2").appendingPathComponent("config.json")
    var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as? [String: Any])
    json["intermediate_size"] = 128
    let directory = temporary("")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let configURL = directory.appendingPathComponent("config.json")
    try JSONSerialization.data(withJSONObject: json).write(to: configURL)
    let model = LlamaModel(try TransformerConfiguration.load(configURL), seed: 5)
    try Checkpoint.save(NamedTensors(model.parameters().map { ($0.0, $0.1) }), to: directory.appendingPathComponent("model.safetensors"), dtype: dtype)
    return directory
}

@Suite("QLoRA: a base loaded straight into quantized form") struct QuantizedBaseLoadingTests {
    @Test(arguments: [WeightQuantization.q8_0, .bf16])
    func safetensorsF32MatchesLoadingThenQuantizing(_ format: WeightQuantization) throws {
        for name in ["llama", "qwen2"] {
            let url = try fixture(name)
            let model = try LanguageModelLoader.load(path: url, frozenProjections: .quantized(format))
            try adapt(model)
            expectIdentical(model, try loadedThenQuantized(url, .quantized(format)), "\(name) \(format)")
        }
    }

    @Test(arguments: [WeightQuantization.q8_0, .q4_1, .bf16])
    func safetensorsBF16MatchesLoadingThenQuantizing(_ format: WeightQuantization) throws {
        let url = try blockShapedQwen2(dtype: .bf16)
        defer { try? FileManager.default.removeItem(at: url) }
        let model = try LanguageModelLoader.load(path: url, frozenProjections: .quantized(format))
        try adapt(model)
        expectIdentical(model, try loadedThenQuantized(url, .quantized(format)), "bf16 qwen2 \(format)")
    }

    @Test(arguments: ["llama", "qwen2", "qwen3"])
    func ggufF32TensorsMatchLoadingThenQuantizing(_ name: String) throws {
        let url = try ggufFixture(name)
        for frozen in [FrozenProjections.quantized(.q8_0), .quantized(.bf16), .fileBlocks(fallback: .q8_0)] {
            let model = try LanguageModelLoader.load(path: url, frozenProjections: frozen)
            try adapt(model)
            expectIdentical(model, try loadedThenQuantized(url, frozen), "\(name) \(frozen)")
        }
    }

    /// Files whose projections are stored as Q8_0 or BF16 blocks (llama-arch: q/k rows permuted):
    /// `.fileBlocks` keeps them as stored, `.quantized` re-quantizes the dequantized values, both as today.
    @Test(arguments: [GGMLType.q8_0, .bf16])
    func ggufBlocksMatchLoadingThenQuantizing(_ type: GGMLType) throws {
        let url = temporary(".gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try GGUFExport.write(try LanguageModelLoader.load(gguf: GGUFFile(url: try ggufFixture("llama"))), tokenizer: [], name: nil, type: type, to: url)
        for frozen in [FrozenProjections.fileBlocks(fallback: .q8_0), .quantized(.q8_0), .quantized(.bf16)] {
            let model = try LanguageModelLoader.load(path: url, frozenProjections: frozen)
            try adapt(model)
            let reference = try loadedThenQuantized(url, frozen)
            expectIdentical(model, reference, "\(type.name) \(frozen)")
            if frozen == .fileBlocks(fallback: .q8_0) {
                #expect(quantizedBases(model).values.allSatisfy { $0.0 == (type == .q8_0 ? .q8_0 : .bf16) })
            }
        }
    }

    @Test func q4_1NeedsWholeBlocksAndSaysWhichProjectionHasNone() throws {
        // The llama fixture's down_proj has 176 inputs.
        let url = try fixture("llama")
        #expect(throws: ModelLoadError.io(file: url.path, reason: "model.layers.0.mlp.down_proj has 176 inputs; q4_1 needs a multiple of 32")) {
            _ = try LanguageModelLoader.load(path: url, frozenProjections: .quantized(.q4_1))
        }
    }

    @Test func projectionsAreNeverFloat32AndTheRestMatches() throws {
        let url = try fixture("qwen2")
        let model = try LanguageModelLoader.load(path: url, frozenProjections: .quantized(.q8_0))
        let float = try LanguageModelLoader.load(path: url)
        // Every parameter but the projections' weights (their biases stay parameters, frozen, as
        // `quantizeFrozenBase` leaves them); only the embeddings and norms train.
        let projections = LlamaModel.projectionShapes(float.configuration).map(\.path)
        #expect(model.parameters().keys == float.parameters().keys.filter { key in !projections.contains { key == $0 + ".weight" } })
        #expect(model.trainableParameters().keys == float.parameters().keys.filter { key in !projections.contains { key.hasPrefix($0 + ".") } })
    }

    /// Released pages of a mapped file read back the same values (the kernel reloads them from the file),
    /// the tensor's own and its neighbours' (which may share an edge page).
    @Test func releasedPagesReadBackTheSameValues() throws {
        let url = temporary(".safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        var rng = RandomGenerator(seed: 1)
        let tensors = (0..<3).map { i in ("t\(i)", Tensor.normal([37 + i, 301], std: 1, using: &rng)) }
        try Checkpoint.save(NamedTensors(tensors), to: url)
        let file = try SafeTensorsFile(url: url)
        for (name, tensor) in tensors {
            #expect(try file.floats(name) == tensor.scalars)
            file.releasePages(of: name)
        }
        for (name, tensor) in tensors.reversed() {
            #expect(try file.floats(name) == tensor.scalars)
            file.releasePages(of: name)
            #expect(try file.floats(name) == tensor.scalars)
        }
    }

    /// Nudge's Q4_1 quantizer makes gguf-py's blocks (llama.cpp's `quantize_row_q4_1_ref`;
    /// Fixtures/gguf/q4_1_fixture.py), including a constant block (d = 0).
    @Test func q4_1QuantizerMatchesLlamaCpp() throws {
        let file = try GGUFFile(url: try ggufFixture("q4_1"))
        let values = try #require(file.tensor("values")), blocks = try #require(file.tensor("blocks"))
        #expect(blocks.type == .q4_1)
        let mine = QuantizedMatrix(quantizing: Tensor(shape: values.shape, values: file.floats(values)), format: .q4_1)
        let theirs = try #require(file.withStoredBytes(blocks) { QuantizedMatrix(ggufBlocks: $0, format: .q4_1, rows: 6, columns: 128) })
        #expect(mine.dequantized().scalars.map(\.bitPattern) == theirs.dequantized().scalars.map(\.bitPattern))
        #expect(mine.byteCount == theirs.byteCount)
    }

    @Test(.enabled(if: RealModel.available, "set NUDGE_SMOLLM2_GGUF to run the real-model tests"))
    func realQ4_1FileBlocksMatchLoadingThenQuantizing() throws {
        let url = try #require(RealModel.path)
        let model = try LanguageModelLoader.load(path: url, frozenProjections: .fileBlocks(fallback: .q8_0))
        try adapt(model)
        expectIdentical(model, try loadedThenQuantized(url, .fileBlocks(fallback: .q8_0)), "SmolLM2 gguf blocks")
        #expect(quantizedBases(model).values.contains { $0.0 == .q4_1 })
    }
}
