// What `nudge grpo|rloo|ppo` do around their trainer before the runner takes over: the config keys
// they share, the reward functions named in the config, training and held-out rows, the warm start
// of a fresh model, and the run directory with the initial weights a resume needs.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport
import NudgeTensor

/// Keys and helpers shared by the online commands.
public enum OnlineConfig {
    public static func common(trainer: String, task: String = "addition") -> [ConfigField] {
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
    public static let warmup: [ConfigField] = [
        .int("warmup.sft_epochs", 30, min: 0, help: "Fresh model only: at most this many SFT epochs before online training."),
        .int("warmup.sft_rows", 2000, min: 1, help: "Fresh model only: SFT rows of the task."),
        .double("warmup.target_accuracy", 0.2, min: 0, max: 1, help: "Fresh model only: stop the warm start at this development accuracy."),
    ]

    public static func rewards(_ s: String, default functions: [String]) -> [ConfigField] {
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

    public static func makeRewards(_ c: ResolvedConfig, _ s: String, tokenizer: any Tokenizer) throws -> WeightedRewards {
        let names = c.array("\(s).reward_funcs").compactMap { if case .string(let n) = $0 { n } else { nil } }
        let weights = c.array("\(s).reward_weights").compactMap { v -> Double? in
            switch v { case .double(let d): d; case .int(let i): Double(i); default: nil }
        }
        guard weights.isEmpty || weights.count == names.count else {
            throw RunSetupError("\(s).reward_weights: expected \(names.count) weights (one per reward function), got \(weights.count)")
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
                guard !command.allSatisfy(\.isWhitespace) else { throw RunSetupError("\(s).reward_command: the 'command' reward needs a command") }
                let timeout = c.double("\(s).reward_timeout")
                guard timeout > 0, timeout.isFinite else { throw RunSetupError("\(s).reward_timeout: expected a positive number of seconds, got \(timeout)") }
                f = try ExternalCommandReward(command: ["/bin/sh", "-c", command], timeout: timeout)
            default: f = ExactAnswerReward()
            }
            return (f, weights.isEmpty ? 1 : weights[k])
        })
    }

    public static func task(_ c: ResolvedConfig) -> SyntheticTask { AlignRun(config: c).syntheticTask }

    /// The process reward named by a `process_reward_model` value (`key` names it in errors): nil
    /// for an empty value, the carries task's gold step checker for "gold", else a PRM file or run
    /// directory of `nudge prm` loaded on `policy`'s architecture.
    public static func processReward(_ value: String, key: String, policy: any CausalLanguageModel, tokenizer: any Tokenizer) throws
        -> (any ProcessReward)? {
        switch value {
        case "": return nil
        case "gold": return GoldStepReward()
        default:
            do {
                return try ProcessRewardModel.load(URL(fileURLWithPath: value), base: policy, tokenizer: tokenizer)
            } catch {
                throw RunSetupError("\(key): \(error)")
            }
        }
    }

    /// Refuses held-out rows that are the training rows themselves: eval.data naming the training
    /// file, or the training directory's own split.
    public static func checkHeldOutIsSeparate(data: String, trainSplit: String, evalData: String, evalSplit: String) throws {
        guard !data.isEmpty else { return }
        let a = URL(fileURLWithPath: data).standardizedFileURL.resolvingSymlinksInPath().path
        let b = URL(fileURLWithPath: evalData).standardizedFileURL.resolvingSymlinksInPath().path
        guard a == b else { return }
        var isDirectory: ObjCBool = false
        let directory = FileManager.default.fileExists(atPath: a, isDirectory: &isDirectory) && isDirectory.boolValue
        if !directory {
            throw RunSetupError("eval.data \(evalData) is the training data itself (data); held-out rows must not be trained on: name a separate file, or a directory and its eval.split")
        }
        if trainSplit == evalSplit {
            throw RunSetupError("eval.data \(evalData): eval.split '\(evalSplit)' is the split training reads (dataset.split); held-out rows must not be trained on (e.g. eval.split=test)")
        }
    }
}

/// What an online command does around its trainer: model, data, warm start, the run directory,
/// evaluation, samples, checkpoints, Ctrl-C and the report.
public struct OnlineRun {
    public let config: ResolvedConfig
    /// The run's name in messages (e.g. "GRPO").
    public let name: String

    public init(config: ResolvedConfig, name: String) {
        self.config = config
        self.name = name
    }
    public var seed: UInt64 { UInt64(config.int("seed")) }
    public var usesPreset: Bool { config.string("model").isEmpty }
    /// The model file or directory the run started from (nil for the fresh preset): saved models carry its tokenizer.
    public var sourceModel: URL? { usesPreset ? nil : URL(fileURLWithPath: config.string("model")) }

    /// The model and tokenizer named by `model` (the fresh preset when empty), as sft/rm/dpo load them.
    public func loadModel() throws -> (any CausalLanguageModel, any Tokenizer) { try AlignRun(config: config).loadModel() }

    /// Training prompts and held-out evaluation rows (chosen by `HeldOut`, as `nudge eval RUN_DIR` chooses them again).
    public func rows() throws -> (train: [DatasetRow], heldOut: [DatasetRow]) {
        let data = config.string("data")
        let heldOutCount = config.int("eval.rows")
        let evalData = config.string("eval.data")
        let options = try DataKeys.options(config)
        if !evalData.isEmpty {
            let split = config.string("eval.split")
            try OnlineConfig.checkHeldOutIsSeparate(data: data, trainSplit: options.split, evalData: evalData, evalSplit: split)
            let heldOut = try HeldOut.rows(of: URL(fileURLWithPath: evalData), split: split, options: options, count: heldOutCount)
            guard heldOutCount == 0 || !heldOut.isEmpty else {
                throw RunSetupError("eval.data \(evalData): no verifiable rows (with an \"answer\") to evaluate on")
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
    public func warmStart(_ model: any CausalLanguageModel, _ tokenizer: any Tokenizer, maxNewTokens: Int) throws {
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
    public func directory(resumingAfter step: Int? = nil) throws -> RunDirectory {
        try AlignRun(config: config).directory(resumingAfter: step)
    }

    /// checkpoints/initial.safetensors: the policy online training starts from (the reference), kept
    /// for a fresh preset model, whose warm start cannot be reloaded from a model directory.
    public func initialWeightsURL(_ directory: URL) -> URL { directory.appendingPathComponent("checkpoints/initial.safetensors") }

    /// checkpoints/latest: the resumable checkpoint.
    public func latestCheckpointURL(_ directory: URL) -> URL { directory.appendingPathComponent("checkpoints/latest") }

    /// For `--resume`: puts the run's starting weights into `model` (the loaded model directory
    /// already holds them), so the reference made from it is the original run's.
    public func loadInitialWeights(_ model: any CausalLanguageModel) throws {
        let run = URL(fileURLWithPath: config.string("output"))
        try Checkpoint.recoverInterruptedSwap(at: latestCheckpointURL(run))
        guard FileManager.default.fileExists(atPath: latestCheckpointURL(run).path) else {
            throw RunSetupError("--resume \(run.path): no checkpoints/latest to continue from")
        }
        if usesPreset { try model.load(from: initialWeightsURL(run)) }
    }

    public func accuracy(_ model: any CausalLanguageModel, _ tokenizer: any Tokenizer, _ rows: [DatasetRow], maxNewTokens: Int) throws -> Double? {
        rows.isEmpty ? nil : try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: rows, maxNewTokens: maxNewTokens)
    }

    /// The runner of this run's trainer, with the config's evaluation, samples and checkpoint cadence.
    public func runner(directory: RunDirectory, model: any CausalLanguageModel, tokenizer: any Tokenizer, heldOut: [DatasetRow],
                       maxNewTokens: Int) -> AlignRunner {
        var runner = AlignRunner(name: name, directory: directory, model: model, tokenizer: tokenizer, sourceModel: sourceModel)
        runner.heldOut = heldOut
        runner.maxNewTokens = maxNewTokens
        runner.evalEvery = config.int("eval.every")
        runner.samplesEvery = config.int("log.samples_every")
        runner.checkpointEvery = config.int("checkpoint.every")
        return runner
    }
}
