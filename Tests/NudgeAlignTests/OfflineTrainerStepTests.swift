// The offline trainers as `Trainer`s: stepping one optimizer step at a time takes exactly the steps
// of the closure-driven `train`, a checkpoint restored mid-run continues bit-identically, and the
// runner drives them like the online trainers.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport
import NudgeTensor

@Suite("Offline trainers, stepped") struct OfflineTrainerStepTests {
    func sftConfig() -> SFTConfig {
        var c = SFTConfig()
        (c.learningRate, c.batchSize, c.epochs, c.gradientAccumulationSteps, c.seed) = (3e-3, 4, 2, 2, 5)
        return c
    }

    @Test func sftStepsEqualTrainAndResumeBitIdentically() throws {
        let rows = SyntheticTask.addition(digits: 1).sftRows(count: 20, seed: 1)
        let (a, tokenizer) = tinyPolicy(seed: 3)
        let losses = try SFTTrainer.train(model: a, tokenizer: tokenizer, rows: rows, config: sftConfig())

        let (b, _) = tinyPolicy(seed: 3)
        let stepped = try SFTTrainer.trainer(model: b, tokenizer: tokenizer, rows: rows, config: sftConfig())
        #expect(stepped.totalSteps == losses.count)
        var steppedLosses: [Double] = []
        while stepped.completedSteps < stepped.totalSteps {
            if let r = try stepped.trainStep() { steppedLosses.append(try #require(r["loss"])) }
        }
        #expect(steppedLosses == losses.map(Double.init))
        #expect(try stepped.trainStep() == nil, "no step after the last")

        // Stop after 3 steps, save, restore into a fresh model and optimizer: the rest is identical.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-offline-step-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (c, _) = tinyPolicy(seed: 3)
        let first = try SFTTrainer.trainer(model: c, tokenizer: tokenizer, rows: rows, config: sftConfig())
        for _ in 0..<3 { try first.trainStep() }
        try first.saveCheckpoint(to: directory)
        let (d, _) = tinyPolicy(seed: 99)
        let resumed = try SFTTrainer.trainer(model: d, tokenizer: tokenizer, rows: rows, config: sftConfig())
        try resumed.restoreCheckpoint(from: directory)
        #expect(resumed.completedSteps == 3)
        var rest: [Double] = []
        while let r = try resumed.trainStep() { rest.append(try #require(r["loss"])) }
        #expect(rest == Array(losses.map(Double.init).dropFirst(3)))
        #expect(d.parameters().map(\.1.scalars) == a.parameters().map(\.1.scalars), "the resumed weights equal the uninterrupted run's")
    }

    @Test func theRunnerDrivesADPOTrainer() throws {
        let (policy, tokenizer) = tinyPolicy(seed: 4)
        var config = DPOConfig()
        (config.learningRate, config.batchSize, config.seed) = (1e-3, 4, 2)
        let trainer = try DPOTrainer.trainer(policy: policy, tokenizer: tokenizer,
                                             rows: SyntheticTask.addition(digits: 1).preferenceRows(count: 12, seed: 3), config: config)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-offline-runner-\(getpid())")
        defer { try? FileManager.default.removeItem(at: output) }
        let directory = try RunDirectory.create(at: output, config: ConfigTable(), mode: .overwrite)
        var runner = AlignRunner(name: "DPO", directory: directory, model: policy, tokenizer: tokenizer)
        runner.heldOut = SyntheticTask.addition(digits: 1).verifiableRows(count: 4, seed: 8)
        runner.maxNewTokens = 3
        runner.headline = ["loss", "rewards/margins"]
        let outcome = try runner.run(trainer)
        #expect(outcome.steps == 3 && trainer.history.count == 3)
        #expect(outcome.series("rewards/margins").y.count == 3)
        #expect(outcome.accuracies.map(\.0) == [0, 3])
        let logged = try MetricsLog.read(directory.metricsURL)
        #expect(logged.map(\.step) == [0, 1, 2, 3])
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("checkpoints/latest/model.safetensors").path))
    }
}
