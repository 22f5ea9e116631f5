// `gradient_checkpointing` through the runs: every trainer that has the key (TRL's name) trains the
// same weights bit for bit with it on, LoRA dropout included, since the recomputed blocks give the
// same gradients.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeConfig
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Gradient checkpointing in runs") struct GradientCheckpointingRunTests {
    func output(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("nudge-checkpointing-\(name)-\(getpid())")
    }

    /// Trains twice, without and with `<section>.gradient_checkpointing`, and compares the saved files.
    func sameWeights(_ name: String, section: String, file: String, train: (URL, [String]) throws -> Void) throws {
        let (a, b) = (output("\(name)-plain"), output("\(name)-checkpointed"))
        defer { for u in [a, b] { try? FileManager.default.removeItem(at: u) } }
        try train(a, [])
        try train(b, ["\(section).gradient_checkpointing=true"])
        #expect(try Data(contentsOf: a.appendingPathComponent(file)) == Data(contentsOf: b.appendingPathComponent(file)), "\(name)")
    }

    @Test func sftTrainsTheSameWeights() throws {
        try sameWeights("sft", section: "sft", file: "checkpoints/model/model.safetensors") { out, extra in
            try SFTRun.train(config: try SFTRun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "sft.batch_size=8", "sft.epochs=1",
                                                                           "sft.eval_rows=0"] + extra))
        }
    }

    @Test func sftWithLoRADropoutTrainsTheSameWeights() throws {
        try sameWeights("sft-lora", section: "sft", file: "checkpoints/model/model.safetensors") { out, extra in
            try SFTRun.train(config: try SFTRun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "sft.batch_size=8", "sft.epochs=1",
                                                                           "sft.eval_rows=0", "lora.r=2", "lora.dropout=0.2",
                                                                           "lora.target_modules=all-linear"] + extra))
        }
    }

    @Test func dpoTrainsTheSameWeights() throws {
        try sameWeights("dpo", section: "dpo", file: "checkpoints/model/model.safetensors") { out, extra in
            try DPORun.train(config: try DPORun.schema.resolve(overrides: ["output=\(out.path)", "rows=16", "dpo.batch_size=8", "dpo.epochs=1"] + extra))
        }
    }

    @Test func grpoTrainsTheSameWeights() throws {
        func trained(_ checkpointing: Bool) throws -> [Float] {
            let (model, tokenizer) = tinyPolicy()
            var config = GRPOConfig()
            config.promptsPerStep = 2
            config.numGenerations = 4
            config.maxCompletionLength = 4
            config.learningRate = 3e-2
            config.beta = 0.1
            config.seed = 3  // rewards that vary within a group (as in OnlineRLTests)
            config.gradientCheckpointing = checkpointing
            let varied = ClosureReward(name: "length") { Double($0.completion.count % 3) }
            let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 4, seed: 1),
                                          rewards: WeightedRewards([(varied, 1)]), config: config)
            #expect(model.gradientCheckpointing == checkpointing)
            for _ in 0..<2 { try trainer.trainStep() }
            return model.parameters().tensors.flatMap(\.scalars)
        }
        let plain = try trained(false)
        #expect(plain != tinyPolicy().0.parameters().tensors.flatMap(\.scalars), "the steps changed the weights")
        #expect(plain == (try trained(true)))
    }

    @Test func everyTrainerDeclaresTheKey() throws {
        let schemas = [("sft", SFTRun.schema), ("rm", RMRun.schema), ("dpo", DPORun.schema), ("kto", KTORun.schema), ("grpo", GroupRun.grpo.schema),
                       ("rloo", GroupRun.rloo.schema), ("ppo", PPORun.schema)]
        for (section, schema) in schemas {
            let config = try schema.resolve(overrides: ["\(section).gradient_checkpointing=true"])
            #expect(config.bool("\(section).gradient_checkpointing"), "\(section)")
        }
    }
}
