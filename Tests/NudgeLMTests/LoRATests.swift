// LoRA on the tiny Llama and GPT-2 fixtures: adapters off or fresh leave logits bit-identical,
// the adapted output matches W + s·B·A computed by hand, merge/unmerge, only adapters train,
// PEFT-layout adapter files round-trip and load strictly.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

private func loraFixture(_ name: String) throws -> URL {
    guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/lm") else {
        throw ModelLoadError.io(file: name, reason: "fixture directory missing")
    }
    return url
}

private func loadModel(_ name: String = "llama") throws -> any CausalLanguageModel {
    try LanguageModelLoader.load(directory: try loraFixture(name))
}

private let batch = TokenBatch(ids: [[1, 5, 9, 200, 3, 7, 42], [2, 8, 100, 4, 6, 11, 250]])
private let allLlamaProjections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

private func logits(_ model: any CausalLanguageModel) -> [Float] { withoutGradients { model(batch).scalars } }

/// Fills every lora_B with N(0, std) values (a trained adapter's stand-in).
private func randomizeB(_ model: Module, seed: UInt64 = 7, std: Float = 0.2) {
    var rng = RandomGenerator(seed: seed)
    for (_, layer) in loraLayers(in: model) { layer.loraB.weight.assign(Tensor.normal(layer.loraB.weight.shape, std: std, using: &rng)) }
}

private func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

private func temporaryDirectory() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("lora-\(UUID().uuidString)")
}

/// W + s·B·A by loops, in Double.
private func manualMerged(_ l: LoRALinear, base: Tensor) -> Tensor {
    let (out, inCount, r) = (base.shape[0], base.shape[1], l.rank)
    let a = l.loraA.weight.scalars, b = l.loraB.weight.scalars, w = base.scalars
    var merged = [Float](repeating: 0, count: out * inCount)
    for o in 0..<out {
        for i in 0..<inCount {
            var s = 0.0
            for k in 0..<r { s += Double(b[o * r + k]) * Double(a[k * inCount + i]) }
            merged[o * inCount + i] = Float(Double(w[o * inCount + i]) + Double(l.scale) * s)
        }
    }
    return Tensor(shape: base.shape, values: merged)
}

@Suite("LoRA") struct LoRATests {
    @Test func freshAdaptersLeaveLogitsIdentical() throws {
        let base = try loadModel(), model = try loadModel()
        let replaced = try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targetModules: allLlamaProjections))
        #expect(replaced.count == 14)
        #expect(replaced.first == "model.layers.0.self_attn.q_proj")
        #expect(replaced.contains("model.layers.1.mlp.down_proj"))
        #expect(logits(model) == logits(base))
    }

    @Test func adaptersOffGiveBaseLogitsExactly() throws {
        let base = try loadModel(), model = try loadModel()
        try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 16, targetModules: allLlamaProjections))
        randomizeB(model)
        let expected = logits(base)
        #expect(maxDiff(logits(model), expected) > 1e-3)
        setLoRAEnabled(false, in: model)
        #expect(logits(model) == expected)
        // Disabled while merged: still the base model bit for bit.
        mergeLoRA(in: model)
        #expect(logits(model) == expected)
        setLoRAEnabled(true, in: model)
        #expect(maxDiff(logits(model), expected) > 1e-3)
    }

    @Test func adaptedOutputMatchesManualMergedWeights() throws {
        let reference = try loadModel(), model = try loadModel()
        let configuration = LoRAConfiguration(rank: 4, alpha: 16, targetModules: ["q_proj", "v_proj", "down_proj"])
        try applyLoRA(to: model, configuration: configuration)
        randomizeB(model)
        // Whole model: the reference with W + s·B·A written into its weights.
        var merged = reference.parameters()
        for (path, layer) in loraLayers(in: model) {
            #expect(layer.scale == 4)
            merged[path + ".weight"] = manualMerged(layer, base: reference.parameters()[path + ".weight"]!)
        }
        try reference.update(parameters: merged)
        let got = logits(model), want = logits(reference)
        #expect(maxDiff(got, try logits(loadModel())) > 1e-3)
        #expect(maxDiff(got, want) < 1e-5, "max |Δ| = \(maxDiff(got, want))")

        // One layer: y = x·Wᵀ + b + s·x·Aᵀ·Bᵀ, with a bias.
        var rng = RandomGenerator(seed: 3)
        let linearLayer = Linear(inputCount: 12, outputCount: 5, using: &rng)
        let w = linearLayer.weight.copy()
        let l = LoRALinear(base: linearLayer, rank: 3, alpha: 6, using: &rng)
        l.loraB.weight.assign(Tensor.normal([5, 3], using: &rng))
        let x = Tensor.normal([4, 12], using: &rng)
        let y = withoutGradients { l(x) }
        let expected = linear(x, weight: manualMerged(l, base: w), bias: l.bias)
        #expect(maxDiff(y.scalars, expected.scalars) < 1e-5)
    }

    /// Qwen3 (q/k RMSNorm before RoPE, head size 32 ≠ hidden/heads): adapters on every projection
    /// get gradients through the per-head norms while the base stays frozen, and merging gives the
    /// adapted logits; the norms themselves are no Linear target.
    @Test func qwen3AdaptersTrainAndMerge() throws {
        let model = try loadModel("qwen3")
        let replaced = try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targetModules: allLlamaProjections))
        #expect(replaced.count == 14)
        #expect(model.parameters()["model.layers.0.self_attn.q_proj.lora_B.weight"]?.shape == [128, 4])
        randomizeB(model)
        let targets = batch.ids.flatMap { Array($0.dropFirst()) + [0] }
        let (_, gradients) = valueAndGrad(model) { m in crossEntropy(logits: m(batch), targets: targets) }
        #expect(gradients.keys == model.trainableParameters().keys)
        for (key, g) in gradients { #expect(g.scalars.contains { $0 != 0 }, "\(key)") }
        let adapted = logits(model)
        #expect(maxDiff(adapted, try logits(loadModel("qwen3"))) > 1e-3)
        mergeLoRA(in: model)
        #expect(maxDiff(logits(model), adapted) < 1e-5)
        #expect(throws: (any Error).self) { try applyLoRA(to: try loadModel("qwen3"), configuration: LoRAConfiguration(targetModules: ["q_norm"])) }
    }

    @Test func mergeAndUnmerge() throws {
        let model = try loadModel()
        try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targetModules: allLlamaProjections))
        randomizeB(model)
        let before = model.parameters().tensors.map(\.scalars)
        let adapted = logits(model)
        mergeLoRA(in: model)
        for (_, layer) in loraLayers(in: model) { #expect(layer.isMerged) }
        let merged = logits(model)
        #expect(maxDiff(merged, adapted) < 1e-5, "max |Δ| = \(maxDiff(merged, adapted))")
        #expect(model.parameters().tensors.map(\.scalars) != before)
        mergeLoRA(in: model)  // idempotent
        unmergeLoRA(in: model)
        #expect(model.parameters().tensors.map(\.scalars) == before)
        #expect(logits(model) == adapted)
        for (_, layer) in loraLayers(in: model) { #expect(!layer.isMerged) }
    }

    @Test func onlyAdaptersTrainAndBaseKeysAreUnchanged() throws {
        let base = try loadModel()
        let model = try #require(try loadModel() as? LlamaModel)
        let replaced = try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targetModules: ["q_proj", "v_proj"]))
        let trainable = model.trainableParameters()
        #expect(trainable.keys == replaced.flatMap { [$0 + ".lora_A.weight", $0 + ".lora_B.weight"] })
        // Base keys are the Hugging Face ones, in the same order; adapters sit beside them.
        let keys = model.parameters().keys
        #expect(keys.filter { !$0.contains(".lora_") } == base.parameters().keys)
        #expect(keys.contains("model.layers.0.self_attn.q_proj.weight"))
        #expect(keys.contains("model.layers.0.self_attn.q_proj.lora_A.weight"))
        #expect(model.parameters()["model.layers.1.self_attn.v_proj.lora_B.weight"]?.shape == [32, 4])

        let before = model.parameters().tensors.map { $0.copy() }
        let optimizer = Adam(learningRate: 1e-2)
        let targets = batch.ids.flatMap { Array($0.dropFirst()) + [0] }
        var losses: [Float] = []
        for _ in 0..<4 {
            let (loss, gradients) = valueAndGrad(model) { m in crossEntropy(logits: m(batch), targets: targets) }
            #expect(gradients.keys == trainable.keys)
            optimizer.update(model, gradients: gradients)
            losses.append(loss.item())
        }
        #expect(losses.last! < losses.first!)
        for (key, (now, then)) in zip(keys, zip(model.parameters().tensors, before)) {
            if key.contains(".lora_") {
                #expect(now.scalars != then.scalars, "\(key) did not change")
            } else {
                #expect(now.scalars == then.scalars, "\(key) changed")
            }
        }
    }

    @Test func saveAndLoadAdaptersRoundTrip() throws {
        let model = try loadModel()
        let configuration = LoRAConfiguration(rank: 4, alpha: 16, dropout: 0.05, targetModules: ["q_proj", "v_proj"], seed: 1)
        try applyLoRA(to: model, configuration: configuration)
        randomizeB(model)
        let dir = temporaryDirectory()
        try saveLoRAAdapters(of: model, configuration: configuration, to: dir, baseModelName: "tiny-llama")

        let file = try SafeTensorsFile(url: dir.appendingPathComponent("adapter_model.safetensors"))
        #expect(file.entries.map(\.name).sorted() == [0, 1].flatMap { i in
            ["q_proj", "v_proj"].flatMap { p in ["A", "B"].map { "base_model.model.model.layers.\(i).self_attn.\(p).lora_\($0).weight" } }
        }.sorted())
        #expect(file.entry("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")?.shape == [4, 64])
        #expect(file.metadata["format"] == "pt")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        #expect(json["peft_type"] as? String == "LORA")
        #expect(json["task_type"] as? String == "CAUSAL_LM")
        #expect(json["bias"] as? String == "none")
        #expect(json["r"] as? Int == 4)
        #expect((json["lora_alpha"] as? NSNumber)?.doubleValue == 16)
        #expect((json["lora_dropout"] as? NSNumber)?.doubleValue == 0.05)
        #expect(json["target_modules"] as? [String] == ["q_proj", "v_proj"])
        #expect(json["base_model_name_or_path"] as? String == "tiny-llama")

        let other = try loadModel()
        let loaded = try loadLoRA(into: other, from: dir)
        var expectedConfiguration = configuration
        expectedConfiguration.seed = 0
        #expect(loaded == expectedConfiguration)
        #expect(loraAdapterWeights(of: other).keys == loraAdapterWeights(of: model).keys)
        for (a, b) in zip(loraAdapterWeights(of: other).tensors, loraAdapterWeights(of: model).tensors) { #expect(a.scalars == b.scalars) }
        model.eval(); other.eval()
        #expect(logits(other) == logits(model))

        // Loading into a merged model re-merges with the new weights.
        let third = try loadModel()
        try applyLoRA(to: third, configuration: configuration)
        third.eval()
        mergeLoRA(in: third)
        try loadLoRAAdapters(into: third, from: dir)
        #expect(maxDiff(logits(third), logits(model)) < 1e-5)
    }

    @Test func loadingIsStrict() throws {
        let model = try loadModel()
        let configuration = LoRAConfiguration(rank: 2, alpha: 4, targetModules: ["q_proj", "v_proj"])
        try applyLoRA(to: model, configuration: configuration)
        randomizeB(model)
        let dir = temporaryDirectory()
        try saveLoRAAdapters(of: model, configuration: configuration, to: dir)
        let weightsURL = dir.appendingPathComponent("adapter_model.safetensors")
        var weights = try Checkpoint.load(weightsURL)
        let missing = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"

        let target = try loadModel()
        try applyLoRA(to: target, configuration: configuration)
        let untouched = loraAdapterWeights(of: target).tensors.map(\.scalars)

        weights[missing] = nil
        try Checkpoint.save(weights, to: weightsURL)
        #expect(throws: ModuleError.missingKey(missing)) { try loadLoRAAdapters(into: target, from: dir) }
        #expect(loraAdapterWeights(of: target).tensors.map(\.scalars) == untouched)

        weights[missing] = Tensor.zeros([32, 2])
        weights["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = Tensor.zeros([2, 64])
        try Checkpoint.save(weights, to: weightsURL)
        #expect(throws: ModuleError.unusedKey("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight")) {
            try loadLoRAAdapters(into: target, from: weightsURL)
        }
        weights["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = nil
        weights[missing] = Tensor.zeros([32, 3])
        try Checkpoint.save(weights, to: weightsURL)
        #expect(throws: ModuleError.shapeMismatch(key: missing, expected: [32, 2], actual: [32, 3])) {
            try loadLoRAAdapters(into: target, from: dir)
        }
        #expect(loraAdapterWeights(of: target).tensors.map(\.scalars) == untouched)

        // loadLoRA removes the layers it added when the weights do not load.
        let fresh = try loadModel()
        let keys = fresh.parameters().keys
        #expect(throws: ModuleError.shapeMismatch(key: missing, expected: [32, 2], actual: [32, 3])) { try loadLoRA(into: fresh, from: dir) }
        #expect(loraLayers(in: fresh).isEmpty)
        #expect(fresh.parameters().keys == keys)
    }

    @Test func targetErrors() throws {
        let model = try loadModel()
        let keys = model.parameters().keys
        #expect(throws: LoRAError.noTargetModules(["nothing"])) {
            try applyLoRA(to: model, configuration: LoRAConfiguration(targetModules: ["nothing"]))
        }
        #expect(throws: LoRAError.unsupportedTarget(path: "lm_head", type: "Linear")) {
            try applyLoRA(to: model, configuration: LoRAConfiguration(targetModules: ["q_proj", "lm_head"]))
        }
        #expect(throws: LoRAError.unsupportedTarget(path: "model.layers.0.self_attn", type: "LlamaAttention")) {
            try applyLoRA(to: model, configuration: LoRAConfiguration(targetModules: ["self_attn"]))
        }
        #expect(throws: LoRAError.invalidConfiguration("rank must be positive, got 0")) {
            try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 0))
        }
        // Nothing was changed by the failures.
        #expect(loraLayers(in: model).isEmpty)
        #expect(model.parameters().keys == keys)
        try applyLoRA(to: model, configuration: LoRAConfiguration(targetModules: ["self_attn.q_proj"]))
        #expect(loraLayers(in: model).map(\.path) == ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"])
        #expect(throws: LoRAError.alreadyAdapted("model.layers.0.self_attn.q_proj")) {
            try applyLoRA(to: model, configuration: LoRAConfiguration(targetModules: ["q_proj"]))
        }
        // A second set of targets keeps the first adapters trainable.
        try applyLoRA(to: model, configuration: LoRAConfiguration(targetModules: ["v_proj"]))
        #expect(model.trainableParameters().count == 8)
    }

    @Test func initializationFollowsPEFT() throws {
        let a = try loadModel(), b = try loadModel()
        let configuration = LoRAConfiguration(rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"], seed: 5)
        try applyLoRA(to: a, configuration: configuration)
        try applyLoRA(to: b, configuration: configuration)
        for ((_, la), (_, lb)) in zip(loraLayers(in: a), loraLayers(in: b)) {
            let bound = 1 / Float(64).squareRoot()
            #expect(la.loraA.weight.shape == [8, 64])
            #expect(la.loraA.weight.scalars.allSatisfy { abs($0) <= bound })
            #expect(la.loraA.weight.scalars.contains { abs($0) > bound / 2 })
            #expect(la.loraB.weight.scalars.allSatisfy { $0 == 0 })
            #expect(la.loraA.weight.scalars == lb.loraA.weight.scalars)  // seeded
            #expect(la.scale == 2)
        }
        let rs = LoRAConfiguration(rank: 4, alpha: 8, useRSLoRA: true)
        #expect(rs.scale == 4)
    }

    @Test func dropoutIsSeededAndTrainingOnly() throws {
        let configuration = LoRAConfiguration(rank: 4, alpha: 8, dropout: 0.5, targetModules: ["q_proj", "v_proj"], seed: 2)
        let a = try loadModel(), b = try loadModel(), plain = try loadModel()
        try applyLoRA(to: a, configuration: configuration)
        try applyLoRA(to: b, configuration: configuration)
        var noDropout = configuration
        noDropout.dropout = 0
        try applyLoRA(to: plain, configuration: noDropout)
        for m in [a, b, plain] { randomizeB(m) }
        let trainA = logits(a), trainB = logits(b)
        #expect(trainA == trainB)
        #expect(maxDiff(trainA, logits(plain)) > 1e-4)
        a.eval()
        #expect(logits(a) == logits(plain))
    }

    /// A PEFT adapter (peft 0.21, Fixtures/lm/peft_adapter_fixture.py) merged into the tiny llama
    /// gives the logits of PEFT's merge_and_unload, and the merged model exports to GGUF unchanged.
    @Test func peftAdapterMergesLikeMergeAndUnload() throws {
        let model = try loadModel("llama")
        let adapter = try loraFixture("llama_peft_adapter")
        #expect(try mergeLoRAAdapter(into: model, from: adapter) == 6)
        #expect(loraLayers(in: model).isEmpty)
        let expected = try SafeTensorsFile(url: adapter.appendingPathComponent("expected.safetensors"))
        let ids = try expected.int64s("input_ids").map(Int.init)
        let batch = TokenBatch(ids: [Array(ids[0..<16]), Array(ids[16..<32])])
        let logits = withoutGradients { model(batch) }
        let diff = maxAbsDifference(logits.scalars, try expected.floats("logits"))
        #expect(diff < 1e-5, "max |Δlogits| vs PEFT merge_and_unload: \(diff)")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-merged-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try GGUFExport.write(model, tokenizer: [], name: nil, type: .f32, to: url)
        let reloaded = try LanguageModelLoader.load(path: url)
        #expect(withoutGradients { reloaded(batch).scalars } == logits.scalars)
    }

    @Test func unloadRestoresPlainLinears() throws {
        let base = try loadModel(), model = try loadModel()
        try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targetModules: ["q_proj", "o_proj"]))
        randomizeB(model)
        let adapted = logits(model)
        let paths = unloadLoRA(from: model, merge: true)
        #expect(paths.count == 4)
        #expect(loraLayers(in: model).isEmpty)
        #expect(model.parameters().keys == base.parameters().keys)
        #expect(maxDiff(logits(model), adapted) < 1e-5)
        let other = try loadModel()
        try applyLoRA(to: other, configuration: LoRAConfiguration(rank: 4, alpha: 8, targetModules: ["q_proj"]))
        randomizeB(other)
        unloadLoRA(from: other, merge: false)
        #expect(logits(other) == logits(base))
    }

    @Test func gpt2FusedProjections() throws {
        let base = try loadModel("gpt2"), model = try loadModel("gpt2")
        let configuration = LoRAConfiguration(rank: 4, alpha: 8, targetModules: ["c_attn", "attn.c_proj", "c_fc"])
        let replaced = try applyLoRA(to: model, configuration: configuration)
        #expect(replaced == ["transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc",
                             "transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_fc"])
        #expect(logits(model) == logits(base))
        #expect(model.parameters()["transformer.h.0.attn.c_attn.lora_B.weight"]?.shape == [192, 4])
        randomizeB(model)
        #expect(maxDiff(logits(model), logits(base)) > 1e-3)
        let dir = temporaryDirectory()
        try saveLoRAAdapters(of: model, configuration: configuration, to: dir)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        #expect(json["fan_in_fan_out"] as? Bool == true)
        let other = try loadModel("gpt2")
        try loadLoRA(into: other, from: dir)
        #expect(logits(other) == logits(model))
        // Saving the model keeps GPT-2's Conv1D transposes to the base weights only.
        #expect(!GPT2Model.isConv1D("transformer.h.0.attn.c_attn.lora_A.weight"))
    }

    @Test func adapterConfigRoundTripAndUnsupportedFields() throws {
        let configuration = LoRAConfiguration(rank: 16, alpha: 32, dropout: 0.1, targetModules: ["q_proj", "k_proj"], useRSLoRA: true)
        #expect(try LoRAConfiguration(adapterConfigJSON: configuration.adapterConfigJSON()) == configuration)
        func config(_ extra: String) -> Data {
            Data(#"{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]\#(extra)}"#.utf8)
        }
        #expect(try LoRAConfiguration(adapterConfigJSON: config("")) == LoRAConfiguration(rank: 8, alpha: 16, targetModules: ["q_proj"]))
        #expect(throws: LoRAError.adapterConfig(file: "adapter_config.json", field: "use_dora", reason: "is true; DoRA is not supported")) {
            try LoRAConfiguration(adapterConfigJSON: config(#", "use_dora": true"#))
        }
        #expect(throws: LoRAError.adapterConfig(file: "adapter_config.json", field: "bias", reason: "is \"all\"; only \"none\" is supported")) {
            try LoRAConfiguration(adapterConfigJSON: config(#", "bias": "all""#))
        }
        #expect(throws: LoRAError.adapterConfig(file: "x.json", field: "r", reason: "is missing")) {
            try LoRAConfiguration(adapterConfigJSON: Data(#"{"peft_type": "LORA", "target_modules": ["q_proj"]}"#.utf8), file: "x.json")
        }
        #expect(throws: LoRAError.adapterConfig(file: "adapter_config.json", field: "target_modules",
                                                reason: "is a regular expression; only a list of names is supported")) {
            try LoRAConfiguration(adapterConfigJSON: Data(#"{"peft_type": "LORA", "r": 8, "target_modules": ".*proj"}"#.utf8))
        }
    }
}
