// Deep-RL mechanics against hand-computed values, and short learning runs with fixed seeds.

import NudgePolicyGradient
import Foundation
import Testing
@testable import NudgeNN
@testable import NudgeRL
import NudgeTensor

@Suite("Deep RL mechanics") struct DeepMechanicsTests {
    @Test func gaeHandExampleWithTruncationAndTermination() {
        // One env, 4 steps, γ = 0.5, λ = 0.5. Step 1 is truncated (bootstrap V(final) = 10, no
        // flow back from step 2); step 3 terminates.
        let rewards: [Float] = [1, 2, 3, 4], values: [Float] = [1, 1, 2, 2]
        let nextValues: [Float] = [1, 10, 2, 99]  // V(s1); V(final of episode 1); V(s3); unused (terminated)
        let terminated = [false, false, false, true], ended = [false, true, false, true]
        let (adv, ret) = generalizedAdvantages(rewards: rewards, values: values, nextValues: nextValues,
                                               terminated: terminated, episodeEnded: ended, envs: 1, gamma: 0.5, lambda: 0.5)
        // δ = [1 + .5·1 − 1, 2 + .5·10 − 1, 3 + .5·2 − 2, 4 − 2] = [0.5, 6, 2, 2]
        // A3 = 2; A2 = 2 + .25·2 = 2.5; A1 = 6 (episode boundary); A0 = 0.5 + .25·6 = 2
        #expect(adv == [2, 6, 2.5, 2])
        #expect(ret == [3, 7, 4.5, 4])
    }

    @Test func gaeIsIndependentAcrossEnvironments() {
        let (adv, _) = generalizedAdvantages(rewards: [1, 0, 1, 0], values: [0, 0, 0, 0], nextValues: [0, 0, 0, 0],
                                             terminated: [false, false, true, true], episodeEnded: [false, false, true, true],
                                             envs: 2, gamma: 1, lambda: 1)
        // env 0 gets rewards 1 then 1 (terminated): A = [2, 1]; env 1 gets zeros.
        #expect(adv == [2, 0, 1, 0])
    }

    @Test func clippedSurrogateAtRatioFour() {
        // log-ratio ln 4, ε = 0.2: A > 0 → loss −1.2·A with zero gradient; A < 0 → the unclipped
        // −4·A is the pessimistic branch and its gradient flows.
        for (a, expectedLoss, expectedGrad) in [(Float(2), Float(-2.4), Float(0)), (Float(-2), Float(8), Float(8))] {
            let newLP = Tensor([Float(Foundation.log(4.0))])
            let (value, grads) = valueAndGrad([newLP]) { x in
                clippedSurrogateLoss(logProbs: x[0], oldLogProbs: Tensor([0]), advantages: Tensor([a]), clipLow: 0.2).loss
            }
            #expect(abs(value.item() - expectedLoss) < 1e-5)
            // d/dlogp of −A·r = −A·r = 8 at r = 4, A = −2.
            #expect(abs(grads[0].item() - expectedGrad) < 1e-4)
        }
        let stats = clippedSurrogateLoss(logProbs: Tensor([0, Float(Foundation.log(4.0))]), oldLogProbs: Tensor([0, 0]),
                                         advantages: Tensor([1, 1]), clipLow: 0.2)
        #expect(stats.clipFraction == 0.5)
        #expect(abs(stats.approxKL - Float((3 - Foundation.log(4.0)) / 2)) < 1e-5)
    }

    @Test func valueLossClipping() {
        // V = 3, V_old = 1, G = 4, ε = 0.2: unclipped (3−4)² = 1; clipped (1.2 − 4)² = 7.84 → ½·7.84.
        let l = valueLoss(values: Tensor([3]), oldValues: Tensor([1]), returns: Tensor([4]), clip: 0.2)
        #expect(abs(l.item() - 3.92) < 1e-5)
        #expect(abs(valueLoss(values: Tensor([3]), oldValues: Tensor([1]), returns: Tensor([4]), clip: nil).item() - 0.5) < 1e-6)
    }

    @Test func klEstimatorsByHand() {
        let lr = Tensor([Float(Foundation.log(2.0))])
        #expect(abs(KLEstimator.k1(logRatio: lr).item() + 0.6931472) < 1e-6)
        #expect(abs(KLEstimator.k2(logRatio: lr).item() - 0.2402265) < 1e-6)
        #expect(abs(KLEstimator.k3(logRatio: lr).item() - (1 - 0.6931472)) < 1e-6)
    }

    @Test func tanhGaussianDensityIntegratesToOne() {
        // The log-density of a = 2·tanh(u) + 0.5, u ~ N(0.3, 0.8²), integrated over a ∈ (−1.5, 2.5).
        let mean: Float = 0.3, logStd = Float(Foundation.log(0.8))
        let n = 20_000
        let u = (1..<n).map { i in Float(atanh((-1.5 + 4 * Double(i) / Double(n) - 0.5) / 2)) }
        let lp = tanhNormalLogProb(preTanh: Tensor(u), mean: Tensor(repeating: mean, shape: [u.count]),
                                   logStd: Tensor(repeating: logStd, shape: [u.count])).scalars
        let total = lp.reduce(0.0) { $0 + Foundation.exp(Double($1) - Foundation.log(2.0)) * 4 / Double(n) }
        #expect(abs(total - 1) < 2e-3, "∫ p(a) da = \(total)")
        // And the sampler's log-prob equals the formula at its own sample.
        var rng = RandomGenerator(seed: 1)
        let dist = TanhGaussian(mean: Tensor(shape: [1, 1], values: [mean]), logStd: Tensor(shape: [1, 1], values: [logStd]), scale: [2], bias: [0.5])
        let (action, logProb) = dist.sample(using: &rng)
        let pre = atanh((Double(action.item()) - 0.5) / 2)
        let z = (pre - Double(mean)) / 0.8
        let expected = -0.5 * z * z - Foundation.log(0.8) - 0.5 * Foundation.log(2 * .pi) - Foundation.log(1 - tanh(pre) * tanh(pre)) - Foundation.log(2.0)
        #expect(abs(Double(logProb.item()) - expected) < 1e-4)
    }

    @Test func polyakUpdateMixesParameters() {
        var rng = RandomGenerator(seed: 1)
        let a = Linear(inputCount: 2, outputCount: 2, using: &rng), b = Linear(inputCount: 2, outputCount: 2, using: &rng)
        let before = a.weight.scalars, source = b.weight.scalars
        polyakUpdate(target: a, source: b, tau: 0.25)
        for i in 0..<4 { #expect(abs(a.weight.scalars[i] - (0.25 * source[i] + 0.75 * before[i])) < 1e-6) }
        polyakUpdate(target: a, source: b, tau: 1)
        #expect(a.weight.scalars == source)
    }

    @Test func replayBufferRingAndSampling() {
        var buffer = ReplayBuffer(capacity: 3, observationSize: 1)
        for i in 0..<5 { buffer.add(observation: [Float(i)], action: [0], reward: Float(i), nextObservation: [Float(i + 1)], terminated: i == 4) }
        #expect(buffer.count == 3)
        var rng = RandomGenerator(seed: 2)
        let batch = buffer.sample(50, using: &rng)
        #expect(Set(batch.rewards.scalars).isSubset(of: [2, 3, 4]))
        for (r, next) in zip(batch.rewards.scalars, batch.nextObservations.scalars) { #expect(next == r + 1) }
    }

    @Test func explainedVarianceAndNormalization() {
        #expect(explainedVariance(predicted: [1, 2, 3], target: [1, 2, 3]) == 1)
        #expect(abs(explainedVariance(predicted: [2, 2, 2], target: [1, 2, 3])) < 1e-6)
        let n = normalized([1, 2, 3])
        #expect(abs(n[0] + 1) < 1e-6 && abs(n[2] - 1) < 1e-6)
        #expect(discountedReturns([1, 1, 1], gamma: 0.5) == [1.75, 1.5, 1])
    }
}

@Suite("Deep RL learning") struct DeepLearningTests {
    @Test(.tags(.learning), .enabled(if: LearningRuns.enabled, LearningRuns.reason))
    func shortPPOBeatsRandomOnCartPole() throws {
        var config = PPOConfig()
        config.totalTimesteps = 50_000
        config.seed = 1
        let (agent, result) = try PPO.train(environmentID: "CartPole-v1", config: config)
        let late = recentMeanReturn(result.episodes, last: 20) ?? 0
        #expect(late >= 150, "mean of the last 20 episodes \(late) (random play ≈ 22)")
        // save → load → identical actions.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ppo-\(UUID().uuidString)")
        try Checkpoint.save(model: agent, optimizer: nil, step: result.globalSteps, to: url)
        let env = try Registry.make("CartPole-v1")
        let restored = ActorCriticAgent(observationSize: 4, actionSpace: env.actionSpace, seed: 99)
        try Checkpoint.restore(model: restored, optimizer: nil, from: url)
        var rng = RandomGenerator(seed: 5)
        for _ in 0..<50 {
            let obs = env.observationSpace.sample(using: &rng).map { Swift.min(Swift.max($0, -3), 3) }
            #expect(agent.deterministicAction(obs) == restored.deterministicAction(obs))
        }
    }

    @Test(.tags(.learning), .enabled(if: LearningRuns.enabled, LearningRuns.reason))
    func shortSACImprovesOnPendulum() throws {
        var config = SACConfig()
        // A small, fast setting (release: about 1 s) that learns within the budget.
        config.totalTimesteps = 4_000
        config.learningStarts = 300
        config.hiddenSizes = [32, 32]
        config.batchSize = 64
        config.policyLearningRate = 3e-3
        config.qLearningRate = 3e-3
        config.seed = 1
        let (_, result) = try SAC.train(environmentID: "Pendulum-v1", config: config)
        let first = result.episodes.prefix(3).reduce(0) { $0 + $1.episodeReturn } / 3
        let last = result.episodes.suffix(3).reduce(0) { $0 + $1.episodeReturn } / 3
        #expect(last > first + 300, "first episodes \(first), last \(last)")
    }

    @Test(.tags(.learning), .enabled(if: LearningRuns.enabled, LearningRuns.reason))
    func dqnAndA2CLearnSomethingQuickly() throws {
        var dqn = DQNConfig()
        dqn.totalTimesteps = 20_000
        dqn.learningStarts = 1_000
        dqn.explorationFraction = 0.3
        dqn.trainFrequency = 4
        let (_, dqnResult) = try DQN.train(environmentID: "CartPole-v1", config: dqn)
        #expect((recentMeanReturn(dqnResult.episodes, last: 10) ?? 0) > 60)
        var a2c = A2CConfig()
        a2c.totalTimesteps = 40_000
        let (_, a2cResult) = try A2C.train(environmentID: "CartPole-v1", config: a2c)
        #expect((recentMeanReturn(a2cResult.episodes, last: 20) ?? 0) > 60)
    }

    @Test func sameSeedSameRun() throws {
        var config = PPOConfig()
        config.totalTimesteps = 4096
        let a = try PPO.train(environmentID: "CartPole-v1", config: config).result.episodes
        let b = try PPO.train(environmentID: "CartPole-v1", config: config).result.episodes
        #expect(a == b)
    }
}

@Suite("PPO rollout storage") struct PPORolloutStorageTests {
    /// CleanRL stores the normalized observation the policy acted on; re-normalizing raw ones with
    /// end-of-rollout statistics would make the first minibatch's ratio differ from 1 before any update.
    @Test func theFirstMinibatchRatioIsOneWithObservationNormalization() throws {
        var config = PPOConfig.continuous
        config.totalTimesteps = 256
        config.numSteps = 256
        config.numMinibatches = 1
        config.updateEpochs = 1
        config.learningRate = 0
        config.annealLearningRate = false
        var metrics: [String: Double] = [:]
        _ = try PPO.train(environmentID: "Pendulum-v1", config: config, onMetrics: { _, values in
            for (name, value) in values { metrics[name] = value }
        })
        let oldKL = try #require(metrics["losses/old_approx_kl"]), clip = try #require(metrics["losses/clipfrac"])
        #expect(abs(oldKL) < 1e-7 && clip == 0, "old_approx_kl \(oldKL), clipfrac \(clip)")
    }
}
