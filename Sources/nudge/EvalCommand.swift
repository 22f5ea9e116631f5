// `nudge eval`: held-out evaluation of a language model on a verifiable task — greedy exact-match
// accuracy, the gold reward on built-in tasks, and with --samples, sampled accuracy and pass@k. It
// takes a model directory, or a run directory (its checkpoints/model, or checkpoints/best with --best),
// in which case the task, seed, completion length and held-out rows default to the run's own: its
// eval.data (a file, or a directory's eval.split), else the seeded sample of eval.rows rows of its
// data that training held out, else its built-in task's held-out rows.

import ArgumentParser
import Foundation
import Nudge

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate a language model on held-out verifiable rows (accuracy, gold reward, pass@k).",
        discussion: """
        Examples:
          nudge eval runs/grpo                          the run's final model on its own held-out rows
                                                        (its eval.data, or the rows of its data it held out)
          nudge eval runs/grpo --best --samples 8       its best checkpoint; pass@1/2/4/8 at temperature 1
          nudge eval path/to/hf-model --data test.jsonl --max-new-tokens 256 --json
          nudge eval path/to/hf-model --data gsm8k/ --split test --columns question=prompt --answer gsm8k
        """)

    @Argument(help: "A model directory (config.json + model.safetensors) or a run directory.") var path: String
    @Flag(help: "Run directory: evaluate checkpoints/best instead of checkpoints/model.") var best = false
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting (default: the run's, else addition).") var task: String?
    @Option(help: "A JSONL or Parquet file (or Hub dataset directory) of verifiable rows {\"prompt\": …, \"answer\": …} instead of the run's held-out rows or a built-in task.") var data: String?
    @Option(help: "The split of --data when it is a Hub dataset directory (data/<split>-*.parquet).") var split = "test"
    @Option(help: "Column mapping for --data, as dataset.columns (default: the run's).") var columns: String?
    @Option(help: "Answer extractor for --data, as dataset.answer: gsm8k, boxed, last_number or none (default: the run's).") var answer: String?
    @Option(help: "Held-out rows (default: the run's eval.rows, else 200): of the built-in task, the last rows of --data.") var rows: Int?
    @Option(name: .customLong("max-new-tokens"), help: "New tokens per completion (default: the run's, else 16).") var maxNewTokens: Int?
    @Option(help: "Samples per prompt for sampled accuracy and pass@k (0: greedy only).") var samples = 0
    @Option var temperature: Float = 1
    @Option(help: "Seed of the held-out rows (default: the run's, as its eval used) and of sampling.") var seed: Int?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        var runConfig: ConfigDocument?
        var modelURL = url
        if fm.fileExists(atPath: url.appendingPathComponent("config.toml").path) {
            runConfig = try? ConfigDocument.load(path: url.appendingPathComponent("config.toml").path)
            modelURL = url.appendingPathComponent("checkpoints/\(best ? "best" : "model")")
            guard fm.fileExists(atPath: modelURL.appendingPathComponent("config.json").path) else {
                throw ValidationError("\(modelURL.path): no saved model there\(best ? " (a run keeps checkpoints/best only when it evaluates)" : "")")
            }
        } else if best {
            throw ValidationError("--best needs a run directory (with config.toml); \(path) is not one")
        }
        // The run's own settings, read loosely: a key a command does not have is simply absent.
        func recorded(where match: (String) -> Bool) -> ConfigValue? {
            runConfig?.entries.first { match($0.key) }.flatMap { if case .typed(let v) = $0.value { v } else { nil } }
        }
        let runSeed: Int = { if case .int(let s)? = recorded(where: { $0 == "seed" }) { s } else { 0 } }()
        let runTask: String = { if case .string(let t)? = recorded(where: { $0 == "task" }) { t } else { "addition" } }()
        let runLength: Int? = { if case .int(let n)? = recorded(where: { $0.hasSuffix("max_completion_length") }) { n } else { nil } }()
        func recordedString(_ key: String) -> String? { if case .string(let v)? = recorded(where: { $0 == key }) { v } else { nil } }
        let runRows: Int? = { if case .int(let n)? = recorded(where: { $0 == "eval.rows" }) { n } else { nil } }()
        let count = rows ?? runRows.flatMap { $0 > 0 ? $0 : nil } ?? 200
        guard count > 0 else { throw ValidationError("--rows: expected an integer ≥ 1, got \(count)") }
        // The run's column mapping and answer extractor, unless given here.
        let columnText = columns ?? recordedString("dataset.columns") ?? ""
        let mapping: [String: String]
        do { mapping = try DatasetOptions.parseColumns(columnText) } catch { throw ValidationError("\(columns == nil ? "the run's " : "--")\(error)") }
        let answerName = answer ?? recordedString("dataset.answer") ?? "none"
        guard answerName == "none" || AnswerExtractor(rawValue: answerName) != nil else {
            throw ValidationError("--answer: expected none, \(AnswerExtractor.allCases.map(\.rawValue).joined(separator: ", ")), got '\(answerName)'")
        }
        let options = DatasetOptions(columns: mapping, answer: AnswerExtractor(rawValue: answerName), split: recordedString("dataset.split") ?? "train")
        let evalSeed = UInt64(seed ?? runSeed)
        let heldOut: [DatasetRow]
        let source: String
        var gold: (any RewardFunction)?
        if let data {
            var splitOptions = options
            splitOptions.split = split
            // Streamed, keeping only the last `count` verifiable rows: a large file need not fit in memory.
            var last: [DatasetRow] = []
            try JSONLDataset.forEachRow(URL(fileURLWithPath: data), options: splitOptions) { _, row in
                guard row.isVerifiable else { return true }
                if last.count == 2 * count { last.removeFirst(count) }
                last.append(row)
                return true
            }
            guard !last.isEmpty else { throw ValidationError("\(data): no verifiable rows ({\"prompt\": …, \"answer\": …})") }
            heldOut = Array(last.suffix(count))
            source = "the last \(heldOut.count) verifiable rows of \(data)"
        } else if let evalData = recordedString("eval.data"), !evalData.isEmpty {
            // The run's own held-out file or split: its first rows, as training evaluated on.
            let evalSplit = recordedString("eval.split") ?? "test"
            heldOut = try HeldOut.rows(of: URL(fileURLWithPath: evalData), split: evalSplit, options: options, count: count)
            guard !heldOut.isEmpty else { throw ValidationError("the run's eval.data \(evalData): no verifiable rows to evaluate on") }
            source = "the run's eval.data \(evalData)\(isDirectory(evalData) ? " (split \(evalSplit))" : "")"
        } else if let trainData = recordedString("data"), !trainData.isEmpty {
            // The rows of the run's data that training held out: the sample drawn with the run's own seed
            // and eval.rows (another seed or size would take rows it trained on), at most --rows of them.
            let all = try JSONLDataset.load(URL(fileURLWithPath: trainData), options: options)
            heldOut = Array(HeldOut.sample(all, count: runRows ?? 200, seed: UInt64(runSeed)).heldOut.prefix(count))
            guard !heldOut.isEmpty else {
                throw ValidationError("the run held out no rows of its data \(trainData) (eval.rows = 0, or too few verifiable rows); give --data")
            }
            source = "\(heldOut.count) rows of the run's data \(trainData) held out from training (eval.rows, seed \(runSeed))"
        } else {
            let name = task ?? runTask
            guard let builtIn = AlignRun.task(named: name) else {
                throw ValidationError("--task: expected one of \(AlignRun.taskNames.joined(separator: ", ")), got '\(name)'")
            }
            // The same held-out rows the online commands evaluate on (seed + 999).
            heldOut = builtIn.verifiableRows(count: count, seed: evalSeed &+ 999)
            source = "the \(name) task's held-out rows (seed \(evalSeed))"
            gold = ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }
        }
        let (model, tokenizer) = try AlignRun.loadModel(directory: modelURL)
        let e = try evaluateVerifiable(model: model, tokenizer: tokenizer, rows: heldOut, maxNewTokens: maxNewTokens ?? runLength ?? 16,
                                       samplesPerPrompt: samples, temperature: temperature, gold: gold, seed: evalSeed)
        if json {
            var object: [String: Any] = ["model": modelURL.path, "rows": e.rows, "held_out": source]
            for (k, v) in e.metrics { object[k] = v }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(modelURL.path) on \(e.rows) held-out rows: \(source)")
        for (k, v) in e.metrics { print(String(format: "  %-22@ %.4f", k as NSString, v)) }
        for x in e.examples {
            print("  \(x.correct ? "✓" : "✗") \(x.prompt.debugDescription) → \(x.completion.debugDescription) (answer \(x.answer ?? "–"))")
        }
    }

    func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}
