// `nudge rft` from a resolved configuration: rejection-sampling fine-tuning (sample n per prompt,
// keep the judge's best when it passes the threshold, SFT on the kept ones, repeat) through the runner.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport

/// A rejection-sampling fine-tuning run (best-of-n / ReST-style expert iteration).
public enum RFTRun {
    public static let section = "rft"

    /// The trainer's keys, under `rft`.
    public static var keys: [ConfigBinding<RFTConfig>] { RFTConfig.configKeys.map { $0.prefixed(section) } }

    /// The keys of `nudge rft`.
    public static let schema = ConfigSchema(OnlineConfig.common(trainer: section) + keys.fields(defaults: RFTConfig()) + JudgeConfig.fields(section))

    /// The configuration with the command's defaults for the fresh preset model filled in where the user set nothing.
    public static func withDefaults(_ resolved: ResolvedConfig) -> ResolvedConfig {
        var config = resolved
        let s = section
        if config.string("model").isEmpty {
            config.setDefault("\(s).learning_rate", .double(1e-3))
            config.setDefault("\(s).max_new_tokens", .int(AlignRun.completionLength(task: config.string("task"))))
            config.setDefault("\(s).batch_size", .int(16))
            config.setDefault("\(s).steps", .int(40))
            config.setDefault("eval.every", .int(5))
        }
        return config
    }

    /// Trains with a resolved configuration; `warm` is an already warm-started model (the lab's);
    /// `resume` continues the run in `output` from checkpoints/latest.
    @discardableResult
    public static func train(config resolved: ResolvedConfig, warm: (any CausalLanguageModel, any Tokenizer)? = nil,
                             resume: Bool = false) throws -> RunOutcome {
        let config = withDefaults(resolved)
        let s = section
        let run = OnlineRun(config: config, name: "RFT")
        let (model, tokenizer, rows, heldOut) = try run.setUp(warm: warm, resume: resume, maxNewTokens: config.int("\(s).max_new_tokens"))
        var c = keys.apply(config, to: RFTConfig())
        c.seed = run.seed
        let trainer = try RFTTrainer(policy: model, tokenizer: tokenizer, rows: rows,
                                     judge: try JudgeConfig.judge(config, s, policy: model, tokenizer: tokenizer), config: c)
        if run.usesPreset && config.string("data").isEmpty { trainer.monitors = [JudgeConfig.goldReward] }
        let directory = try run.openDirectory(for: trainer, model: model, resume: resume)
        trainer.onJudgeFailures = try JudgeConfig.failureLog(in: directory)
        var runner = run.runner(directory: directory, model: model, tokenizer: tokenizer, heldOut: heldOut, maxNewTokens: c.maxNewTokens)
        runner.headline = ["reward", "rft/kept_fraction", "loss", "eval/accuracy"]
        return try runner.run(trainer)
    }
}
