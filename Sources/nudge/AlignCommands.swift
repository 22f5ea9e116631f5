// `nudge sft`, `nudge rm`, `nudge dpo`: the offline post-training trainers on a Hugging Face model
// directory or a from-scratch preset, on a JSONL file or a built-in synthetic task; each run writes
// a run directory (config, metrics) and the trained model.
//
// Each command declares a `ConfigSchema` (the keys of its config file and of `--set`); its flags are
// shortcuts for some of those keys and win over the file and `--set` (see `ConfigOptions`).

import ArgumentParser
import Foundation
import Nudge

/// `dataset.columns` and `dataset.answer` (beside the `data` path): a dataset's own column names and answer format.
enum DataKeys {
    static let fields: [ConfigField] = [
        .string("dataset.columns", "", help: "Rename the data's columns to TRL's fields, e.g. question=prompt (GSM8K) or problem=prompt,solution=answer (MATH)."),
        .choice("dataset.answer", ["none"] + AnswerExtractor.allCases.map(\.rawValue), default: "none",
                help: "Extract the answer column's final answer: gsm8k (after ####), boxed (the last \\boxed{}), last_number; none: as written."),
        .string("dataset.split", "train", help: "The split read when data is a Hub dataset directory (data/<split>-*.parquet)."),
    ]

    static func options(_ config: ResolvedConfig) throws -> DatasetOptions {
        let columns: [String: String]
        do { columns = try DatasetOptions.parseColumns(config.string("dataset.columns")) } catch { throw ValidationError("\(error)") }
        return DatasetOptions(columns: columns, answer: AnswerExtractor(rawValue: config.string("dataset.answer")),
                              split: config.string("dataset.split"))
    }
}

/// The config keys and reading helpers shared by sft, rm and dpo.
enum AlignConfig {
    /// The top-level keys. `trainer` has one allowed value so that a run's config.toml says
    /// which trainer wrote it and cannot be fed to another one by mistake.
    static func common(trainer: String) -> [ConfigField] {
        [
            .choice("trainer", [trainer], default: trainer, help: "This trainer (fixed; recorded in config.toml)."),
            .string("model", "", help: "A Hugging Face model directory or a .gguf file; empty: a fresh 'tiny' byte-level Llama."),
            .string("data", "", help: "A JSONL or Parquet file (or a Hub dataset directory: data/train-*.parquet) in TRL's shapes; empty: the built-in task."),
        ] + DataKeys.fields + [
            .choice("task", ["addition", "multiplication", "reversal", "sorting"], default: "addition", help: "The built-in task."),
            .int("rows", 256, min: 1, help: "Rows generated for the built-in task."),
            .int("seed", 0, min: 0, help: "Seed of the model initialization, the built-in task and batch order."),
            .string("output", "runs/\(trainer)", help: "Run directory (a previous run there is replaced)."),
            .int("checkpoint.every", 100, min: 1, help: "Write checkpoints/latest every this many steps (and at the end, and on Ctrl-C)."),
        ]
    }

    /// The optimization keys every trainer has, under `section`.
    static func training(_ section: String, learningRate: Double, presetLearningRate: Double) -> [ConfigField] {
        [
            .double("\(section).learning_rate", learningRate, min: 0,
                    help: "AdamW learning rate; \(TOMLWriter.formatDouble(presetLearningRate)) for the fresh preset model unless set."),
            .int("\(section).epochs", 1, min: 1, help: "Passes over the data."),
            .int("\(section).batch_size", 8, min: 1, help: "Rows per batch."),
            .int("\(section).max_length", 1024, min: 0, help: "Truncate sequences to this many tokens (0: no limit)."),
            .double("\(section).max_grad_norm", 1, min: 0, help: "Clip the gradient norm to this (0: no clipping)."),
        ]
    }

    /// `trainer` with the keys of `training(section, …)` and the seed from `config`: 0 means no
    /// limit for max_length and no clipping for max_grad_norm, as in HF's Trainer.
    static func applyTraining<C: OfflineTrainingConfig>(_ config: ResolvedConfig, section: String, to trainer: inout C) {
        trainer.learningRate = config.float("\(section).learning_rate")
        trainer.epochs = config.int("\(section).epochs")
        trainer.batchSize = config.int("\(section).batch_size")
        trainer.maxLength = limit(config.int("\(section).max_length"))
        trainer.maxGradNorm = clipNorm(config.float("\(section).max_grad_norm"))
        trainer.seed = UInt64(config.int("seed"))
    }

    /// `max_length` as the trainers take it: 0 means no limit.
    static func limit(_ value: Int) -> Int? { value == 0 ? nil : value }

    /// `max_grad_norm` as the trainers take it: 0 disables clipping, as in HF's Trainer.
    static func clipNorm(_ value: Float) -> Float { value == 0 ? .infinity : value }
}

/// The flags shared by sft, rm and dpo: `--config`/`--set` and shortcuts for common keys.
struct AlignOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "A Hugging Face model directory or a .gguf file (key: model).") var model: String?
    @Option(help: "A JSONL or Parquet file (or Hub dataset directory) in TRL's shapes (key: data).") var data: String?
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting (key: task).") var task: String?
    @Option(help: "Rows generated for the built-in task (key: rows).") var rows: Int?
    @Option(help: "Passes over the data (key: <trainer>.epochs).") var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Rows per batch (key: <trainer>.batch_size).") var batchSize: Int?
    @Option(name: .customLong("learning-rate"), help: "AdamW learning rate (key: <trainer>.learning_rate).") var learningRate: Double?
    @Option(help: "Random seed (key: seed).") var seed: Int?
    @Option(help: "Run directory (key: output).") var output: String?
    @Option(help: ArgumentHelp("Continue the run in this directory from its latest checkpoint, with its config.toml (only <trainer>.epochs may be changed, to extend it).",
                               valueName: "run-dir")) var resume: String?

    /// The configuration for the trainer whose keys live under `section`, with these flags (and
    /// `extra` ones) applied last; with `--resume`, the run's own configuration.
    func resolve(_ schema: ConfigSchema, section: String, extra: [ConfigOptions.Flag] = []) throws -> ResolvedConfig {
        if let resume {
            let given: [(String, Bool)] = [("--model", model != nil), ("--data", data != nil), ("--task", task != nil), ("--rows", rows != nil),
                                           ("--batch-size", batchSize != nil), ("--learning-rate", learningRate != nil), ("--seed", seed != nil),
                                           ("--output", output != nil)] + extra.map { ($0.name, $0.value != nil) }
            return try config.resolveResume(schema, runDirectory: resume, extendable: "\(section).epochs",
                                            extended: .init("\(section).epochs", "--epochs", epochs.map { .int($0) }),
                                            otherFlags: given.filter(\.1).map(\.0))
        }
        return try config.resolve(schema, flags: [
            .init("model", "--model", model.map { .string($0) }),
            .init("data", "--data", data.map { .string($0) }),
            .init("task", "--task", task.map { .string($0) }),
            .init("rows", "--rows", rows.map { .int($0) }),
            .init("\(section).epochs", "--epochs", epochs.map { .int($0) }),
            .init("\(section).batch_size", "--batch-size", batchSize.map { .int($0) }),
            .init("\(section).learning_rate", "--learning-rate", learningRate.map { .double($0) }),
            .init("seed", "--seed", seed.map { .int($0) }),
            .init("output", "--output", output.map { .string($0) }),
        ] + extra)
    }
}

/// A resolved sft/rm/dpo configuration, with what the three commands do with it.
struct AlignRun {
    let config: ResolvedConfig

    /// The seed (validated non-negative by the schema).
    var seed: UInt64 { UInt64(config.int("seed")) }

    /// Whether `config` trains the fresh preset model rather than a loaded one.
    static func usesPreset(_ config: ResolvedConfig) -> Bool { config.string("model").isEmpty }

    func loadModel() throws -> (any CausalLanguageModel, any Tokenizer) {
        if !Self.usesPreset(config) { return try Self.loadModel(directory: URL(fileURLWithPath: config.string("model"))) }
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var configuration = TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize)!
        configuration.eosTokenID = tokenizer.eosTokenID
        return (LlamaModel(configuration, seed: seed), tokenizer)
    }

    /// A model directory and its tokenizer: tokenizer.json when present, else the byte tokenizer the
    /// fresh preset models are trained with.
    static func loadModel(directory dir: URL) throws -> (any CausalLanguageModel, any Tokenizer) {
        try LanguageModelLoader.loadWithTokenizer(path: dir)
    }

    /// The built-in task (the schema limits `task` to these names).
    var syntheticTask: SyntheticTask { Self.task(named: config.string("task")) ?? .addition(digits: 2) }

    /// The built-in tasks' names.
    static let taskNames = ["addition", "multiplication", "reversal", "sorting"]

    /// The built-in task called `name` (nil for an unknown name).
    static func task(named name: String) -> SyntheticTask? {
        switch name {
        case "addition": .addition(digits: 2)
        case "multiplication": .multiplication(digits: 1)
        case "reversal": .reversal(length: 5)
        case "sorting": .sorting(length: 5)
        default: nil
        }
    }

    /// The JSONL file's rows, or the built-in task's SFT (or preference) rows.
    func rows(preference: Bool) throws -> [DatasetRow] {
        let data = config.string("data")
        if !data.isEmpty { return try JSONLDataset.load(URL(fileURLWithPath: data), options: DataKeys.options(config)) }
        let count = config.int("rows")
        return preference ? syntheticTask.preferenceRows(count: count, seed: seed) : syntheticTask.sftRows(count: count, seed: seed)
    }

    /// The run directory at `output`, with the resolved configuration as its config.toml: replaced,
    /// or reopened to resume after `step` (later metrics and samples, left by a crash after the last
    /// checkpoint, are dropped).
    func directory(resumingAfter step: Int? = nil) throws -> RunDirectory {
        let output = config.string("output")
        guard !output.isEmpty else { throw ValidationError("output: expected a directory path, got an empty string") }
        let url = URL(fileURLWithPath: output)
        guard let step else { return try RunDirectory.create(at: url, config: config.asConfigTable(), mode: .overwrite) }
        let directory = try RunDirectory.create(at: url, config: config.asConfigTable(), mode: .resume)
        try directory.truncate(afterStep: step)
        try AppendOnlyLines.filter(url.appendingPathComponent("samples.jsonl")) { (($0["step"] as? Int) ?? 0) <= step }
        return directory
    }

    /// checkpoints/latest of the run at `output`: the resumable checkpoint.
    var latestCheckpointURL: URL { URL(fileURLWithPath: config.string("output")).appendingPathComponent("checkpoints/latest") }
}

/// What sft, rm, dpo and kto do around their trainer: a fresh or resumed run directory, the
/// optimizer (restored on resume), Ctrl-C between steps, checkpoints/latest every `checkpoint.every`
/// steps and at the end, metrics, then report.html, also when a step fails (a NaN loss).
struct OfflineSession {
    let name: String
    let directory: RunDirectory
    let optimizer: Adam
    let control: TrainingControl
    let display: OfflineProgress
    /// The first failed metrics write (a full disk): the loop stops at the next step and it is thrown.
    let logFailure = LogFailure()
    /// The model file or directory the run started from (nil for the fresh preset): saved models carry its tokenizer.
    let sourceModel: URL?
    var startStep: Int { control.startStep }

    /// Opens the run of `run`'s configuration for `model` (everything the checkpoint holds) trained by
    /// `optimizer`; with `resume`, restores both from checkpoints/latest first.
    init(_ name: String, run: AlignRun, model: Module, optimizer: Adam, resume: Bool) throws {
        self.name = name
        self.optimizer = optimizer
        sourceModel = AlignRun.usesPreset(run.config) ? nil : URL(fileURLWithPath: run.config.string("model"))
        let latest = run.latestCheckpointURL
        var start = 0
        if resume {
            try Checkpoint.recoverInterruptedSwap(at: latest)
            guard FileManager.default.fileExists(atPath: latest.path) else {
                throw ValidationError("--resume \(run.config.string("output")): no checkpoints/latest to continue from")
            }
            start = try Checkpoint.restore(model: model, optimizer: optimizer, from: latest)
            print("Resuming \(name) after step \(start) in \(run.config.string("output"))")
        }
        directory = try run.directory(resumingAfter: resume ? start : nil)
        let display = OfflineProgress(label: name, startStep: start)
        self.display = display
        let stop = StopSignal.install()
        let announced = Announcement("\nInterrupted: saving the checkpoint and the report")
        let failure = logFailure
        control = TrainingControl(startStep: start, shouldStop: {
            if failure.error != nil { return true }
            guard stop.requested else { return false }
            announced.print()
            return true
        }, checkpointEvery: run.config.int("checkpoint.every"), checkpoint: { step in
            try Checkpoint.save(model: model, optimizer: optimizer, step: step, to: latest)
        }, progress: display.update)
    }

    /// Logs one step's metrics.
    func log(_ step: Int, _ metrics: [(String, Double)]) {
        do { try directory.log(step: step, metrics) } catch { if logFailure.error == nil { logFailure.error = error } }
        display.headline = metrics.filter { OfflineProgress.shown.contains($0.0) }
    }

    /// Runs `train` (given the control and the logger), then saves the model with `save`, closes
    /// the directory and writes report.html; on an error the report is still written.
    func run<T>(_ train: (TrainingControl, @escaping (Int, [(String, Double)]) -> Void) throws -> T, save: () throws -> Void) throws -> T {
        func close() {
            display.finish()
            directory.close()
        }
        let result: T
        do {
            result = try train(control, log)
            if let failure = logFailure.error { throw failure }
            try save()
        } catch {
            close()
            try? HTMLReport.forRun(directory.url).write(to: directory.url.appendingPathComponent("report.html"))
            if let stop = error as? NonFiniteValueError {
                throw TrainingStopped(reason: "\(stop)", checkpoint: directory.checkpointURL(name: "latest"))
            }
            throw error
        }
        close()
        try HTMLReport.forRun(directory.url).write(to: directory.url.appendingPathComponent("report.html"))
        // 128 + SIGINT, so a scheduler tells an interrupted run from a finished one.
        if StopSignal.install().requested { throw ExitCode(130) }
        return result
    }

    /// Says that a resumed run had no steps left (extend it with --epochs).
    func reportNothingNew() {
        print("\(name): no steps left after step \(startStep); to train further, resume with a larger --epochs. Run in \(directory.url.path)")
    }

    /// Saves a language model as a Hugging Face directory in checkpoints/model.
    func saveModel(_ model: any CausalLanguageModel) throws {
        try LanguageModelLoader.save(model, tokenizerFrom: sourceModel, to: directory.checkpointURL(name: "model"))
    }
}

struct SFTCommand: ParsableCommand {
    static let schema = ConfigSchema(
        AlignConfig.common(trainer: "sft") + AlignConfig.training("sft", learningRate: 2e-5, presetLearningRate: 3e-3) + [
            .int("sft.gradient_accumulation_steps", 1, min: 1, help: "Batches per optimizer step."),
            .bool("sft.packing", false, help: "Pack rows into sequences of max_length tokens (each example attends only to itself)."),
            .bool("sft.completion_only_loss", true, help: "Train on completion tokens only."),
            .double("sft.weight_decay", 0, min: 0, help: "AdamW weight decay."),
            .string("sft.eval_data", "", help: "A JSONL file for the evaluation loss; empty: held-out rows of the built-in task."),
            .int("sft.eval_rows", 64, min: 0, help: "Held-out rows of the built-in task for the evaluation loss (0: no evaluation)."),
            .int("sft.eval_steps", 0, min: 0, help: "Evaluate every this many steps (0: only after the last)."),
        ])

    static let configuration = CommandConfiguration(
        commandName: "sft", abstract: "Supervised fine-tuning (completion-only loss).",
        discussion: schema.discussion(examples: [
            "nudge sft --rows 64 --epochs 2",
            "nudge sft --config examples/configs/sft.toml",
            "nudge sft --config sft.toml --set sft.learning_rate=1e-3 --set sft.epochs=3 --set sft.packing=true",
            "nudge sft --model DIR --data train.jsonl --set sft.max_length=512 --output runs/my-sft",
            "nudge sft --resume runs/sft --epochs 4",
        ]))

    @OptionGroup var options: AlignOptions

    /// Config problems are reported here, before `run`, so that they read as usage errors of `nudge sft`.
    func validate() throws { _ = try options.resolve(Self.schema, section: "sft") }

    /// Evaluation rows: `sft.eval_data`, else the built-in task's rows from another seed whose prompts
    /// are not among the training rows.
    static func evalRows(_ run: AlignRun, training: [DatasetRow]) throws -> [DatasetRow] {
        let file = run.config.string("sft.eval_data")
        if !file.isEmpty { return try JSONLDataset.load(URL(fileURLWithPath: file)) }
        let count = run.config.int("sft.eval_rows")
        guard run.config.string("data").isEmpty, count > 0 else { return [] }
        func prompt(_ row: DatasetRow) -> String? { if case .promptCompletion(let p, _) = row { p.plainText } else { nil } }
        let seen = Set(training.compactMap(prompt))
        return run.syntheticTask.sftRows(count: count * 2, seed: run.seed &+ 7919).filter { prompt($0).map { !seen.contains($0) } ?? true }
            .prefix(count).map { $0 }
    }

    func run() throws {
        var config = try options.resolve(Self.schema, section: "sft")
        // A from-scratch tiny model needs a far larger step than a pretrained one.
        if AlignRun.usesPreset(config) { config.setDefault("sft.learning_rate", .double(3e-3)) }
        let run = AlignRun(config: config)
        let (model, tokenizer) = try run.loadModel()
        let rows = try run.rows(preference: false)
        let evalRows = try Self.evalRows(run, training: rows)
        var trainer = SFTConfig()
        AlignConfig.applyTraining(config, section: "sft", to: &trainer)
        trainer.gradientAccumulationSteps = config.int("sft.gradient_accumulation_steps")
        trainer.packing = config.bool("sft.packing")
        trainer.completionOnlyLoss = config.bool("sft.completion_only_loss")
        trainer.weightDecay = config.float("sft.weight_decay")
        trainer.evalSteps = config.int("sft.eval_steps")
        let session = try OfflineSession("SFT", run: run, model: model,
                                         optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: trainer.weightDecay),
                                         resume: options.resume != nil)
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

struct RMCommand: ParsableCommand {
    static let schema = ConfigSchema(
        AlignConfig.common(trainer: "rm") + AlignConfig.training("rm", learningRate: 1e-5, presetLearningRate: 1e-3) + [
            .double("rm.center_rewards_coefficient", 0, min: 0, help: "Weight of the reward-centering penalty (as in TRL)."),
        ])

    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Train a Bradley–Terry reward model on preference pairs.",
        discussion: schema.discussion(examples: [
            "nudge rm --rows 128",
            "nudge rm --config rm.yaml --set rm.learning_rate=5e-4 --set rm.center_rewards_coefficient=0.01",
            "nudge rm --resume runs/rm --epochs 3",
        ]))

    @OptionGroup var options: AlignOptions

    /// Config problems are reported here, before `run`, so that they read as usage errors of `nudge rm`.
    func validate() throws { _ = try options.resolve(Self.schema, section: "rm") }

    func run() throws {
        var config = try options.resolve(Self.schema, section: "rm")
        if AlignRun.usesPreset(config) { config.setDefault("rm.learning_rate", .double(1e-3)) }
        let run = AlignRun(config: config)
        let (trunk, tokenizer) = try run.loadModel()
        let rows = try run.rows(preference: true)
        var trainer = RewardConfig()
        AlignConfig.applyTraining(config, section: "rm", to: &trainer)
        trainer.centeringCoefficient = config.float("rm.center_rewards_coefficient")
        let model = ScalarHeadModel(trunk: trunk, seed: run.seed)
        let session = try OfflineSession("RM", run: run, model: model, optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: 0),
                                         resume: options.resume != nil)
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

struct DPOCommand: ParsableCommand {
    static let losses = ["sigmoid", "hinge", "ipo", "robust", "rpo", "simpo", "cpo", "orpo"]

    static let schema = ConfigSchema(
        AlignConfig.common(trainer: "dpo") + AlignConfig.training("dpo", learningRate: 1e-6, presetLearningRate: 2e-3) + [
            .double("dpo.beta", 0.1, min: 0, help: "β: strength of the KL leash to the reference."),
            .choice("dpo.loss", losses, default: "sigmoid", help: "Preference loss."),
            .double("dpo.label_smoothing", 0, min: 0, max: 0.5,
                    help: "Label smoothing ε of sigmoid (cDPO) and robust; robust: 0.1 unless set."),
            .double("dpo.rpo_alpha", 1, min: 0, help: "rpo: weight of the chosen completions' NLL."),
            .double("dpo.simpo_gamma", 0.5, help: "simpo: target reward margin γ."),
            .double("dpo.cpo_alpha", 1, min: 0, help: "cpo: weight of the behaviour-cloning NLL."),
            .double("dpo.orpo_lambda", 0.1, min: 0, help: "orpo: weight λ of the odds-ratio term (TRL's beta)."),
            .int("dpo.max_prompt_length", 512, min: 0, help: "Truncate prompts to this many tokens (0: no limit)."),
            .string("dpo.ref_model", "", help: "Reference model directory or .gguf file; empty: the initial policy."),
        ])

    static let configuration = CommandConfiguration(
        commandName: "dpo", abstract: "Direct preference optimization (and the IPO/hinge/robust/RPO/SimPO/CPO/ORPO variants).",
        discussion: schema.discussion(examples: [
            "nudge dpo --rows 128 --beta 0.2",
            "nudge dpo --config examples/configs/dpo.yaml --set dpo.loss=ipo",
            "nudge dpo --loss orpo --set dpo.orpo_lambda=0.2",
            "nudge dpo --eval-only --model DIR --ref-model DIR --data FILE --json",
            "nudge dpo --resume runs/dpo --epochs 2",
        ]))

    @OptionGroup var options: AlignOptions
    @Option(help: "β (key: dpo.beta).") var beta: Double?
    @Option(help: "Loss: \(losses.joined(separator: ", ")) (key: dpo.loss).") var loss: String?
    @Flag(name: .customLong("eval-only"), help: "Compute the loss and metrics without training.") var evalOnly = false
    @Option(name: .customLong("ref-model"), help: "Reference model directory or .gguf file (key: dpo.ref_model).") var referenceModel: String?
    @Flag(help: "Print metrics as JSON.") var json = false

    /// The loss named by `dpo.loss`, with its parameters.
    static func lossKind(_ config: ResolvedConfig) throws -> PreferenceLoss {
        let smoothing = config.float("dpo.label_smoothing")
        switch config.string("dpo.loss") {
        case "hinge": return .hinge
        case "ipo": return .ipo
        case "robust":
            // Robust DPO divides by 1 − 2ε.
            guard smoothing < 0.5 else { throw ValidationError("dpo.label_smoothing: robust needs a value below 0.5, got 0.5") }
            return .robust(labelSmoothing: smoothing)
        case "rpo": return .rpo(alpha: config.float("dpo.rpo_alpha"))
        case "simpo": return .simpo(gamma: config.float("dpo.simpo_gamma"))
        case "cpo": return .cpo(lambda: config.float("dpo.cpo_alpha"))
        case "orpo": return .orpo(lambda: config.float("dpo.orpo_lambda"))
        default: return .sigmoid(labelSmoothing: smoothing)
        }
    }

    func resolve() throws -> ResolvedConfig {
        try options.resolve(Self.schema, section: "dpo", extra: [
            .init("dpo.beta", "--beta", beta.map { .double($0) }),
            .init("dpo.loss", "--loss", loss.map { .string($0) }),
            .init("dpo.ref_model", "--ref-model", referenceModel.map { .string($0) }),
        ])
    }

    /// Config problems are reported here, before `run`, so that they read as usage errors of `nudge dpo`.
    func validate() throws {
        let config = try resolve()
        if evalOnly && config.string("dpo.ref_model").isEmpty { throw ValidationError("--eval-only needs --ref-model (or dpo.ref_model)") }
        if evalOnly && options.resume != nil { throw ValidationError("--eval-only trains nothing; drop --resume") }
    }

    func run() throws {
        var config = try resolve()
        if AlignRun.usesPreset(config) { config.setDefault("dpo.learning_rate", .double(2e-3)) }
        // Robust DPO with ε = 0 is plain DPO; keep the CLI's long-standing 0.1.
        if config.string("dpo.loss") == "robust" { config.setDefault("dpo.label_smoothing", .double(0.1)) }
        let run = AlignRun(config: config)
        let (policy, tokenizer) = try run.loadModel()
        let rows = try run.rows(preference: true)
        var trainer = DPOConfig()
        AlignConfig.applyTraining(config, section: "dpo", to: &trainer)
        trainer.beta = config.float("dpo.beta")
        trainer.loss = try Self.lossKind(config)
        trainer.maxPromptLength = AlignConfig.limit(config.int("dpo.max_prompt_length"))
        let reference = try AlignRun.reference(config.string("dpo.ref_model"), run: run, resume: options.resume != nil)
        if evalOnly {
            guard let reference else { throw ValidationError("--eval-only needs --ref-model (or dpo.ref_model)") }
            let m = try DPOTrainer.evaluate(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: trainer)
            if json {
                let data = try JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: m.named), options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                for (k, v) in m.named { print(String(format: "%@: %.5f", k, v)) }
            }
            return
        }
        let session = try OfflineSession("DPO", run: run, model: policy,
                                         optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: 0), resume: options.resume != nil)
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

struct KTOCommand: ParsableCommand {
    static let schema = ConfigSchema(
        AlignConfig.common(trainer: "kto") + AlignConfig.training("kto", learningRate: 1e-6, presetLearningRate: 1e-3) + [
            .double("kto.beta", 0.1, min: 0, help: "β: strength of the KL leash to the reference."),
            .double("kto.desirable_weight", 1, min: 0, help: "λ_D: weight of desirable completions' losses."),
            .double("kto.undesirable_weight", 1, min: 0, help: "λ_U: weight of undesirable completions' losses."),
            .int("kto.max_prompt_length", 512, min: 0, help: "Truncate prompts to this many tokens (0: no limit)."),
            .string("kto.ref_model", "", help: "Reference model directory or .gguf file; empty: the initial policy."),
        ])

    static let configuration = CommandConfiguration(
        commandName: "kto", abstract: "Kahneman–Tversky optimization on unpaired completions labelled good or bad.",
        discussion: schema.discussion(examples: [
            "nudge kto --rows 256 --epochs 2",
            "nudge kto --model DIR --data unpaired.jsonl --set kto.beta=0.2 --set kto.undesirable_weight=1.33",
            "nudge kto --resume runs/kto --epochs 3",
        ]))

    @OptionGroup var options: AlignOptions
    @Option(help: "β (key: kto.beta).") var beta: Double?

    func resolve() throws -> ResolvedConfig {
        try options.resolve(Self.schema, section: "kto", extra: [.init("kto.beta", "--beta", beta.map { .double($0) })])
    }

    /// Config problems are reported here, before `run`, so that they read as usage errors of `nudge kto`.
    func validate() throws {
        let config = try resolve()
        if config.int("kto.batch_size") < 2 { throw ValidationError("kto.batch_size: KTO needs at least 2 rows per batch, got \(config.int("kto.batch_size"))") }
    }

    func run() throws {
        var config = try resolve()
        if AlignRun.usesPreset(config) { config.setDefault("kto.learning_rate", .double(1e-3)) }
        let run = AlignRun(config: config)
        let (policy, tokenizer) = try run.loadModel()
        let data = config.string("data")
        let rows = data.isEmpty ? run.syntheticTask.unpairedRows(count: config.int("rows"), seed: run.seed)
            : try JSONLDataset.load(URL(fileURLWithPath: data), options: DataKeys.options(config))
        var trainer = KTOConfig()
        AlignConfig.applyTraining(config, section: "kto", to: &trainer)
        trainer.beta = config.float("kto.beta")
        trainer.desirableWeight = config.float("kto.desirable_weight")
        trainer.undesirableWeight = config.float("kto.undesirable_weight")
        trainer.maxPromptLength = AlignConfig.limit(config.int("kto.max_prompt_length"))
        let reference = try AlignRun.reference(config.string("kto.ref_model"), run: run, resume: options.resume != nil)
        let session = try OfflineSession("KTO", run: run, model: policy,
                                         optimizer: AdamW(learningRate: trainer.learningRate, weightDecay: 0), resume: options.resume != nil)
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

/// The progress bar of an offline run, made when the trainer first reports its step count.
final class OfflineProgress {
    /// The metrics shown beside the bar.
    static let shown: Set<String> = ["loss", "eval_loss", "accuracy", "rewards/accuracies", "rewards/margins", "kl"]
    let label: String
    let startStep: Int
    var reporter: ProgressReporter?
    var headline: [(String, Double)] = []

    init(label: String, startStep: Int) {
        self.label = label
        self.startStep = startStep
    }

    func update(_ step: Int, _ total: Int) {
        if reporter == nil { reporter = ProgressReporter(total: total, label: label, initialCompleted: startStep) }
        reporter?.update(completed: step, metrics: headline)
    }

    func finish() { reporter?.finish() }
}

/// A message printed once, however often it is asked for.
final class Announcement: @unchecked Sendable {
    let text: String
    var done = false

    init(_ text: String) { self.text = text }

    func print() {
        guard !done else { return }
        done = true
        Swift.print(text)
    }
}

extension AlignRun {
    /// The reference model of dpo and kto: the directory `path`, else nil (the trainer scores with the
    /// initial policy), except when resuming, where the policy holds trained weights and the initial
    /// ones are loaded again (the preset from its seed, or the model directory).
    static func reference(_ path: String, run: AlignRun, resume: Bool) throws -> (any CausalLanguageModel)? {
        if !path.isEmpty { return try LanguageModelLoader.load(path: URL(fileURLWithPath: path)) }
        return resume ? try run.loadModel().0 : nil
    }
}

/// Where a non-throwing metrics callback leaves its first error.
final class LogFailure: @unchecked Sendable {
    var error: (any Error)?
}
