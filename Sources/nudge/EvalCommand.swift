// `nudge eval`: held-out evaluation of a language model on a verifiable task — greedy exact-match
// accuracy, the gold reward on built-in tasks, and with --samples, sampled accuracy and pass@k. It
// takes a model directory, or a run directory (its checkpoints/model, or checkpoints/best with --best),
// in which case the task, seed and completion length default to the run's own.

import ArgumentParser
import Foundation
import Nudge

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate a language model on held-out verifiable rows (accuracy, gold reward, pass@k).",
        discussion: """
        Examples:
          nudge eval runs/grpo                          the run's final model on its own held-out rows
          nudge eval runs/grpo --best --samples 8       its best checkpoint; pass@1/2/4/8 at temperature 1
          nudge eval path/to/hf-model --data test.jsonl --max-new-tokens 256 --json
        """)

    @Argument(help: "A model directory (config.json + model.safetensors) or a run directory.") var path: String
    @Flag(help: "Run directory: evaluate checkpoints/best instead of checkpoints/model.") var best = false
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting (default: the run's, else addition).") var task: String?
    @Option(help: "A JSONL or Parquet file of verifiable rows {\"prompt\": …, \"answer\": …} instead of a built-in task.") var data: String?
    @Option(help: "Held-out rows of the built-in task (or the last rows of --data).") var rows = 200
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
        let (model, tokenizer) = try AlignRun.loadModel(directory: modelURL)
        let evalSeed = UInt64(seed ?? runSeed)
        let heldOut: [DatasetRow]
        var gold: (any RewardFunction)?
        if let data {
            let all = try JSONLDataset.load(URL(fileURLWithPath: data)).filter { if case .verifiable = $0 { true } else { false } }
            guard !all.isEmpty else { throw ValidationError("\(data): no verifiable rows ({\"prompt\": …, \"answer\": …})") }
            heldOut = Array(all.suffix(rows))
        } else {
            let name = task ?? runTask
            guard let builtIn = AlignRun.task(named: name) else {
                throw ValidationError("--task: expected one of \(AlignRun.taskNames.joined(separator: ", ")), got '\(name)'")
            }
            // The same held-out rows the online commands evaluate on (seed + 999).
            heldOut = builtIn.verifiableRows(count: rows, seed: evalSeed &+ 999)
            gold = ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }
        }
        let e = try evaluateVerifiable(model: model, tokenizer: tokenizer, rows: heldOut, maxNewTokens: maxNewTokens ?? runLength ?? 16,
                                       samplesPerPrompt: samples, temperature: temperature, gold: gold, seed: evalSeed)
        if json {
            var object: [String: Any] = ["model": modelURL.path, "rows": e.rows]
            for (k, v) in e.metrics { object[k] = v }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(modelURL.path) on \(e.rows) held-out rows")
        for (k, v) in e.metrics { print(String(format: "  %-22@ %.4f", k as NSString, v)) }
        for x in e.examples {
            print("  \(x.correct ? "✓" : "✗") \(x.prompt.debugDescription) → \(x.completion.debugDescription) (answer \(x.answer ?? "–"))")
        }
    }
}
