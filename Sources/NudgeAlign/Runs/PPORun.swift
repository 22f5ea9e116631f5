// PPO-RLHF runs from a resolved configuration: the keys, the reward model (loaded, or trained on
// gold-labelled pairs of the warm policy's samples and scaled), the value model, the trainer and
// the runner.

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeConfig
import NudgeReport
import NudgeTensor

/// A PPO-RLHF run (`nudge ppo`): policy, frozen reference, reward model and value model, with a KL leash.
public enum PPORun {
    /// The trainer's keys, under `ppo`.
    public static var keys: [ConfigBinding<PPORLHFConfig>] { PPORLHFConfig.configKeys.map { $0.prefixed("ppo") } }

    /// The keys of `nudge ppo`: the run's, the reward and value models', then the trainer's.
    public static let schema = ConfigSchema(OnlineConfig.common(trainer: "ppo", task: "sorting") + OnlineConfig.rewards("ppo", default: []) + [
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
    ] + keys.fields(defaults: PPORLHFConfig()) + AdapterKeys.fields)

    /// Trains with a resolved configuration; `warm` is an already warm-started model (the demo's);
    /// `resume` continues the run in `output` from checkpoints/latest with its saved reward model.
    @discardableResult
    public static func train(config resolved: ResolvedConfig, warm: (any CausalLanguageModel, any Tokenizer)? = nil,
                             resume: Bool = false) throws -> RunOutcome {
        try train(filledIn: withDefaults(resolved), warm: warm, resume: resume)
    }

    /// The configuration with the command's defaults for the built-in task and the preset model
    /// filled in where the user set nothing.
    public static func withDefaults(_ resolved: ResolvedConfig) -> ResolvedConfig {
        var config = resolved
        if config.string("model").isEmpty {
            config.setDefault("ppo.learning_rate", .double(1e-4))
            config.setDefault("ppo.max_completion_length", .int(AlignRun.completionLength(task: config.string("task"))))
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

    /// With `lora.r` > 0 (QLoRA with lora.base = q8_0 or gguf) the policy trains through adapters and
    /// its reference is the same base with them off (no copy); the separate value model, a copy of the
    /// reward model's trunk, gets adapters of its own over its own frozen base with its head fully
    /// trainable (OpenRLHF's critic under LoRA; its head as PEFT's modules_to_save); the frozen reward
    /// model's projections are held in Q8_0 when the base is quantized. Saved models are merged.
    public static func train(filledIn config: ResolvedConfig, warm: (any CausalLanguageModel, any Tokenizer)?, resume: Bool) throws -> RunOutcome {
        try AdapterKeys.validate(config)
        let adapters = AdapterKeys.enabled(config)
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
        var c = keys.apply(config, to: PPORLHFConfig())
        c.seed = run.seed
        guard c.batchSize % c.miniBatches == 0 else { throw RunSetupError("ppo.batch_size (\(c.batchSize)) must be a multiple of ppo.mini_batches (\(c.miniBatches))") }
        // A fresh run's directory, with the weights a resume starts from, before adapters change the
        // policy's keys and quantization drops the reward model's Float32 projections.
        var directory = resume ? nil : try run.directory()
        if let directory {
            if run.usesPreset { try model.save(to: run.initialWeightsURL(directory.url)) }
            try rewardModel.save(to: savedRewardModel)
        }
        // With a quantized lora.base the policy's base is quantized before the value model's Float32
        // copy is made, and that copy's before the reward model's: at most two Float32 models at once.
        if adapters { try AdapterKeys.apply(config, to: model) }
        let value = config.string("ppo.value_model") == "shared"
            ? ScalarHeadModel(trunk: model, seed: run.seed &+ 12) : ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: rewardModel.trunk), seed: run.seed &+ 12)
        if adapters {
            // The head trains fully (a new layer, never frozen); a separate trunk gets adapters of its own, a shared one has the policy's.
            if value.trunk !== model {
                try AdapterKeys.apply(config, to: value.trunk, seed: run.seed &+ 14, weightsFromModelFile: false)
            }
            // The frozen reward model: Q8_0 projections when the adapters' base is quantized (quantized
            // again identically from the saved Float32 weights on resume).
            if config.string("lora.base") != "float32" { quantizeFrozenBase(of: rewardModel.trunk, to: .q8_0) }
        } else {
            value.unfreeze()
        }
        switch config.string("ppo.value_head_init") {
        case "zero": value.score.weight = Tensor.zeros(value.score.weight.shape)
        case "reward_model": value.score.weight = rewardModel.score.weight.copy()
        default: break
        }
        var functions: [(any RewardFunction, Double)] = [(RewardModelReward(model: rewardModel, padTokenID: Collator.padID(for: tokenizer)), 1)]
        let extra = try OnlineConfig.makeRewards(config, "ppo", tokenizer: tokenizer)
        functions += extra.functions.map { ($0.function, $0.weight) }
        let trainer = try PPORLHFTrainer(policy: model, value: value, tokenizer: tokenizer, rows: rows, rewards: WeightedRewards(functions), config: c)
        trainer.processReward = try OnlineConfig.processReward(c.processRewardModel, key: "ppo.process_reward_model", policy: model, tokenizer: tokenizer)
        if run.usesPreset && config.string("data").isEmpty {
            trainer.monitors = [ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }]
        }
        if resume {
            try trainer.restoreCheckpoint(from: run.latestCheckpointURL(output))
            directory = try run.directory(resumingAfter: trainer.step)
        }
        guard let directory else { preconditionFailure("the run directory is made above") }
        var runner = run.runner(directory: directory, model: model, tokenizer: tokenizer, heldOut: heldOut, maxNewTokens: c.maxCompletionLength)
        runner.headline = ["objective/scores", "monitor/gold", "objective/kl"]
        return try runner.run(trainer)
    }
}

/// Scales the reward model so its scores on the policy's samples of `rows` have standard deviation 1.
public func normalizeRewardModel(_ rewardModel: ScalarHeadModel, policy: any CausalLanguageModel, tokenizer: any Tokenizer, rows: [DatasetRow],
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
public func goldLabelledPairs(policy: any CausalLanguageModel, tokenizer: any Tokenizer, config: ResolvedConfig, seed: UInt64) throws -> [DatasetRow] {
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
public func goldLabelledPairs(policy: any CausalLanguageModel, tokenizer: any Tokenizer, task: SyntheticTask, count: Int, maxNewTokens: Int,
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
