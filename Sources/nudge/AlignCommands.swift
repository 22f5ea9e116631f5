// `nudge sft`, `nudge rm`, `nudge dpo`: the offline post-training trainers on a Hugging Face model
// directory or a from-scratch preset, on a JSONL file or a built-in synthetic task; each run writes
// a run directory (config, metrics) and the trained model.
//
// Each command declares a `ConfigSchema` (the keys of its config file and of `--set`); its flags are
// shortcuts for some of those keys and win over the file and `--set` (see `ConfigOptions`). What
// the runs do around their trainers (AlignRun, AlignRunner) lives in NudgeAlign.

import ArgumentParser
import Foundation
import Nudge

/// The flags shared by sft, rm and dpo: `--config`/`--set` and shortcuts for common keys.
struct AlignOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "A Hugging Face model directory or a .gguf file (key: model).") var model: String?
    @Option(help: "A JSONL or Parquet file (or Hub dataset directory) in TRL's shapes (key: data).") var data: String?
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting, carries (key: task).") var task: String?
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
        try config.resolve(schema, flags: [
            .init("model", "--model", model.map { .string($0) }),
            .init("data", "--data", data.map { .string($0) }),
            .init("task", "--task", task.map { .string($0) }),
            .init("rows", "--rows", rows.map { .int($0) }),
            .init("\(section).batch_size", "--batch-size", batchSize.map { .int($0) }),
            .init("\(section).learning_rate", "--learning-rate", learningRate.map { .double($0) }),
            .init("seed", "--seed", seed.map { .int($0) }),
            .init("output", "--output", output.map { .string($0) }),
        ] + extra, extending: .init("\(section).epochs", "--epochs", epochs.map { .int($0) }), resume: resume)
    }
}

struct SFTCommand: ParsableCommand {
    static let schema = SFTRun.schema

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


    func run() throws { try SFTRun.train(config: options.resolve(Self.schema, section: "sft"), resume: options.resume != nil) }
}

struct RMCommand: ParsableCommand {
    static let schema = RMRun.schema

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

    func run() throws { try RMRun.train(config: options.resolve(Self.schema, section: "rm"), resume: options.resume != nil) }
}

struct PRMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prm", abstract: "Train a process reward model on stepwise supervision (prompt, completions, labels).",
        discussion: PRMRun.schema.discussion(examples: ["nudge prm                    (the carries task's stepwise rows)", "nudge prm --data steps.jsonl --set prm.eval_data=held_out.jsonl"]))
    @OptionGroup var options: AlignOptions
    func validate() throws { _ = try options.resolve(PRMRun.schema, section: "prm") }
    func run() throws { try PRMRun.train(config: options.resolve(PRMRun.schema, section: "prm"), resume: options.resume != nil) }
}

struct DPOCommand: ParsableCommand {

    static let schema = DPORun.schema

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
    @Option(help: "Loss: \(DPORun.losses.joined(separator: ", ")) (key: dpo.loss).") var loss: String?
    @Flag(name: .customLong("eval-only"), help: "Compute the loss and metrics without training.") var evalOnly = false
    @Option(name: .customLong("ref-model"), help: "Reference model directory or .gguf file (key: dpo.ref_model).") var referenceModel: String?
    @Flag(help: "Print metrics as JSON.") var json = false


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
        let config = try resolve()
        guard evalOnly else { return try DPORun.train(config: config, resume: options.resume != nil) }
        let metrics = try DPORun.evaluate(config: config)
        print(json ? try metrics.json() : metrics.summary)
    }
}

struct KTOCommand: ParsableCommand {
    static let schema = KTORun.schema

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

    func run() throws { try KTORun.train(config: resolve(), resume: options.resume != nil) }
}

