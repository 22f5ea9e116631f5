// The config-file keys of the deep-RL algorithms: CleanRL's argument names (snake_case), each bound
// to its field of the algorithm's config, so `nudge rl train --config F --set k=v` and the run's
// config.toml speak the same language as CleanRL's command lines.

import NudgeConfig

extension PPOConfig {
    /// PPO's config keys.
    public static var configKeys: [ConfigBinding<PPOConfig>] {
        [
            .int("total_timesteps", \.totalTimesteps, min: 1, help: "Environment steps."),
            .float("learning_rate", \.learningRate, min: 0, help: "Adam learning rate."),
            .int("num_envs", \.numEnvs, min: 1, help: "Parallel environments."),
            .int("num_steps", \.numSteps, min: 1, help: "Steps per environment per rollout."),
            .bool("anneal_lr", \.annealLearningRate, help: "Anneal the learning rate linearly to 0."),
            .float("gamma", \.gamma, min: 0, max: 1, help: "Discount γ."),
            .float("gae_lambda", \.gaeLambda, min: 0, max: 1, help: "λ of GAE."),
            .int("num_minibatches", \.numMinibatches, min: 1, help: "Minibatches per epoch."),
            .int("update_epochs", \.updateEpochs, min: 1, help: "Epochs per rollout."),
            .bool("norm_adv", \.normalizeAdvantages, help: "Normalize advantages per minibatch."),
            .float("clip_coef", \.clipCoefficient, min: 0, help: "ε of the clipped surrogate."),
            .bool("clip_vloss", \.clipValueLoss, help: "Clip the value loss."),
            .float("ent_coef", \.entropyCoefficient, help: "Entropy bonus coefficient."),
            .float("vf_coef", \.valueCoefficient, min: 0, help: "Value loss coefficient."),
            .float("max_grad_norm", \.maxGradNorm, min: 0, help: "Gradient norm clip."),
            .optionalFloat("target_kl", \.targetKL, help: "Stop an update's epochs when the approximate KL exceeds this"),
            .bool("bootstrap_truncation", \.bootstrapTruncation, help: "Bootstrap truncated episodes from V(final observation)."),
            .bool("normalize_observations", \.normalizeObservations, help: "Normalize observations (running statistics, clip ±10)."),
            .bool("normalize_rewards", \.normalizeRewards, help: "Normalize rewards by the return's running std (clip ±10)."),
            .ints("hidden_sizes", \.hiddenSizes, help: "Hidden layer sizes of actor and critic."),
            .seed("seed", \.seed, help: "Seed of networks, environments and sampling."),
        ]
    }
}

extension DQNConfig {
    /// DQN's config keys.
    public static var configKeys: [ConfigBinding<DQNConfig>] {
        [
            .int("total_timesteps", \.totalTimesteps, min: 1, help: "Environment steps."),
            .float("learning_rate", \.learningRate, min: 0, help: "Adam learning rate."),
            .int("buffer_size", \.bufferSize, min: 1, help: "Replay buffer capacity."),
            .float("gamma", \.gamma, min: 0, max: 1, help: "Discount γ."),
            .float("tau", \.tau, min: 0, max: 1, help: "Target network update rate (1: hard copy)."),
            .int("target_network_frequency", \.targetNetworkFrequency, min: 1, help: "Steps between target updates."),
            .int("batch_size", \.batchSize, min: 1, help: "Replay batch size."),
            .double("start_e", \.startEpsilon, min: 0, max: 1, help: "Initial ε."),
            .double("end_e", \.endEpsilon, min: 0, max: 1, help: "Final ε."),
            .double("exploration_fraction", \.explorationFraction, min: 0, max: 1, help: "Fraction of the run over which ε decays."),
            .int("learning_starts", \.learningStarts, min: 0, help: "Steps before learning starts."),
            .int("train_frequency", \.trainFrequency, min: 1, help: "Steps between updates."),
            .ints("hidden_sizes", \.hiddenSizes, help: "Hidden layer sizes of the Q-network."),
            .seed("seed", \.seed, help: "Seed of networks, environment and exploration."),
        ]
    }
}

extension A2CConfig {
    /// A2C's config keys.
    public static var configKeys: [ConfigBinding<A2CConfig>] {
        [
            .int("total_timesteps", \.totalTimesteps, min: 1, help: "Environment steps."),
            .float("learning_rate", \.learningRate, min: 0, help: "RMSprop learning rate."),
            .int("num_envs", \.numEnvs, min: 1, help: "Parallel environments."),
            .int("num_steps", \.numSteps, min: 1, help: "Steps per environment per update."),
            .float("gamma", \.gamma, min: 0, max: 1, help: "Discount γ."),
            .float("gae_lambda", \.gaeLambda, min: 0, max: 1, help: "λ of GAE (1: n-step returns)."),
            .float("ent_coef", \.entropyCoefficient, help: "Entropy bonus coefficient."),
            .float("vf_coef", \.valueCoefficient, min: 0, help: "Value loss coefficient."),
            .float("max_grad_norm", \.maxGradNorm, min: 0, help: "Gradient norm clip."),
            .float("rms_prop_alpha", \.rmspropAlpha, min: 0, max: 1, help: "RMSprop smoothing α."),
            .float("rms_prop_eps", \.rmspropEpsilon, min: 0, help: "RMSprop ε."),
            .bool("norm_adv", \.normalizeAdvantages, help: "Normalize advantages."),
            .ints("hidden_sizes", \.hiddenSizes, help: "Hidden layer sizes of actor and critic."),
            .seed("seed", \.seed, help: "Seed of networks, environments and sampling."),
        ]
    }
}

extension SACConfig {
    /// SAC's config keys.
    public static var configKeys: [ConfigBinding<SACConfig>] {
        [
            .int("total_timesteps", \.totalTimesteps, min: 1, help: "Environment steps."),
            .int("buffer_size", \.bufferSize, min: 1, help: "Replay buffer capacity."),
            .float("gamma", \.gamma, min: 0, max: 1, help: "Discount γ."),
            .float("tau", \.tau, min: 0, max: 1, help: "Target smoothing coefficient τ."),
            .int("batch_size", \.batchSize, min: 1, help: "Replay batch size."),
            .int("learning_starts", \.learningStarts, min: 0, help: "Steps of random actions before learning."),
            .float("policy_lr", \.policyLearningRate, min: 0, help: "Actor learning rate."),
            .float("q_lr", \.qLearningRate, min: 0, help: "Critic learning rate."),
            .int("policy_frequency", \.policyFrequency, min: 1, help: "Steps between actor updates."),
            .int("target_network_frequency", \.targetNetworkFrequency, min: 1, help: "Steps between target updates."),
            .float("alpha", \.alpha, min: 0, help: "Entropy coefficient α (initial, with autotune)."),
            .bool("autotune", \.autotune, help: "Tune α towards the target entropy."),
            .ints("hidden_sizes", \.hiddenSizes, help: "Hidden layer sizes of actor and critics."),
            .float("log_std_min", \.logStdMin, help: "Lower bound of the actor's log std."),
            .float("log_std_max", \.logStdMax, help: "Upper bound of the actor's log std."),
            .seed("seed", \.seed, help: "Seed of networks, environment and sampling."),
        ]
    }
}

extension PolicyGradientConfig {
    /// REINFORCE's and the one-step actor-critic's config keys.
    public static var configKeys: [ConfigBinding<PolicyGradientConfig>] {
        [
            .int("total_timesteps", \.totalTimesteps, min: 1, help: "Environment steps."),
            .float("learning_rate", \.learningRate, min: 0, help: "Policy learning rate."),
            .float("value_learning_rate", \.valueLearningRate, min: 0, help: "Value (baseline, critic) learning rate."),
            .float("gamma", \.gamma, min: 0, max: 1, help: "Discount γ."),
            .bool("baseline", \.baseline, help: "REINFORCE: subtract a learned V(s) from the return."),
            .ints("hidden_sizes", \.hiddenSizes, help: "Hidden layer sizes."),
            .seed("seed", \.seed, help: "Seed of networks, environment and sampling."),
        ]
    }
}
