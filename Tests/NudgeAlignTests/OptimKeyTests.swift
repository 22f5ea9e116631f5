// `optim` (HF TrainingArguments' name) through the runs: every trainer that builds AdamW declares
// it once, a bad value is an error naming the key, and adamw_8bit reaches the optimizer (its
// checkpoint holds 8-bit state).

import Foundation
import Testing
@testable import NudgeAlign
import NudgeConfig
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("optim in runs") struct OptimKeyTests {
    static let schemas: [(String, ConfigSchema)] = [
        ("sft", SFTRun.schema), ("rm", RMRun.schema), ("dpo", DPORun.schema), ("kto", KTORun.schema), ("prm", PRMRun.schema),
        ("grpo", GroupRun.grpo.schema), ("rloo", GroupRun.rloo.schema), ("ppo", PPORun.schema),
        ("online_dpo", OnlineDPORun.schema), ("rft", RFTRun.schema),
    ]

    @Test func everyAdamWTrainerDeclaresTheKey() throws {
        for (section, schema) in Self.schemas {
            #expect(try schema.resolve(overrides: []).string("\(section).optim") == "adamw_torch", "\(section)")
            #expect(try schema.resolve(overrides: ["\(section).optim=adamw_8bit"]).string("\(section).optim") == "adamw_8bit", "\(section)")
            do {
                _ = try schema.resolve(overrides: ["\(section).optim=adamw_bnb"])
                Issue.record("\(section): adamw_bnb was accepted")
            } catch {
                #expect("\(error)".contains("\(section).optim") && "\(error)".contains("adamw_8bit"), "\(section): \(error)")
            }
        }
    }

    /// SFT from a config file's keys: adamw_8bit writes 8-bit state (codes and block scales) for the
    /// large tensors and Float32 moments for the small ones; the default writes Float32 moments only.
    @Test func sftCheckpointHoldsTheChosenState() throws {
        for optim in ["adamw_torch", "adamw_8bit"] {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-optim-\(optim)-\(getpid())")
            defer { try? FileManager.default.removeItem(at: out) }
            try SFTRun.train(config: try SFTRun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "sft.batch_size=8", "sft.epochs=1",
                                                                           "sft.eval_rows=0", "sft.optim=\(optim)"]))
            let state = try Checkpoint.load(out.appendingPathComponent("checkpoints/latest/optimizer.safetensors"))
            let quantized = state.keys.filter { $0.hasSuffix(".state1") || $0.hasSuffix(".absmax2") }
            let float32 = state.keys.filter { $0.hasSuffix(".exp_avg") }
            if optim == "adamw_8bit" {
                #expect(!quantized.isEmpty && !float32.isEmpty, "8-bit codes for large tensors, Float32 for small ones")
                #expect(float32.allSatisfy { state[$0]!.count < 4096 })
            } else {
                #expect(quantized.isEmpty && !float32.isEmpty)
            }
        }
    }

    @Test func grpoBuildsTheChosenOptimizer() throws {
        let (model, tokenizer) = tinyPolicy()
        var config = GRPOConfig()
        config.optim = .adamw8bit
        let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 4, seed: 1),
                                      rewards: WeightedRewards([(ClosureReward(name: "one") { _ in 1 }, 1)]), config: config)
        #expect(trainer.optimizer.stateStorage == .blockwise8bit())
        #expect(trainer.optimizer.decoupled)
    }
}
