// Models read from GGUF files as llama.cpp's converter writes them (Fixtures/gguf, written by
// scripts/make_gguf_fixtures.py from the tiny transformers fixtures): the same logits as
// transformers gives for the original checkpoint, so names, layouts and llama's Q/K row
// permutation are all undone correctly.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("GGUF models") struct GGUFModelTests {
    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: "gguf", subdirectory: "Fixtures/gguf"))
    }

    @Test(arguments: ["llama", "qwen2", "qwen3"])
    func logitsMatchTransformers(_ name: String) throws {
        let model = try LanguageModelLoader.load(path: try Self.fixture(name))
        let original = try LanguageModelLoader.load(directory: try lmFixture(name))
        #expect(model.configuration.family == original.configuration.family)
        #expect(model.configuration.tieWordEmbeddings == original.configuration.tieWordEmbeddings)
        #expect(model.configuration.attentionBias == original.configuration.attentionBias)
        #expect(model.configuration.headDimension == original.configuration.headDimension)
        #expect(model.configuration.ropeTheta == original.configuration.ropeTheta)
        let expected = try SafeTensorsFile(url: try lmFixture(name).appendingPathComponent("expected.safetensors"))
        let ids = try expected.int64s("input_ids").map(Int.init)
        let shape = try #require(expected.entry("input_ids")).shape
        let batch = TokenBatch(ids: (0..<shape[0]).map { Array(ids[($0 * shape[1])..<(($0 + 1) * shape[1])]) })
        let logits = withoutGradients { model(batch) }
        let diff = maxAbsDifference(logits.scalars, try expected.floats("logits"))
        #expect(diff < 1e-4, "\(name).gguf: max |Δlogits| = \(diff)")
    }

    /// The Qwen3 directory fixture exported by Nudge (arch qwen3, attn_q_norm/attn_k_norm, key_length
    /// 32 since head_dim·heads ≠ hidden) reads back to the same configuration and bit-identical logits.
    @Test func qwen3DirectoryExportsAndReloads() throws {
        let model = try LanguageModelLoader.load(directory: try lmFixture("qwen3"))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-qwen3-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try GGUFExport.write(model, tokenizer: [], name: nil, type: .f32, to: url)
        let written = try GGUFFile(url: url)
        #expect(try written.string("general.architecture") == "qwen3")
        #expect(try written.int("qwen3.attention.key_length") == 32 && written.int("qwen3.attention.value_length") == 32)
        #expect(written.tensor("blk.1.attn_q_norm.weight")?.shape == [32] && written.tensor("blk.1.attn_k_norm.weight") != nil)
        let reloaded = try LanguageModelLoader.load(gguf: written)
        var expected = model.configuration
        (expected.maxPositions, expected.bosTokenID, expected.eosTokenID, expected.padTokenID) = (reloaded.configuration.maxPositions, nil, nil, nil)
        #expect(reloaded.configuration == expected)
        let batch = TokenBatch(ids: [[1, 5, 9, 2, 7, 7, 3, 0], [4, 4, 8, 1, 6, 2, 9, 5]])
        #expect(withoutGradients { model(batch).scalars } == withoutGradients { reloaded(batch).scalars })
    }

    /// Llama 3.1's RoPE scaling: the divisors Nudge derives from config.json equal llama.cpp's
    /// converter's rope_freqs (the fixture script's copy of its formula); exported as
    /// rope_freqs.weight, read back to the same logits, and written back to config.json.
    @Test func llama3RopeScalingTravelsThroughGGUF() throws {
        let dir = try lmFixture("llama31")
        let model = try LanguageModelLoader.load(directory: dir)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("rope_freqs.json"))) as! [Double]
        let divisors = try #require(model.configuration.ropeFrequencyDivisors)
        #expect(divisors.count == expected.count)
        for (a, b) in zip(divisors, expected) { #expect(Swift.abs(Double(a) - b) <= 1e-6 * b, "\(a) vs \(b)") }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-llama31-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try GGUFExport.write(model, tokenizer: [], name: nil, type: .f32, to: url)
        let written = try GGUFFile(url: url)
        #expect(try written.floats("rope_freqs.weight") == divisors)
        let reloaded = try LanguageModelLoader.load(gguf: written)
        #expect(reloaded.configuration.ropeFrequencyDivisors == divisors)
        #expect(reloaded.configuration.llama3RopeScaling == model.configuration.llama3RopeScaling)
        let batch = TokenBatch(ids: [[1, 5, 9, 2, 7, 7, 3, 0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]])
        #expect(withoutGradients { model(batch).scalars } == withoutGradients { reloaded(batch).scalars })
        // config.json written from the GGUF-loaded model carries the scaling again.
        let config = try JSONSerialization.jsonObject(with: reloaded.configuration.configJSON()) as! [String: Any]
        let scaling = try #require(config["rope_scaling"] as? [String: Any])
        #expect(scaling["rope_type"] as? String == "llama3" && scaling["factor"] as? Double == 8)
        #expect(scaling["original_max_position_embeddings"] as? Double == 32 || scaling["original_max_position_embeddings"] as? Int == 32)
    }

    /// rope_freqs that no Llama 3 parameters reproduce still run, but a Hugging Face save refuses
    /// them (config.json could not describe them) instead of writing an unscaled config.
    @Test func unusualRopeFrequenciesAreNotSavedAsAnUnscaledConfig() throws {
        var config = try LanguageModelLoader.load(directory: try lmFixture("llama31")).configuration
        config.ropeFrequencyDivisors = [1, 1.7, 2.9, 5, 6.5, 7, 7.5, 8]
        #expect(Llama3RopeScaling.inferred(from: config.ropeFrequencyDivisors!, dimension: config.headDimension, theta: Double(config.ropeTheta)) == nil)
        config.llama3RopeScaling = nil
        let model = LlamaModel(config)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-rope-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        #expect(throws: CheckpointError.self) { try LanguageModelLoader.save(model, configJSON: config.configJSON(), to: out) }
    }

    @Test func unpermuteInvertsLlamaCppsPermute() {
        // llama.cpp: reshape(heads, 2, d/2, cols).swapaxes(1, 2) — row h·d + s·d/2 + i goes to h·d + 2i + s.
        let heads = 2, d = 6, columns = 3, rows = heads * d
        let original = (0..<(rows * columns)).map(Float.init)
        var permuted = [Float](repeating: 0, count: original.count)
        for h in 0..<heads { for s in 0..<2 { for i in 0..<(d / 2) { for c in 0..<columns {
            permuted[(h * d + 2 * i + s) * columns + c] = original[(h * d + s * d / 2 + i) * columns + c]
        } } } }
        #expect(GGUFWeights.unpermute(permuted, rows: rows, heads: heads) == original)
    }

    @Test func tokenizerFromMetadata() throws {
        let (model, tokenizer) = try LanguageModelLoader.loadWithTokenizer(path: try Self.fixture("tiny_tokenizer"))
        #expect(model.configuration.layerCount == 1 && model.configuration.tieWordEmbeddings)
        #expect(tokenizer.vocabularySize == 269)
        // smollm pre-tokenizer: digits one by one, then GPT-2's split; merges give "hello" and "Ġworld".
        #expect(tokenizer.encode("hello world", addSpecialTokens: false) == [262, 267])
        #expect(tokenizer.encode("<|im_start|>hello<tool>", addSpecialTokens: false) == [1, 262, 268])
        #expect(tokenizer.encode("12", addSpecialTokens: false) == [3 + 0x31, 3 + 0x32])  // the byte alphabet follows the specials, in byte order
        #expect(tokenizer.decode([1, 262, 267, 2], skipSpecialTokens: true) == "hello world")
        #expect(tokenizer.eosTokenID == 2)
        let info = try LanguageModelLoader.info(gguf: try GGUFFile(url: try Self.fixture("tiny_tokenizer")))
        #expect(info.chatTemplate?.hasPrefix("{% for m in messages %}") == true)
        #expect(info.bosToken == "<|endoftext|>" && info.eosToken == "<|im_end|>")
    }

    @Test func modelWithoutTokenizerMetadataSaysSo() throws {
        let url = try Self.fixture("llama")
        #expect(throws: GGUFError.missingKey(file: url.path, key: "tokenizer.ggml.model")) {
            _ = try LanguageModelLoader.loadWithTokenizer(path: url)
        }
    }

    /// Exports the fixture and reads it back: F32 gives the same logits, F16 and Q8_0 close ones, and
    /// the tokenizer and chat template travel with the weights.
    @Test(arguments: [("llama", GGMLType.f32, Float(1e-6)), ("qwen2", .f32, 1e-6), ("qwen3", .f32, 0), ("llama", .f16, 2e-2), ("tiny_tokenizer", .q8_0, 2e-2)])
    func exportRoundTrip(_ name: String, _ type: GGMLType, _ tolerance: Float) throws {
        let source = try GGUFFile(url: try Self.fixture(name))
        let model = try LanguageModelLoader.load(gguf: source)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-export-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try GGUFExport.write(model, tokenizer: GGUFExport.tokenizerMetadata(from: source), name: "round trip", type: type, to: url)
        let written = try GGUFFile(url: url)
        #expect(try written.string("general.name") == "round trip")
        let reloaded = try LanguageModelLoader.load(gguf: written)
        #expect(reloaded.configuration == model.configuration)
        let ids = [[1, 5, 9, 2, 7, 7, 3, 0], [4, 4, 8, 1, 6, 2, 9, 5]]
        let a = withoutGradients { model(TokenBatch(ids: ids)) }, b = withoutGradients { reloaded(TokenBatch(ids: ids)) }
        let diff = maxAbsDifference(a.scalars, b.scalars)
        #expect(diff <= tolerance, "\(name) as \(type.name): max |Δlogits| \(diff)")
        if name == "tiny_tokenizer" {
            #expect(try written.string("tokenizer.chat_template") == source.string("tokenizer.chat_template"))
            let t1 = try GGUFTokenizer.make(source), t2 = try GGUFTokenizer.make(written)
            #expect(t2.encode("<|im_start|>hello world 42", addSpecialTokens: false) == t1.encode("<|im_start|>hello world 42", addSpecialTokens: false))
        }
    }
}
