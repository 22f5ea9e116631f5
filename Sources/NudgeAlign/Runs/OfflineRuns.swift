// The offline post-training runs (`nudge sft|rm|dpo|kto`) from a resolved configuration: each
// declares its keys, fills in the fresh preset model's defaults, builds its trainer's config, and
// trains through an `OfflineSession` (run directory, checkpoints, Ctrl-C, report).

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
        AlignConfig.common(trainer: "sft") + keys.fields(defaults: SFTConfig()) + [
            .string("sft.eval_data", "", help: "A JSONL file for the evaluation loss; empty: held-out rows of the built-in task."),
            .int("sft.eval_rows", 64, min: 0, help: "Held-out rows of the built-in task for the evaluation loss (0: no evaluation)."),
        ])

    /// Trains with a resolved configuration; `resume` continues the run in `output` from checkpoints/latest.
    public static func train(config resolved: ResolvedConfig, resume: Bool = false) throws {
        var config = resolved
        // A from-scratch tiny model needs a far larger step than a pretrained one.
        if AlignRun.usesPreset(config) { config.setDefault("sft.learning_rate", .double(3e-3)) }
        let run = AlignRun(config: config)
        let (model, tokenizer) = try run.loadModel()
        let rows = try run.rows(preference: false)
        let evalRows = try Self.evalRows(run, training: rows)
        var trainer = keys.apply(config, to: SFTConfig())
        trainer.seed = UInt64(config.int("seed"))
        let session = try OfflineSession("SFT", run: run, model: model,
                                         optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: trainer.weightDecay),
                                         resume: resume)
        var evalLoss: Double?
        let losses = try session.run({ control, log in
            try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: rows, evalRows: evalRows, config: trainer,
                                 optimizer: session.optimizer, control: control) { step, m in
                if let e = m.first(where: { $0.0 == "eval_loss" }) { evalLoss = e.1 }
                log(step, m)
            }
        }, save: { try session.saveModel(model) })
        let eval = evalLoss.map { String(format: ", eval_loss %.4f", $0) } ?? ""
        guard !losses.isEmpty else { return session.reportNothingNew() }
        print(String(format: "SFT: %d steps, loss %.4f → %.4f%@; model in %@", session.startStep + losses.count, losses.first ?? .nan,
                     losses.last ?? .nan, eval, session.directory.checkpointURL(name: "model").path))
    }
}

/// `nudge rm`.
public enum RMRun {
    /// The trainer's keys, under `rm`.
    public static var keys: [ConfigBinding<RewardConfig>] { RewardConfig.configKeys.map { $0.prefixed("rm") } }

    public static let schema = ConfigSchema(
        AlignConfig.common(trainer: "rm") + keys.fields(defaults: RewardConfig()) + [
        ])

    /// Trains with a resolved configuration; `resume` continues the run in `output` from checkpoints/latest.
    public static func train(config resolved: ResolvedConfig, resume: Bool = false) throws {
        var config = resolved
        if AlignRun.usesPreset(config) { config.setDefault("rm.learning_rate", .double(1e-3)) }
        let run = AlignRun(config: config)
        let (trunk, tokenizer) = try run.loadModel()
        let rows = try run.rows(preference: true)
        var trainer = keys.apply(config, to: RewardConfig())
        trainer.seed = UInt64(config.int("seed"))
        let model = ScalarHeadModel(trunk: trunk, seed: run.seed)
        let session = try OfflineSession("RM", run: run, model: model, optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: 0),
                                         resume: resume)
        let weights = session.directory.checkpointURL(name: "reward_model.safetensors")
        let history = try session.run({ control, log in
            try RewardTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: trainer, optimizer: session.optimizer,
                                    control: control, onMetrics: log)
        }, save: { try model.save(to: weights) })
        guard !history.isEmpty else { return session.reportNothingNew() }
        let late = history.suffix(10)
        print(String(format: "RM: %d steps, final accuracy %.3f, margin %.3f; weights in %@", session.startStep + history.count,
                     late.map(\.accuracy).reduce(0, +) / Float(max(late.count, 1)), late.map(\.margin).reduce(0, +) / Float(max(late.count, 1)),
                     weights.path))
    }
}

/// `nudge dpo`.
public enum DPORun {
    public static let losses = ["sigmoid", "hinge", "ipo", "robust", "rpo", "simpo", "cpo", "orpo"]

    /// The loss named by `dpo.loss`, with its parameters.
    public static func lossKind(_ config: ResolvedConfig) throws -> PreferenceLoss {
        let smoothing = config.float("dpo.label_smoothing")
        switch config.string("dpo.loss") {
        case "hinge": return .hinge
        case "ipo": return .ipo
        case "robust":
            // Robust DPO divides by 1 − 2ε.
            guard smoothing < 0.5 else { throw RunSetupError("dpo.label_smoothing: robust needs a value below 0.5, got 0.5") }
            return .robust(labelSmoothing: smoothing)
        case "rpo": return .rpo(alpha: config.float("dpo.rpo_alpha"))
        case "simpo": return .simpo(gamma: config.float("dpo.simpo_gamma"))
        case "cpo": return .cpo(lambda: config.float("dpo.cpo_alpha"))
        case "orpo": return .orpo(lambda: config.float("dpo.orpo_lambda"))
        default: return .sigmoid(labelSmoothing: smoothing)
        }
    }

    /// The trainer's keys, under `dpo`.
    public static var keys: [ConfigBinding<DPOConfig>] { DPOConfig.configKeys.map { $0.prefixed("dpo") } }

    public static let schema = ConfigSchema(
        AlignConfig.common(trainer: "dpo") + keys.fields(defaults: DPOConfig()) + [
            .choice("dpo.loss", losses, default: "sigmoid", help: "Preference loss."),
            .double("dpo.label_smoothing", 0, min: 0, max: 0.5,
                    help: "Label smoothing ε of sigmoid (cDPO) and robust; robust: 0.1 unless set."),
            .double("dpo.rpo_alpha", 1, min: 0, help: "rpo: weight of the chosen completions' NLL."),
            .double("dpo.simpo_gamma", 0.5, help: "simpo: target reward margin γ."),
            .double("dpo.cpo_alpha", 1, min: 0, help: "cpo: weight of the behaviour-cloning NLL."),
            .double("dpo.orpo_lambda", 0.1, min: 0, help: "orpo: weight λ of the odds-ratio term (TRL's beta)."),
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
        let (policy, tokenizer) = try run.loadModel()
        let rows = try run.rows(preference: true)
        let reference = try AlignRun.reference(config.string("dpo.ref_model"), run: run, resume: resume)
        let session = try OfflineSession("DPO", run: run, model: policy,
                                         optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: 0), resume: resume)
        let history = try session.run({ control, log in
            try DPOTrainer.train(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: trainer,
                                 optimizer: session.optimizer, control: control, onMetrics: log)
        }, save: { try session.saveModel(policy) })
        guard !history.isEmpty else { return session.reportNothingNew() }
        if let last = history.last {
            print(String(format: "DPO: %d steps; last loss %.4f, rewards/margins %.4f, rewards/accuracies %.3f", session.startStep + history.count,
                         last.loss, last.rewardsMargins, last.rewardsAccuracies))
        }
    }
}

/// `nudge kto`.
public enum KTORun {
    /// The trainer's keys, under `kto`.
    public static var keys: [ConfigBinding<KTOConfig>] { KTOConfig.configKeys.map { $0.prefixed("kto") } }

    public static let schema = ConfigSchema(
        AlignConfig.common(trainer: "kto") + keys.fields(defaults: KTOConfig()) + [
            .string("kto.ref_model", "", help: "Reference model directory or .gguf file; empty: the initial policy."),
        ])

    /// Trains with a resolved configuration; `resume` continues the run in `output` from checkpoints/latest.
    public static func train(config resolved: ResolvedConfig, resume: Bool = false) throws {
        var config = resolved
        if AlignRun.usesPreset(config) { config.setDefault("kto.learning_rate", .double(1e-3)) }
        let run = AlignRun(config: config)
        let (policy, tokenizer) = try run.loadModel()
        let data = config.string("data")
        let rows = data.isEmpty ? run.syntheticTask.unpairedRows(count: config.int("rows"), seed: run.seed)
            : try JSONLDataset.load(URL(fileURLWithPath: data), options: DataKeys.options(config))
        var trainer = keys.apply(config, to: KTOConfig())
        trainer.seed = UInt64(config.int("seed"))
        let reference = try AlignRun.reference(config.string("kto.ref_model"), run: run, resume: resume)
        let session = try OfflineSession("KTO", run: run, model: policy,
                                         optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: 0), resume: resume)
        let history = try session.run({ control, log in
            try KTOTrainer.train(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: trainer,
                                 optimizer: session.optimizer, control: control, onMetrics: log)
        }, save: { try session.saveModel(policy) })
        guard !history.isEmpty else { return session.reportNothingNew() }
        let late = history.suffix(10)
        func mean(_ values: [Float]) -> Float { values.filter(\.isFinite).reduce(0, +) / Float(max(values.filter(\.isFinite).count, 1)) }
        print(String(format: "KTO: %d steps; late loss %.4f, rewards/chosen %.4f, rewards/rejected %.4f, kl %.4f", session.startStep + history.count,
                     mean(late.map(\.loss)), mean(late.map(\.rewardsChosen)), mean(late.map(\.rewardsRejected)), mean(late.map(\.kl))))
    }
}
