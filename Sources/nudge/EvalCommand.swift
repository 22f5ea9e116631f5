// `nudge eval`: held-out evaluation of a model or a run's model (NudgeAlign's EvalRun).

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
          nudge eval runs/grpo --set eval.judge=http --set eval.judge_url=http://127.0.0.1:8080/v1 --set eval.judge_model=m
                                                        also a win rate against the rows' answers (or eval.reference_model)
        """)

    @Argument(help: "A model directory (config.json + model.safetensors) or a run directory.") var path: String
    @Flag(help: "Run directory: evaluate checkpoints/best instead of checkpoints/model.") var best = false
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting, carries (default: the run's, else addition).") var task: String?
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
    @OptionGroup(title: "Judged win rate (eval.judge, eval.judge_url, eval.judge_model, eval.reference_model, ...)") var settings: ConfigOptions

    func run() throws {
        let options = EvalRun.Options(best: best, task: task, data: data, split: split, columns: columns, answer: answer, rows: rows,
                                      maxNewTokens: maxNewTokens, samples: samples, temperature: temperature, seed: seed,
                                      judge: try settings.resolve(EvalRun.judgeSchema))
        let result = try usageErrors { try EvalRun.evaluate(path: path, options: options) }
        print(json ? try result.json() : result.summary)
    }
}
