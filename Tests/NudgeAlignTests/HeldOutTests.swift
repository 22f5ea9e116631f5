// HeldOutTests.swift
//
// Held-out evaluation that is held out: a GSM8K-shaped Hub directory (data/train-*.parquet,
// data/test-*.parquet, columns question/answer ending in "#### N") trains GRPO on its train split
// with question=prompt and the gsm8k extractor, and evaluates on its test split; without a separate
// split, a seeded sample of the data is held out and never trained on. `nudge grpo` and
// `nudge eval RUN_DIR` both choose their rows with `HeldOut` (the CLI end to end is in
// scripts/fault_suite.py).

import Foundation
import NudgeLM
import Testing

@testable import NudgeAlign

private func fixture(_ name: String) throws -> Data {
    let url = try #require(Bundle.module.url(forResource: "parquet/\(name)", withExtension: nil, subdirectory: "Fixtures"))
    return try Data(contentsOf: url)
}

/// `gsm8k/data/train-0000{0,1}-of-00002.parquet` (80 rows) and `gsm8k/data/test-00000-of-00001.parquet` (40 rows).
private func gsm8kDirectory() throws -> URL {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-gsm8k-\(UUID().uuidString)")
    let data = root.appendingPathComponent("data")
    try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
    let train = try fixture("gsm8k.parquet")
    try train.write(to: data.appendingPathComponent("train-00000-of-00002.parquet"))
    try train.write(to: data.appendingPathComponent("train-00001-of-00002.parquet"))
    try fixture("gsm8k_gzip_v2.parquet").write(to: data.appendingPathComponent("test-00000-of-00001.parquet"))
    return root
}

@Suite struct HeldOutTests {
    let gsm8k = DatasetOptions(columns: ["question": "prompt"], answer: .gsm8k)

    /// Train on the train split, evaluate on the test split: GRPO steps run on rows mapped from
    /// question/answer, and the evaluation sees the test split's rows only.
    @Test func gsm8kDirectoryTrainsGRPOAndEvaluatesOnItsTestSplit() throws {
        let root = try gsm8kDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let train = try JSONLDataset.load(root, options: gsm8k)
        #expect(train.count == 80)
        let heldOut = try HeldOut.rows(of: root, split: "test", options: gsm8k, count: 1000)
        #expect(heldOut.count == 40)  // the test shard alone, though options.split says train
        #expect(heldOut.first == .verifiable(prompt: .text("Natalia sold clips to 0 of her friends. How many clips did she sell?"), answer: "0"))
        #expect(heldOut.last == .verifiable(prompt: .text("Natalia sold clips to 39 of her friends. How many clips did she sell?"), answer: "78"))
        // The first eval.rows of them, read no further than needed.
        #expect(try HeldOut.rows(of: root, split: "test", options: gsm8k, count: 4) == Array(heldOut.prefix(4)))
        #expect(try HeldOut.rows(of: root, split: "test", options: gsm8k, count: 0).isEmpty)

        let (model, tokenizer) = tinyPolicy(seed: 5)
        var config = GRPOConfig()
        config.promptsPerStep = 2
        config.numGenerations = 2
        config.maxCompletionLength = 3
        config.seed = 1
        let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: train,
                                      rewards: WeightedRewards([(ExactAnswerReward(), 1)]), config: config)
        for _ in 0..<2 { #expect(try trainer.trainStep()?["reward"] != nil) }
        let evaluation = try evaluateVerifiable(model: model, tokenizer: tokenizer, rows: Array(heldOut.prefix(4)), maxNewTokens: 3)
        #expect(evaluation.rows == 4)
        #expect((0...1).contains(evaluation.greedyAccuracy))
    }

    @Test func aMissingSplitNamesTheDirectoryAndTheSplit() throws {
        let root = try gsm8kDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let error = try #require(throws: DatasetError.self) { try HeldOut.rows(of: root, split: "validation", options: gsm8k, count: 10) }
        #expect("\(error)".contains(root.lastPathComponent) && "\(error)".contains("data/validation-*.parquet"), "\(error)")
    }

    /// The sample is seeded (the same rows each time, as `nudge eval` recomputes it), disjoint from
    /// training, at most a tenth of the verifiable rows and at most `count`, in file order.
    @Test func seededSampleIsRemovedFromTraining() throws {
        let root = try gsm8kDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let rows = try JSONLDataset.load(root, options: gsm8k)
        let (train, heldOut) = HeldOut.sample(rows, count: 200, seed: 7)
        #expect(heldOut.count == 8)  // a tenth of 80
        #expect(train.count == 72)
        let again = HeldOut.sample(rows, count: 200, seed: 7)
        #expect(again.heldOut == heldOut && again.train == train)
        #expect(HeldOut.sample(rows, count: 3, seed: 7).heldOut.count == 3)
        #expect(HeldOut.sample(rows, count: 0, seed: 7).heldOut.isEmpty)
        #expect(HeldOut.sample(rows, count: 200, seed: 8).heldOut != heldOut)
        // Disjoint by position: the file's rows are train and held-out rows, each once.
        let numbered = (0..<50).map { DatasetRow.verifiable(prompt: .text("q\($0)"), answer: "\($0)") }
        let split = HeldOut.sample(numbered, count: 200, seed: 1)
        #expect(Set(split.train.map(\.jsonLine)).isDisjoint(with: split.heldOut.map(\.jsonLine)))
        #expect(split.train.count + split.heldOut.count == 50 && split.heldOut.count == 5)
        let positions = split.heldOut.compactMap { row in numbered.firstIndex(of: row) }
        #expect(positions.count == 5 && positions == positions.sorted())
        // Rows without an answer are never held out.
        let mixed = numbered + (0..<50).map { DatasetRow.promptOnly(.text("p\($0)")) }
        let mixedHeldOut = HeldOut.sample(mixed, count: 200, seed: 1).heldOut
        #expect(mixedHeldOut.count == 5 && mixedHeldOut.allSatisfy { $0.isVerifiable })
    }
}

/// `EvalRun` (`nudge eval`): a saved model on a built-in task's held-out rows or a file's last rows,
/// and the settings that give nothing to evaluate on.
@Suite struct EvalRunTests {
    @Test func evaluatesASavedModelOnATaskAndOnAFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-eval-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (model, _) = tinyPolicy(seed: 3)
        try LanguageModelLoader.save(model, configJSON: model.configuration.configJSON(), to: dir.appendingPathComponent("model"))
        let onTask = try EvalRun.evaluate(path: dir.appendingPathComponent("model").path, options: .init(task: "sorting", rows: 3, maxNewTokens: 2))
        #expect(onTask.evaluation.rows == 3 && onTask.heldOut == "the sorting task's held-out rows (seed 0)")
        #expect(onTask.evaluation.greedyGold != nil && onTask.summary.contains("eval/accuracy"))
        let data = dir.appendingPathComponent("rows.jsonl")
        try (0..<6).map { "{\"prompt\": \"\($0)+1=\", \"answer\": \"\($0 + 1)\"}\n" }.joined().write(to: data, atomically: true, encoding: .utf8)
        let onFile = try EvalRun.evaluate(path: dir.appendingPathComponent("model").path, options: .init(data: data.path, rows: 4, maxNewTokens: 2))
        #expect(onFile.evaluation.rows == 4 && onFile.heldOut == "the last 4 verifiable rows of \(data.path)")
        #expect(try onFile.json().contains("\"rows\":4"))
        for options in [EvalRun.Options(best: true), .init(rows: 0), .init(answer: "bogus"), .init(task: "bogus")] {
            #expect(throws: RunSetupError.self) { try EvalRun.evaluate(path: dir.appendingPathComponent("model").path, options: options) }
        }
    }
}
