// `nudge grpo`, `nudge rloo`, `nudge ppo`: online RL for language models. With no model and no data
// they run on a built-in verifiable task: a fresh tiny model is first taken by SFT to partial
// accuracy (the warm start), then trained online; held-out greedy accuracy is evaluated along the
// way. Each run writes a run directory (config.toml, metrics.jsonl/.csv, TensorBoard events,
// samples.jsonl, checkpoints/, report.html). Ctrl-C finishes the current step, saves and reports.

import ArgumentParser
import Foundation
import Nudge

/// The flags shared by the online trainers: `--config`/`--set` and shortcuts for common keys.
struct OnlineOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "A Hugging Face model directory or a .gguf file (key: model).") var model: String?
    @Option(help: "A JSONL or Parquet file (or Hub dataset directory) of prompts, e.g. {\"prompt\": …, \"answer\": …} (key: data).") var data: String?
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting (key: task).") var task: String?
    @Option(help: "Optimizer steps (key: <trainer>.steps).") var steps: Int?
    @Option(name: .customLong("learning-rate"), help: "AdamW learning rate (key: <trainer>.learning_rate).") var learningRate: Double?
    @Option(help: "KL coefficient β (key: <trainer>.beta).") var beta: Double?
    @Option(help: "Random seed (key: seed).") var seed: Int?
    @Option(help: "Run directory (key: output).") var output: String?
    @Option(help: ArgumentHelp("Continue the run in this directory from its latest checkpoint, with its config.toml (only <trainer>.steps may be changed, to extend it).",
                               valueName: "run-dir")) var resume: String?

    func resolve(_ schema: ConfigSchema, section: String) throws -> ResolvedConfig {
        if let resume {
            let given: [(String, Bool)] = [("--model", model != nil), ("--data", data != nil), ("--task", task != nil), ("--seed", seed != nil),
                                           ("--output", output != nil), ("--learning-rate", learningRate != nil), ("--beta", beta != nil)]
            return try config.resolveResume(schema, runDirectory: resume, extendable: "\(section).steps",
                                            extended: .init("\(section).steps", "--steps", steps.map { .int($0) }),
                                            otherFlags: given.filter(\.1).map(\.0))
        }
        return try config.resolve(schema, flags: [
            .init("model", "--model", model.map { .string($0) }),
            .init("data", "--data", data.map { .string($0) }),
            .init("task", "--task", task.map { .string($0) }),
            .init("\(section).steps", "--steps", steps.map { .int($0) }),
            .init("\(section).learning_rate", "--learning-rate", learningRate.map { .double($0) }),
            .init("\(section).beta", "--beta", beta.map { .double($0) }),
            .init("seed", "--seed", seed.map { .int($0) }),
            .init("output", "--output", output.map { .string($0) }),
        ])
    }
}

/// Keys and helpers shared by the online commands.
enum OnlineConfig {
    static func common(trainer: String, task: String = "addition") -> [ConfigField] {
        [
            .choice("trainer", [trainer], default: trainer, help: "This trainer (fixed; recorded in config.toml)."),
            .string("model", "", help: "A Hugging Face model directory or a .gguf file; empty: a fresh 'tiny' byte-level Llama warm-started by SFT."),
            .string("data", "", help: "A JSONL or Parquet file (or Hub dataset directory) of prompts (verifiable rows keep their answer); empty: the built-in task."),
        ] + DataKeys.fields + [
            .choice("task", AlignRun.taskNames, default: task, help: "The built-in task."),
            .int("seed", 0, min: 0, help: "Seed of the model, the task, prompt order and sampling."),
            .string("output", "runs/\(trainer)", help: "Run directory (a previous run there is replaced)."),
        ] + warmup + [
            .int("eval.rows", 200, min: 0, help: "Held-out verifiable rows for greedy exact-match accuracy (0: none); with data and no eval.data, a seeded sample of at most a tenth of the data's verifiable rows, removed from training."),
            .string("eval.data", "", help: "A file of held-out verifiable rows (its first eval.rows), or a Hub dataset directory whose eval.split shards hold them; empty: held out from data (see eval.rows). nudge eval RUN_DIR reuses them."),
            .string("eval.split", "test", help: "The split read when eval.data is a Hub dataset directory (data/<split>-*.parquet), e.g. eval.data = \"gsm8k/\" with data = \"gsm8k/\" trains on train and evaluates on test."),
            .int("eval.every", 20, min: 1, help: "Evaluate every this many steps."),
            .int("log.samples_every", 10, min: 1, help: "Write the step's completions to samples.jsonl every this many steps."),
            .int("checkpoint.every", 100, min: 1, help: "Write checkpoints/latest (model, optimizer, trainer position) every this many steps."),
        ]
    }

    /// The warm start of a fresh preset model (`OnlineRun.warmStart`).
    static let warmup: [ConfigField] = [
        .int("warmup.sft_epochs", 30, min: 0, help: "Fresh model only: at most this many SFT epochs before online training."),
        .int("warmup.sft_rows", 2000, min: 1, help: "Fresh model only: SFT rows of the task."),
        .double("warmup.target_accuracy", 0.2, min: 0, max: 1, help: "Fresh model only: stop the warm start at this development accuracy."),
    ]

    static func rewards(_ s: String, default functions: [String]) -> [ConfigField] {
        [
            .array("\(s).reward_funcs", of: .choice(["accuracy", "format", "length_penalty", "overlong", "gold", "command"]),
                   functions.map { .string($0) }, help: "Reward functions, summed with reward_weights."),
            .array("\(s).reward_weights", of: .double, [], help: "One weight per reward function (empty: all 1)."),
            .string("\(s).reward_command", "", help: "command: a program reading JSON lines on stdin, answering one reward per line; run by /bin/sh -c, so quote as in a shell."),
            .double("\(s).reward_timeout", 30, above: 0, help: "command: seconds allowed per scoring call."),
            .double("\(s).length_penalty_coefficient", 0.01, min: 0, help: "length_penalty: −c·max(0, tokens − threshold)."),
            .int("\(s).length_penalty_threshold", 150, min: 0, help: "length_penalty: tokens allowed without penalty."),
            .int("\(s).overlong_cache", 2, min: 1, help: "overlong: the soft-punishment window below max_completion_length."),
        ]
    }

    static func makeRewards(_ c: ResolvedConfig, _ s: String, tokenizer: any Tokenizer) throws -> WeightedRewards {
        let names = c.array("\(s).reward_funcs").compactMap { if case .string(let n) = $0 { n } else { nil } }
        let weights = c.array("\(s).reward_weights").compactMap { v -> Double? in
            switch v { case .double(let d): d; case .int(let i): Double(i); default: nil }
        }
        guard weights.isEmpty || weights.count == names.count else {
            throw ValidationError("\(s).reward_weights: expected \(names.count) weights (one per reward function), got \(weights.count)")
        }
        return WeightedRewards(try names.enumerated().map { k, name -> (any RewardFunction, Double) in
            let f: any RewardFunction
            switch name {
            case "format": f = try FormatReward()
            case "length_penalty":
                f = LengthPenalty(coefficient: c.double("\(s).length_penalty_coefficient"), threshold: c.int("\(s).length_penalty_threshold"),
                                  eosTokenID: tokenizer.eosTokenID)
            case "overlong":
                let maxLength = c.int("\(s).max_completion_length")
                f = SoftOverlongPunishment(maxLength: maxLength, cacheLength: min(c.int("\(s).overlong_cache"), maxLength))
            case "gold": f = ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }
            case "command":
                let command = c.string("\(s).reward_command")
                guard !command.allSatisfy(\.isWhitespace) else { throw ValidationError("\(s).reward_command: the 'command' reward needs a command") }
                let timeout = c.double("\(s).reward_timeout")
                guard timeout > 0, timeout.isFinite else { throw ValidationError("\(s).reward_timeout: expected a positive number of seconds, got \(timeout)") }
                f = try ExternalCommandReward(command: ["/bin/sh", "-c", command], timeout: timeout)
            default: f = ExactAnswerReward()
            }
            return (f, weights.isEmpty ? 1 : weights[k])
        })
    }

    static func task(_ c: ResolvedConfig) -> SyntheticTask { AlignRun(config: c).syntheticTask }

    /// Refuses held-out rows that are the training rows themselves: eval.data naming the training
    /// file, or the training directory's own split.
    static func checkHeldOutIsSeparate(data: String, trainSplit: String, evalData: String, evalSplit: String) throws {
        guard !data.isEmpty else { return }
        let a = URL(fileURLWithPath: data).standardizedFileURL.resolvingSymlinksInPath().path
        let b = URL(fileURLWithPath: evalData).standardizedFileURL.resolvingSymlinksInPath().path
        guard a == b else { return }
        var isDirectory: ObjCBool = false
        let directory = FileManager.default.fileExists(atPath: a, isDirectory: &isDirectory) && isDirectory.boolValue
        if !directory {
            throw ValidationError("eval.data \(evalData) is the training data itself (data); held-out rows must not be trained on: name a separate file, or a directory and its eval.split")
        }
        if trainSplit == evalSplit {
            throw ValidationError("eval.data \(evalData): eval.split '\(evalSplit)' is the split training reads (dataset.split); held-out rows must not be trained on (e.g. eval.split=test)")
        }
    }
}

/// What an online command does around its trainer: model, data, warm start, the run directory,
/// evaluation, samples, checkpoints, Ctrl-C and the report.
struct OnlineRun {
    let config: ResolvedConfig
    let name: String
    var seed: UInt64 { UInt64(config.int("seed")) }
    var usesPreset: Bool { config.string("model").isEmpty }
    /// The model file or directory the run started from (nil for the fresh preset): saved models carry its tokenizer.
    var sourceModel: URL? { usesPreset ? nil : URL(fileURLWithPath: config.string("model")) }

    /// The model and tokenizer named by `model` (the fresh preset when empty), as sft/rm/dpo load them.
    func loadModel() throws -> (any CausalLanguageModel, any Tokenizer) { try AlignRun(config: config).loadModel() }

    /// Training prompts and held-out evaluation rows (chosen by `HeldOut`, as `nudge eval RUN_DIR` chooses them again).
    func rows() throws -> (train: [DatasetRow], heldOut: [DatasetRow]) {
        let data = config.string("data")
        let heldOutCount = config.int("eval.rows")
        let evalData = config.string("eval.data")
        let options = try DataKeys.options(config)
        if !evalData.isEmpty {
            let split = config.string("eval.split")
            try OnlineConfig.checkHeldOutIsSeparate(data: data, trainSplit: options.split, evalData: evalData, evalSplit: split)
            let heldOut = try HeldOut.rows(of: URL(fileURLWithPath: evalData), split: split, options: options, count: heldOutCount)
            guard heldOutCount == 0 || !heldOut.isEmpty else {
                throw ValidationError("eval.data \(evalData): no verifiable rows (with an \"answer\") to evaluate on")
            }
            if heldOutCount > 0 {
                var isDirectory: ObjCBool = false
                let directory = FileManager.default.fileExists(atPath: evalData, isDirectory: &isDirectory) && isDirectory.boolValue
                print("Held-out evaluation on the first \(heldOut.count) verifiable rows of eval.data \(evalData)\(directory ? " (split \(split))" : "")")
            }
            let train = data.isEmpty ? OnlineConfig.task(config).verifiableRows(count: 5000, seed: seed &+ 2)
                                     : try JSONLDataset.load(URL(fileURLWithPath: data), options: options)
            return (train, heldOut)
        }
        if !data.isEmpty {
            let rows = try JSONLDataset.load(URL(fileURLWithPath: data), options: options)
            // Held-out accuracy is measured on prompts the policy never trained on.
            let (train, heldOut) = HeldOut.sample(rows, count: heldOutCount, seed: seed)
            if heldOutCount > 0 {
                print(!heldOut.isEmpty ? "Held out \(heldOut.count) of \(rows.count) rows of \(data) for evaluation (eval.rows, at most a tenth of the verifiable rows; eval.data names a separate file)"
                                       : "No held-out evaluation: \(data) has \(rows.filter(\.isVerifiable).count) verifiable rows, too few to hold a tenth out; eval.data names a separate file")
            }
            return (train, heldOut)
        }
        let task = OnlineConfig.task(config)
        return (task.verifiableRows(count: 5000, seed: seed &+ 2), task.verifiableRows(count: heldOutCount, seed: seed &+ 999))
    }

    /// SFT on the built-in task, epoch by epoch, until greedy accuracy on a development set (disjoint
    /// from the held-out rows) reaches `warmup.target_accuracy`, so a fresh model starts with partial
    /// accuracy: how fast a tiny model picks up addition varies a lot with its seed.
    func warmStart(_ model: any CausalLanguageModel, _ tokenizer: any Tokenizer, maxNewTokens: Int) throws {
        let epochs = config.int("warmup.sft_epochs")
        let hasData = config.schema.field("data") != nil && !config.string("data").isEmpty
        guard usesPreset, !hasData, epochs > 0 else { return }
        let task = OnlineConfig.task(config)
        let rows = task.sftRows(count: config.int("warmup.sft_rows"), seed: seed &+ 1)
        let development = task.verifiableRows(count: 200, seed: seed &+ 500)
        let target = config.double("warmup.target_accuracy")
        let progress = ProgressReporter(total: epochs, label: "SFT warm start")
        var accuracy = 0.0
        for epoch in 1...epochs {
            var sft = SFTConfig()
            sft.learningRate = 3e-3
            sft.batchSize = 32
            sft.seed = seed &+ UInt64(epoch)
            let losses = try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: sft)
            accuracy = try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: development, maxNewTokens: maxNewTokens)
            progress.update(completed: epoch, metrics: [("loss", Double(losses.last ?? .nan)), ("dev_accuracy", accuracy)])
            if accuracy >= target { break }
        }
        progress.finish()
        print(String(format: "SFT warm start: development accuracy %.3f (target %.2f)", accuracy, target))
    }

    /// The run directory: replaced, or reopened to resume after `step` (later metrics and samples,
    /// left by a crash after the last checkpoint, are dropped).
    func directory(resumingAfter step: Int? = nil) throws -> RunDirectory {
        try AlignRun(config: config).directory(resumingAfter: step)
    }

    /// checkpoints/initial.safetensors: the policy online training starts from (the reference), kept
    /// for a fresh preset model, whose warm start cannot be reloaded from a model directory.
    func initialWeightsURL(_ directory: URL) -> URL { directory.appendingPathComponent("checkpoints/initial.safetensors") }

    /// checkpoints/latest: the resumable checkpoint.
    func latestCheckpointURL(_ directory: URL) -> URL { directory.appendingPathComponent("checkpoints/latest") }

    /// For `--resume`: puts the run's starting weights into `model` (the loaded model directory
    /// already holds them), so the reference made from it is the original run's.
    func loadInitialWeights(_ model: any CausalLanguageModel) throws {
        let run = URL(fileURLWithPath: config.string("output"))
        try Checkpoint.recoverInterruptedSwap(at: latestCheckpointURL(run))
        guard FileManager.default.fileExists(atPath: latestCheckpointURL(run).path) else {
            throw ValidationError("--resume \(run.path): no checkpoints/latest to continue from")
        }
        if usesPreset { try model.load(from: initialWeightsURL(run)) }
    }

    func accuracy(_ model: any CausalLanguageModel, _ tokenizer: any Tokenizer, _ rows: [DatasetRow], maxNewTokens: Int) throws -> Double? {
        rows.isEmpty ? nil : try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: rows, maxNewTokens: maxNewTokens)
    }

    /// The training loop shared by the online commands: `step()` makes one optimizer step (nil: skipped).
    /// Steps run from `startStep + 1` to `steps`; `saveCheckpoint`, when given, writes checkpoints/latest
    /// every `checkpoint.every` steps and at the end (also on Ctrl-C), and the model with the best
    /// held-out accuracy so far is kept in checkpoints/best.
    @discardableResult
    func loop(model: any CausalLanguageModel, tokenizer: any Tokenizer, heldOut: [DatasetRow], steps: Int, maxNewTokens: Int,
              directory: RunDirectory, headline: [String], startStep: Int = 0, saveCheckpoint: ((URL) throws -> Void)? = nil,
              step: () throws -> OnlineStepResult?) throws -> OnlineOutcome {
        let started = Date()
        let stop = StopSignal.install()
        let samplesURL = directory.url.appendingPathComponent("samples.jsonl")
        let samples = try AppendOnlyLines(url: samplesURL)
        let every = config.int("eval.every"), samplesEvery = config.int("log.samples_every"), checkpointEvery = config.int("checkpoint.every")
        var accuracies: [(Int, Double)] = []
        if startStep > 0 {
            accuracies = try MetricsLog.read(directory.metricsURL).compactMap { row in row.values["eval/accuracy"].map { (row.step, $0) } }
            print("Resuming \(name) after step \(startStep) in \(directory.url.path)")
        } else if let a = try accuracy(model, tokenizer, heldOut, maxNewTokens: maxNewTokens) {
            accuracies.append((0, a))
            try directory.log(step: 0, [("eval/accuracy", a)])
            print(String(format: "held-out accuracy before %@: %.3f", name, a))
        }
        var best = accuracies.map(\.1).max() ?? -.infinity
        func save() throws { try saveCheckpoint?(latestCheckpointURL(directory.url)) }
        let progress = ProgressReporter(total: steps, label: name)
        var completed = startStep
        var history: [[(String, Double)]] = []
        var interrupted = false
        for k in (startStep + 1)..<(max(steps, startStep) + 1) {
            let stepResult: OnlineStepResult?
            do {
                stepResult = try step()
            } catch let error as NonFiniteValueError {
                progress.finish()
                directory.close()
                try? HTMLReport.forRun(directory.url).write(to: directory.url.appendingPathComponent("report.html"))
                throw TrainingStopped(reason: "\(error)", checkpoint: latestCheckpointURL(directory.url))
            } catch RewardError.interrupted {
                // Ctrl-C while the reward command ran: the step was rolled back, so save after the last one.
                print("\nInterrupted during step \(k): saving after step \(completed)")
                interrupted = true
                break
            }
            guard let result = stepResult else { continue }
            var metrics = result.metrics
            history.append(metrics)
            if k % every == 0 || k == steps, let a = try accuracy(model, tokenizer, heldOut, maxNewTokens: maxNewTokens) {
                metrics.append(("eval/accuracy", a))
                accuracies.append((k, a))
                if a > best {
                    best = a
                    try LanguageModelLoader.save(model, tokenizerFrom: sourceModel, to: directory.checkpointURL(name: "best"))
                }
            }
            if let bad = metrics.first(where: { !$0.1.isFinite && ["loss", "grad_norm", "loss/policy_avg", "loss/value_avg"].contains($0.0) }) {
                progress.finish()
                directory.close()
                throw TrainingStopped(reason: "\(NonFiniteValueError(step: k, metric: bad.0, value: bad.1))",
                                      checkpoint: latestCheckpointURL(directory.url))
            }
            try directory.log(step: k, metrics)
            if k % samplesEvery == 0 || k == 1 {
                for s in result.samples {
                    try samples.append(["step": k, "prompt": s.prompt, "completion": s.completion, "reward": s.reward ?? NSNull(),
                                        "advantage": s.advantage])
                }
            }
            progress.update(completed: k, metrics: headline.compactMap { h in metrics.first { $0.0 == h } })
            completed = k
            if stop.requested { print("\nInterrupted: saving after step \(k)"); interrupted = true; break }
            if k % checkpointEvery == 0 && k != steps { try save() }
        }
        progress.finish()
        if completed > startStep || startStep == 0 { try save() }
        try LanguageModelLoader.save(model, tokenizerFrom: sourceModel, to: directory.checkpointURL(name: "model"))
        directory.close()
        var page = try HTMLReport.forRun(directory.url)
        if let first = accuracies.first, let last = accuracies.last {
            page.notes.insert(String(format: "Held-out greedy exact-match accuracy: %.3f at step %d → %.3f at step %d.",
                                     first.1, first.0, last.1, last.0), at: 0)
        }
        try page.write(to: directory.url.appendingPathComponent("report.html"))
        if let first = accuracies.first, let last = accuracies.last {
            print(String(format: "%@: %d steps; held-out accuracy %.3f → %.3f; run in %@", name, completed, first.1, last.1, directory.url.path))
        } else {
            print("\(name): \(completed) steps; run in \(directory.url.path)")
        }
        // A scheduler tells an interrupted run from a finished one by the exit status (128 + SIGINT).
        if interrupted { throw ExitCode(130) }
        return OnlineOutcome(directory: directory.url, steps: completed, seconds: Date().timeIntervalSince(started), accuracies: accuracies,
                             history: history)
    }
}

/// What an online run did.
struct OnlineOutcome {
    var directory: URL
    var steps: Int
    var seconds: Double
    /// Held-out accuracy by step (step 0: before training).
    var accuracies: [(Int, Double)]
    /// Every step's metrics.
    var history: [[(String, Double)]]

    /// A metric's values over the steps where it was logged.
    func series(_ name: String) -> (x: [Double], y: [Double]) {
        var x: [Double] = [], y: [Double] = []
        for (k, m) in history.enumerated() { if let v = m.first(where: { $0.0 == name })?.1, v.isFinite { x.append(Double(k + 1)); y.append(v) } }
        return (x, y)
    }

    /// The mean of a metric over the first or last `count` steps.
    func mean(_ name: String, first count: Int) -> Double { average(Array(series(name).y.prefix(count))) }
    func mean(_ name: String, last count: Int) -> Double { average(Array(series(name).y.suffix(count))) }
    private func average(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }
}

/// GRPO and RLOO (and REINFORCE++) share a command shape; `estimator` picks the default advantage.
protocol GroupOnlineCommand: ParsableCommand {
    static var section: String { get }
    static var defaultAdvantage: String { get }
    /// β by default: TRL's GRPOConfig has 0, its RLOOConfig 0.05.
    static var defaultBeta: Double { get }
    /// token for GRPO; RLOO's loss works on summed sequence log-ratios (TRL's RLOOTrainer).
    static var defaultImportanceSampling: String { get }
    var options: OnlineOptions { get }
}

extension GroupOnlineCommand {
    static func makeSchema() -> ConfigSchema {
        let s = section
        return ConfigSchema(OnlineConfig.common(trainer: s) + OnlineConfig.rewards(s, default: ["accuracy"]) + [
            .int("\(s).steps", 100, min: 0, help: "Generation batches (each with num_iterations optimizer steps); 1500 for the preset model."),
            .double("\(s).learning_rate", 1e-6, min: 0, help: "AdamW learning rate; 3e-4 for the fresh preset model unless set."),
            .choice("\(s).advantage", ["grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline"], default: defaultAdvantage,
                    help: "Advantage estimator."),
            .int("\(s).prompts_per_step", 8, min: 1, help: "Distinct prompts per step; 16 for the preset model."),
            .int("\(s).num_generations", 8, min: 2, help: "G: completions per prompt."),
            .int("\(s).max_completion_length", 256, min: 1, help: "New tokens per completion; 6 for the built-in task unless set."),
            .double("\(s).temperature", 1, above: 0, help: "Sampling temperature (> 0: training divides the logits by it)."),
            .double("\(s).top_p", 1, above: 0, max: 1, help: "Nucleus sampling (1: off)."),
            .int("\(s).top_k", 0, min: 0, help: "Top-k sampling (0: off)."),
            .double("\(s).beta", defaultBeta, min: 0, help: "β of the KL leash (0: no reference model)."),
            .double("\(s).gamma", 1, min: 0, max: 1, help: "γ of REINFORCE++'s token returns (advantage=reinforce_pp; the baseline variant uses 1, as OpenRLHF)."),
            .bool("\(s).use_bias_correction_kl", false, help: "Multiply the k3 KL term by the importance ratio (TRL's option, off by default)."),
            .double("\(s).epsilon", 0.2, min: 0, help: "Clip range ε (low side)."),
            .double("\(s).epsilon_high", 0, min: 0, help: "Clip-higher ε_high (0: same as epsilon)."),
            .choice("\(s).scale_rewards", ["group", "batch", "none"], default: "group", help: "GRPO: divide by the group's or batch's std, or not."),
            .choice("\(s).loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"], default: "dapo", help: "Token-loss aggregation."),
            .int("\(s).num_iterations", 1, min: 1, help: "μ: optimizer steps per generation batch."),
            .choice("\(s).importance_sampling_level", ["token", "sequence", "sequence_sum"], default: defaultImportanceSampling,
                    help: "sequence: GSPO (mean log-ratio); sequence_sum: TRL's RLOO (summed log-ratio, one clip per sequence, mean over sequences; loss_type unused)."),
            .bool("\(s).mask_truncated_completions", false, help: "Exclude completions cut at max length from the loss."),
            .bool("\(s).dynamic_sampling", false, help: "DAPO: drop all-equal groups and sample more prompts."),
            .double("\(s).max_grad_norm", 1, min: 0, help: "Clip the gradient norm (0: no clipping)."),
        ])
    }

    func runOnline(schema: ConfigSchema) throws {
        try Self.train(config: try options.resolve(schema, section: Self.section), resume: options.resume != nil)
    }

    /// Trains with a resolved configuration; `warm` is an already warm-started model (the demo's);
    /// `resume` continues the run in `output` from checkpoints/latest.
    @discardableResult
    static func train(config resolved: ResolvedConfig, warm: (any CausalLanguageModel, any Tokenizer)? = nil,
                      resume: Bool = false) throws -> OnlineOutcome {
        let s = section
        var config = resolved
        if config.string("model").isEmpty {
            // Measured on 2-digit addition: 3e-4 with 16 prompts × 8 completions raises held-out accuracy
            // from about 0.2 to 0.45 in 1500 steps (about two minutes in release on 2 cores).
            config.setDefault("\(s).learning_rate", .double(3e-4))
            config.setDefault("\(s).max_completion_length", .int(6))
            config.setDefault("\(s).prompts_per_step", .int(16))
            config.setDefault("\(s).steps", .int(1500))
            config.setDefault("eval.every", .int(250))
        }
        let run = OnlineRun(config: config, name: s.uppercased())
        let (model, tokenizer) = try warm ?? run.loadModel()
        let (rows, heldOut) = try run.rows()
        if resume {
            try run.loadInitialWeights(model)
        } else if warm == nil {
            try run.warmStart(model, tokenizer, maxNewTokens: config.int("\(s).max_completion_length"))
        }
        var c = GRPOConfig()
        c.learningRate = config.float("\(s).learning_rate")
        c.promptsPerStep = config.int("\(s).prompts_per_step")
        c.numGenerations = config.int("\(s).num_generations")
        c.maxCompletionLength = config.int("\(s).max_completion_length")
        c.temperature = config.float("\(s).temperature")
        c.topP = config.float("\(s).top_p")
        c.topK = config.int("\(s).top_k")
        c.beta = config.float("\(s).beta")
        c.klBiasCorrection = config.bool("\(s).use_bias_correction_kl")
        c.gamma = config.double("\(s).gamma")
        c.epsilon = config.float("\(s).epsilon")
        c.epsilonHigh = config.double("\(s).epsilon_high") > 0 ? config.float("\(s).epsilon_high") : nil
        let scaling = RewardScaling(rawValue: config.string("\(s).scale_rewards")) ?? .group
        switch config.string("\(s).advantage") {
        case "rloo": c.advantage = .rloo
        case "reinforce_pp": c.advantage = .reinforcePlusPlus(baseline: false)
        case "reinforce_pp_baseline": c.advantage = .reinforcePlusPlus(baseline: true)
        default: c.advantage = .grpo(scaling: scaling)
        }
        c.lossType = LossAggregation(rawValue: config.string("\(s).loss_type")) ?? .dapo
        c.numIterations = config.int("\(s).num_iterations")
        c.importanceSampling = ImportanceSamplingLevel(rawValue: config.string("\(s).importance_sampling_level")) ?? .token
        c.maskTruncatedCompletions = config.bool("\(s).mask_truncated_completions")
        c.dynamicSampling = config.bool("\(s).dynamic_sampling")
        c.maxGradNorm = AlignConfig.clipNorm(config.float("\(s).max_grad_norm"))
        c.seed = run.seed
        let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: rows,
                                      rewards: try OnlineConfig.makeRewards(config, s, tokenizer: tokenizer), config: c)
        if run.usesPreset && config.string("data").isEmpty {
            trainer.monitors = [ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }]
        }
        if resume { try trainer.restoreCheckpoint(from: run.latestCheckpointURL(URL(fileURLWithPath: config.string("output")))) }
        let directory = try run.directory(resumingAfter: resume ? trainer.step : nil)
        if !resume && run.usesPreset { try model.save(to: run.initialWeightsURL(directory.url)) }
        return try run.loop(model: model, tokenizer: tokenizer, heldOut: heldOut, steps: config.int("\(s).steps"),
                            maxNewTokens: c.maxCompletionLength, directory: directory, headline: ["reward", "kl", "eval/accuracy"],
                            startStep: trainer.step, saveCheckpoint: { try trainer.saveCheckpoint(to: $0) }) {
            try trainer.trainStep()
        }
    }
}

struct GRPOCommand: GroupOnlineCommand {
    static let section = "grpo"
    static let defaultAdvantage = "grpo"
    static let defaultBeta = 0.0
    static let defaultImportanceSampling = "token"
    static let schema = makeSchema()
    static let configuration = CommandConfiguration(
        commandName: "grpo", abstract: "GRPO (and DAPO, Dr. GRPO, GSPO, REINFORCE++) with verifiable or learned rewards.",
        discussion: schema.discussion(examples: [
            "nudge grpo                                   (warm-started tiny model on 2-digit addition)",
            "nudge grpo --steps 50 --beta 0.04 --set grpo.loss_type=grpo",
            "nudge grpo --set grpo.epsilon_high=0.28 --set grpo.dynamic_sampling=true   (DAPO)",
            "nudge grpo --set grpo.importance_sampling_level=sequence                   (GSPO)",
            "nudge grpo --model DIR --data prompts.jsonl --set grpo.reward_funcs=[command] --set grpo.reward_command='python3 verify.py'",
        ]))
    @OptionGroup var options: OnlineOptions
    func validate() throws { _ = try options.resolve(Self.schema, section: Self.section) }
    func run() throws { try runOnline(schema: Self.schema) }
}

struct RLOOCommand: GroupOnlineCommand {
    static let section = "rloo"
    static let defaultAdvantage = "rloo"
    static let defaultBeta = 0.05
    static let defaultImportanceSampling = "sequence_sum"
    static let schema = makeSchema()
    static let configuration = CommandConfiguration(
        commandName: "rloo", abstract: "RLOO as TRL's RLOOTrainer: the leave-one-out baseline, β·k1 in the reward, one clipped ratio per sequence.",
        discussion: schema.discussion(examples: ["nudge rloo", "nudge rloo --beta 0.05 --set rloo.num_generations=4"]))
    @OptionGroup var options: OnlineOptions
    func validate() throws { _ = try options.resolve(Self.schema, section: Self.section) }
    func run() throws { try runOnline(schema: Self.schema) }
}

struct PPOCommand: ParsableCommand {
    // Sorting by default, because a reward model as small as the policy can verify it (sortedness and
    // the prompt's letters are local checks) but cannot verify a sum without computing it: on addition
    // the proxy stays near chance on the policy's own samples and PPO optimizes noise.
    static let schema = ConfigSchema(OnlineConfig.common(trainer: "ppo", task: "sorting") + OnlineConfig.rewards("ppo", default: []) + [
        .int("ppo.steps", 60, min: 0, help: "Rollout batches (each followed by ppo_epochs epochs); 600 for the fresh preset model unless set."),
        .double("ppo.learning_rate", 3e-6, min: 0, help: "AdamW learning rate; 1e-4 for the fresh preset model unless set."),
        .string("ppo.reward_model", "", help: "A reward-model weights file (nudge rm); empty: train one on gold-labelled pairs first."),
        .int("ppo.reward_model_pairs", 2000, min: 1, help: "Gold-labelled pairs for the reward model trained first; 8000 for the fresh preset model unless set."),
        .int("ppo.reward_model_epochs", 3, min: 1, help: "Epochs of that reward model."),
        .double("ppo.reward_model_learning_rate", 1e-3, min: 0, help: "AdamW learning rate of that reward model."),
        .choice("ppo.reward_model_data", ["policy_samples", "policy_samples_and_answers", "task_pairs"], default: "policy_samples",
                help: "Pairs of the warm policy's own samples labelled by the gold reward (as RLHF collects them), those plus the written answer against the worse sample (demonstrations beside comparisons), or the task's synthetic pairs."),
        .choice("ppo.reward_scale", ["normalize", "raw"], default: "normalize",
                help: "Scale the reward model so its scores on the initial policy's samples have standard deviation 1 (Ziegler et al.), or use its raw scores."),
        .choice("ppo.value_head_init", ["random", "zero", "reward_model"], default: "random",
                help: "The value head's initial weights: random, zero (V = 0 everywhere), or the reward model's head (TRL); zero for the fresh preset model unless set."),
        .choice("ppo.value_model", ["separate", "shared"], default: "separate", help: "A separate value model, or a head on the policy trunk."),
        .int("ppo.batch_size", 16, min: 1, help: "Prompts (one completion each) per rollout batch; 64 for the fresh preset model unless set."),
        .int("ppo.mini_batches", 1, min: 1, help: "Mini-batches per PPO epoch; 4 for the fresh preset model unless set."),
        .int("ppo.ppo_epochs", 4, min: 1, help: "PPO epochs per rollout batch."),
        .int("ppo.max_completion_length", 53, min: 1, help: "New tokens per completion; 6 for the built-in task unless set."),
        .double("ppo.temperature", 0.7, above: 0, help: "Sampling temperature (> 0: training divides the logits by it)."),
        .double("ppo.beta", 0.05, min: 0, help: "β: the KL coefficient (initial, when adaptive); 0.1 for the fresh preset model unless set."),
        .choice("ppo.kl_estimator", ["k1", "k2", "k3"], default: "k1", help: "Per-token KL estimator."),
        .choice("ppo.kl_placement", ["reward", "loss"], default: "reward", help: "KL penalty in the token rewards or in the loss."),
        .double("ppo.target_kl", 0, min: 0, help: "Adaptive KL controller target (0: fixed β)."),
        .double("ppo.kl_horizon", 10_000, min: 1, help: "Adaptive KL controller horizon."),
        .double("ppo.cliprange", 0.2, min: 0, help: "Policy clip range."),
        .double("ppo.cliprange_value", 0.2, min: 0, help: "Value clip range."),
        .double("ppo.vf_coef", 0.1, min: 0, help: "Value-loss weight."),
        .double("ppo.entropy_coef", 0, min: 0, help: "Entropy bonus weight."),
        .double("ppo.gamma", 1, min: 0, max: 1, help: "γ over tokens."),
        .double("ppo.lam", 0.95, min: 0, max: 1, help: "GAE λ."),
        .bool("ppo.whiten_rewards", false, help: "Whiten token rewards (masked statistics)."),
        .choice("ppo.score_position", ["last_token", "after_last_token"], default: "last_token",
                help: "Where the score joins the token rewards: the last real token, or one past it as TRL's PPOTrainer (its value then trained on the score)."),
        .double("ppo.missing_eos_penalty", 0, min: 0, help: "Subtracted from the score of completions without EOS (0: none, TRL's default); 1 for the fresh preset model unless set."),
        .double("ppo.max_grad_norm", 1, min: 0, help: "Clip the gradient norm (0: no clipping)."),
    ])

    static let configuration = CommandConfiguration(
        commandName: "ppo", abstract: "PPO-RLHF: policy, frozen reference, reward model and value model, with a KL leash.",
        discussion: schema.discussion(examples: [
            "nudge ppo                        (5-letter sorting: RM trained on 8000 gold-labelled pairs of the warm policy's samples, scaled to std 1, then 600 PPO steps; gold reward logged as monitor/gold)",
            "nudge ppo --set ppo.target_kl=2 --set ppo.value_model=shared",
            "nudge ppo --set ppo.reward_model=runs/rm/checkpoints/reward_model.safetensors",
        ]))

    @OptionGroup var options: OnlineOptions
    func validate() throws { _ = try options.resolve(Self.schema, section: "ppo") }

    func run() throws { try Self.train(config: try options.resolve(Self.schema, section: "ppo"), resume: options.resume != nil) }

    /// Trains with a resolved configuration; `warm` is an already warm-started model (the demo's);
    /// `resume` continues the run in `output` from checkpoints/latest with its saved reward model.
    @discardableResult
    static func train(config resolved: ResolvedConfig, warm: (any CausalLanguageModel, any Tokenizer)? = nil,
                      resume: Bool = false) throws -> OnlineOutcome {
        try train(filledIn: withDefaults(resolved), warm: warm, resume: resume)
    }

    /// The configuration with the command's defaults for the built-in task and the preset model
    /// filled in where the user set nothing.
    static func withDefaults(_ resolved: ResolvedConfig) -> ResolvedConfig {
        var config = resolved
        if config.string("model").isEmpty {
            config.setDefault("ppo.learning_rate", .double(1e-4))
            config.setDefault("ppo.max_completion_length", .int(6))
            config.setDefault("ppo.steps", .int(600))
            config.setDefault("ppo.batch_size", .int(64))
            config.setDefault("ppo.mini_batches", .int(4))
            config.setDefault("ppo.beta", .double(0.1))
            config.setDefault("ppo.reward_model_pairs", .int(8000))
            config.setDefault("ppo.value_head_init", .string("zero"))
            config.setDefault("ppo.missing_eos_penalty", .double(1))
            config.setDefault("eval.every", .int(100))
        }
        return config
    }

    static func train(filledIn config: ResolvedConfig, warm: (any CausalLanguageModel, any Tokenizer)?, resume: Bool) throws -> OnlineOutcome {
        let run = OnlineRun(config: config, name: "PPO")
        let (model, tokenizer) = try warm ?? run.loadModel()
        let (rows, heldOut) = try run.rows()
        if resume {
            try run.loadInitialWeights(model)
        } else if warm == nil {
            try run.warmStart(model, tokenizer, maxNewTokens: config.int("ppo.max_completion_length"))
        }
        // The reward model: the run's own (resuming), loaded, or trained on pairs labelled by the task's hidden gold reward.
        let output = URL(fileURLWithPath: config.string("output"))
        let savedRewardModel = output.appendingPathComponent("checkpoints/reward_model.safetensors")
        let rewardModel = ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: model), seed: run.seed &+ 11)
        rewardModel.unfreeze()
        let rmPath = config.string("ppo.reward_model")
        if resume {
            try rewardModel.load(from: savedRewardModel)
        } else if !rmPath.isEmpty {
            try rewardModel.load(from: URL(fileURLWithPath: rmPath))
        } else {
            var rm = RewardConfig()
            rm.learningRate = config.float("ppo.reward_model_learning_rate")
            rm.epochs = config.int("ppo.reward_model_epochs")
            rm.batchSize = 16
            rm.seed = run.seed
            let pairs = try goldLabelledPairs(policy: model, tokenizer: tokenizer, config: config, seed: run.seed &+ 3)
            if pairs.count < config.int("ppo.reward_model_pairs") {
                print("Reward model: only \(pairs.count) of ppo.reward_model_pairs = \(config.int("ppo.reward_model_pairs")) pairs (the policy's samples tie too often)")
            }
            let history = try RewardTrainer.train(model: rewardModel, tokenizer: tokenizer, rows: pairs, config: rm)
            let late = history.suffix(8)
            print(String(format: "Reward model: %d steps on %d gold-labelled pairs, accuracy %.3f (last %d batches)", history.count, pairs.count,
                         late.map(\.accuracy).reduce(0, +) / Float(max(late.count, 1)), late.count))
            // What the policy will meet: fresh pairs of its samples, and the written answer against the worse sample of each.
            let heldOut = try goldLabelledPairs(policy: model, tokenizer: tokenizer, task: OnlineConfig.task(config), count: 400,
                                                maxNewTokens: config.int("ppo.max_completion_length"), seed: run.seed &+ 77_777)
            let answerPairs = heldOut.compactMap { row -> DatasetRow? in
                guard case .preference(let prompt, _, let rejected) = row, let answer = SyntheticTask.answer(for: prompt.plainText) else { return nil }
                return .preference(prompt: prompt, chosen: .text(answer), rejected: rejected)
            }
            let samples = try RewardTrainer.evaluate(model: rewardModel, tokenizer: tokenizer, rows: heldOut)
            let answers = try RewardTrainer.evaluate(model: rewardModel, tokenizer: tokenizer, rows: answerPairs)
            print(String(format: "Reward model, held out: accuracy %.3f on %d new sample pairs, %.3f on the answer against their worse sample",
                         samples.accuracy, heldOut.count, answers.accuracy))
        }
        if !resume && config.string("ppo.reward_scale") == "normalize" {
            try normalizeRewardModel(rewardModel, policy: model, tokenizer: tokenizer, rows: rows, config: config, seed: run.seed &+ 13)
        }
        rewardModel.freeze()
        let value = config.string("ppo.value_model") == "shared"
            ? ScalarHeadModel(trunk: model, seed: run.seed &+ 12) : ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: rewardModel.trunk), seed: run.seed &+ 12)
        value.unfreeze()
        switch config.string("ppo.value_head_init") {
        case "zero": value.score.weight = Tensor.zeros(value.score.weight.shape)
        case "reward_model": value.score.weight = rewardModel.score.weight.copy()
        default: break
        }
        var c = PPORLHFConfig()
        c.learningRate = config.float("ppo.learning_rate")
        c.batchSize = config.int("ppo.batch_size")
        c.miniBatches = config.int("ppo.mini_batches")
        guard c.batchSize % c.miniBatches == 0 else { throw ValidationError("ppo.batch_size (\(c.batchSize)) must be a multiple of ppo.mini_batches (\(c.miniBatches))") }
        c.ppoEpochs = config.int("ppo.ppo_epochs")
        c.maxCompletionLength = config.int("ppo.max_completion_length")
        c.temperature = config.float("ppo.temperature")
        c.klCoefficient = config.double("ppo.beta")
        c.klEstimator = KLEstimator(rawValue: config.string("ppo.kl_estimator")) ?? .k1
        c.klPlacement = KLPenaltyPlacement(rawValue: config.string("ppo.kl_placement")) ?? .reward
        if config.double("ppo.target_kl") > 0 { c.adaptiveKL = AdaptiveKLController(target: config.double("ppo.target_kl"), horizon: config.double("ppo.kl_horizon")) }
        c.clipRange = config.float("ppo.cliprange")
        c.valueClipRange = config.float("ppo.cliprange_value")
        c.valueCoefficient = config.float("ppo.vf_coef")
        c.entropyCoefficient = config.float("ppo.entropy_coef")
        c.gamma = config.float("ppo.gamma")
        c.lambda = config.float("ppo.lam")
        c.whitenRewards = config.bool("ppo.whiten_rewards")
        c.scorePosition = PPOScorePosition(rawValue: config.string("ppo.score_position")) ?? .lastToken
        c.missingEOSPenalty = config.double("ppo.missing_eos_penalty") > 0 ? config.double("ppo.missing_eos_penalty") : nil
        c.maxGradNorm = AlignConfig.clipNorm(config.float("ppo.max_grad_norm"))
        c.seed = run.seed
        var functions: [(any RewardFunction, Double)] = [(RewardModelReward(model: rewardModel, padTokenID: Collator.padID(for: tokenizer)), 1)]
        let extra = try OnlineConfig.makeRewards(config, "ppo", tokenizer: tokenizer)
        functions += extra.functions.map { ($0.function, $0.weight) }
        let trainer = try PPORLHFTrainer(policy: model, value: value, tokenizer: tokenizer, rows: rows, rewards: WeightedRewards(functions), config: c)
        if run.usesPreset && config.string("data").isEmpty {
            trainer.monitors = [ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }]
        }
        if resume { try trainer.restoreCheckpoint(from: run.latestCheckpointURL(output)) }
        let directory = try run.directory(resumingAfter: resume ? trainer.step : nil)
        if !resume {
            if run.usesPreset { try model.save(to: run.initialWeightsURL(directory.url)) }
            try rewardModel.save(to: savedRewardModel)
        }
        return try run.loop(model: model, tokenizer: tokenizer, heldOut: heldOut, steps: config.int("ppo.steps"), maxNewTokens: c.maxCompletionLength,
                            directory: directory, headline: ["objective/scores", "monitor/gold", "objective/kl"],
                            startStep: trainer.step, saveCheckpoint: { try trainer.saveCheckpoint(to: $0) }) {
            try trainer.trainStep()
        }
    }
}

/// Scales the reward model so its scores on the policy's samples of `rows` have standard deviation 1.
func normalizeRewardModel(_ rewardModel: ScalarHeadModel, policy: any CausalLanguageModel, tokenizer: any Tokenizer, rows: [DatasetRow],
                          config: ResolvedConfig, seed: UInt64) throws {
    let generation = GenerationConfig(tokenizer: tokenizer, maxNewTokens: config.int("ppo.max_completion_length"),
                                      temperature: config.float("ppo.temperature"), seed: seed)
    let prompts = Array(try onlinePrompts(rows: rows, tokenizer: tokenizer).prefix(256))
    let rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: prompts, repeats: 1, generation: generation)
    let reward = RewardModelReward(model: rewardModel, padTokenID: generation.padTokenID)
    if let (mean, std) = reward.normalizeScale(on: rollout.samples.map { $0.promptIDs + $0.completionIDs }) {
        print(String(format: "Reward model: scores on %d samples of the policy had mean %.3f, std %.3f; scaled to std 1", rollout.count, mean, std))
    } else {
        print("Reward model: its scores on the policy's samples do not vary; left unscaled")
    }
}

/// Preference pairs for a reward model, as `ppo.reward_model_data` asks: the warm policy's own samples
/// labelled by the gold reward, or the task's synthetic pairs.
func goldLabelledPairs(policy: any CausalLanguageModel, tokenizer: any Tokenizer, config: ResolvedConfig, seed: UInt64) throws -> [DatasetRow] {
    let count = config.int("ppo.reward_model_pairs")
    let task = OnlineConfig.task(config)
    let data = config.string("ppo.reward_model_data")
    guard data != "task_pairs" else { return task.preferenceRows(count: count, seed: seed) }
    return try goldLabelledPairs(policy: policy, tokenizer: tokenizer, task: task, count: count,
                                 maxNewTokens: config.int("ppo.max_completion_length"), seed: seed,
                                 withAnswers: data == "policy_samples_and_answers")
}

/// Preference pairs for a reward model: two samples of the policy per prompt, the one with the higher
/// hidden gold reward chosen (ties skipped), as human labellers compare a model's own outputs; with
/// `withAnswers`, also the task's written answer against the worse sample when that one is wrong.
func goldLabelledPairs(policy: any CausalLanguageModel, tokenizer: any Tokenizer, task: SyntheticTask, count: Int, maxNewTokens: Int,
                       seed: UInt64, withAnswers: Bool = false) throws -> [DatasetRow] {
    var pairs: [DatasetRow] = []
    var generation = GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxNewTokens)
    // Rounds of 256 prompts; ties are skipped, so a near-deterministic policy needs more rounds than
    // count/256, and one that always ties gives up (the caller reports the shortfall).
    var round: UInt64 = 0
    let rounds = UInt64(20 + 4 * count / 256)
    while pairs.count < count && round < rounds {
        generation.seed = seed &+ round
        let prompts = try onlinePrompts(rows: task.verifiableRows(count: 256, seed: seed &+ 1000 &+ round), tokenizer: tokenizer)
        let rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: prompts, repeats: 2, generation: generation)
        for k in stride(from: 0, to: rollout.count, by: 2) where pairs.count < count {
            let a = rollout.samples[k], b = rollout.samples[k + 1]
            let ga = SyntheticTask.goldReward(prompt: a.prompt, completion: a.completion)
            let gb = SyntheticTask.goldReward(prompt: b.prompt, completion: b.completion)
            guard ga != gb else { continue }
            let (chosen, rejected) = ga > gb ? (a.completion, b.completion) : (b.completion, a.completion)
            pairs.append(.preference(prompt: .text(a.prompt), chosen: .text(chosen), rejected: .text(rejected)))
            if withAnswers, pairs.count < count, let answer = SyntheticTask.answer(for: a.prompt), min(ga, gb) < 1 {
                pairs.append(.preference(prompt: .text(a.prompt), chosen: .text(answer), rejected: .text(rejected)))
            }
        }
        round += 1
    }
    return pairs
}

/// Training stopped on a non-finite value: the reason, and the checkpoint that is left (always
/// finite: non-finite weights are never saved), or that there is none.
struct TrainingStopped: Error, CustomStringConvertible {
    var reason: String
    var checkpoint: URL

    var description: String {
        let model = checkpoint.appendingPathComponent("model.safetensors")
        guard let step = (try? SafeTensorsFile(url: model))?.metadata["step"] else {
            return "\(reason). No checkpoint was written before the stop (checkpoint.every is larger than the steps done), so no trained weights are kept."
        }
        return "\(reason). The last finite checkpoint, \(checkpoint.path) (step \(step)), is kept."
    }
}
