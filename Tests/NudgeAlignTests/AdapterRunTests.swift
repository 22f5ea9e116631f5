// LoRA and QLoRA through the runs' `lora.*` keys: adapters on a frozen model, a saved model that is
// the merged one (loadable without adapters), a resume that continues bit-identically, and the
// errors a wrong setting gets.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeConfig
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("LoRA in runs") struct AdapterRunTests {
    func output(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("nudge-adapter-\(name)-\(getpid())")
    }

    @Test func sftWithAdaptersTrainsOnlyThemAndSavesTheMergedModel() throws {
        let out = output("sft")
        defer { try? FileManager.default.removeItem(at: out) }
        let overrides = ["output=\(out.path)", "rows=16", "sft.batch_size=8", "sft.epochs=1", "sft.eval_rows=0",
                         "lora.r=2", "lora.target_modules=all-linear", "lora.base=q8_0"]
        let config = try SFTRun.schema.resolve(overrides: overrides)
        let run = AlignRun(config: config)
        let (initial, _) = try run.loadModel()
        try SFTRun.train(config: config)

        // Load the saved model (no adapters) and check: the weights outside the projections did not move
        // (frozen), and the projections differ from the initial ones by a rank-2 update.
        let saved = try LanguageModelLoader.load(path: out.appendingPathComponent("checkpoints/model"))
        let before = Dictionary(uniqueKeysWithValues: initial.parameters().map { ($0.0, $0.1) })
        var moved = 0
        for (key, tensor) in saved.parameters() {
            let start = try #require(before[key], "\(key) is not a parameter of the model without adapters")
            let changed = zip(tensor.scalars, start.scalars).contains { $0 != $1 }
            if key.hasSuffix("proj.weight") { moved += changed ? 1 : 0 } else { #expect(!changed, "\(key) trained but is frozen") }
        }
        #expect(moved > 0)
        #expect(saved.parameters().keys.allSatisfy { !$0.contains("lora") })
    }

    @Test func aResumedAdapterRunEqualsAnUninterruptedOne() throws {
        let (a, b) = (output("once"), output("twice"))
        defer { for u in [a, b] { try? FileManager.default.removeItem(at: u) } }
        func config(_ out: URL, epochs: Int) throws -> ResolvedConfig {
            try SFTRun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "sft.batch_size=8", "sft.epochs=\(epochs)",
                                                  "sft.eval_rows=0", "lora.r=2", "lora.dropout=0.1"])
        }
        try SFTRun.train(config: try config(a, epochs: 2))
        try SFTRun.train(config: try config(b, epochs: 1))
        try SFTRun.train(config: try config(b, epochs: 2), resume: true)
        let file = "checkpoints/model/model.safetensors"
        #expect(try Data(contentsOf: a.appendingPathComponent(file)) == Data(contentsOf: b.appendingPathComponent(file)))
    }

    /// The parameters of a safetensors file by key.
    func tensors(_ url: URL) throws -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: try Checkpoint.load(url).map { ($0.0, $0.1) })
    }

    @Test func rmWithAdaptersTrainsThemAndTheHeadAndSavesTheMergedModel() throws {
        let out = output("rm")
        defer { try? FileManager.default.removeItem(at: out) }
        let config = try RMRun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "rm.batch_size=8", "rm.epochs=1",
                                                          "lora.r=2", "lora.target_modules=all-linear", "lora.base=q8_0"])
        let (initial, _) = try AlignRun(config: config).loadModel()
        let untrained = ScalarHeadModel(trunk: initial, seed: 0)
        try RMRun.train(config: config)
        let saved = try tensors(out.appendingPathComponent("checkpoints/reward_model.safetensors"))
        let before = Dictionary(uniqueKeysWithValues: untrained.parameters().map { ($0.0, $0.1) })
        #expect(Set(saved.keys) == Set(before.keys), "the merged reward model has the keys of one without adapters")
        var moved = 0
        for (key, tensor) in saved {
            let start = try #require(before[key])
            let changed = zip(tensor.scalars, start.scalars).contains { $0 != $1 }
            if key.hasSuffix("proj.weight") { moved += changed ? 1 : 0 } else if key == "score.weight" {
                #expect(changed, "the score head is fully trainable")
            } else {
                #expect(!changed, "\(key) trained but is frozen")
            }
        }
        #expect(moved > 0)
    }

    @Test func aResumedAdapterRewardModelRunEqualsAnUninterruptedOne() throws {
        let (a, b) = (output("rm-once"), output("rm-twice"))
        defer { for u in [a, b] { try? FileManager.default.removeItem(at: u) } }
        func config(_ out: URL, epochs: Int) throws -> ResolvedConfig {
            try RMRun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "rm.batch_size=8", "rm.epochs=\(epochs)",
                                                 "lora.r=2", "lora.dropout=0.1", "lora.base=q8_0"])
        }
        try RMRun.train(config: try config(a, epochs: 2))
        try RMRun.train(config: try config(b, epochs: 1))
        try RMRun.train(config: try config(b, epochs: 2), resume: true)
        let file = "checkpoints/reward_model.safetensors"
        #expect(try Data(contentsOf: a.appendingPathComponent(file)) == Data(contentsOf: b.appendingPathComponent(file)))
    }

    /// A PPO run on the fresh preset without warm start, scored by a reward model written here (so
    /// no reward model is trained first), with `extra` settings.
    func ppoConfig(_ out: URL, steps: Int, _ extra: [String]) throws -> ResolvedConfig {
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        let rewardFile = out.deletingLastPathComponent().appendingPathComponent("\(out.lastPathComponent)-rm.safetensors")
        let base = try PPORun.schema.resolve(overrides: ["output=\(out.path)"])
        let (trunk, _) = try AlignRun(config: base).loadModel()
        try ScalarHeadModel(trunk: trunk, seed: 5).save(to: rewardFile)
        return PPORun.withDefaults(try PPORun.schema.resolve(overrides: [
            "output=\(out.path)", "warmup.sft_epochs=0", "eval.rows=0", "ppo.reward_model=\(rewardFile.path)", "ppo.reward_scale=raw",
            "ppo.steps=\(steps)", "ppo.batch_size=4", "ppo.mini_batches=2", "ppo.ppo_epochs=1", "ppo.max_completion_length=4",
        ] + extra))
    }

    @Test func ppoWithAdaptersTrainsThemOverTheFrozenBaseAndSavesTheMergedPolicy() throws {
        let out = output("ppo")
        defer { for u in [out, out.deletingLastPathComponent().appendingPathComponent("\(out.lastPathComponent)-rm.safetensors")] { try? FileManager.default.removeItem(at: u) } }
        let config = try ppoConfig(out, steps: 2, ["lora.r=2", "lora.target_modules=all-linear", "lora.base=q8_0", "ppo.learning_rate=0.01"])
        try PPORun.train(filledIn: config, warm: nil, resume: false)
        let initial = try tensors(out.appendingPathComponent("checkpoints/initial.safetensors"))
        let saved = try tensors(out.appendingPathComponent("checkpoints/model/model.safetensors"))
        #expect(Set(saved.keys) == Set(initial.keys), "the merged policy has the keys of the model without adapters")
        var moved = 0
        for (key, tensor) in saved {
            let start = try #require(initial[key])
            let changed = zip(tensor.scalars, start.scalars).contains { $0 != $1 }
            if key.hasSuffix("proj.weight") { moved += changed ? 1 : 0 } else { #expect(!changed, "\(key) trained but is frozen") }
        }
        #expect(moved > 0)
        // The checkpoint holds the policy's and the value model's adapters and the value head, no
        // second copy of the policy (the reference is the base with the adapters off).
        let checkpoint = try tensors(out.appendingPathComponent("checkpoints/latest/model.safetensors"))
        #expect(checkpoint.keys.contains { $0.hasPrefix("policy.") && $0.contains("lora_A") })
        #expect(checkpoint.keys.contains { $0.hasPrefix("value.") && $0.contains("lora_B") })
        #expect(checkpoint["value.score.weight"] != nil)
        #expect(!checkpoint.keys.contains { $0.hasPrefix("reference") })
    }

    @Test func ppoTrainerWithAdaptersKeepsNoReferenceCopy() throws {
        let (model, tokenizer) = try AlignRun(config: try PPORun.schema.resolve()).loadModel()
        try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 2, alpha: 4, targetModules: ["q_proj", "v_proj"]))
        var c = PPORLHFConfig()
        c.batchSize = 4
        c.maxCompletionLength = 3
        let length = ClosureReward(name: "length") { Double($0.completionIDs.count) }
        let trainer = try PPORLHFTrainer(policy: model, value: ScalarHeadModel(trunk: model, seed: 1), tokenizer: tokenizer,
                                         rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 8, seed: 1),
                                         rewards: WeightedRewards([(length, 1)]), config: c)
        #expect(trainer.reference == nil && trainer.referenceIsAdapterFreePolicy, "the reference is the policy with its adapters off")
    }

    @Test func aResumedAdapterPPORunEqualsAnUninterruptedOne() throws {
        let (a, b) = (output("ppo-once"), output("ppo-twice"))
        defer {
            for u in [a, b] {
                try? FileManager.default.removeItem(at: u)
                try? FileManager.default.removeItem(at: u.deletingLastPathComponent().appendingPathComponent("\(u.lastPathComponent)-rm.safetensors"))
            }
        }
        let lora = ["lora.r=2", "lora.dropout=0.1", "lora.base=q8_0", "lora.target_modules=q_proj,v_proj,down_proj"]
        try PPORun.train(filledIn: try ppoConfig(a, steps: 2, lora), warm: nil, resume: false)
        try PPORun.train(filledIn: try ppoConfig(b, steps: 1, lora), warm: nil, resume: false)
        try PPORun.train(filledIn: try ppoConfig(b, steps: 2, lora), warm: nil, resume: true)
        for file in ["checkpoints/model/model.safetensors", "checkpoints/latest/model.safetensors", "checkpoints/latest/optimizer.safetensors"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(file)) == Data(contentsOf: b.appendingPathComponent(file)), "\(file)")
        }
    }

    @Test func ppoAndRMRefuseBadAdapterSettingsByKeyBeforeTraining() throws {
        func refusal(_ run: (ResolvedConfig) throws -> Void, _ config: ResolvedConfig) -> String? {
            do { try run(config); return nil } catch { return "\(error)" }
        }
        let out = output("refused")
        defer { try? FileManager.default.removeItem(at: out) }
        for overrides in [["lora.r=2", "lora.base=gguf"], ["lora.r=2", "lora.target_modules=wq"]] {
            let key = overrides[1].split(separator: "=")[0]
            let ppo = try PPORun.schema.resolve(overrides: ["output=\(out.path)"] + overrides)
            #expect(refusal({ try PPORun.train(config: $0) }, ppo)?.contains(key) == true)
            let rm = try RMRun.schema.resolve(overrides: ["output=\(out.path)"] + overrides)
            #expect(refusal({ try RMRun.train(config: $0) }, rm)?.contains(key) == true)
        }
        #expect(!FileManager.default.fileExists(atPath: out.path), "refused before the run directory was made")
    }

    @Test func settingsThatCannotWorkAreRefusedByKey() throws {
        func refusal(_ overrides: [String]) -> String? {
            do {
                let config = try SFTRun.schema.resolve(overrides: overrides)
                let (model, _) = try AlignRun(config: config).loadModel()
                try AdapterKeys.apply(config, to: model)
                return nil
            } catch { return "\(error)" }
        }
        #expect(refusal(["lora.r=2", "lora.base=gguf"])?.contains("lora.base") == true)
        #expect(refusal(["lora.r=2", "lora.target_modules=wq"])?.contains("lora.target_modules") == true)
        #expect(refusal(["lora.r=2", "lora.target_modules=,"])?.contains("lora.target_modules") == true)
        #expect(refusal(["lora.alpha=0"]) != nil)
        #expect(refusal(["lora.r=0", "lora.base=gguf"]) == nil)  // no adapters: nothing to quantize
    }

    /// A model directory (the tiny preset's shape, a vocabulary the byte tokenizer fits) for runs that load one.
    func savedTinyModel(_ name: String) throws -> URL {
        let directory = output(name)
        let tokenizer = LanguageModelLoader.byteTokenizer
        var configuration = try #require(TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize))
        configuration.eosTokenID = tokenizer.eosTokenID
        try LanguageModelLoader.save(LlamaModel(configuration, seed: 4), configJSON: configuration.configJSON(), to: directory)
        return directory
    }

    /// `loadModelForAdapters` reads a quantized lora.base straight into QuantizedLinear projections, and
    /// after `AdapterKeys.apply` the model is bit for bit the one `loadModel` then `apply` makes;
    /// lora.base = float32 (and no adapters) loads as before.
    @Test(arguments: ["q8_0", "bf16", "float32"])
    func aQuantizedBaseLoadedFromTheFileEqualsLoadingThenQuantizing(_ base: String) throws {
        let model = try savedTinyModel("direct-\(base)")
        defer { try? FileManager.default.removeItem(at: model) }
        let config = try SFTRun.schema.resolve(overrides: ["model=\(model.path)", "lora.r=2", "lora.dropout=0.1",
                                                           "lora.target_modules=q_proj,v_proj", "lora.base=\(base)"])
        let run = AlignRun(config: config)
        let (direct, _) = try run.loadModelForAdapters()
        let projections = direct.parameters().keys.filter { $0.hasSuffix("proj.weight") }
        #expect(projections.isEmpty == (base != "float32"), "\(base): Float32 projections \(projections.count)")
        try AdapterKeys.apply(config, to: direct)
        let (reference, _) = try run.loadModel()
        try AdapterKeys.apply(config, to: reference)
        #expect(direct.parameters().keys == reference.parameters().keys)
        for ((key, a), (_, b)) in zip(direct.parameters(), reference.parameters()) {
            #expect(a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern), "\(key)")
        }
        for ((path, a), (_, b)) in zip(loraLayers(in: direct), loraLayers(in: reference)) {
            #expect(a.quantizedBase?.format == b.quantizedBase?.format, "\(path)")
            #expect(a.weight.scalars.map(\.bitPattern) == b.weight.scalars.map(\.bitPattern), "\(path)")
        }
        let batch = TokenBatch(ids: [[1, 5, 9, 200, 3, 7, 42], [2, 8, 100, 4, 6, 11, 250]])
        #expect(withoutGradients { direct(batch).scalars.map(\.bitPattern) } == withoutGradients { reference(batch).scalars.map(\.bitPattern) })
    }

    /// A whole SFT run over a base loaded quantized trains the adapters and saves a merged model
    /// (written one merged weight at a time) equal to `mergedLoRAParameters` of the trained model.
    @Test func anSFTRunOverABaseLoadedQuantizedSavesTheMergedModel() throws {
        let model = try savedTinyModel("sft-direct-model")
        let out = output("sft-direct")
        defer { for u in [model, out] { try? FileManager.default.removeItem(at: u) } }
        let config = try SFTRun.schema.resolve(overrides: ["model=\(model.path)", "output=\(out.path)", "rows=16", "sft.batch_size=8",
                                                           "sft.epochs=1", "sft.eval_rows=0", "lora.r=2", "lora.target_modules=all-linear",
                                                           "lora.base=q8_0"])
        try SFTRun.train(config: config)
        // The trained model again: the initial one with the adapters the run saved in its latest checkpoint.
        let (trained, _) = try AlignRun(config: config).loadModelForAdapters()
        try AdapterKeys.apply(config, to: trained)
        try trained.load(from: out.appendingPathComponent("checkpoints/latest/model.safetensors"))
        #expect(loraLayers(in: trained).contains { $0.layer.loraB.weight.scalars.contains { $0 != 0 } })
        let saved = try LanguageModelLoader.load(path: out.appendingPathComponent("checkpoints/model"))
        let expected = mergedLoRAParameters(of: trained)
        #expect(saved.parameters().keys.sorted() == expected.map(\.0).sorted())
        let byKey = Dictionary(uniqueKeysWithValues: expected)
        for (key, tensor) in saved.parameters() {
            #expect(tensor.scalars.map(\.bitPattern) == byKey[key]?.scalars.map(\.bitPattern), "\(key)")
        }
    }
}
