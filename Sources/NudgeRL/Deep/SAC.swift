// Soft Actor-Critic for continuous actions (Haarnoja et al. 2018) as CleanRL's
// sac_continuous_action.py: a tanh-squashed Gaussian actor (256-256 ReLU; log-std squashed into
// [−5, 2] by tanh), twin Q-networks with Polyak-averaged targets (τ = 0.005), the soft Bellman
// target r + γ(1 − terminated)(min Q_target(s', a') − α·log π(a'|s')), delayed policy updates
// (every 2 steps, twice), and automatic entropy tuning toward target entropy −|A|.

import Foundation
import NudgeNN
import NudgeTensor

/// SAC hyperparameters; defaults are CleanRL's sac_continuous_action.py.
public struct SACConfig: Sendable {
    public var totalTimesteps = 1_000_000
    public var bufferSize = 1_000_000
    public var gamma: Float = 0.99
    /// Target smoothing coefficient τ.
    public var tau: Float = 0.005
    public var batchSize = 256
    public var learningStarts = 5_000
    public var policyLearningRate: Float = 3e-4
    public var qLearningRate: Float = 1e-3
    public var policyFrequency = 2
    public var targetNetworkFrequency = 1
    /// Initial (or fixed, without autotune) entropy coefficient α.
    public var alpha: Float = 0.2
    public var autotune = true
    public var hiddenSizes = [256, 256]
    public var logStdMin: Float = -5
    public var logStdMax: Float = 2
    public var seed: UInt64 = 1

    public init() {}
}

/// Q(s, a) on the concatenation of observation and action.
public final class SoftQNetwork: Module {
    public let network: MLP

    public init(observationSize: Int, actionSize: Int, hidden: [Int], rng: inout RandomGenerator) {
        network = MLP(sizes: [observationSize + actionSize] + hidden + [1], activation: .relu, using: &rng)
    }

    public func callAsFunction(_ observations: Tensor, _ actions: Tensor) -> Tensor {
        network(Tensor.concat([observations, actions], axis: 1)).reshaped([-1])
    }
}

/// The SAC actor: mean and log-std heads over a shared trunk.
public final class SACActor: Module {
    public let trunk: MLP
    public let meanHead: Linear
    public let logStdHead: Linear
    public let scale: [Float]
    public let bias: [Float]
    public let logStdMin: Float
    public let logStdMax: Float

    public init(observationSize: Int, low: [Float], high: [Float], hidden: [Int], logStdMin: Float, logStdMax: Float,
                rng: inout RandomGenerator) {
        trunk = MLP(sizes: [observationSize] + hidden, activation: .relu, using: &rng)
        meanHead = Linear(inputCount: hidden.last!, outputCount: low.count, using: &rng)
        logStdHead = Linear(inputCount: hidden.last!, outputCount: low.count, using: &rng)
        scale = zip(low, high).map { ($1 - $0) / 2 }
        bias = zip(low, high).map { ($1 + $0) / 2 }
        self.logStdMin = logStdMin
        self.logStdMax = logStdMax
    }

    /// The squashed Gaussian for a batch of observations.
    public func distribution(_ x: Tensor) -> TanhGaussian {
        let h = trunk(x).relu()  // MLP has no activation after its last layer; the trunk's output is a hidden layer
        let logStd = (logStdHead(h).tanh() + 1) * (0.5 * (logStdMax - logStdMin)) + logStdMin
        return TanhGaussian(mean: meanHead(h), logStd: logStd, scale: scale, bias: bias)
    }

    /// The deterministic action tanh(mean)·scale + bias.
    public func deterministicAction(_ observation: [Float]) -> [Float] {
        withoutGradients { distribution(Tensor(shape: [1, observation.count], values: observation)).mode.scalars }
    }
}

/// SAC training.
public enum SAC {
    /// Trains a SAC agent; with `checkpointing`, the whole run (actor, critics, targets, the three
    /// optimizers, α, replay buffer, environment, generator) is saved every `every` steps, when
    /// stopped and at the end and, when resuming, restored first.
    public static func train(environmentID: String, config c: SACConfig, onMetrics: MetricsCallback? = nil,
                             shouldStop: () -> Bool = { false }, checkpointing: RLCheckpointing? = nil)
        throws -> (actor: SACActor, result: TrainingResult) {
        let env = try makeTrainingEnvironment(environmentID)
        guard case .box(let low, let high, _) = env.actionSpace else {
            throw EnvironmentError.invalidArgument("SAC needs a continuous (Box) action space; \(environmentID) has \(env.actionSpace)")
        }
        let obsSize = env.observationSpace.flatCount, actSize = low.count
        var initRNG = RandomGenerator(seed: c.seed).derive(stream: 40)
        let actor = SACActor(observationSize: obsSize, low: low, high: high, hidden: c.hiddenSizes,
                             logStdMin: c.logStdMin, logStdMax: c.logStdMax, rng: &initRNG)
        let q1 = SoftQNetwork(observationSize: obsSize, actionSize: actSize, hidden: c.hiddenSizes, rng: &initRNG)
        let q2 = SoftQNetwork(observationSize: obsSize, actionSize: actSize, hidden: c.hiddenSizes, rng: &initRNG)
        let q1Target = SoftQNetwork(observationSize: obsSize, actionSize: actSize, hidden: c.hiddenSizes, rng: &initRNG)
        let q2Target = SoftQNetwork(observationSize: obsSize, actionSize: actSize, hidden: c.hiddenSizes, rng: &initRNG)
        polyakUpdate(target: q1Target, source: q1, tau: 1)
        polyakUpdate(target: q2Target, source: q2, tau: 1)
        q1Target.freeze()
        q2Target.freeze()
        final class Critics: Module {
            let qf1: SoftQNetwork, qf2: SoftQNetwork
            init(_ a: SoftQNetwork, _ b: SoftQNetwork) { qf1 = a; qf2 = b }
        }
        final class Temperature: Module {
            var logAlpha: Tensor
            init(_ alpha: Float) { logAlpha = Tensor([Foundation.log(alpha)]) }
        }
        let critics = Critics(q1, q2)
        let temperature = Temperature(c.autotune ? 1 : c.alpha)  // CleanRL starts log α at 0 when tuning
        let qOptimizer = Adam(learningRate: c.qLearningRate)
        let actorOptimizer = Adam(learningRate: c.policyLearningRate)
        let alphaOptimizer = Adam(learningRate: c.qLearningRate)
        let targetEntropy = -Float(actSize)
        var alpha = c.autotune ? Float(1) : c.alpha
        var buffer = ReplayBuffer(capacity: Swift.min(c.bufferSize, c.totalTimesteps), observationSize: obsSize, actionSize: actSize)
        var rng = RandomGenerator(seed: c.seed).derive(stream: 41)
        var (firstStep, episodes, start, obs) = try RLCheckpointing.beginReplayRun(
            checkpointing, algorithm: "sac", env: env, agent: actor, optimizer: actorOptimizer, seed: c.seed, generator: &rng, buffer: &buffer) {
            try critics.update(parameters: $0.tensors("critics"))
            try q1Target.update(parameters: $0.tensors("qf1_target"))
            try q2Target.update(parameters: $0.tensors("qf2_target"))
            try temperature.update(parameters: $0.tensors("temperature"))
            try qOptimizer.load(state: $0.tensors("q_optimizer"))
            try alphaOptimizer.load(state: $0.tensors("alpha_optimizer"))
            if c.autotune { alpha = Foundation.exp(temperature.logAlpha.item()) }
        }
        var completed = firstStep, savedStep = firstStep
        func checkpoint() throws {
            savedStep = completed
            try checkpointing?.saveReplayRun(algorithm: "sac", completed: completed, start: start, generator: rng, observation: obs, env: env,
                                             episodes: episodes, agent: actor, optimizer: actorOptimizer, buffer: buffer,
                                             tensors: ["critics": critics.parameters(), "qf1_target": q1Target.parameters(),
                                                       "qf2_target": q2Target.parameters(), "temperature": temperature.parameters(),
                                                       "q_optimizer": qOptimizer.state(), "alpha_optimizer": alphaOptimizer.state()])
        }

        for globalStep in stride(from: firstStep, to: c.totalTimesteps, by: 1) {
            if shouldStop() { break }
            let action: [Float]
            if globalStep < c.learningStarts {
                action = env.actionSpace.sample(using: &rng)
            } else {
                action = withoutGradients { actor.distribution(Tensor(shape: [1, obsSize], values: obs)).sample(using: &rng).action.scalars }
            }
            let s = try env.step(.continuous(action))
            buffer.add(observation: obs, action: action, reward: Float(s.reward), nextObservation: s.observation, terminated: s.terminated)
            obs = observationAfter(s, env: env, globalStep: globalStep, episodes: &episodes, onMetrics: onMetrics)
            completed = globalStep + 1
            guard globalStep > c.learningStarts else {
                try checkpointing?.boundary(actor, step: completed, savedStep: savedStep, last: completed == c.totalTimesteps, logStep: globalStep, onMetrics: onMetrics,
                                              checkpoint: checkpoint)
                continue
            }

            let batch = buffer.sample(c.batchSize, using: &rng)
            let target = withoutGradients {
                let (nextAction, nextLogProb) = actor.distribution(batch.nextObservations).sample(using: &rng)
                let minQ = Tensor.minimum(q1Target(batch.nextObservations, nextAction), q2Target(batch.nextObservations, nextAction))
                return batch.rewards + (1 - batch.terminated) * c.gamma * (minQ - nextLogProb * alpha)
            }
            var qLoss: Float = 0
            let (_, qGrads) = valueAndGrad(critics) { critics in
                let loss = mseLoss(critics.qf1(batch.observations, batch.actions), target)
                    + mseLoss(critics.qf2(batch.observations, batch.actions), target)
                qLoss = loss.item()
                return loss
            }
            qOptimizer.update(critics, gradients: qGrads)

            if globalStep % c.policyFrequency == 0 {
                // Delayed updates, compensated by repeating them (TD3's trick as CleanRL does it).
                for _ in 0..<c.policyFrequency {
                    let (actorLoss, actorGrads) = valueAndGrad(actor) { actor in
                        let (pi, logPi) = actor.distribution(batch.observations).sample(using: &rng)
                        let minQ = Tensor.minimum(q1(batch.observations, pi), q2(batch.observations, pi))
                        return (logPi * alpha - minQ).mean()
                    }
                    actorOptimizer.update(actor, gradients: actorGrads)
                    if c.autotune {
                        let logPi = withoutGradients { actor.distribution(batch.observations).sample(using: &rng).logProb }
                        let (_, alphaGrads) = valueAndGrad(temperature) { t in
                            (-t.logAlpha.exp() * (logPi + targetEntropy)).mean()
                        }
                        alphaOptimizer.update(temperature, gradients: alphaGrads)
                        alpha = Foundation.exp(temperature.logAlpha.item())
                    }
                    if globalStep % 100 == 0 {
                        onMetrics?(globalStep, [("losses/qf_loss", Double(qLoss) / 2), ("losses/actor_loss", Double(actorLoss.item())),
                                                ("losses/alpha", Double(alpha)),
                                                ("charts/SPS", stepsPerSecond(globalStep, since: start))])
                    }
                }
            }
            if globalStep % c.targetNetworkFrequency == 0 {
                polyakUpdate(target: q1Target, source: q1, tau: c.tau)
                polyakUpdate(target: q2Target, source: q2, tau: c.tau)
            }
            try checkpointing?.boundary(actor, step: completed, savedStep: savedStep, last: completed == c.totalTimesteps, logStep: globalStep, onMetrics: onMetrics,
                                          checkpoint: checkpoint)
        }
        if completed != savedStep { try checkpoint() }
        return (actor, TrainingResult(episodes: episodes, globalSteps: completed, start: start))
    }
}
