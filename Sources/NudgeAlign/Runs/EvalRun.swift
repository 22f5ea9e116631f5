// Held-out evaluation of a saved language model on a verifiable task (`nudge eval`): greedy
// exact-match accuracy, the gold reward on built-in tasks, and with samples, sampled accuracy and
// pass@k. It takes a model directory, or a run directory (its checkpoints/model, or checkpoints/best),
// in which case the task, seed, completion length and held-out rows default to the run's own: its
// eval.data (a file, or a directory's eval.split), else the seeded sample of eval.rows rows of its
// data that training held out, else its built-in task's held-out rows.

import Foundation
import NudgeConfig
import NudgeLM

/// A saved model evaluated on held-out verifiable rows.
public struct EvalRun {
    /// What to evaluate and how; a setting left nil takes the run directory's own, else a default.
    public struct Options: Sendable {
        /// Evaluate a run directory's checkpoints/best instead of checkpoints/model.
        public var best: Bool
        /// A built-in task: addition, multiplication, reversal, sorting or carries (default: the run's, else addition).
        public var task: String?
        /// A JSONL or Parquet file (or Hub dataset directory) of verifiable rows, evaluated on its last rows.
        public var data: String?
        /// The split of `data` when it is a Hub dataset directory.
        public var split: String
        /// The column mapping of the rows, as dataset.columns (default: the run's).
        public var columns: String?
        /// The answer extractor of the rows, as dataset.answer (default: the run's).
        public var answer: String?
        /// How many held-out rows (default: the run's eval.rows, else 200).
        public var rows: Int?
        /// New tokens per completion (default: the run's completion length, else 16).
        public var maxNewTokens: Int?
        /// Samples per prompt for sampled accuracy and pass@k (0: greedy only).
        public var samples: Int
        /// The sampling temperature.
        public var temperature: Float
        /// The seed of the held-out rows (default: the run's, as its evaluation used) and of sampling.
        public var seed: Int?
        /// The `eval.judge*` keys (`EvalRun.judgeSchema`): with `eval.judge` other than none, also a
        /// win rate of the model's completions against the reference's, judged pairwise.
        public var judge: ResolvedConfig?

        /// Options with every setting given (nil: the run's own, else the default).
        public init(best: Bool = false, task: String? = nil, data: String? = nil, split: String = "test", columns: String? = nil,
                    answer: String? = nil, rows: Int? = nil, maxNewTokens: Int? = nil, samples: Int = 0, temperature: Float = 1,
                    seed: Int? = nil, judge: ResolvedConfig? = nil) {
            self.judge = judge
            self.best = best
            self.task = task
            self.data = data
            self.split = split
            self.columns = columns
            self.answer = answer
            self.rows = rows
            self.maxNewTokens = maxNewTokens
            self.samples = samples
            self.temperature = temperature
            self.seed = seed
        }
    }

    /// The model directory evaluated.
    public var model: URL
    /// Where the held-out rows came from, in words.
    public var heldOut: String
    /// What was measured.
    public var evaluation: VerifiableEvaluation
    /// The judge's verdicts on the model against the reference (with `eval.judge` set), and who judged.
    public var winRate: (judge: String, reference: String, result: WinRate)?

    /// The keys of the judged win rate: `eval.judge` (none, gold, http, local) and its settings, the reference,
    /// and the sampling temperatures of both sides.
    public static let judgeSchema = ConfigSchema(JudgeKeys.fields("eval", choices: ["none"] + JudgeKeys.kinds, default: "none") + [
        .string("eval.reference_model", "", help: "The model directory or .gguf file whose completions the model's are judged against; empty: the rows' reference answers."),
        .double("eval.temperature", 0, min: 0, help: "Sampling temperature of the model's completions for the win rate (0: greedy)."),
        .double("eval.reference_temperature", 0, min: 0, help: "Sampling temperature of the reference model's completions (0: greedy)."),
    ])

    /// Evaluates the model at `path`: a model directory (config.json + model.safetensors) or a run directory.
    ///
    /// - Throws: `RunSetupError` for options or a run that give nothing to evaluate on; dataset
    ///   and model errors as they are.
    public static func evaluate(path: String, options: Options) throws -> EvalRun {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        let best = options.best
        var runConfig: ConfigDocument?
        var modelURL = url
        if fm.fileExists(atPath: url.appendingPathComponent("config.toml").path) {
            runConfig = try? ConfigDocument.load(path: url.appendingPathComponent("config.toml").path)
            modelURL = url.appendingPathComponent("checkpoints/\(best ? "best" : "model")")
            guard fm.fileExists(atPath: modelURL.appendingPathComponent("config.json").path) else {
                throw RunSetupError("\(modelURL.path): no saved model there\(best ? " (a run keeps checkpoints/best only when it evaluates)" : "")")
            }
        } else if best {
            throw RunSetupError("--best needs a run directory (with config.toml); \(path) is not one")
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
        let count = options.rows ?? runRows.flatMap { $0 > 0 ? $0 : nil } ?? 200
        guard count > 0 else { throw RunSetupError("--rows: expected an integer ≥ 1, got \(count)") }
        // The run's column mapping and answer extractor, unless given here.
        let columnText = options.columns ?? recordedString("dataset.columns") ?? ""
        let mapping: [String: String]
        do { mapping = try DatasetOptions.parseColumns(columnText) } catch {
            throw RunSetupError("\(options.columns == nil ? "the run's " : "--")\(error)")
        }
        let answerName = options.answer ?? recordedString("dataset.answer") ?? "none"
        guard answerName == "none" || AnswerExtractor(rawValue: answerName) != nil else {
            throw RunSetupError("--answer: expected none, \(AnswerExtractor.allCases.map(\.rawValue).joined(separator: ", ")), got '\(answerName)'")
        }
        let datasetOptions = DatasetOptions(columns: mapping, answer: AnswerExtractor(rawValue: answerName), split: recordedString("dataset.split") ?? "train")
        let evalSeed = UInt64(options.seed ?? runSeed)
        let heldOut: [DatasetRow]
        let source: String
        var gold: (any RewardFunction)?
        if let data = options.data {
            var splitOptions = datasetOptions
            splitOptions.split = options.split
            // Streamed, keeping only the last `count` verifiable rows: a large file need not fit in memory.
            var last: [DatasetRow] = []
            try JSONLDataset.forEachRow(URL(fileURLWithPath: data), options: splitOptions) { _, row in
                guard row.isVerifiable else { return true }
                if last.count == 2 * count { last.removeFirst(count) }
                last.append(row)
                return true
            }
            guard !last.isEmpty else { throw RunSetupError("\(data): no verifiable rows ({\"prompt\": …, \"answer\": …})") }
            heldOut = Array(last.suffix(count))
            source = "the last \(heldOut.count) verifiable rows of \(data)"
        } else if let evalData = recordedString("eval.data"), !evalData.isEmpty {
            // The run's own held-out file or split: its first rows, as training evaluated on.
            let evalSplit = recordedString("eval.split") ?? "test"
            heldOut = try HeldOut.rows(of: URL(fileURLWithPath: evalData), split: evalSplit, options: datasetOptions, count: count)
            guard !heldOut.isEmpty else { throw RunSetupError("the run's eval.data \(evalData): no verifiable rows to evaluate on") }
            source = "the run's eval.data \(evalData)\(isDirectory(evalData) ? " (split \(evalSplit))" : "")"
        } else if let trainData = recordedString("data"), !trainData.isEmpty {
            // The rows of the run's data that training held out: the sample drawn with the run's own seed
            // and eval.rows (another seed or size would take rows it trained on), at most `count` of them.
            let all = try JSONLDataset.load(URL(fileURLWithPath: trainData), options: datasetOptions)
            heldOut = Array(HeldOut.sample(all, count: runRows ?? 200, seed: UInt64(runSeed)).heldOut.prefix(count))
            guard !heldOut.isEmpty else {
                throw RunSetupError("the run held out no rows of its data \(trainData) (eval.rows = 0, or too few verifiable rows); give --data")
            }
            source = "\(heldOut.count) rows of the run's data \(trainData) held out from training (eval.rows, seed \(runSeed))"
        } else {
            let name = options.task ?? runTask
            guard let builtIn = AlignRun.task(named: name) else {
                throw RunSetupError("--task: expected one of \(AlignRun.taskNames.joined(separator: ", ")), got '\(name)'")
            }
            // The same held-out rows the online commands evaluate on (seed + 999).
            heldOut = builtIn.verifiableRows(count: count, seed: evalSeed &+ 999)
            source = "the \(name) task's held-out rows (seed \(evalSeed))"
            gold = ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }
        }
        let (model, tokenizer) = try AlignRun.loadModel(directory: modelURL)
        let evaluation = try evaluateVerifiable(model: model, tokenizer: tokenizer, rows: heldOut,
                                                maxNewTokens: options.maxNewTokens ?? runLength ?? max(16, AlignRun.completionLength(task: options.task ?? runTask)), samplesPerPrompt: options.samples,
                                                temperature: options.temperature, gold: gold, seed: evalSeed)
        var result = EvalRun(model: modelURL, heldOut: source, evaluation: evaluation)
        if let judgeConfig = options.judge, judgeConfig.string("eval.judge") != "none" {
            result.winRate = try judgedWinRate(model: model, tokenizer: tokenizer, rows: heldOut, config: judgeConfig,
                                               maxNewTokens: options.maxNewTokens ?? runLength ?? 16, seed: evalSeed, gold: gold,
                                               cacheDirectory: runConfig == nil ? nil : url)
        }
        return result
    }

    /// The model's completions of `rows` against the reference's (`eval.reference_model`'s samples, else the
    /// rows' answers), judged pairwise by `eval.judge` with the model's completion shown as the first.
    public static func judgedWinRate(model: any CausalLanguageModel, tokenizer: any Tokenizer, rows: [DatasetRow], config: ResolvedConfig,
                                     maxNewTokens: Int, seed: UInt64, gold: (any RewardFunction)?,
                                     cacheDirectory: URL?) throws -> (judge: String, reference: String, result: WinRate) {
        let judge = try JudgeKeys.pairwise(config, section: "eval", seed: seed, gold: gold, cacheDirectory: cacheDirectory)
        func complete(_ model: any CausalLanguageModel, _ tokenizer: any Tokenizer, temperature: Float, seed: UInt64) throws -> [RewardSample] {
            let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, limits: TokenLimits(model: model), maxNewTokens: maxNewTokens)
            let generation = GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxNewTokens, temperature: temperature, seed: seed)
            return try Rollout.sample(model: model, tokenizer: tokenizer, prompts: prompts, repeats: 1, generation: generation).samples
        }
        let mine = try complete(model, tokenizer, temperature: config.float("eval.temperature"), seed: seed)
        let referencePath = config.string("eval.reference_model")
        let theirs: [RewardSample]
        let reference: String
        if referencePath.isEmpty {
            theirs = try mine.enumerated().map { row, sample in
                guard let answer = sample.answer else {
                    throw RunSetupError("eval.reference_model is empty and held-out row \(row) has no reference answer to judge against")
                }
                return RewardSample(prompt: sample.prompt, completion: answer, answer: answer)
            }
            reference = "the rows' reference answers"
        } else {
            let (other, otherTokenizer) = try LanguageModelLoader.loadWithTokenizer(path: URL(fileURLWithPath: referencePath))
            other.freeze()
            theirs = try complete(other, otherTokenizer, temperature: config.float("eval.reference_temperature"), seed: seed &+ 1)
            reference = referencePath
        }
        let verdicts = judge.judge(zip(mine, theirs).map { JudgePair(first: $0, second: $1) })
        return (judge.name, reference, WinRate(verdicts))
    }

    /// One JSON object: the model, the rows, where they came from (`held_out`) and the metrics.
    public func json() throws -> String {
        var object: [String: Any] = ["model": model.path, "rows": evaluation.rows, "held_out": heldOut]
        for (k, v) in evaluation.metrics { object[k] = v }
        if let (judge, reference, w) = winRate {
            object["judge"] = judge
            object["reference"] = reference
            object["win_rate"] = w.winRate.isNaN ? nil : w.winRate
            object["wins"] = w.wins
            object["losses"] = w.losses
            object["ties"] = w.ties
            object["judge_failures"] = w.failures.map(\.description)
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// A text report: the model and its held-out rows, the metrics, then the first greedy completions.
    public var summary: String {
        var lines = ["\(model.path) on \(evaluation.rows) held-out rows: \(heldOut)"]
        for (k, v) in evaluation.metrics { lines.append(String(format: "  %-22@ %.4f", k as NSString, v)) }
        if let (judge, reference, w) = winRate {
            lines.append(String(format: "  win rate %.4f against %@ (judge %@): %d wins, %d losses, %d ties, %d failures", w.winRate,
                                reference as NSString, judge as NSString, w.wins, w.losses, w.ties, w.failures.count))
            for failure in w.failures.prefix(5) { lines.append("  judge failure: \(failure)") }
        }
        for x in evaluation.examples {
            lines.append("  \(x.correct ? "✓" : "✗") \(x.prompt.debugDescription) → \(x.completion.debugDescription) (answer \(x.answer ?? "–"))")
        }
        return lines.joined(separator: "\n")
    }

    private static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}
