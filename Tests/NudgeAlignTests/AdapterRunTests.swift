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
}
