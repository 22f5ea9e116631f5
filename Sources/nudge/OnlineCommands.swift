// `nudge grpo|rloo|ppo|online-dpo|rft`: online RL for language models. With no model and no data
// they run on a built-in verifiable task: a fresh tiny model is first taken by SFT to partial
// accuracy (the warm start), then trained online; held-out greedy accuracy is evaluated along the
// way. Each run writes a run directory (config.toml, metrics.jsonl/.csv, TensorBoard events,
// samples.jsonl, checkpoints/, report.html). Ctrl-C finishes the current step, saves and reports.
// The runs themselves (GroupRun, PPORun, AlignRunner) live in NudgeAlign.

import ArgumentParser
import Foundation
import Nudge

/// The flags shared by the online trainers: `--config`/`--set` and shortcuts for common keys.
struct OnlineOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "A Hugging Face model directory or a .gguf file (key: model).") var model: String?
    @Option(help: "A JSONL or Parquet file (or Hub dataset directory) of prompts, e.g. {\"prompt\": …, \"answer\": …} (key: data).") var data: String?
    @Option(help: "Built-in task: addition, multiplication, reversal, sorting, carries (key: task).") var task: String?
    @Option(help: "Optimizer steps (key: <trainer>.steps).") var steps: Int?
    @Option(name: .customLong("learning-rate"), help: "AdamW learning rate (key: <trainer>.learning_rate).") var learningRate: Double?
    @Option(help: "KL coefficient β (key: <trainer>.beta).") var beta: Double?
    @Option(help: "Random seed (key: seed).") var seed: Int?
    @Option(help: "Run directory (key: output).") var output: String?
    @Option(help: ArgumentHelp("Continue the run in this directory from its latest checkpoint, with its config.toml (only <trainer>.steps may be changed, to extend it).",
                               valueName: "run-dir")) var resume: String?

    func resolve(_ schema: ConfigSchema, section: String) throws -> ResolvedConfig {
        try config.resolve(schema, flags: [
            .init("model", "--model", model.map { .string($0) }),
            .init("data", "--data", data.map { .string($0) }),
            .init("task", "--task", task.map { .string($0) }),
            .init("\(section).learning_rate", "--learning-rate", learningRate.map { .double($0) }),
            .init("\(section).beta", "--beta", beta.map { .double($0) }),
            .init("seed", "--seed", seed.map { .int($0) }),
            .init("output", "--output", output.map { .string($0) }),
        ], extending: .init("\(section).steps", "--steps", steps.map { .int($0) }), resume: resume)
    }
}

struct GRPOCommand: ParsableCommand {
    static let group = GroupRun.grpo
    static let schema = group.schema
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
    func validate() throws { _ = try options.resolve(Self.schema, section: Self.group.section) }
    func run() throws { try Self.group.train(config: options.resolve(Self.schema, section: Self.group.section), resume: options.resume != nil) }
}

struct RLOOCommand: ParsableCommand {
    static let group = GroupRun.rloo
    static let schema = group.schema
    static let configuration = CommandConfiguration(
        commandName: "rloo", abstract: "RLOO as TRL's RLOOTrainer: the leave-one-out baseline, β·k1 in the reward, one clipped ratio per sequence.",
        discussion: schema.discussion(examples: ["nudge rloo", "nudge rloo --beta 0.05 --set rloo.num_generations=4"]))
    @OptionGroup var options: OnlineOptions
    func validate() throws { _ = try options.resolve(Self.schema, section: Self.group.section) }
    func run() throws { try Self.group.train(config: options.resolve(Self.schema, section: Self.group.section), resume: options.resume != nil) }
}

struct PPOCommand: ParsableCommand {
    static let schema = PPORun.schema
    static let configuration = CommandConfiguration(
        commandName: "ppo", abstract: "PPO-RLHF: policy, frozen reference, reward model and value model, with a KL leash.",
        discussion: schema.discussion(examples: [
            "nudge ppo                        (5-letter sorting: RM trained on 8000 gold-labelled pairs of the warm policy's samples, scaled to std 1, then 600 PPO steps; gold reward logged as monitor/gold)",
            "nudge ppo --set ppo.target_kl=2 --set ppo.value_model=shared",
            "nudge ppo --set ppo.reward_model=runs/rm/checkpoints/reward_model.safetensors",
        ]))

    @OptionGroup var options: OnlineOptions
    func validate() throws { _ = try options.resolve(Self.schema, section: "ppo") }
    func run() throws { try PPORun.train(config: try options.resolve(Self.schema, section: "ppo"), resume: options.resume != nil) }
}

struct OnlineDPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "online-dpo", abstract: "Online (and iterative) DPO: fresh samples, a judge's best-vs-worst pairs, a DPO-family loss.", discussion: OnlineDPORun.schema.discussion(examples: ["nudge online-dpo", "nudge online-dpo --set online_dpo.loss_type=ipo --set online_dpo.iterative_rounds=5"]))
    @OptionGroup var options: OnlineOptions
    func validate() throws { _ = try options.resolve(OnlineDPORun.schema, section: OnlineDPORun.section) }
    func run() throws { try OnlineDPORun.train(config: options.resolve(OnlineDPORun.schema, section: OnlineDPORun.section), resume: options.resume != nil) }
}

struct RFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rft", abstract: "Rejection-sampling fine-tuning: sample n per prompt, keep the best that passes the judge, SFT on them, repeat.", discussion: RFTRun.schema.discussion(examples: ["nudge rft"]))
    @OptionGroup var options: OnlineOptions
    func validate() throws { _ = try options.resolve(RFTRun.schema, section: RFTRun.section) }
    func run() throws { try RFTRun.train(config: options.resolve(RFTRun.schema, section: RFTRun.section), resume: options.resume != nil) }
}
