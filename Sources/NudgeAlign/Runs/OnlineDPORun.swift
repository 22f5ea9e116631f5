// `nudge online-dpo` from a resolved configuration: the keys (TRL's OnlineDPOConfig names under
// `online_dpo`, the DPO loss family's beside them), the judge, the warm start of a fresh model, the
// trainer and the runner.

import Foundation
import NudgeLM
import NudgeNN
import NudgeConfig
import NudgeReport

/// An online (or iterative) DPO run: samples from the current policy, a judge's pairs, a DPO-family loss.
public enum OnlineDPORun {
    public static let section = "online_dpo"

    /// The trainer's keys, under `online_dpo`.
    public static var keys: [ConfigBinding<OnlineDPOConfig>] { OnlineDPOConfig.configKeys.map { $0.prefixed(section) } }

    /// The keys of `nudge online-dpo`.
    public static let schema = ConfigSchema(OnlineConfig.common(trainer: section) + keys.fields(defaults: OnlineDPOConfig())
        + DPORun.lossFields(section, key: "loss_type") + JudgeConfig.fields(section))

    /// The configuration `nudge online-dpo` resolves for `trainer` and the run-level `overrides`.
    public static func configuration(_ trainer: OnlineDPOConfig, overrides: [String] = []) throws -> ResolvedConfig {
        try schema.resolve(overrides: keys.overrides(from: trainer) + ["seed=\(trainer.seed)"] + overrides)
    }

    /// The configuration with the command's defaults for the fresh preset model filled in where the
    /// user set nothing.
    public static func withDefaults(_ resolved: ResolvedConfig) -> ResolvedConfig {
        var config = resolved
        let s = section
        if config.string("model").isEmpty {
            // Measured on 2-digit addition from the 0.22 warm start (seed 0, release, 2 cores): 1500 steps of
            // 16 prompts × 8 samples at 1e-3 reach 0.685 held-out accuracy in about two minutes of
            // training; 3e-4 with β 0.5 reached 0.465, 3e-4 with β 0.1 moved 0.22 → 0.23 in 300 steps.
            config.setDefault("\(s).learning_rate", .double(1e-3))
            config.setDefault("\(s).max_new_tokens", .int(AlignRun.completionLength(task: config.string("task"))))
            config.setDefault("\(s).batch_size", .int(16))
            config.setDefault("\(s).num_generations", .int(8))
            config.setDefault("\(s).temperature", .double(1))
            config.setDefault("\(s).steps", .int(1500))
            config.setDefault("eval.every", .int(250))
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
        let run = OnlineRun(config: config, name: "Online DPO")
        let (model, tokenizer, rows, heldOut) = try run.setUp(warm: warm, resume: resume, maxNewTokens: config.int("\(s).max_new_tokens"))
        var c = keys.apply(config, to: OnlineDPOConfig())
        c.seed = run.seed
        c.loss = try DPORun.lossKind(config, section: s, key: "loss_type")
        let trainer = try OnlineDPOTrainer(policy: model, tokenizer: tokenizer, rows: rows,
                                           judge: try JudgeConfig.judge(config, s, policy: model, tokenizer: tokenizer), config: c)
        if run.usesPreset && config.string("data").isEmpty { trainer.monitors = [JudgeConfig.goldReward] }
        let directory = try run.openDirectory(for: trainer, model: model, resume: resume)
        trainer.onJudgeFailures = try JudgeConfig.failureLog(in: directory)
        var runner = run.runner(directory: directory, model: model, tokenizer: tokenizer, heldOut: heldOut, maxNewTokens: c.maxNewTokens)
        runner.headline = ["objective/scores", "rewards/accuracies", "objective/kl", "eval/accuracy"]
        return try runner.run(trainer)
    }
}

/// The judge of a run that ranks samples (`<section>.judge`): every kind is made in `judge`, so
/// another (a local model prompted to judge, an HTTP endpoint) is one more case there.
public enum JudgeConfig {
    /// The judges `<section>.judge` names.
    public static let kinds = ["gold", "reward_model"]

    public static func fields(_ s: String) -> [ConfigField] {
        [
            .choice("\(s).judge", kinds, default: "gold",
                    help: "Who ranks the samples: gold (the built-in task's gold reward, or the exact-answer reward on a dataset with answers) or reward_model (a trained reward model's score)."),
            .string("\(s).reward_model", "", help: "judge = reward_model: a reward-model weights file (nudge rm's, or nudge ppo's checkpoints/reward_model.safetensors)."),
        ]
    }

    /// The judge named by `<section>.judge`.
    public static func judge(_ config: ResolvedConfig, _ s: String, policy: any CausalLanguageModel, tokenizer: any Tokenizer) throws -> any PairwiseJudge {
        switch config.string("\(s).judge") {
        case "reward_model":
            let path = config.string("\(s).reward_model")
            guard !path.isEmpty else {
                throw RunSetupError("\(s).reward_model: judge = reward_model needs a reward-model weights file (nudge rm's checkpoints/reward_model.safetensors)")
            }
            let rewardModel = ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: policy), seed: 0)
            do { try rewardModel.load(from: URL(fileURLWithPath: path)) } catch {
                throw RunSetupError("\(s).reward_model \(path): \(error)")
            }
            rewardModel.freeze()
            return RewardJudge(RewardModelReward(model: rewardModel, padTokenID: Collator.padID(for: tokenizer)))
        default:
            if config.string("data").isEmpty { return RewardJudge(goldReward) }
            return RewardJudge(ExactAnswerReward())
        }
    }

    /// The built-in tasks' hidden gold reward (1 for the answer, partial credit for a near miss).
    public static var goldReward: ClosureReward {
        ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }
    }

    /// Writes judge failures with their rows (never scored) to judge_failures.jsonl in the run directory.
    public static func failureLog(in directory: RunDirectory) throws -> (Int, [JudgeFailure], [RewardSample]) -> Void {
        let failures = try AppendOnlyLines(url: directory.url.appendingPathComponent("judge_failures.jsonl"))
        return { step, list, samples in
            for f in list {
                let sample = f.row < samples.count ? samples[f.row] : nil
                try? failures.append(["step": step, "judge": f.judge, "row": f.row, "reason": f.reason,
                                      "prompt": sample?.prompt ?? NSNull(), "completion": sample?.completion ?? NSNull()])
            }
        }
    }
}

extension OnlineRun {
    /// The model and rows of an online run: `warm` as given, else the loaded model warm-started (a
    /// fresh run) or put back to the run's starting weights (a resume).
    func setUp(warm: (any CausalLanguageModel, any Tokenizer)?, resume: Bool, maxNewTokens: Int) throws
        -> (model: any CausalLanguageModel, tokenizer: any Tokenizer, rows: [DatasetRow], heldOut: [DatasetRow]) {
        let (model, tokenizer) = try warm ?? loadModel()
        let (train, heldOut) = try rows()
        if resume { try loadInitialWeights(model) } else if warm == nil { try warmStart(model, tokenizer, maxNewTokens: maxNewTokens) }
        return (model, tokenizer, train, heldOut)
    }

    /// Restores `trainer` from checkpoints/latest when resuming, then opens the run directory,
    /// keeping a fresh preset's starting weights (what a resume's reference is made from).
    func openDirectory(for trainer: any Trainer, model: any CausalLanguageModel, resume: Bool) throws -> RunDirectory {
        if resume { try trainer.restoreCheckpoint(from: latestCheckpointURL(URL(fileURLWithPath: config.string("output")))) }
        let directory = try self.directory(resumingAfter: resume ? trainer.completedSteps : nil)
        if !resume && usesPreset { try model.save(to: initialWeightsURL(directory.url)) }
        return directory
    }
}
