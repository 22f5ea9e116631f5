// Proximal Policy Optimization (Schulman et al. 2017) as CleanRL's ppo.py and
// ppo_continuous_action.py: separate actor and critic MLPs with orthogonal init (√2 hidden, 0.01
// policy head, 1.0 value head), Adam with ε = 1e-5 and linear learning-rate annealing, GAE,
// shuffled minibatches, per-minibatch advantage normalization, the clipped surrogate and clipped
// value loss, an entropy bonus, global gradient clipping and an optional target-KL early stop.
// Discrete actions use a categorical policy; continuous ones a diagonal Gaussian with a
// state-independent log-std, with observation and reward normalization.
//
// One deliberate difference, on by default: a step cut by a time limit bootstraps from
// V(final observation) (`bootstrapTruncation`); CleanRL treats it like termination.

import NudgePolicyGradient
import Foundation
import NudgeNN
import NudgeTensor

/// PPO hyperparameters; defaults are CleanRL's ppo.py (discrete).
public struct PPOConfig: Sendable {
    public var totalTimesteps = 500_000
    public var learningRate: Float = 2.5e-4
    public var numEnvs = 4
    /// Steps per environment per rollout.
    public var numSteps = 128
    /// Linearly anneal the learning rate to 0 over the updates.
    public var annealLearningRate = true
    public var gamma: Float = 0.99
    /// λ of GAE.
    public var gaeLambda: Float = 0.95
    public var numMinibatches = 4
    public var updateEpochs = 4
    public var normalizeAdvantages = true
    /// ε of the clipped surrogate (Schulman et al. 2017, eq. 7).
    public var clipCoefficient: Float = 0.2
    public var clipValueLoss = true
    public var entropyCoefficient: Float = 0.01
    public var valueCoefficient: Float = 0.5
    public var maxGradNorm: Float = 0.5
    /// Stop the epoch loop when the approximate KL exceeds this.
    public var targetKL: Float? = nil
    /// Bootstrap truncated steps from V(final observation) (false: CleanRL's done = terminated or truncated).
    public var bootstrapTruncation = true
    /// Continuous control: normalize observations (clipped to ±10) and rewards (clipped to ±10).
    public var normalizeObservations = false
    public var normalizeRewards = false
    public var hiddenSizes = [64, 64]
    public var seed: UInt64 = 1

    public init() {}

    /// CleanRL's ppo_continuous_action.py defaults.
    public static var continuous: PPOConfig {
        var c = PPOConfig()
        c.totalTimesteps = 1_000_000
        c.learningRate = 3e-4
        c.numEnvs = 1
        c.numSteps = 2048
        c.numMinibatches = 32
        c.updateEpochs = 10
        c.entropyCoefficient = 0
        c.normalizeObservations = true
        c.normalizeRewards = true
        return c
    }

    public var batchSize: Int { numEnvs * numSteps }
    public var minibatchSize: Int { batchSize / numMinibatches }
    public var iterations: Int { totalTimesteps / batchSize }
}

/// The actor-critic of PPO.
public final class ActorCriticAgent: Module {
    public let actor: MLP
    public let critic: MLP
    /// State-independent log standard deviation (continuous actions only).
    @Key("actor_logstd") public var logStd: Tensor? = nil
    public let normalizer: ObservationNormalizer?
    public let actionCount: Int
    public let isContinuous: Bool
    public let actionLow: [Float]
    public let actionHigh: [Float]

    public init(observationSize: Int, actionSpace: Space, hidden: [Int] = [64, 64], normalizeObservations: Bool = false, seed: UInt64) {
        var rng = RandomGenerator(seed: seed).derive(stream: 10)
        switch actionSpace {
        case .discrete(let n, _):
            actionCount = n
            isContinuous = false
            actionLow = []
            actionHigh = []
        case .box(let low, let high, _):
            actionCount = low.count
            isContinuous = true
            actionLow = low
            actionHigh = high
            _logStd = Key(wrappedValue: Tensor.zeros([low.count]), "actor_logstd")
        case .multiDiscrete:
            preconditionFailure("PPO supports Discrete and Box action spaces")
        }
        critic = cleanRLNetwork(inputs: observationSize, outputs: 1, hidden: hidden, headStd: 1, using: &rng)
        actor = cleanRLNetwork(inputs: observationSize, outputs: actionCount, hidden: hidden, headStd: 0.01, using: &rng)
        normalizer = normalizeObservations ? ObservationNormalizer(size: observationSize) : nil
    }

    /// Observations as a (B, obs) tensor, normalized when the agent normalizes.
    public func prepare(_ observations: [[Float]]) -> Tensor {
        let rows = normalizer.map { n in observations.map { n.normalize($0) } } ?? observations
        return Tensor(shape: [rows.count, rows.first?.count ?? 0], values: rows.flatMap { $0 })
    }

    /// V(s) per row.
    public func value(_ x: Tensor) -> Tensor { critic(x).reshaped([-1]) }

    /// The policy π(·|s) per row: categorical over the actor's logits, or for continuous actions the
    /// diagonal Gaussian around the actor's output with the state-independent log-std.
    public func distribution(_ x: Tensor) -> PolicyDistribution {
        let out = actor(x)
        if isContinuous, let logStd { return .gaussian(DiagonalGaussian(mean: out, logStd: logStd)) }
        return .categorical(CategoricalDistribution(logits: out))
    }

    /// The action the deterministic policy takes (argmax or the Gaussian mean, clipped).
    public func deterministicAction(_ observation: [Float]) -> ActionValue {
        withoutGradients {
            let out = actor(prepare([observation]))
            if !isContinuous { return .discrete(out.argmax(axis: -1)[0]) }
            return .continuous(out.scalars.enumerated().map { i, v in Swift.min(Swift.max(v, actionLow[i]), actionHigh[i]) })
        }
    }
}

/// The outcome of a PPO run.
public struct TrainingResult {
    public var episodes: [EpisodeRecord]
    public var wallTime: Double
    /// Environment steps per second over the whole run.
    public var stepsPerSecond: Double
    public var globalSteps: Int
}

/// One rollout as the update consumes it, row-major (t·n + e): the observations as the policy saw
/// them, the actions taken (discrete, or `actionCount` raw floats per row), their log-probs and values
/// under the rollout's policy, and GAE's advantages and returns.
public struct PPOBatch: Sendable {
    public var observations: [[Float]]
    public var discreteActions: [Int]
    public var continuousActions: [Float]
    public var logProbs: [Float]
    public var values: [Float]
    public var advantages: [Float]
    public var returns: [Float]

    public init(observations: [[Float]], discreteActions: [Int], continuousActions: [Float], logProbs: [Float], values: [Float],
                advantages: [Float], returns: [Float]) {
        self.observations = observations
        self.discreteActions = discreteActions
        self.continuousActions = continuousActions
        self.logProbs = logProbs
        self.values = values
        self.advantages = advantages
        self.returns = returns
    }
}

/// What one PPO update logs (CleanRL's names): the last mini-batch's losses and KL estimates, and the
/// mean clip fraction over all mini-batches.
public struct PPOUpdateStats: Sendable, Equatable {
    public var policyLoss: Float = 0
    public var valueLoss: Float = 0
    public var entropy: Float = 0
    public var approxKL: Float = 0
    public var oldApproxKL: Float = 0
    public var clipFraction: Float = 0
}

/// PPO training.
public enum PPO {
    /// Trains a PPO agent on the environment registered as `environmentID`.
    public static func train(environmentID: String, config: PPOConfig, onMetrics: MetricsCallback? = nil,
                             shouldStop: () -> Bool = { false }, checkpointing: RLCheckpointing? = nil)
        throws -> (agent: ActorCriticAgent, result: TrainingResult) {
        let envs = SyncVectorEnvironment(count: config.numEnvs, autoresetMode: .sameStep) { _ in
            try! makeTrainingEnvironment(environmentID, normalizeReward: config.normalizeRewards, gamma: Double(config.gamma))
        }
        let obsSize = envs.observationSpace.flatCount
        let agent = ActorCriticAgent(observationSize: obsSize, actionSpace: envs.actionSpace, hidden: config.hiddenSizes,
                             normalizeObservations: config.normalizeObservations, seed: config.seed)
        let result = try train(agent: agent, envs: envs, config: config, onMetrics: onMetrics, shouldStop: shouldStop,
                               checkpointing: checkpointing)
        return (agent, result)
    }

    /// Trains `agent` on `envs` (same-step autoreset, episode statistics recorded). With
    /// `checkpointing`, the whole state is saved between iterations (every `every` of them, when
    /// stopped and at the end) and, when resuming, restored first.
    public static func train(agent: ActorCriticAgent, envs: SyncVectorEnvironment<AnyEnvironment>, config c: PPOConfig,
                             onMetrics: MetricsCallback? = nil, shouldStop: () -> Bool = { false },
                             checkpointing: RLCheckpointing? = nil) throws -> TrainingResult {
        let n = c.numEnvs, T = c.numSteps, A = agent.actionCount
        var rng = RandomGenerator(seed: c.seed).derive(stream: 11)
        let optimizer = Adam(learningRate: c.learningRate, eps: 1e-5)
        var (completed, globalStep, episodes, nextObs, start) = try RLCheckpointing.begin(
            checkpointing, algorithm: "ppo", envs: envs, agent: agent, optimizer: optimizer, seed: c.seed, generator: &rng)
        var savedStep = globalStep
        func checkpoint() throws {
            savedStep = globalStep
            try checkpointing?.save(algorithm: "ppo", iteration: completed, globalStep: globalStep, start: start, generator: rng,
                                    observations: nextObs, envs: envs, episodes: episodes, agent: agent, optimizer: optimizer)
        }

        // Rollout storage, row-major (t·n + e).
        var obs = [[Float]](repeating: [], count: T * n)
        var discreteActions = [Int](repeating: 0, count: T * n)
        var continuousActions = [Float](repeating: 0, count: agent.isContinuous ? T * n * A : 0)
        var logProbs = [Float](repeating: 0, count: T * n)
        var rewards = [Float](repeating: 0, count: T * n)
        var values = [Float](repeating: 0, count: T * n)
        var nextValues = [Float](repeating: 0, count: T * n)
        var terminated = [Bool](repeating: false, count: T * n)
        var ended = [Bool](repeating: false, count: T * n)

        for iteration in stride(from: completed + 1, through: max(c.iterations, 1), by: 1) {
            if shouldStop() { break }
            if c.annealLearningRate {
                optimizer.learningRate = (1 - Float(iteration - 1) / Float(c.iterations)) * c.learningRate
            }
            // Rollout.
            for t in 0..<T {
                globalStep += n
                agent.normalizer?.update(nextObs)
                // Stored as the policy saw them (CleanRL stores NormalizeObservation's output): the
                // update then re-evaluates the very inputs the old log-probs and values came from.
                let seen = nextObs.map { agent.normalizer?.normalize($0) ?? $0 }
                let x = Tensor(shape: [n, seen.first?.count ?? 0], values: seen.flatMap { $0 })
                let stepActions: [ActionValue] = withoutGradients {
                    let v = agent.value(x).scalars
                    var chosen: [ActionValue] = []
                    switch agent.distribution(x) {
                    case .gaussian(let dist):
                        let a = dist.sample(using: &rng)
                        let lp = dist.logProb(a).scalars
                        let values = a.scalars
                        for e in 0..<n {
                            let row = Array(values[(e * A)..<((e + 1) * A)])
                            continuousActions.replaceSubrange(((t * n + e) * A)..<((t * n + e + 1) * A), with: row)
                            logProbs[t * n + e] = lp[e]
                            // ClipAction: the environment sees the clipped action; the raw one is learned from.
                            chosen.append(.continuous(row.indices.map { Swift.min(Swift.max(row[$0], agent.actionLow[$0]), agent.actionHigh[$0]) }))
                        }
                    case .categorical(let dist):
                        let a = dist.sample(using: &rng)
                        let lp = dist.logProb(a).scalars
                        for e in 0..<n {
                            discreteActions[t * n + e] = a[e]
                            logProbs[t * n + e] = lp[e]
                            chosen.append(.discrete(a[e]))
                        }
                    }
                    for e in 0..<n {
                        obs[t * n + e] = seen[e]
                        values[t * n + e] = v[e]
                    }
                    return chosen
                }
                let s = try envs.step(stepActions)
                var truncatedRows: [Int] = []
                for e in 0..<n {
                    let i = t * n + e
                    rewards[i] = Float(s.rewards[e])
                    ended[i] = s.terminated[e] || s.truncated[e]
                    terminated[i] = s.terminated[e] || (s.truncated[e] && !c.bootstrapTruncation)
                    if s.truncated[e] && !s.terminated[e] && c.bootstrapTruncation { truncatedRows.append(e) }
                }
                if !truncatedRows.isEmpty {
                    // V(final observation) for time-limit cuts.
                    let finals = truncatedRows.map { s.finalObservations[$0] ?? s.observations[$0] }
                    let v = withoutGradients { agent.value(agent.prepare(finals)).scalars }
                    for (k, e) in truncatedRows.enumerated() { nextValues[t * n + e] = v[k] }
                }
                recordFinishedEpisodes(s, globalStep: globalStep, into: &episodes, onMetrics: onMetrics)
                nextObs = s.observations
            }
            let last = withoutGradients { agent.value(agent.prepare(nextObs)).scalars }
            let (advantages, returns) = rolloutAdvantages(rewards: rewards, values: values, lastValues: last, nextValues: nextValues,
                                                          terminated: terminated, ended: ended, envs: n, config: c)

            // Optimize.
            let batch = PPOBatch(observations: obs, discreteActions: discreteActions, continuousActions: continuousActions,
                                 logProbs: logProbs, values: values, advantages: advantages, returns: returns)
            let stats = update(agent: agent, optimizer: optimizer, batch: batch, config: c) { indices in
                rng.shuffle(&indices)
            }
            onMetrics?(globalStep, [
                ("charts/learning_rate", Double(optimizer.learningRate)),
                ("losses/value_loss", Double(stats.valueLoss)), ("losses/policy_loss", Double(stats.policyLoss)),
                ("losses/entropy", Double(stats.entropy)), ("losses/old_approx_kl", Double(stats.oldApproxKL)),
                ("losses/approx_kl", Double(stats.approxKL)), ("losses/clipfrac", Double(stats.clipFraction)),
                ("losses/explained_variance", Double(explainedVariance(predicted: values, target: returns))),
                ("charts/SPS", stepsPerSecond(globalStep, since: start)),
            ])
            completed = iteration
            try checkpointing?.boundary(agent, step: globalStep, savedStep: savedStep, last: iteration == max(c.iterations, 1), onMetrics: onMetrics,
                                          checkpoint: checkpoint)
        }
        if globalStep != savedStep { try checkpoint() }
        return TrainingResult(episodes: episodes, globalSteps: globalStep, start: start)
    }

    /// GAE over one rollout (row-major t·n + e): V(s_{t+1}) is the next row's value within an
    /// episode, `lastValues` after the last step, and `nextValues` as given where the step ended (a
    /// truncated step's V(final observation); unused where terminated).
    public static func rolloutAdvantages(rewards: [Float], values: [Float], lastValues: [Float], nextValues: [Float], terminated: [Bool],
                                         ended: [Bool], envs n: Int, config c: PPOConfig) -> (advantages: [Float], returns: [Float]) {
        NudgePolicyGradient.rolloutAdvantages(rewards: rewards, values: values, lastValues: lastValues, nextValues: nextValues,
                                              terminated: terminated, episodeEnded: ended, envs: n, gamma: c.gamma, lambda: c.gaeLambda)
    }

    /// `updateEpochs` passes over `batch` in mini-batches (the order from `shuffle`, called once per
    /// epoch on the indices as the previous epoch left them), each one clipped-gradient Adam step on
    /// the clipped surrogate − entropy bonus + value loss, with CleanRL's per-mini-batch advantage
    /// normalization and target-KL early stop.
    ///
    /// Data parallel (`communicator` with several ranks): every rank holds the whole rollout (each
    /// rank steps every environment: the rollouts are identical), computes the gradient of its
    /// contiguous share of each mini-batch, and the shares' gradients are summed, so every rank
    /// takes the one-process step up to float reordering.
    public static func update(agent: ActorCriticAgent, optimizer: Adam, batch b: PPOBatch, config c: PPOConfig,
                              communicator: Communicator = .shared, shuffle: (inout [Int]) -> Void) -> PPOUpdateStats {
        let count = b.logProbs.count, mb = c.minibatchSize, A = agent.actionCount
        let obsSize = b.observations.first?.count ?? 0
        var indices = Array(0..<count)
        var stats = PPOUpdateStats()
        var clipFractions: [Float] = []
        epochs: for _ in 0..<c.updateEpochs {
            shuffle(&indices)
            for startIndex in stride(from: 0, to: count, by: mb) {
                let whole = indices[startIndex..<Swift.min(startIndex + mb, count)]
                // Normalized over the whole mini-batch; this rank trains on its share of its rows.
                var allAdvantages = whole.map { b.advantages[$0] }
                if c.normalizeAdvantages { allAdvantages = normalized(allAdvantages) }
                let mine = communicator.shard(whole.count)
                let idx = whole[(whole.startIndex + mine.lowerBound)..<(whole.startIndex + mine.upperBound)]
                let adv = Array(allAdvantages[mine])
                let share = Float(idx.count) / Float(whole.count)
                guard !idx.isEmpty else {
                    var zero = agent.trainableParameters()
                    zero = NamedTensors(zip(zero.keys, zero.tensors.map { Tensor(repeating: 0, shape: $0.shape) }).map { ($0, $1) })
                    communicator.allreduceSum(zero)
                    var sums = [Double](repeating: 0, count: 6)
                    communicator.allreduceSum(&sums)
                    (stats.policyLoss, stats.valueLoss, stats.entropy) = (Float(sums[0]), Float(sums[1]), Float(sums[2]))
                    clipFractions.append(Float(sums[3]))
                    (stats.approxKL, stats.oldApproxKL) = (Float(sums[4]), Float(sums[5]))
                    clipGradientNorm(&zero, maxNorm: c.maxGradNorm)
                    optimizer.update(agent, gradients: zero)
                    continue
                }
                let x = Tensor(shape: [idx.count, obsSize], values: idx.flatMap { b.observations[$0] })
                let advT = Tensor(adv), retT = Tensor(idx.map { b.returns[$0] })
                let oldLP = Tensor(idx.map { b.logProbs[$0] }), oldV = Tensor(idx.map { b.values[$0] })
                var kl = (Float(0), Float(0), Float(0))
                var (_, grads) = valueAndGrad(agent) { agent in
                    let dist = agent.distribution(x)
                    let newLP: Tensor
                    switch dist {
                    case .gaussian(let g):
                        newLP = g.logProb(Tensor(shape: [idx.count, A], values: idx.flatMap { b.continuousActions[($0 * A)..<(($0 + 1) * A)] }))
                    case .categorical(let c):
                        newLP = c.logProb(idx.map { b.discreteActions[$0] })
                    }
                    let entropy = dist.entropy.mean()
                    let pg = clippedSurrogateLoss(logProbs: newLP, oldLogProbs: oldLP, advantages: advT, clipLow: c.clipCoefficient)
                    let vLoss = valueLoss(values: agent.value(x), oldValues: oldV, returns: retT,
                                          clip: c.clipValueLoss ? c.clipCoefficient : nil)
                    kl = (pg.clipFraction, pg.approxKL, pg.oldApproxKL)
                    stats.policyLoss = pg.loss.item()
                    stats.valueLoss = vLoss.item()
                    stats.entropy = entropy.item()
                    let loss = pg.loss - entropy * c.entropyCoefficient + vLoss * c.valueCoefficient
                    return communicator.isDistributed ? loss * share : loss
                }
                if communicator.isDistributed {
                    communicator.allreduceSum(grads)
                    // The logged values are means over the mini-batch: each rank's, weighted by its share.
                    var sums = [stats.policyLoss, stats.valueLoss, stats.entropy, kl.0, kl.1, kl.2].map { Double($0 * share) }
                    communicator.allreduceSum(&sums)
                    (stats.policyLoss, stats.valueLoss, stats.entropy) = (Float(sums[0]), Float(sums[1]), Float(sums[2]))
                    kl = (Float(sums[3]), Float(sums[4]), Float(sums[5]))
                }
                clipGradientNorm(&grads, maxNorm: c.maxGradNorm)
                optimizer.update(agent, gradients: grads)
                clipFractions.append(kl.0)
                stats.approxKL = kl.1
                stats.oldApproxKL = kl.2
            }
            if let target = c.targetKL, stats.approxKL > target { break epochs }
        }
        stats.clipFraction = clipFractions.reduce(0, +) / Float(max(clipFractions.count, 1))
        return stats
    }
}
