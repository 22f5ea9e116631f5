// Advantage actor-critic, synchronous (Mnih et al. 2016's A2C form) with Stable-Baselines3's
// defaults: separate 64-64 tanh actor and critic with orthogonal init, n-step rollouts over
// vector environments (n = 5, 8 environments as rl-zoo's CartPole setting), returns bootstrapped
// with GAE at λ = 1 (the n-step return), loss −A·log π − c_ent·H + c_v·(G − V)², RMSprop
// (α = 0.99, ε = 1e-5), gradient norm clipped at 0.5.

import NudgePolicyGradient
import Foundation
import NudgeNN
import NudgeTensor

/// A2C hyperparameters; defaults are Stable-Baselines3's (with rl-zoo's 8 envs for CartPole).
public struct A2CConfig: Sendable {
    public var totalTimesteps = 500_000
    public var learningRate: Float = 7e-4
    public var numEnvs = 8
    public var numSteps = 5
    public var gamma: Float = 0.99
    public var gaeLambda: Float = 1
    public var entropyCoefficient: Float = 0
    public var valueCoefficient: Float = 0.5
    public var maxGradNorm: Float = 0.5
    public var rmspropAlpha: Float = 0.99
    public var rmspropEpsilon: Float = 1e-5
    public var normalizeAdvantages = false
    public var hiddenSizes = [64, 64]
    public var seed: UInt64 = 1

    public init() {}
}

/// A2C training.
public enum A2C {
    /// Trains an A2C agent; with `checkpointing`, its whole state is saved between updates (every
    /// `every` of them, when stopped and at the end) and, when resuming, restored first.
    public static func train(environmentID: String, config c: A2CConfig, onMetrics: MetricsCallback? = nil,
                             shouldStop: () -> Bool = { false }, checkpointing: RLCheckpointing? = nil)
        throws -> (agent: ActorCriticAgent, result: TrainingResult) {
        let envs = SyncVectorEnvironment(count: c.numEnvs, autoresetMode: .sameStep) { _ in try! makeTrainingEnvironment(environmentID) }
        guard case .discrete = envs.actionSpace else {
            throw EnvironmentError.invalidArgument("this A2C handles discrete actions; \(environmentID) has \(envs.actionSpace)")
        }
        let agent = ActorCriticAgent(observationSize: envs.observationSpace.flatCount, actionSpace: envs.actionSpace,
                                     hidden: c.hiddenSizes, seed: c.seed)
        let optimizer = RMSprop(learningRate: c.learningRate, alpha: c.rmspropAlpha, eps: c.rmspropEpsilon)
        var rng = RandomGenerator(seed: c.seed).derive(stream: 31)
        let n = c.numEnvs, T = c.numSteps
        var (completed, globalStep, episodes, nextObs, start) = try RLCheckpointing.begin(
            checkpointing, algorithm: "a2c", envs: envs, agent: agent, optimizer: optimizer, seed: c.seed, generator: &rng)
        var savedStep = globalStep
        func checkpoint() throws {
            savedStep = globalStep
            try checkpointing?.save(algorithm: "a2c", iteration: completed, globalStep: globalStep, start: start, generator: rng,
                                    observations: nextObs, envs: envs, episodes: episodes, agent: agent, optimizer: optimizer)
        }
        let iterations = c.totalTimesteps / (n * T)
        for iteration in stride(from: completed + 1, through: iterations, by: 1) {
            if shouldStop() { break }
            var obs: [[Float]] = [], actions: [Int] = [], rewards: [Float] = [], values: [Float] = []
            var nextValues = [Float](repeating: 0, count: T * n)
            var terminated: [Bool] = [], ended: [Bool] = []
            for t in 0..<T {
                globalStep += n
                let x = agent.prepare(nextObs)
                let (a, v) = withoutGradients { (CategoricalDistribution(logits: agent.actor(x)).sample(using: &rng), agent.value(x).scalars) }
                obs += nextObs
                actions += a
                values += v
                let s = try envs.step(a.map { .discrete($0) })
                rewards += s.rewards.map(Float.init)
                for e in 0..<n {
                    terminated.append(s.terminated[e])
                    ended.append(s.terminated[e] || s.truncated[e])
                    if s.truncated[e] && !s.terminated[e], let final = s.finalObservations[e] {
                        nextValues[t * n + e] = withoutGradients { agent.value(agent.prepare([final])).item() }
                    }
                }
                recordFinishedEpisodes(s, globalStep: globalStep, into: &episodes, onMetrics: onMetrics)
                nextObs = s.observations
            }
            let last = withoutGradients { agent.value(agent.prepare(nextObs)).scalars }
            var (advantages, returns) = rolloutAdvantages(rewards: rewards, values: values, lastValues: last, nextValues: nextValues,
                                                          terminated: terminated, episodeEnded: ended, envs: n, gamma: c.gamma, lambda: c.gaeLambda)
            if c.normalizeAdvantages { advantages = normalized(advantages) }
            let x = agent.prepare(obs), advT = Tensor(advantages), retT = Tensor(returns)
            var stats = (Float(0), Float(0), Float(0))
            var (_, grads) = valueAndGrad(agent) { agent in
                let dist = CategoricalDistribution(logits: agent.actor(x))
                let policyLoss = -(dist.logProb(actions) * advT).mean()
                let entropy = dist.entropy.mean()
                let vLoss = (agent.value(x) - retT).square().mean()
                stats = (policyLoss.item(), vLoss.item(), entropy.item())
                return policyLoss - entropy * c.entropyCoefficient + vLoss * c.valueCoefficient
            }
            clipGradientNorm(&grads, maxNorm: c.maxGradNorm)
            optimizer.update(agent, gradients: grads)
            if globalStep % (n * T * 100) == 0 {
                onMetrics?(globalStep, [("losses/policy_loss", Double(stats.0)), ("losses/value_loss", Double(stats.1)),
                                        ("losses/entropy", Double(stats.2)),
                                        ("losses/explained_variance", Double(explainedVariance(predicted: values, target: returns))),
                                        ("charts/SPS", stepsPerSecond(globalStep, since: start))])
            }
            completed = iteration
            try checkpointing?.boundary(agent, step: globalStep, savedStep: savedStep, last: iteration == iterations, onMetrics: onMetrics,
                                          checkpoint: checkpoint)
        }
        if globalStep != savedStep { try checkpoint() }
        return (agent, TrainingResult(episodes: episodes, globalSteps: globalStep, start: start))
    }
}
