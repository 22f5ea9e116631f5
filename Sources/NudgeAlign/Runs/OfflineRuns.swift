// The offline post-training runs (`nudge sft|rm|dpo|kto`) from a resolved configuration: each
// declares its keys, fills in the fresh preset model's defaults, builds its trainer's config, and
// trains through the runner (`AlignRunner`: run directory, checkpoints, Ctrl-C, report).

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport
import NudgeTensor

/// `nudge sft`.
public enum SFTRun {
    /// Evaluation rows: `sft.eval_data`, else the built-in task's rows from another seed whose prompts
    /// are not among the training rows.
    public static func evalRows(_ run: AlignRun, training: [DatasetRow]) throws -> [DatasetRow] {
        let file = run.config.string("sft.eval_data")
        if !file.isEmpty { return try JSONLDataset.load(URL(fileURLWithPath: file)) }
        let count = run.config.int("sft.eval_rows")
        guard run.config.string("data").isEmpty, count > 0 else { return [] }
        func prompt(_ row: DatasetRow) -> String? { if case .promptCompletion(let p, _) = row { p.plainText } else { nil } }
        let seen = Set(training.compactMap(prompt))
        return run.syntheticTask.sftRows(count: count * 2, seed: run.seed &+ 7919).filter { prompt($0).map { !seen.contains($0) } ?? true }
            .prefix(count).map { $0 }
    }

    /// The trainer's keys, under `sft`.
    public static var keys: [ConfigBinding<SFTConfig>] { SFTConfig.configKeys.map { $0.prefixed("sft") } }

    public static let schema = ConfigSchema(
        AlignConfig.common(trainer: "sft") + keys.fields(defaults: SFTConfig()) + AdapterKeys.fields + [
            .string("sft.eval_data", "", help: "A JSONL file for the evaluation loss; empty: held-out rows of the built-in task."),
            .int("sft.eval_rows", 64, min: 0, help: "Held-out rows of the built-in task for the evaluation loss (0: no evaluation)."),
        ])

    /// Trains with a resolved configuration; `resume` continues the run in `output` from checkpoints/latest.
    public static func train(config resolved: ResolvedConfig, resume: Bool = false) throws {
        var config = resolved
        // A from-scratch tiny model needs a far larger step than a pretrained one.
        if AlignRun.usesPreset(config) { config.setDefault("sft.learning_rate", .double(3e-3)) }
        let run = AlignRun(config: config)
        let (model, tokenizer) = try run.loadModelForAdapters()
        try AdapterKeys.apply(config, to: model)
        let rows = try run.rows(preference: false)
        let evalRows = try Self.evalRows(run, training: rows)
        var trainer = keys.apply(config, to: SFTConfig())
        trainer.seed = UInt64(config.int("seed"))
        let stepper = try SFTTrainer.trainer(model: model, tokenizer: tokenizer, rows: rows, evalRows: evalRows, config: trainer)
        guard let (directory, _, start) = try run.train("SFT", stepper, model: model, tokenizer: tokenizer, resume: resume) else { return }
        let losses = stepper.history
        let eval = run.lastLogged("eval_loss", in: directory).map { String(format: ", eval_loss %.4f", $0) } ?? ""
        print(String(format: "SFT: %d steps, loss %.4f → %.4f%@; model in %@", start + losses.count, losses.first ?? .nan,
                     losses.last ?? .nan, eval, directory.checkpointURL(name: "model").path))
    }
}

/// `nudge rm`.
public enum RMRun {
    /// The trainer's keys, under `rm`.
    public static var keys: [ConfigBinding<RewardConfig>] { RewardConfig.configKeys.map { $0.prefixed("rm") } }

    public static let schema = ConfigSchema(
        AlignConfig.common(trainer: "rm") + keys.fields(defaults: RewardConfig()) + AdapterKeys.fields + [
            .choice("rm.pairs", ["data", "policy_samples"], default: "data",
                    help: "The preference pairs: the data file's (or the built-in task's), or pairs of the model's own samples labelled by rm.judge (RLAIF with an http or local judge)."),
            .int("rm.judge_pairs", 1000, min: 1, help: "policy_samples: how many labelled pairs to collect."),
            .int("rm.max_completion_length", 8, min: 1, help: "policy_samples: new tokens per sampled completion."),
            .double("rm.temperature", 1, above: 0, help: "policy_samples: sampling temperature."),
        ] + JudgeKeys.fields("rm"))

    /// The pairs to train on: `rm.pairs = data` the file's (or the task's) preference rows; `policy_samples`
    /// two samples of `model` per prompt of the data (or the task's verifiable rows), labelled by `rm.judge`.
    public static func pairs(_ run: AlignRun, model: any CausalLanguageModel, tokenizer: any Tokenizer) throws -> [DatasetRow] {
        let config = run.config
        guard config.string("rm.pairs") == "policy_samples" else { return try run.rows(preference: true) }
        let data = config.string("data")
        let promptRows = data.isEmpty ? run.syntheticTask.verifiableRows(count: max(256, config.int("rows")), seed: run.seed &+ 1000)
            : try JSONLDataset.load(URL(fileURLWithPath: data), options: DataKeys.options(config))
        let output = URL(fileURLWithPath: config.string("output"))
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let judge = try JudgeKeys.pairwise(config, section: "rm", seed: run.seed, cacheDirectory: output)
        let labelled = try judgeLabelledPairs(policy: model, tokenizer: tokenizer, rows: promptRows, count: config.int("rm.judge_pairs"),
                                              maxNewTokens: config.int("rm.max_completion_length"), temperature: config.float("rm.temperature"),
                                              seed: run.seed &+ 3, judge: judge)
        print("RM: \(labelled.pairs.count) pairs of the model's samples labelled by \(judge.name) (\(labelled.ties) ties, \(labelled.failures.count) failures)")
        for (round, failure) in labelled.failures.prefix(5) { print("RM: no label, round \(round): \(failure)") }
        guard !labelled.pairs.isEmpty else { throw RunSetupError("rm.pairs = policy_samples: the judge \(judge.name) labelled no pair") }
        return labelled.pairs
    }

    /// Trains with a resolved configuration; `resume` continues the run in `output` from checkpoints/latest.
    public static func train(config resolved: ResolvedConfig, resume: Bool = false) throws {
        var config = resolved
        if AlignRun.usesPreset(config) { config.setDefault("rm.learning_rate", .double(1e-3)) }
        try AdapterKeys.validate(config)
        let run = AlignRun(config: config)
        let (trunk, tokenizer) = try run.loadModel()
        // Resuming samples the same pairs from the initial model and finds their labels in the judge cache.
        let rows = try pairs(run, model: trunk, tokenizer: tokenizer)
        var trainer = keys.apply(config, to: RewardConfig())
        trainer.seed = UInt64(config.int("seed"))
        // With lora.r > 0 the trunk trains through its adapters only; the score head, made after, stays
        // fully trainable (PEFT's modules_to_save for a sequence-classification head).
        try AdapterKeys.apply(config, to: trunk)
        let model = ScalarHeadModel(trunk: trunk, seed: run.seed)
        let stepper = try RewardTrainer.trainer(model: model, tokenizer: tokenizer, rows: rows, config: trainer)
        let saved: @Sendable (URL) -> URL = { $0.appendingPathComponent("reward_model.safetensors") }
        guard let (directory, history, start) = try run.train("RM", stepper, model: trunk, tokenizer: tokenizer, resume: resume,
                                                              saveModel: { try model.saveMerged(to: saved($0)) }) else { return }
        let weights = saved(directory.checkpointsURL)
        let late = history.suffix(10)
        print(String(format: "RM: %d steps, final accuracy %.3f, margin %.3f; weights in %@", start + history.count,
                     late.map(\.accuracy).reduce(0, +) / Float(max(late.count, 1)), late.map(\.margin).reduce(0, +) / Float(max(late.count, 1)),
                     weights.path))
    }
}

/// `nudge dpo`.
public enum DPORun {
    public static let losses = ["sigmoid", "hinge", "ipo", "robust", "rpo", "simpo", "cpo", "orpo"]

    /// The loss named by `<section>.<key>` (`dpo.loss`, `online_dpo.loss_type`), with its parameters.
    public static func lossKind(_ config: ResolvedConfig, section s: String = "dpo", key: String = "loss") throws -> PreferenceLoss {
        let smoothing = config.float("\(s).label_smoothing")
        switch config.string("\(s).\(key)") {
        case "hinge": return .hinge
        case "ipo": return .ipo
        case "robust":
            // Robust DPO divides by 1 − 2ε.
            guard smoothing < 0.5 else { throw RunSetupError("\(s).label_smoothing: robust needs a value below 0.5, got 0.5") }
            return .robust(labelSmoothing: smoothing)
        case "rpo": return .rpo(alpha: config.float("\(s).rpo_alpha"))
        case "simpo": return .simpo(gamma: config.float("\(s).simpo_gamma"))
        case "cpo": return .cpo(lambda: config.float("\(s).cpo_alpha"))
        case "orpo": return .orpo(lambda: config.float("\(s).orpo_lambda"))
        default: return .sigmoid(labelSmoothing: smoothing)
        }
    }

    /// The keys of the DPO loss family under `section`: the loss (`key`) and its parameters, read by `lossKind`.
    public static func lossFields(_ s: String, key: String) -> [ConfigField] {
        [
            .choice("\(s).\(key)", losses, default: "sigmoid", help: "Preference loss."),
            .double("\(s).label_smoothing", 0, min: 0, max: 0.5,
                    help: "Label smoothing ε of sigmoid (cDPO) and robust; robust: 0.1 unless set."),
            .double("\(s).rpo_alpha", 1, min: 0, help: "rpo: weight of the chosen completions' NLL."),
            .double("\(s).simpo_gamma", 0.5, help: "simpo: target reward margin γ."),
            .double("\(s).cpo_alpha", 1, min: 0, help: "cpo: weight of the behaviour-cloning NLL."),
            .double("\(s).orpo_lambda", 0.1, min: 0, help: "orpo: weight λ of the odds-ratio term (TRL's beta)."),
        ]
    }

    /// The trainer's keys, under `dpo`.
    public static var keys: [ConfigBinding<DPOConfig>] { DPOConfig.configKeys.map { $0.prefixed("dpo") } }

    public static let schema = ConfigSchema(
        AlignConfig.common(trainer: "dpo") + keys.fields(defaults: DPOConfig()) + lossFields("dpo", key: "loss") + AdapterKeys.fields + [
            .string("dpo.ref_model", "", help: "Reference model directory or .gguf file; empty: the initial policy."),
        ])

    /// The configuration with the preset model's and robust DPO's defaults filled in, and the trainer's config.
    static func setUp(_ resolved: ResolvedConfig) throws -> (ResolvedConfig, DPOConfig) {
        var config = resolved
        if AlignRun.usesPreset(config) { config.setDefault("dpo.learning_rate", .double(2e-3)) }
        // Robust DPO with ε = 0 is plain DPO; keep the CLI's long-standing 0.1.
        if config.string("dpo.loss") == "robust" { config.setDefault("dpo.label_smoothing", .double(0.1)) }
        var trainer = keys.apply(config, to: DPOConfig())
        trainer.seed = UInt64(config.int("seed"))
        trainer.loss = try Self.lossKind(config)
        return (config, trainer)
    }

    /// The loss and metrics of the model named by `model` against `dpo.ref_model` on the rows, without training.
    public static func evaluate(config resolved: ResolvedConfig) throws -> PreferenceMetrics {
        let (config, trainer) = try setUp(resolved)
        let run = AlignRun(config: config)
        let (policy, tokenizer) = try run.loadModel()
        guard let reference = try AlignRun.reference(config.string("dpo.ref_model"), run: run, resume: false) else {
            throw RunSetupError("--eval-only needs --ref-model (or dpo.ref_model)")
        }
        return try DPOTrainer.evaluate(policy: policy, reference: reference, tokenizer: tokenizer, rows: try run.rows(preference: true), config: trainer)
    }

    /// Trains with a resolved configuration; `resume` continues the run in `output` from checkpoints/latest.
    public static func train(config resolved: ResolvedConfig, resume: Bool = false) throws {
        let (config, trainer) = try setUp(resolved)
        let run = AlignRun(config: config)
        let (policy, tokenizer) = try run.loadModelForAdapters()
        try AdapterKeys.apply(config, to: policy)
        let rows = try run.rows(preference: true)
        let reference = try AlignRun.reference(config.string("dpo.ref_model"), run: run, resume: resume)
        let stepper = try DPOTrainer.trainer(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: trainer)
        guard let (_, history, start) = try run.train("DPO", stepper, model: policy, tokenizer: tokenizer, resume: resume) else { return }
        if let last = history.last {
            print(String(format: "DPO: %d steps; last loss %.4f, rewards/margins %.4f, rewards/accuracies %.3f", start + history.count,
                         last.loss, last.rewardsMargins, last.rewardsAccuracies))
        }
    }
}

/// `nudge kto`.
public enum KTORun {
    /// The trainer's keys, under `kto`.
    public static var keys: [ConfigBinding<KTOConfig>] { KTOConfig.configKeys.map { $0.prefixed("kto") } }

    public static let schema = ConfigSchema(
        AlignConfig.common(trainer: "kto") + keys.fields(defaults: KTOConfig()) + AdapterKeys.fields + [
            .string("kto.ref_model", "", help: "Reference model directory or .gguf file; empty: the initial policy."),
        ])

    /// Trains with a resolved configuration; `resume` continues the run in `output` from checkpoints/latest.
    public static func train(config resolved: ResolvedConfig, resume: Bool = false) throws {
        var config = resolved
        if AlignRun.usesPreset(config) { config.setDefault("kto.learning_rate", .double(1e-3)) }
        let run = AlignRun(config: config)
        let (policy, tokenizer) = try run.loadModelForAdapters()
        try AdapterKeys.apply(config, to: policy)
        let data = config.string("data")
        let rows = data.isEmpty ? run.syntheticTask.unpairedRows(count: config.int("rows"), seed: run.seed)
            : try JSONLDataset.load(URL(fileURLWithPath: data), options: DataKeys.options(config))
        var trainer = keys.apply(config, to: KTOConfig())
        trainer.seed = UInt64(config.int("seed"))
        let reference = try AlignRun.reference(config.string("kto.ref_model"), run: run, resume: resume)
        let stepper = try KTOTrainer.trainer(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: trainer)
        guard let (_, history, start) = try run.train("KTO", stepper, model: policy, tokenizer: tokenizer, resume: resume) else { return }
        let late = history.suffix(10)
        func mean(_ values: [Float]) -> Float { values.filter(\.isFinite).reduce(0, +) / Float(max(values.filter(\.isFinite).count, 1)) }
        print(String(format: "KTO: %d steps; late loss %.4f, rewards/chosen %.4f, rewards/rejected %.4f, kl %.4f", start + history.count,
                     mean(late.map(\.loss)), mean(late.map(\.rewardsChosen)), mean(late.map(\.rewardsRejected)), mean(late.map(\.kl))))
    }
}

extension AlignRun {
    /// The model file or directory the run started from (nil for the fresh preset): saved models carry its tokenizer.
    public var sourceModel: URL? { Self.usesPreset(config) ? nil : URL(fileURLWithPath: config.string("model")) }

    /// An offline trainer through the runner: restored from checkpoints/latest when resuming, then
    /// trained to its last step in the run directory (checkpoints every `checkpoint.every` steps, at
    /// the end and on Ctrl-C; metrics; report.html). Returns the directory, the steps' metrics and
    /// the step it started after; nil when a resumed run had no step left.
    func train<M>(_ name: String, _ trainer: OfflineTrainer<M>, model: any CausalLanguageModel, tokenizer: any Tokenizer, resume: Bool,
                  saveModel: ((URL) throws -> Void)? = nil) throws -> (directory: RunDirectory, history: [M], startStep: Int)? {
        let latest = latestCheckpointURL
        if resume {
            try Checkpoint.recoverInterruptedSwap(at: latest)
            guard FileManager.default.fileExists(atPath: latest.path) else {
                throw RunSetupError("--resume \(config.string("output")): no checkpoints/latest to continue from")
            }
            try trainer.restoreCheckpoint(from: latest)
        }
        let start = trainer.completedSteps
        let directory = try self.directory(resumingAfter: resume ? start : nil)
        var runner = AlignRunner(name: name, directory: directory, model: model, tokenizer: tokenizer, sourceModel: sourceModel)
        runner.checkpointEvery = config.int("checkpoint.every")
        runner.headline = ["loss", "eval_loss", "accuracy", "eval_accuracy", "rewards/accuracies", "rewards/margins", "kl"]
        runner.saveModel = saveModel
        try runner.run(trainer)
        guard !trainer.history.isEmpty else {
            print("\(name): no steps left after step \(start); to train further, resume with a larger --epochs. Run in \(directory.url.path)")
            return nil
        }
        return (directory, trainer.history, start)
    }

    /// The last logged value of `metric` in the run's metrics.jsonl.
    func lastLogged(_ metric: String, in directory: RunDirectory) -> Double? {
        ((try? MetricsLog.read(directory.metricsURL)) ?? []).last { $0.values[metric] != nil }?.values[metric]
    }
}
