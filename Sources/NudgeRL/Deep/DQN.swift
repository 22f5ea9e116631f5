// Deep Q-Network (Mnih et al. 2015) as CleanRL's dqn.py: a 120-84 ReLU Q-network, uniform replay,
// a target network copied every `targetNetworkFrequency` steps (τ = 1), a linear ε schedule,
// `learningStarts` random steps, one Adam update every `trainFrequency` steps on the MSE between
// Q(s, a) and r + γ·maxₐ' Q_target(s', a')·(1 − terminated). Time-limit truncations bootstrap
// (the buffer stores `terminated` only).

import Foundation
import NudgeNN
import NudgeTensor

/// DQN hyperparameters; defaults are CleanRL's dqn.py.
public struct DQNConfig: Sendable {
    public var totalTimesteps = 500_000
    public var learningRate: Float = 2.5e-4
    public var bufferSize = 10_000
    public var gamma: Float = 0.99
    /// Target update rate (1 = hard copy).
    public var tau: Float = 1
    public var targetNetworkFrequency = 500
    public var batchSize = 128
    public var startEpsilon = 1.0
    public var endEpsilon = 0.05
    /// Fraction of the run over which ε decays linearly.
    public var explorationFraction = 0.5
    public var learningStarts = 10_000
    public var trainFrequency = 10
    public var hiddenSizes = [120, 84]
    public var seed: UInt64 = 1

    public init() {}

    /// ε at `step` (CleanRL's linear_schedule).
    public func epsilon(at step: Int) -> Double {
        let duration = explorationFraction * Double(totalTimesteps)
        let slope = (endEpsilon - startEpsilon) / duration
        return Swift.max(slope * Double(step) + startEpsilon, endEpsilon)
    }
}

/// The Q-network.
public final class QNetwork: Module {
    public let network: MLP

    public init(observationSize: Int, actionCount: Int, hidden: [Int] = [120, 84], seed: UInt64) {
        var rng = RandomGenerator(seed: seed).derive(stream: 20)
        network = MLP(sizes: [observationSize] + hidden + [actionCount], activation: .relu, using: &rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { network(x) }

    /// The greedy action for one observation.
    public func greedyAction(_ observation: [Float]) -> Int {
        withoutGradients { network(Tensor(shape: [1, observation.count], values: observation)).argmax(axis: -1)[0] }
    }
}

/// DQN training.
public enum DQN {
    /// Trains a Q-network; with `checkpointing`, the whole run (network, target, optimizer, replay
    /// buffer, environment, generator) is saved every `every` steps, when stopped and at the end
    /// and, when resuming, restored first.
    public static func train(environmentID: String, config c: DQNConfig, onMetrics: MetricsCallback? = nil,
                             shouldStop: () -> Bool = { false }, checkpointing: RLCheckpointing? = nil)
        throws -> (network: QNetwork, result: TrainingResult) {
        let env = try makeTrainingEnvironment(environmentID)
        guard case .discrete(let actionCount, _) = env.actionSpace else {
            throw EnvironmentError.invalidArgument("DQN needs a discrete action space; \(environmentID) has \(env.actionSpace)")
        }
        let obsSize = env.observationSpace.flatCount
        let q = QNetwork(observationSize: obsSize, actionCount: actionCount, hidden: c.hiddenSizes, seed: c.seed)
        let target = QNetwork(observationSize: obsSize, actionCount: actionCount, hidden: c.hiddenSizes, seed: c.seed)
        polyakUpdate(target: target, source: q, tau: 1)
        target.freeze()
        let optimizer = Adam(learningRate: c.learningRate)
        var buffer = ReplayBuffer(capacity: c.bufferSize, observationSize: obsSize)
        var rng = RandomGenerator(seed: c.seed).derive(stream: 21)
        var (firstStep, episodes, start, obs) = try RLCheckpointing.beginReplayRun(
            checkpointing, algorithm: "dqn", env: env, agent: q, optimizer: optimizer, seed: c.seed, generator: &rng, buffer: &buffer) {
            try target.update(parameters: $0.tensors("target"))
        }
        var completed = firstStep, savedStep = firstStep
        func checkpoint() throws {
            savedStep = completed
            try checkpointing?.saveReplayRun(algorithm: "dqn", completed: completed, start: start, generator: rng, observation: obs, env: env,
                                             episodes: episodes, agent: q, optimizer: optimizer, buffer: buffer,
                                             tensors: ["target": target.parameters()])
        }

        for globalStep in stride(from: firstStep, to: c.totalTimesteps, by: 1) {
            if shouldStop() { break }
            let epsilon = c.epsilon(at: globalStep)
            let action = rng.uniform() < epsilon ? rng.int(below: actionCount) : q.greedyAction(obs)
            let s = try env.step(.discrete(action))
            buffer.add(observation: obs, action: [Float(action)], reward: Float(s.reward), nextObservation: s.observation,
                       terminated: s.terminated)
            obs = observationAfter(s, env: env, globalStep: globalStep, episodes: &episodes, onMetrics: onMetrics,
                                   extra: [("charts/epsilon", epsilon)])

            if globalStep > c.learningStarts {
                if globalStep % c.trainFrequency == 0 {
                    let batch = buffer.sample(c.batchSize, using: &rng)
                    let tdTarget = withoutGradients {
                        let nextMax = target(batch.nextObservations).max(axis: -1)
                        return batch.rewards + nextMax * (1 - batch.terminated) * c.gamma
                    }
                    let (loss, grads) = valueAndGrad(q) { q in
                        mseLoss(q(batch.observations).pick(batch.discreteActions), tdTarget)
                    }
                    optimizer.update(q, gradients: grads)
                    if globalStep % 100 == 0 {
                        onMetrics?(globalStep, [("losses/td_loss", Double(loss.item())),
                                                ("charts/SPS", stepsPerSecond(globalStep, since: start))])
                    }
                }
                if globalStep % c.targetNetworkFrequency == 0 {
                    polyakUpdate(target: target, source: q, tau: c.tau)
                }
            }
            completed = globalStep + 1
            try checkpointing?.boundary(q, step: completed, savedStep: savedStep, last: completed == c.totalTimesteps, logStep: globalStep, onMetrics: onMetrics,
                                          checkpoint: checkpoint)
        }
        if completed != savedStep { try checkpoint() }
        return (q, TrainingResult(episodes: episodes, globalSteps: completed, start: start))
    }
}
