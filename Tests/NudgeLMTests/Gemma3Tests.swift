// Gemma 3 text beyond the shared parity tests: final-logit soft-capping against transformers, the
// configuration read from both transformers spellings and written back, cached decoding past the
// sliding window (chunked prefill, left padding) against the uncached forward, LoRA through the
// (1 + w) norms, and GGUF export/reload (llama.cpp's gemma3 names, gains stored as 1 + w).

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Gemma 3") struct Gemma3Tests {
    private func load() throws -> Gemma3Model {
        try #require(try LanguageModelLoader.load(directory: lmFixture("gemma3")) as? Gemma3Model)
    }

    @Test func finalLogitSoftcappingMatchesTransformers() throws {
        let dir = try lmFixture("gemma3")
        let loaded = try load()
        var c = loaded.configuration
        c.finalLogitSoftcap = 10
        let model = Gemma3Model(c)
        try model.update(parameters: loaded.parameters())
        let expected = try SafeTensorsFile(url: dir.appendingPathComponent("expected.safetensors"))
        let ids = try expected.int64s("input_ids").map(Int.init)
        let batch = TokenBatch(ids: [Array(ids[0..<16]), Array(ids[16..<32])])
        let diff = maxAbsDifference(withoutGradients { model(batch) }.scalars, try expected.floats("softcap.logits"))
        #expect(diff < 1e-4, "max |Δ softcapped logits| = \(diff)")
    }

    @Test func configurationReadsAndWritesBack() throws {
        let c = try load().configuration
        #expect(c.family == .gemma3 && c.queryKeyNorm && c.headDimension == 32 && c.keyValueHeadCount == 2 && c.tieWordEmbeddings)
        #expect(c.slidingLayers == [true, true, true, false] && c.slidingWindow == 8 && c.queryPreAttentionScalar == 32)
        #expect(c.ropeTheta == 1_000_000 && c.ropeScalingFactor == 8 && c.localRopeTheta == 10_000 && c.localRopeScalingFactor == 1)
        #expect(c.finalLogitSoftcap == nil && c.activation == "gelu_pytorch_tanh" && c.architectureName == "Gemma3ForCausalLM")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("gemma3-cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let url = out.appendingPathComponent("config.json")
        try c.configJSON().write(to: url)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        #expect(json["architectures"] as? [String] == ["Gemma3ForCausalLM"] && json["model_type"] as? String == "gemma3_text")
        #expect(try TransformerConfiguration.load(url) == c)
        // transformers 4's spelling: rope_theta, rope_local_base_freq, rope_scaling, sliding_window_pattern.
        let old = #"{"model_type": "gemma3_text", "vocab_size": 8, "hidden_size": 16, "intermediate_size": 8, "num_hidden_layers": 7, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "rope_theta": 1000000, "rope_local_base_freq": 10000, "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "sliding_window_pattern": 6, "sliding_window": 512, "final_logit_softcapping": 30.0, "attn_logit_softcapping": null}"#
        try Data(old.utf8).write(to: url)
        let o = try TransformerConfiguration.load(url)
        #expect(o.slidingLayers == [true, true, true, true, true, false, true] && o.slidingWindow == 512 && o.ropeScalingFactor == 8)
        #expect(o.localRopeTheta == 10_000 && o.ropeTheta == 1_000_000 && o.finalLogitSoftcap == 30 && o.queryPreAttentionScalar == 256)
        try Data(old.replacingOccurrences(of: "\"linear\"", with: "\"yarn\"").utf8).write(to: url)
        #expect(throws: ModelLoadError.unsupported(file: url.path, field: "rope_scaling.rope_type", value: "yarn")) { try TransformerConfiguration.load(url) }
    }

    /// Left-padded rows, a prompt prefilled in two chunks, then one token at a time to 20 keys
    /// (window 8): every step's logits equal the uncached forward's at that position.
    @Test func cachedDecodingPastTheWindowEqualsUncachedForward() throws {
        let model = try load()
        let rows = [[3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 33, 83, 27, 95, 2, 88],
                    [0, 0, 0, 7, 1, 200, 45, 9, 18, 28, 180, 61, 33, 98, 77, 12, 5, 250, 64, 19]]
        let mask = [Array(repeating: true, count: 20), Array(repeating: false, count: 3) + Array(repeating: true, count: 17)]
        let full = TokenBatch(ids: rows, attentionMask: mask)
        let reference = withoutGradients { model(full) }
        let v = reference.shape[2]
        let cache = KVCache(layers: model.configuration.layerCount)
        var steps: [Range<Int>] = [0..<5, 5..<11]
        steps += (11..<20).map { $0..<($0 + 1) }
        for range in steps {
            let step = TokenBatch(ids: rows.map { Array($0[range]) }, positions: full.positions.map { Array($0[range]) },
                                  attentionMask: mask.map { Array($0[0..<range.upperBound]) })
            let logits = withoutGradients { model.forward(step, cache: cache) }
            for r in 0..<2 {
                for (j, position) in range.enumerated() where mask[r][position] {
                    let got = Array(logits.scalars[((r * range.count + j) * v)..<((r * range.count + j + 1) * v)])
                    let want = Array(reference.scalars[((r * 20 + position) * v)..<((r * 20 + position + 1) * v)])
                    #expect(maxAbsDifference(got, want) < 1e-4, "row \(r) position \(position)")
                }
            }
        }
        #expect(cache.length == 20)
    }

    @Test func adaptersTrainThroughTheGemmaNormsAndMerge() throws {
        let model = try load()
        let targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        let replaced = try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targetModules: targets))
        #expect(replaced.count == 28)
        var rng = RandomGenerator(seed: 7)
        for (_, layer) in loraLayers(in: model) { layer.loraB.weight.assign(Tensor.normal(layer.loraB.weight.shape, std: 0.2, using: &rng)) }
        let batch = TokenBatch(ids: [[1, 5, 9, 200, 3, 7, 42, 8, 8, 10, 11]])
        let (_, gradients) = valueAndGrad(model) { m in crossEntropy(logits: m(batch), targets: batch.ids[0].dropFirst() + [0]) }
        #expect(gradients.keys == model.trainableParameters().keys)
        for (key, g) in gradients { #expect(g.scalars.contains { $0 != 0 }, "\(key)") }
        let adapted = withoutGradients { model(batch) }.scalars
        mergeLoRA(in: model)
        #expect(maxAbsDifference(withoutGradients { model(batch) }.scalars, adapted) < 1e-5)
    }

    @Test func ggufExportReloadsWithTheSameLogits() throws {
        let model = try load()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-gemma3-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try GGUFExport.write(model, tokenizer: [], name: nil, type: .f32, to: url)
        let written = try GGUFFile(url: url)
        #expect(try written.string("general.architecture") == "gemma3")
        #expect(try written.int("gemma3.attention.sliding_window") == 8 && written.int("gemma3.attention.sliding_window_pattern") == 4)
        #expect(try written.string("gemma3.rope.scaling.type") == "linear" && written.double("gemma3.rope.scaling.factor") == 8)
        for name in ["attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm", "attn_q_norm", "attn_k_norm"] {
            #expect(written.tensor("blk.3.\(name).weight") != nil, "\(name)")
        }
        // Gains are stored as 1 + w.
        let stored = written.floats(try #require(written.tensor("output_norm.weight")))
        #expect(maxAbsDifference(stored, model.parameters()["model.norm.weight"]!.scalars.map { $0 + 1 }) == 0)
        let reloaded = try LanguageModelLoader.load(gguf: written)
        var expected = model.configuration
        (expected.maxPositions, expected.bosTokenID, expected.eosTokenID, expected.padTokenID) = (reloaded.configuration.maxPositions, nil, nil, nil)
        #expect(reloaded.configuration == expected)
        let batch = TokenBatch(ids: [[1, 5, 9, 2, 7, 7, 3, 0, 4, 4, 8, 1, 6, 2, 9, 5, 11, 12]])
        #expect(maxAbsDifference(withoutGradients { model(batch).scalars }, withoutGradients { reloaded(batch).scalars }) < 1e-5)
        // A layout that is not every n-th layer full is refused.
        var c = model.configuration
        c.slidingLayers = [false, true, true, true]
        #expect(throws: (any Error).self) { try GGUFExport.write(Gemma3Model(c), tokenizer: [], name: nil, type: .f32, to: url) }
    }
}
