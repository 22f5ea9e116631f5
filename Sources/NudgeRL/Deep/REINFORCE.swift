// Monte-Carlo policy gradient (Williams 1992; Sutton & Barto §13.3–13.4) with and without a learned
// state-value baseline, and one-step actor-critic (Sutton & Barto §13.5) whose advantage is the
// TD error δ = r + γ·V(s')·(1 − terminated) − V(s). Both use 64-64 tanh networks and Adam. Also
// the seed's exercise: the spread of the per-episode policy-gradient estimates of REINFORCE, of
// REINFORCE with a baseline and of actor-critic, measured at the same policy.
//
// As is common, the γᵗ factor of the episodic policy-gradient theorem is omitted.

import NudgePolicyGradient
import Foundation
import NudgeNN
import NudgeTensor

/// Hyperparameters for REINFORCE and one-step actor-critic.
public struct PolicyGradientConfig: Sendable {
    public var totalTimesteps = 200_000
    public var learningRate: Float = 1e-3
    public var valueLearningRate: Float = 1e-3
    public var gamma: Float = 0.99
    /// REINFORCE: subtract a learned V(s) from the return.
    public var baseline = true
    public var hiddenSizes = [64, 64]
    public var seed: UInt64 = 1

    public init() {}
}

/// One episode's transitions.
struct Episode {
    var observations: [[Float]] = []
    var actions: [Int] = []
    var rewards: [Float] = []
    var terminated = false
    var finalObservation: [Float] = []
}

/// Plays one episode with the agent's stochastic policy.
func playEpisode(_ env: AnyEnvironment, _ agent: ActorCriticAgent, _ rng: inout RandomGenerator, seed: UInt64?) throws -> Episode {
    var e = Episode()
    var (obs, _) = env.reset(seed: seed, options: nil)
    while true {
        let a = withoutGradients { CategoricalDistribution(logits: agent.actor(agent.prepare([obs]))).sample(using: &rng)[0] }
        let s = try env.step(.discrete(a))
        e.observations.append(obs)
        e.actions.append(a)
        e.rewards.append(Float(s.reward))
        if s.done {
            e.terminated = s.terminated
            e.finalObservation = s.observation
            return e
        }
        obs = s.observation
    }
}

/// REINFORCE and one-step actor-critic.
public enum PolicyGradient {
    /// What both start from: the training environment, the agent, and the policy's and the value's Adam.
    static func makeRun(_ environmentID: String, _ c: PolicyGradientConfig) throws -> (AnyEnvironment, ActorCriticAgent, Adam, Adam) {
        let env = try makeTrainingEnvironment(environmentID)
        let agent = ActorCriticAgent(observationSize: env.observationSpace.flatCount, actionSpace: env.actionSpace, hidden: c.hiddenSizes, seed: c.seed)
        return (env, agent, Adam(learningRate: c.learningRate), Adam(learningRate: c.valueLearningRate))
    }

    /// REINFORCE: one update per episode on −Σ log π(aₜ|sₜ)·(Gₜ − b(sₜ)) / T. With
    /// `checkpointing`, the run is saved between episodes (past every `every` steps, when stopped
    /// and at the end) and, when resuming, restored first.
    public static func reinforce(environmentID: String, config c: PolicyGradientConfig, onMetrics: MetricsCallback? = nil,
                                 shouldStop: () -> Bool = { false }, checkpointing: RLCheckpointing? = nil)
        throws -> (agent: ActorCriticAgent, result: TrainingResult) {
        let (env, agent, policyOptimizer, valueOptimizer) = try makeRun(environmentID, c)
        var rng = RandomGenerator(seed: c.seed).derive(stream: 50)
        var (globalStep, episodes, start, _) = try RLCheckpointing.beginSingleEnvironmentRun(
            checkpointing, algorithm: "reinforce", env: env, agent: agent, optimizer: policyOptimizer, generator: &rng) {
            try valueOptimizer.load(state: $0.tensors("value_optimizer"))
        }
        var savedStep = globalStep
        func checkpoint() throws {
            savedStep = globalStep
            // Between episodes: the next episode resets the restored environment, so no observation.
            try checkpointing?.save(algorithm: "reinforce", iteration: episodes.count, globalStep: globalStep, start: start, generator: rng,
                                    observation: nil, env: env, episodes: episodes, agent: agent, optimizer: policyOptimizer,
                                    tensors: ["value_optimizer": valueOptimizer.state()])
        }
        while globalStep < c.totalTimesteps && !shouldStop() {
            let e = try playEpisode(env, agent, &rng, seed: episodes.isEmpty ? c.seed : nil)
            globalStep += e.rewards.count
            // A truncated episode bootstraps its tail from V(final observation).
            let tail: Float = e.terminated ? 0 : withoutGradients { agent.value(agent.prepare([e.finalObservation])).item() }
            let returns = discountedReturns(e.rewards, gamma: c.gamma, bootstrap: c.baseline ? tail : 0)
            let x = agent.prepare(e.observations)
            let baseline = c.baseline ? withoutGradients { agent.value(x).scalars } : Array(repeating: 0, count: returns.count)
            let advantages = Tensor(zip(returns, baseline).map { $0 - $1 })
            let (_, pg) = valueAndGrad(agent.actor) { actor in
                -(CategoricalDistribution(logits: actor(x)).logProb(e.actions) * advantages).mean()
            }
            policyOptimizer.update(agent.actor, gradients: pg)
            if c.baseline {
                let target = Tensor(returns)
                let (_, vg) = valueAndGrad(agent.critic) { critic in mseLoss(critic(x).reshaped([-1]), target) }
                valueOptimizer.update(agent.critic, gradients: vg)
            }
            recordEpisode(Double(e.rewards.reduce(0, +)), length: e.rewards.count, globalStep: globalStep, into: &episodes, onMetrics: onMetrics)
            try checkpointing?.boundary(agent, step: globalStep, savedStep: savedStep, last: globalStep >= c.totalTimesteps, onMetrics: onMetrics,
                                          checkpoint: checkpoint)
        }
        if globalStep != savedStep { try checkpoint() }
        return (agent, TrainingResult(episodes: episodes, globalSteps: globalStep, start: start))
    }

    /// One-step actor-critic: after every step, the actor follows −δ·log π(a|s) and the critic δ².
    /// With `checkpointing`, the run is saved between episodes (past every `every` steps and when
    /// stopped) and at the end and, when resuming, restored first.
    public static func actorCritic(environmentID: String, config c: PolicyGradientConfig, onMetrics: MetricsCallback? = nil,
                                   shouldStop: () -> Bool = { false }, checkpointing: RLCheckpointing? = nil)
        throws -> (agent: ActorCriticAgent, result: TrainingResult) {
        let (env, agent, policyOptimizer, valueOptimizer) = try makeRun(environmentID, c)
        var rng = RandomGenerator(seed: c.seed).derive(stream: 51)
        var (steps, episodes, start, restored) = try RLCheckpointing.beginSingleEnvironmentRun(
            checkpointing, algorithm: "actor-critic", env: env, agent: agent, optimizer: policyOptimizer, generator: &rng) {
            try valueOptimizer.load(state: $0.tensors("value_optimizer"))
        }
        var episodeLength = try restored?.counter("episode_length") ?? 0
        var obs = try restored?.observation() ?? env.reset(seed: c.seed, options: nil).observation
        var savedStep = steps
        func checkpoint() throws {
            savedStep = steps
            try checkpointing?.save(algorithm: "actor-critic", iteration: steps, globalStep: steps, start: start, generator: rng,
                                    observation: obs, env: env, episodes: episodes, agent: agent, optimizer: policyOptimizer,
                                    counters: ["episode_length": episodeLength], tensors: ["value_optimizer": valueOptimizer.state()])
        }
        for globalStep in stride(from: steps + 1, through: c.totalTimesteps, by: 1) {
            // Stop requests are honoured between episodes, as REINFORCE does.
            if episodeLength == 0 && shouldStop() { break }
            steps = globalStep
            let x = agent.prepare([obs])
            let a = withoutGradients { CategoricalDistribution(logits: agent.actor(x)).sample(using: &rng)[0] }
            let s = try env.step(.discrete(a))
            episodeLength += 1
            let next: Float = s.terminated ? 0 : withoutGradients { agent.value(agent.prepare([s.observation])).item() }
            let v = withoutGradients { agent.value(x).item() }
            let delta = Float(s.reward) + c.gamma * next - v
            let (_, pg) = valueAndGrad(agent.actor) { actor in
                -CategoricalDistribution(logits: actor(x)).logProb([a]).sum() * delta
            }
            policyOptimizer.update(agent.actor, gradients: pg)
            let target = Tensor([Float(s.reward) + c.gamma * next])
            let (_, vg) = valueAndGrad(agent.critic) { critic in mseLoss(critic(x).reshaped([-1]), target) }
            valueOptimizer.update(agent.critic, gradients: vg)
            if s.done {
                // The episode's return as the environment's statistics wrapper summed it (the
                // raw rewards), so a run resumed mid-episode reports it whole.
                if case .double(let r)? = s.info["episode_return"] {
                    recordEpisode(r, length: episodeLength, globalStep: globalStep, into: &episodes, onMetrics: onMetrics)
                }
                episodeLength = 0
                obs = env.reset(seed: nil, options: nil).observation
                try checkpointing?.boundary(agent, step: globalStep, savedStep: savedStep, last: globalStep == c.totalTimesteps, onMetrics: onMetrics,
                                              checkpoint: checkpoint)
            } else {
                obs = s.observation
            }
        }
        // A budget that ends mid-episode still gets its final evaluation.
        try checkpointing?.evaluateIfDue(agent, step: steps, last: steps == c.totalTimesteps, onMetrics: onMetrics)
        if steps != savedStep { try checkpoint() }
        return (agent, TrainingResult(episodes: episodes, globalSteps: steps, start: start))
    }

    /// The spread of per-episode policy-gradient estimates at one fixed policy and critic:
    /// g = Σₜ ∇log π(aₜ|sₜ)·Ψₜ with Ψ = Gₜ (REINFORCE), Gₜ − V(sₜ) (with baseline) or δₜ
    /// (actor-critic). Returns, per estimator, the mean and variance of ‖g‖ over `episodes`.
    public static func gradientNormStatistics(agent: ActorCriticAgent, environmentID: String, episodes: Int, gamma: Float,
                                              seed: UInt64) throws -> [(name: String, mean: Double, variance: Double)] {
        let env = try makeTrainingEnvironment(environmentID)
        var rng = RandomGenerator(seed: seed)
        var norms: [[Double]] = [[], [], []]
        for k in 0..<episodes {
            let e = try playEpisode(env, agent, &rng, seed: k == 0 ? seed : nil)
            let x = agent.prepare(e.observations)
            let values = withoutGradients { agent.value(x).scalars }
            let tail: Float = e.terminated ? 0 : withoutGradients { agent.value(agent.prepare([e.finalObservation])).item() }
            let returns = discountedReturns(e.rewards, gamma: gamma)
            let deltas = e.rewards.indices.map { t -> Float in
                let next = t + 1 < e.rewards.count ? values[t + 1] : tail
                return e.rewards[t] + gamma * next - values[t]
            }
            let weights = [returns, zip(returns, values).map { $0 - $1 }, deltas]
            for (i, w) in weights.enumerated() {
                let psi = Tensor(w)
                let (_, g) = valueAndGrad(agent.actor) { actor in
                    -(CategoricalDistribution(logits: actor(x)).logProb(e.actions) * psi).sum()
                }
                norms[i].append(Double(g.globalNorm()))
            }
        }
        return zip(["REINFORCE", "REINFORCE with baseline", "one-step actor-critic"], norms).map { name, v in
            let (m, variance) = meanAndVariance(v)
            return (name, m, variance)
        }
    }
}

extension PolicyGradient {
    /// The seed's exercise on CartPole: train one-step actor-critic for `warmupSteps` (so the
    /// critic means something), then measure all three estimators' gradient norms at that policy.
    public static func varianceStudy(environmentID: String = "CartPole-v1", warmupSteps: Int = 20_000, episodes: Int = 200,
                                     seed: UInt64 = 1) throws -> [(name: String, mean: Double, variance: Double)] {
        var config = PolicyGradientConfig()
        config.totalTimesteps = warmupSteps
        config.seed = seed
        let (agent, _) = try actorCritic(environmentID: environmentID, config: config)
        return try gradientNormStatistics(agent: agent, environmentID: environmentID, episodes: episodes, gamma: config.gamma, seed: seed &+ 1)
    }

    /// The variance study's statistics as a table: a heading, then per estimator the mean
    /// per-episode gradient norm, its variance and std/mean.
    public static func varianceTable(_ stats: [(name: String, mean: Double, variance: Double)], episodes: Int, warmupSteps: Int) -> String {
        (["Per-episode policy-gradient norm at one policy (\(episodes) episodes, after \(warmupSteps) actor-critic steps):"]
         + stats.map { s in
             String(format: "  %-26@ mean %8.3f  variance %10.3f  std/mean %.3f", s.name as NSString, s.mean, s.variance,
                    s.variance.squareRoot() / s.mean)
         }).joined(separator: "\n")
    }
}
