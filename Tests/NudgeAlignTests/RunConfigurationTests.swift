// The trainers' config keys are declared once, bound to their structs: a trainer config built in
// code goes through the command's schema (as config.toml would hold it) and comes back unchanged,
// and the keys' defaults are the structs' defaults.

import Foundation
import Nudge
import Testing

@Suite("Run configuration")
struct RunConfigurationTests {
    @Test func grpoConfigRoundTripsThroughTheCommandSchema() throws {
        var trainer = GRPOConfig()
        trainer.steps = 7
        trainer.beta = 0.04
        trainer.lossType = .drGRPO
        trainer.epsilonHigh = 0.28
        trainer.advantage = .grpo(scaling: .batch)
        trainer.maxPromptLength = nil
        trainer.maxGradNorm = .infinity
        trainer.importanceSampling = .sequence
        trainer.seed = 42
        let config = try GroupRun.grpo.configuration(trainer, overrides: ["output=/tmp/nudge-run-config"])
        let back = GroupRun.grpo.keys.apply(config, to: GRPOConfig())
        #expect(back.steps == 7)
        #expect(back.beta == 0.04)
        #expect(back.lossType == .drGRPO)
        #expect(back.epsilonHigh == 0.28)
        #expect(back.advantage == .grpo(scaling: .batch))
        #expect(back.maxPromptLength == nil)
        #expect(back.maxGradNorm == .infinity)
        #expect(back.importanceSampling == .sequence)
        #expect(config.int("seed") == 42)
        #expect(config.string("output") == "/tmp/nudge-run-config")
        // Set in code, so not "default": the preset model's defaults do not replace them.
        #expect(!config.isDefault("grpo.learning_rate"))
    }

    @Test func rlooAndReinforcePlusPlusAdvantagesRoundTrip() throws {
        for advantage in [AdvantageEstimator.rloo, .reinforcePlusPlus(baseline: false), .reinforcePlusPlus(baseline: true)] {
            var trainer = GRPOConfig.rloo
            trainer.advantage = advantage
            let back = GroupRun.rloo.keys.apply(try GroupRun.rloo.configuration(trainer), to: GRPOConfig())
            #expect(back.advantage == advantage)
        }
    }

    @Test func keyDefaultsAreTheStructDefaults() throws {
        let grpo = GroupRun.grpo.keys.apply(try GroupRun.grpo.schema.resolve(), to: GRPOConfig.rloo)
        #expect(grpo.advantage == GRPOConfig().advantage && grpo.beta == GRPOConfig().beta && grpo.steps == GRPOConfig().steps)
        let rloo = GroupRun.rloo.keys.apply(try GroupRun.rloo.schema.resolve(), to: GRPOConfig())
        #expect(rloo.advantage == .rloo && rloo.beta == 0.05 && rloo.importanceSampling == .sequenceSum)
        let ppo = PPORun.keys.apply(try PPORun.schema.resolve(), to: PPORLHFConfig())
        #expect(ppo.adaptiveKL == nil && ppo.missingEOSPenalty == nil && ppo.klCoefficient == PPORLHFConfig().klCoefficient)
        let sft = SFTRun.keys.apply(try SFTRun.schema.resolve(), to: SFTConfig())
        #expect(sft.learningRate == SFTConfig().learningRate && sft.maxLength == 1024 && sft.completionOnlyLoss)
    }

    @Test func ppoAdaptiveKLIsReadFromItsTwoKeys() throws {
        let config = try PPORun.schema.resolve(overrides: ["ppo.target_kl=2", "ppo.kl_horizon=500", "ppo.missing_eos_penalty=1", "ppo.max_grad_norm=0"])
        let ppo = PPORun.keys.apply(config, to: PPORLHFConfig())
        #expect(ppo.adaptiveKL == AdaptiveKLController(target: 2, horizon: 500))
        #expect(ppo.missingEOSPenalty == 1)
        #expect(ppo.maxGradNorm == .infinity)
    }

    /// A GRPO run built in code goes through the same runner as `nudge grpo` and leaves the same run
    /// directory; its config.toml, read back through the command's schema, gives back the trainer.
    @Test func aRunBuiltInCodeWritesTheCommandsRunDirectory() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-code-run-\(getpid())")
        defer { try? FileManager.default.removeItem(at: output) }
        var trainer = GRPOConfig()
        (trainer.steps, trainer.promptsPerStep, trainer.numGenerations, trainer.maxCompletionLength) = (2, 2, 2, 4)
        trainer.learningRate = 1e-3
        trainer.seed = 3
        let config = try GroupRun.grpo.configuration(trainer, overrides: [
            "output=\(output.path)", "warmup.sft_epochs=0", "eval.rows=4", "eval.every=1", "checkpoint.every=1",
        ])
        let outcome = try GroupRun.grpo.train(config: config)
        #expect(outcome.steps == 2)
        #expect(outcome.accuracies.map(\.0) == [0, 1, 2])
        for file in ["config.toml", "metrics.jsonl", "samples.jsonl", "report.html", "checkpoints/latest/model.safetensors",
                     "checkpoints/model/config.json", "checkpoints/initial.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(file).path), "\(file)")
        }
        let written = try ConfigDocument.load(path: output.appendingPathComponent("config.toml").path)
        let reread = try GroupRun.grpo.schema.resolve(file: written)
        let back = GroupRun.grpo.keys.apply(reread, to: GRPOConfig())
        #expect(back.steps == 2 && back.promptsPerStep == 2 && back.numGenerations == 2 && back.maxCompletionLength == 4)
        #expect(back.learningRate == 1e-3 && reread.int("seed") == 3)
    }
}
