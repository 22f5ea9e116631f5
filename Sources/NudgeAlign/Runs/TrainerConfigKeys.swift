// The config-file keys of the post-training trainers, with TRL's names: each bound to its field of
// the trainer's config struct, the default read from the struct (so a key's default and the
// library's cannot disagree), as NudgeRL's ConfigKeys.swift does for CleanRL's names. A command puts
// them under its section (`grpo.beta`, `dpo.learning_rate`) with `prefixed`, and the run built from
// a config file and the one built from code are the same struct.

import NudgeConfig
import NudgeNN
import NudgePolicyGradient

extension GRPOConfig {
    /// The GRPO family's keys (TRL's GRPOConfig/RLOOConfig names).
    public static var configKeys: [ConfigBinding<GRPOConfig>] {
        [
            .int("steps", \.steps, min: 0, help: "Generation batches (each with num_iterations optimizer steps); 1500 for the preset model."),
            .float("learning_rate", \.learningRate, min: 0, help: "AdamW learning rate; 3e-4 for the fresh preset model unless set."),
            .custom("advantage", field: { p, c in
                let name = switch c.advantage {
                case .grpo: "grpo"
                case .rloo: "rloo"
                case .reinforcePlusPlus(let baseline): baseline ? "reinforce_pp_baseline" : "reinforce_pp"
                }
                return .choice(p + "advantage", ["grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline"], default: name, help: "Advantage estimator.")
            }, write: { p, c, config in
                let scaling = RewardScaling(rawValue: config.string(p + "scale_rewards")) ?? .group
                switch config.string(p + "advantage") {
                case "rloo": c.advantage = .rloo
                case "reinforce_pp": c.advantage = .reinforcePlusPlus(baseline: false)
                case "reinforce_pp_baseline": c.advantage = .reinforcePlusPlus(baseline: true)
                default: c.advantage = .grpo(scaling: scaling)
                }
            }),
            .int("prompts_per_step", \.promptsPerStep, min: 1, help: "Distinct prompts per step; 16 for the preset model."),
            .int("num_generations", \.numGenerations, min: 2, help: "G: completions per prompt."),
            .limit("max_prompt_length", \.maxPromptLength, help: "Keep this many prompt tokens (the end of the prompt)"),
            .int("max_completion_length", \.maxCompletionLength, min: 1, help: "New tokens per completion; 6 for the built-in task unless set."),
            .positive("temperature", \.temperature, help: "Sampling temperature (> 0: training divides the logits by it)."),
            .positive("top_p", \.topP, max: 1, help: "Nucleus sampling (1: off)."),
            .int("top_k", \.topK, min: 0, help: "Top-k sampling (0: off)."),
            .float("beta", \.beta, min: 0, help: "β of the KL leash (0: no reference model)."),
            .choice("ref_model_dtype", \.refModelDtype, help: "The frozen copy of the initial policy used as the reference: float32, or bf16 (its attention and MLP weights in half the bytes, products on bf16 kernels)."),
            .choice("rollout_dtype", \.rolloutDtype, help: "The weights that sample the completions: float32, or bf16 copies made each step (half the bytes read per token; the tokens are then scored with the Float32 policy, as TRL does with bf16 vLLM rollouts)."),
            .bf16(\.bf16),
            .double("gamma", \.gamma, min: 0, max: 1, help: "γ of REINFORCE++'s token returns (advantage=reinforce_pp; the baseline variant uses 1, as OpenRLHF)."),
            .bool("use_bias_correction_kl", \.klBiasCorrection, help: "Multiply the k3 KL term by the importance ratio (TRL's option, off by default)."),
            .float("epsilon", \.epsilon, min: 0, help: "Clip range ε (low side)."),
            .optionalFloat("epsilon_high", \.epsilonHigh, help: "Clip-higher ε_high (off: same as epsilon)"),
            .custom("scale_rewards", field: { p, c in
                let scaling = if case .grpo(let s) = c.advantage { s } else { RewardScaling.group }
                return .choice(p + "scale_rewards", RewardScaling.allCases.map(\.rawValue), default: scaling.rawValue,
                               help: "GRPO: divide by the group's or batch's std, or not.")
            }, write: { _, _, _ in }),  // read with `advantage`, whose value it parameterizes
            .choice("loss_type", \.lossType, help: "Token-loss aggregation."),
            .int("num_iterations", \.numIterations, min: 1, help: "μ: optimizer steps per generation batch."),
            .choice("importance_sampling_level", \.importanceSampling,
                    help: "sequence: GSPO (mean log-ratio); sequence_sum: TRL's RLOO (summed log-ratio, one clip per sequence, mean over sequences; loss_type unused)."),
            .bool("mask_truncated_completions", \.maskTruncatedCompletions, help: "Exclude completions cut at max length from the loss."),
            .bool("dynamic_sampling", \.dynamicSampling, help: "DAPO: drop all-equal groups and sample more prompts."),
            .int("max_sampling_rounds", \.maxSamplingRounds, min: 1, help: "Dynamic sampling: at most this many sampling rounds per step."),
            .choice("reward_mode", \.rewardMode,
                    help: "outcome: advantages from reward_funcs; process: DeepSeekMath's process supervision from process_reward_model's per-step scores (advantage=grpo); mixed: the outcome advantage plus process_reward_weight × the process one (PRIME's sum)."),
            .text("process_reward_model", \.processRewardModel,
                  help: "reward_mode=process or mixed: a PRM (prm.safetensors or the run directory of nudge prm, trained from this model's architecture), or gold (the carries task's step checker)."),
            .double("process_reward_weight", \.processRewardWeight, min: 0, help: "reward_mode=mixed: weight w of the process advantage in Â = Â_outcome + w·Â_process."),
            .clipNorm("max_grad_norm", \.maxGradNorm, help: "Clip the gradient norm."),
            .float("weight_decay", \.weightDecay, min: 0, help: "AdamW weight decay."),
            .gradientCheckpointing(\.gradientCheckpointing),
            .optim(\.optim),
        ]
    }
}

extension PPORLHFConfig {
    /// PPO-RLHF's keys (TRL's PPOConfig names where it has them).
    public static var configKeys: [ConfigBinding<PPORLHFConfig>] {
        [
            .int("steps", \.steps, min: 0, help: "Rollout batches (each followed by ppo_epochs epochs); 600 for the fresh preset model unless set."),
            .float("learning_rate", \.learningRate, min: 0, help: "AdamW learning rate; 1e-4 for the fresh preset model unless set."),
            .int("batch_size", \.batchSize, min: 1, help: "Prompts (one completion each) per rollout batch; 64 for the fresh preset model unless set."),
            .int("mini_batches", \.miniBatches, min: 1, help: "Mini-batches per PPO epoch; 4 for the fresh preset model unless set."),
            .int("ppo_epochs", \.ppoEpochs, min: 1, help: "PPO epochs per rollout batch."),
            .limit("max_prompt_length", \.maxPromptLength, help: "Keep this many prompt tokens (the end of the prompt)"),
            .int("max_completion_length", \.maxCompletionLength, min: 1, help: "New tokens per completion; 6 for the built-in task unless set."),
            .positive("temperature", \.temperature, help: "Sampling temperature (> 0: training divides the logits by it)."),
            .double("beta", \.klCoefficient, min: 0, help: "β: the KL coefficient (initial, when adaptive); 0.1 for the fresh preset model unless set."),
            .choice("ref_model_dtype", \.refModelDtype, help: "The frozen copy of the initial policy used as the reference: float32, or bf16 (its attention and MLP weights in half the bytes, products on bf16 kernels)."),
            .choice("rollout_dtype", \.rolloutDtype, help: "The weights that sample the completions: float32, or bf16 copies made each step (half the bytes read per token; the tokens are then scored with the Float32 policy, as TRL does with bf16 vLLM rollouts)."),
            .bf16(\.bf16),
            .choice("kl_estimator", \.klEstimator, help: "Per-token KL estimator."),
            .choice("kl_placement", \.klPlacement, help: "KL penalty in the token rewards or in the loss."),
            .custom("target_kl", field: { p, c in
                .double(p + "target_kl", c.adaptiveKL?.target ?? 0, min: 0, help: "Adaptive KL controller target (0: fixed β).")
            }, write: { p, c, config in
                let target = config.double(p + "target_kl")
                c.adaptiveKL = target > 0 ? AdaptiveKLController(target: target, horizon: config.double(p + "kl_horizon")) : nil
            }),
            .custom("kl_horizon", field: { p, c in
                .double(p + "kl_horizon", c.adaptiveKL?.horizon ?? AdaptiveKLController().horizon, min: 1, help: "Adaptive KL controller horizon.")
            }, write: { _, _, _ in }),  // read with `target_kl`
            .float("cliprange", \.clipRange, min: 0, help: "Policy clip range."),
            .float("cliprange_value", \.valueClipRange, min: 0, help: "Value clip range."),
            .float("vf_coef", \.valueCoefficient, min: 0, help: "Value-loss weight."),
            .float("entropy_coef", \.entropyCoefficient, min: 0, help: "Entropy bonus weight."),
            .float("gamma", \.gamma, min: 0, max: 1, help: "γ over tokens."),
            .float("lam", \.lambda, min: 0, max: 1, help: "GAE λ."),
            .bool("whiten_rewards", \.whitenRewards, help: "Whiten token rewards (masked statistics)."),
            .choice("score_position", \.scorePosition,
                    help: "Where the score joins the token rewards: the last real token, or one past it as TRL's PPOTrainer (its value then trained on the score)."),
            .optionalDouble("missing_eos_penalty", \.missingEOSPenalty,
                            help: "Subtracted from the score of completions without EOS (TRL's default: none); 1 for the fresh preset model unless set"),
            .text("process_reward_model", \.processRewardModel,
                  help: "Dense rewards: a PRM (prm.safetensors or the run directory of nudge prm) or gold (the carries task's step checker), each step's score added at its last token; empty: none."),
            .double("process_reward_coef", \.processRewardCoefficient, min: 0, help: "Weight of the per-step scores in the token rewards."),
            .clipNorm("max_grad_norm", \.maxGradNorm, help: "Clip the gradient norm."),
            .gradientCheckpointing(\.gradientCheckpointing),
            .optim(\.optim),
        ]
    }
}

extension OfflineTrainingConfig {
    /// The optimization keys every offline trainer has; `presetLearningRate` is the fresh preset
    /// model's learning rate, said in the help.
    public static func trainingKeys(presetLearningRate: String) -> [ConfigBinding<Self>] {
        [
            .float("learning_rate", \.learningRate, min: 0, help: "AdamW learning rate; \(presetLearningRate) for the fresh preset model unless set."),
            .int("epochs", \.epochs, min: 1, help: "Passes over the data."),
            .int("batch_size", \.batchSize, min: 1, help: "Rows per batch."),
            .limit("max_length", \.maxLength, help: "Truncate sequences to this many tokens"),
            .clipNorm("max_grad_norm", \.maxGradNorm, help: "Clip the gradient norm to this."),
            .gradientCheckpointing(\.gradientCheckpointing),
            .bf16(\.bf16),
            .optim(\.optim),
            .choice("lr_scheduler_type", \.lrSchedulerType,
                    help: "The learning rate over the optimizer steps (transformers' schedulers: linear decays to 0 at the last step, cosine, constant, constant_with_warmup). transformers defaults to linear; here only prm does, the others keep constant."),
            .double("warmup_steps", \.warmupSteps, min: 0, help: "Linear warmup to learning_rate over this many optimizer steps (below 1: this fraction of them)."),
        ]
    }
}

extension ConfigBinding {
    /// TRL's `gradient_checkpointing` (every trainer's TrainingArguments), declared once for all trainers.
    static func gradientCheckpointing(_ path: WritableKeyPath<Root, Bool>) -> Self {
        .bool("gradient_checkpointing", path,
              help: "Activation checkpointing: keep only each decoder block's input in the forward pass and recompute the block in backward (less memory, about a third more compute; same gradients).")
    }

    /// TRL's `bf16` (every trainer's TrainingArguments), declared once for all trainers.
    static func bf16(_ path: WritableKeyPath<Root, Bool>) -> Self {
        .bool("bf16", path,
              help: "Mixed precision: training's matrix products (forward, backward, attention, head) on bf16 operands with Float32 sums, about twice as fast; weights and gradients stay Float32 (the optimizer state as `optim` says). Needs AVX512_BF16 (elsewhere the products stay Float32).")
    }

    /// HF TrainingArguments' `optim` (every trainer that builds AdamW), declared once for all trainers.
    static func optim(_ path: WritableKeyPath<Root, OptimizerName>) -> Self {
        .choice("optim", path,
                help: "The optimizer: adamw_torch (AdamW with Float32 moments) or adamw_8bit (bitsandbytes' blockwise 8-bit AdamW: m and v in one byte per value plus a Float32 scale per 256, about a quarter of the memory; tensors under 4096 values keep Float32 moments).")
    }
}

extension SFTConfig {
    /// SFT's keys (TRL's SFTConfig names).
    public static var configKeys: [ConfigBinding<SFTConfig>] {
        trainingKeys(presetLearningRate: "3e-3") + [
            .int("gradient_accumulation_steps", \.gradientAccumulationSteps, min: 1, help: "Batches per optimizer step."),
            .bool("packing", \.packing, help: "Pack rows into sequences of max_length tokens (each example attends only to itself)."),
            .bool("completion_only_loss", \.completionOnlyLoss, help: "Train on completion tokens only."),
            .float("weight_decay", \.weightDecay, min: 0, help: "AdamW weight decay."),
            .int("eval_steps", \.evalSteps, min: 0, help: "Evaluate every this many steps (0: only after the last)."),
        ]
    }
}

extension RewardConfig {
    /// The reward model's keys (TRL's RewardConfig names).
    public static var configKeys: [ConfigBinding<RewardConfig>] {
        trainingKeys(presetLearningRate: "1e-3") + [
            .float("center_rewards_coefficient", \.centeringCoefficient, min: 0, help: "Weight of the reward-centering penalty (as in TRL)."),
        ]
    }
}

extension PRMConfig {
    /// The process reward model's keys (TRL's PRMConfig names).
    public static var configKeys: [ConfigBinding<PRMConfig>] {
        trainingKeys(presetLearningRate: "3e-3") + [
            .limit("max_completion_length", \.maxCompletionLength, help: "Truncate the steps (with separators) to this many tokens"),
            .text("step_separator", \.stepSeparator, help: "Appended to every step; the head is read at its last token."),
            .bool("train_on_last_step_only", \.trainOnLastStepOnly, help: "Train on the last step's label only (held-out rows keep every step)."),
            .float("weight_decay", \.weightDecay, min: 0, help: "AdamW weight decay."),
            .int("eval_steps", \.evalSteps, min: 0, help: "Evaluate on the held-out rows every this many steps (0: only after the last)."),
            .float("lm_loss_weight", \.lmLossWeight, min: 0, help: "Not in TRL: weight of a language-modeling loss on the correct steps' tokens beside the step loss (0: off)."),
        ]
    }
}

extension ConfigBinding {
    /// A String property.
    static func text(_ key: String, _ path: WritableKeyPath<Root, String>, help: String) -> Self {
        .custom(key, field: { p, c in .string(p + key, c[keyPath: path], help: help) }, write: { p, c, config in c[keyPath: path] = config.string(p + key) })
    }
}

extension DPOConfig {
    /// DPO's keys besides the loss (TRL's DPOConfig names); the loss and its parameters are read
    /// together by `DPORun.lossKind`, since one enumeration case carries them.
    public static var configKeys: [ConfigBinding<DPOConfig>] {
        trainingKeys(presetLearningRate: "2e-3") + [
            .float("beta", \.beta, min: 0, help: "β: strength of the KL leash to the reference."),
            .limit("max_prompt_length", \.maxPromptLength, help: "Truncate prompts to this many tokens"),
        ]
    }
}

extension KTOConfig {
    /// KTO's keys (TRL's KTOConfig names).
    public static var configKeys: [ConfigBinding<KTOConfig>] {
        trainingKeys(presetLearningRate: "1e-3") + [
            .float("beta", \.beta, min: 0, help: "β: strength of the KL leash to the reference."),
            .float("desirable_weight", \.desirableWeight, min: 0, help: "λ_D: weight of desirable completions' losses."),
            .float("undesirable_weight", \.undesirableWeight, min: 0, help: "λ_U: weight of undesirable completions' losses."),
            .limit("max_prompt_length", \.maxPromptLength, help: "Truncate prompts to this many tokens"),
        ]
    }
}

extension OnlineDPOConfig {
    /// Online DPO's keys besides the loss (TRL's OnlineDPOConfig names); the loss (`loss_type`) and
    /// its parameters are the DPO family's keys, read by `DPORun.lossKind`.
    public static var configKeys: [ConfigBinding<OnlineDPOConfig>] {
        [
            .int("steps", \.steps, min: 0, help: "Optimizer steps (TRL's max_steps); 1500 for the fresh preset model unless set."),
            .float("learning_rate", \.learningRate, min: 0, help: "AdamW learning rate; 1e-3 for the fresh preset model unless set."),
            .float("beta", \.beta, min: 0, help: "β: strength of the KL leash to the reference."),
            .choice("ref_model_dtype", \.refModelDtype, help: "The frozen copy of the initial policy used as the reference: float32, or bf16 (its attention and MLP weights in half the bytes, products on bf16 kernels)."),
            .choice("rollout_dtype", \.rolloutDtype, help: "The weights that sample the completions: float32, or bf16 copies made each step (half the bytes read per token; the tokens are then scored with the Float32 policy, as TRL does with bf16 vLLM rollouts)."),
            .bf16(\.bf16),
            .int("batch_size", \.batchSize, min: 1, help: "Prompts per step (TRL's per_device_train_batch_size); 16 for the fresh preset model unless set."),
            .int("num_generations", \.numGenerations, min: 2, help: "k: completions sampled per prompt; the judge's best and worst form the pair (TRL: 2); 8 for the fresh preset model unless set."),
            .int("max_new_tokens", \.maxNewTokens, min: 1, help: "New tokens per completion; 6 for the built-in task unless set."),
            .limit("max_prompt_length", \.maxPromptLength, help: "Keep this many prompt tokens (the end of the prompt)"),
            .positive("temperature", \.temperature, help: "Sampling temperature; 1 for the fresh preset model unless set."),
            .positive("top_p", \.topP, max: 1, help: "Nucleus sampling (1: off)."),
            .int("top_k", \.topK, min: 0, help: "Top-k sampling (0: off)."),
            .optionalDouble("missing_eos_penalty", \.missingEOSPenalty,
                            help: "Subtracted from a pointwise judge's score of a completion without EOS (TRL's default: none)"),
            .int("iterative_rounds", \.iterativeRounds, min: 0,
                 help: "0: online (fresh samples every step); R > 0: iterative DPO, R rounds of sample → label → DPO steps on that frozen set."),
            .int("round_epochs", \.roundEpochs, min: 1, help: "Iterative DPO: passes over each round's pairs."),
            .clipNorm("max_grad_norm", \.maxGradNorm, help: "Clip the gradient norm."),
            .float("weight_decay", \.weightDecay, min: 0, help: "AdamW weight decay."),
            .optim(\.optim),
        ]
    }
}

extension RFTConfig {
    /// Rejection-sampling fine-tuning's keys (sampling as OnlineDPOConfig, SFT as SFTConfig).
    public static var configKeys: [ConfigBinding<RFTConfig>] {
        [
            .int("steps", \.steps, min: 0, help: "Rounds of sample → keep the best → SFT; 40 for the fresh preset model unless set."),
            .int("prompts_per_step", \.promptsPerStep, min: 1, help: "Prompts sampled per round."),
            .int("num_generations", \.numGenerations, min: 1, help: "n: completions sampled per prompt; the best is kept."),
            .int("max_new_tokens", \.maxNewTokens, min: 1, help: "New tokens per completion; 6 for the built-in task unless set."),
            .limit("max_prompt_length", \.maxPromptLength, help: "Keep this many prompt tokens (the end of the prompt)"),
            .positive("temperature", \.temperature, help: "Sampling temperature."),
            .positive("top_p", \.topP, max: 1, help: "Nucleus sampling (1: off)."),
            .int("top_k", \.topK, min: 0, help: "Top-k sampling (0: off)."),
            .double("threshold", \.threshold, help: "Keep a prompt's best completion only when the judge scores it at least this (1 with the gold reward: correct answers only)."),
            .float("learning_rate", \.sft.learningRate, min: 0, help: "SFT's AdamW learning rate; 1e-3 for the fresh preset model unless set."),
            .int("epochs", \.sft.epochs, min: 1, help: "SFT epochs over each round's kept completions."),
            .int("batch_size", \.sft.batchSize, min: 1, help: "SFT rows per batch."),
            .clipNorm("max_grad_norm", \.sft.maxGradNorm, help: "Clip SFT's gradient norm."),
            .optim(\.sft.optim),
        ]
    }
}
