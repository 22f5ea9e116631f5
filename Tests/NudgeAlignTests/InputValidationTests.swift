// Hostile inputs to the trainers are errors that name the row or the field, before a tensor is
// built: token ids past the vocabulary, empty prompts and prompt sets, temperature 0 in training,
// an accuracy reward without answers, truncation that leaves nothing to train, an empty or
// UTF-16 dataset file; and a learning rate that overflows the weights stops the run without
// saving them.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Input validation") struct InputValidationTests {
    @Test func idsPastTheVocabularyNameTheRow() throws {
        let (model, tokenizer) = tinyPolicy()
        let v = model.configuration.vocabularySize
        let rows: [DatasetRow] = [.tokenizedLanguageModeling(inputIDs: [1, 2, 3], completionMask: [0, 1, 1]),
                                  .tokenizedLanguageModeling(inputIDs: [1, v + 40, 3], completionMask: [0, 1, 1])]
        let error = try #require(throws: RowError.self) {
            try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: SFTConfig())
        }
        #expect(error.row == 2 && "\(error)".contains("token id \(v + 40)"))
        let pairs: [DatasetRow] = [.tokenizedPreference(promptIDs: [1], chosenIDs: [2], rejectedIDs: [v])]
        #expect(throws: RowError.self) { try DPOTrainer.train(policy: model, tokenizer: tokenizer, rows: pairs, config: DPOConfig()) }
    }

    @Test func aReferenceWithAnotherVocabularyIsRefused() throws {
        let (model, tokenizer) = tinyPolicy()
        let other = LlamaModel(TransformerConfiguration.preset("tiny", vocabularySize: 512)!, seed: 2)
        let rows = SyntheticTask.addition(digits: 1).preferenceRows(count: 4, seed: 1)
        let error = try #require(throws: TrainerConfigurationError.self) {
            try DPOTrainer.train(policy: model, reference: other, tokenizer: tokenizer, rows: rows, config: DPOConfig())
        }
        #expect(error.field == "ref_model")
    }

    /// Ctrl-C during the reward command rolls the step back: the next step is the one an
    /// uninterrupted run makes, so the checkpoint saved on the interrupt resumes exactly.
    @Test func anInterruptedRewardLeavesTheStepUndone() throws {
        final class InterruptOnce: RewardFunction {
            let name = "interrupt_once"
            var calls = 0
            func scores(_ samples: [RewardSample]) throws -> [Double?] {
                calls += 1
                if calls == 1 { throw RewardError.interrupted }
                return samples.map { Double($0.completion.count % 3) }
            }
        }
        func run(interruptFirst: Bool) throws -> (GRPOTrainer, OnlineStepResult?) {
            let (model, tokenizer) = tinyPolicy()
            var config = GRPOConfig()
            config.promptsPerStep = 2
            config.numGenerations = 2
            config.maxCompletionLength = 3
            let reward: any RewardFunction = interruptFirst ? InterruptOnce() : ClosureReward(name: "interrupt_once") { Double($0.completion.count % 3) }
            let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 6, seed: 1),
                                          rewards: WeightedRewards([(reward, 1)]), config: config)
            if interruptFirst {
                #expect(throws: RewardError.interrupted) { try trainer.trainStep() }
                #expect(trainer.step == 0 && trainer.cursor.consumed == 0)
            }
            return (trainer, try trainer.trainStep())
        }
        let (interrupted, a) = try run(interruptFirst: true)
        let (straight, b) = try run(interruptFirst: false)
        #expect(interrupted.cursor.consumed == straight.cursor.consumed)
        #expect(a?["loss"] == b?["loss"] && a?["reward"] == b?["reward"])
        #expect(interrupted.policy.parameters().tensors.map(\.scalars) == straight.policy.parameters().tensors.map(\.scalars))
    }

    @Test func emptyPromptsAndPromptSetsAreErrors() throws {
        let (model, tokenizer) = tinyPolicy()
        var config = GRPOConfig()
        config.maxCompletionLength = 2
        let reward = WeightedRewards([(ClosureReward(name: "one") { _ in 1 }, 1)])
        let empty = try #require(throws: RowError.self) {
            try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: [.promptOnly(.text("hi")), .promptOnly(.text(""))], rewards: reward, config: config)
        }
        #expect(empty.row == 2 && "\(empty)".contains("no tokens"))
        #expect(throws: TrainerConfigurationError.self) {
            try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: [], rewards: reward, config: config)
        }
        #expect(throws: RowError.self) {
            try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: [.verifiable(prompt: .text(""), answer: "1")])
        }
    }

    @Test func trainingSettingsThatCannotWorkAreRefused() throws {
        let (model, tokenizer) = tinyPolicy()
        let rows = SyntheticTask.addition(digits: 1).verifiableRows(count: 4, seed: 1)
        let accuracy = WeightedRewards([(ExactAnswerReward(), 1)])
        for temperature: Float in [0, -1, .nan] {
            var config = GRPOConfig()
            config.temperature = temperature
            let error = try #require(throws: TrainerConfigurationError.self) {
                try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: rows, rewards: accuracy, config: config)
            }
            #expect(error.field == "temperature")
        }
        // The accuracy reward on rows without an answer would score nothing and train nothing.
        let unanswered = try #require(throws: RowError.self) {
            try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: rows + [.promptOnly(.text("1+1="))], rewards: accuracy, config: GRPOConfig())
        }
        #expect(unanswered.row == 5 && "\(unanswered)".contains("answer"))
        // SFT truncated so far that no completion token is left.
        var sft = SFTConfig()
        sft.maxLength = 1
        let truncated = try #require(throws: TrainerConfigurationError.self) {
            try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).sftRows(count: 4, seed: 1), config: sft)
        }
        #expect(truncated.field == "max_length")
    }

    @Test func anOverflowingUpdateStopsTrainingWithoutSavingTheWeights() throws {
        let (model, tokenizer) = tinyPolicy()
        var config = SFTConfig()
        config.learningRate = 1e38
        config.maxGradNorm = .infinity
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-nan-\(UUID().uuidString)/latest")
        let control = TrainingControl(checkpointEvery: 1, checkpoint: { step in try Checkpoint.save(model: model, optimizer: nil, step: step, to: dir) })
        let error = try #require(throws: NonFiniteValueError.self) {
            try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).sftRows(count: 32, seed: 1),
                                 config: config, control: control)
        }
        #expect(error.step == 1 && error.afterUpdate)
        // The step's checkpoint was never written: the check ran before it.
        #expect(!FileManager.default.fileExists(atPath: dir.path))
        #expect(model.firstNonFiniteParameter() != nil)
        #expect(throws: CheckpointError.self) { try Checkpoint.save(model: model, optimizer: nil, step: 1, to: dir) }
    }

    @Test func emptyAndNonUTF8FilesAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let empty = dir.appendingPathComponent("empty.jsonl")
        try Data("\n\n".utf8).write(to: empty)
        #expect(throws: DatasetError(file: "empty.jsonl", line: 0, field: nil, kind: .noRows)) { try JSONLDataset.load(empty) }
        let utf16 = dir.appendingPathComponent("utf16.jsonl")
        try #require("{\"prompt\": \"a\", \"completion\": \"b\"}\n".data(using: .utf16)).write(to: utf16)
        let error = try #require(throws: DatasetError.self) { try JSONLDataset.load(utf16) }
        #expect("\(error)".contains("UTF-16"))
        let latin1 = dir.appendingPathComponent("latin1.jsonl")
        try Data("{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"caf".utf8 + [0xE9] + "\", \"completion\": \"b\"}\n".utf8).write(to: latin1)
        let bad = try #require(throws: DatasetError.self) { try JSONLDataset.load(latin1) }
        #expect(bad.line == 2 && "\(bad)".contains("UTF-8"))
        let directory = try #require(throws: DatasetError.self) { try JSONLDataset.load(dir) }
        #expect("\(directory)".contains("directory"))
        let fifo = dir.appendingPathComponent("fifo")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let pipe = try #require(throws: DatasetError.self) { try JSONLDataset.load(fifo) }
        #expect("\(pipe)".contains("not a regular file"))
    }
}
