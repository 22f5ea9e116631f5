// PPO parity with CleanRL (issue 23). scripts/make_cleanrl_parity_fixtures.py mirrors cleanrl/ppo.py
// and ppo_continuous_action.py from the collected rollout on (GAE with CleanRL's dones[t + 1]
// bookkeeping, the flattening, one update of shuffled mini-batches over several epochs) in float64 on
// a fixed agent (CleanRL's Agent with width 8) and rollout; these tests load the same weights into
// Nudge's ActorCriticAgent and drive PPO.rolloutAdvantages and PPO.update (what PPO.train runs each
// iteration) with the same rollout and mini-batch order, comparing advantages, returns, every
// statistic CleanRL logs and every parameter after the update to 1e-5 relative (1e-6 absolute).
// CleanRL's done = terminated or truncated, so the rollout's ended steps are terminal here
// (Nudge's bootstrapTruncation only differs on truncations).

import NudgePolicyGradient
import Foundation
import Testing
@testable import NudgeRL
import NudgeNN
import NudgeTensor

private func cleanRLFixture() throws -> [[String: Any]] {
    let url = try #require(Bundle.module.url(forResource: "cleanrl_ppo", withExtension: "json", subdirectory: "Fixtures/parity"))
    let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    return root["cases"] as! [[String: Any]]
}

private func doubles(_ v: Any?) -> [Double] { (v as? [NSNumber])?.map(\.doubleValue) ?? [] }
private func floats(_ v: Any?) -> [Float] { doubles(v).map(Float.init) }

/// |a − e| ≤ 1e-5·|e| or ≤ 1e-6; returns the relative difference (the absolute one near 0).
@discardableResult
private func expectClose(_ actual: Double, _ expected: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> Double {
    let diff = abs(actual - expected)
    #expect(diff <= 1e-5 * abs(expected) || diff <= 1e-6, "\(what): Nudge \(actual) vs CleanRL \(expected)", sourceLocation: sourceLocation)
    return abs(expected) < 1e-6 ? diff : diff / abs(expected)
}

@Suite("CleanRL PPO parity") struct CleanRLPPOParityTests {
    static func caseNames() throws -> [String] { try cleanRLFixture().map { $0["name"] as! String } }

    /// CleanRL's layers (weight rows = outputs, as torch) into an MLP.
    static func load(_ layers: [[String: Any]], into mlp: MLP) {
        for (layer, spec) in zip(mlp.layers, layers) {
            let shape = spec["shape"] as! [Int]
            layer.weight.assign(Tensor(shape: shape, values: floats(spec["weight"])))
            layer.bias!.assign(Tensor(floats(spec["bias"])))
        }
    }

    @Test(arguments: try caseNames())
    func ppoUpdateMatchesCleanRL(_ name: String) throws {
        let c = try #require(try cleanRLFixture().first { $0["name"] as? String == name })
        let continuous = c["continuous"] as! Bool
        let obsDim = c["obs_dim"] as! Int, actionDim = c["action_dim"] as! Int, hidden = c["hidden"] as! Int
        let n = c["num_envs"] as! Int, steps = c["num_steps"] as! Int
        var config = PPOConfig()
        config.numEnvs = n
        config.numSteps = steps
        config.numMinibatches = c["num_minibatches"] as! Int
        config.updateEpochs = c["update_epochs"] as! Int
        config.learningRate = Float(c["learning_rate"] as! Double)
        config.gamma = Float(c["gamma"] as! Double)
        config.gaeLambda = Float(c["gae_lambda"] as! Double)
        config.clipCoefficient = Float(c["clip_coef"] as! Double)
        config.entropyCoefficient = Float(c["ent_coef"] as! Double)
        config.valueCoefficient = Float(c["vf_coef"] as! Double)
        config.maxGradNorm = Float(c["max_grad_norm"] as! Double)
        config.normalizeAdvantages = c["norm_adv"] as! Bool
        config.clipValueLoss = c["clip_vloss"] as! Bool
        config.bootstrapTruncation = false  // CleanRL: done = terminated or truncated
        config.hiddenSizes = [hidden, hidden]
        let space: Space = continuous ? .box(low: Array(repeating: -1, count: actionDim), high: Array(repeating: 1, count: actionDim), shape: [actionDim])
            : .discrete(n: actionDim)
        let agent = ActorCriticAgent(observationSize: obsDim, actionSpace: space, hidden: config.hiddenSizes, seed: 0)
        let initial = c["initial"] as! [String: Any]
        Self.load(initial["actor"] as! [[String: Any]], into: agent.actor)
        Self.load(initial["critic"] as! [[String: Any]], into: agent.critic)
        if continuous { agent.logStd!.assign(Tensor(floats(initial["actor_logstd"]))) }

        // The rollout, row-major t·n + e as CleanRL flattens it.
        let observations = (c["observations"] as! [[NSNumber]]).map { $0.map(\.floatValue) }
        #expect(observations.count == n * steps && observations.allSatisfy { $0.count == obsDim })
        let ended = doubles(c["step_done"]).map { $0 != 0 }
        let nextObs = (c["next_obs"] as! [[NSNumber]]).map { $0.map(\.floatValue) }
        // Nudge's own values and log-probs of the rollout must be CleanRL's (same weights).
        let values = withoutGradients { agent.value(agent.prepare(observations)).scalars }
        let last = withoutGradients { agent.value(agent.prepare(nextObs)).scalars }
        let logProbs = floats(c["logprobs"])
        var worst = 0.0
        for (i, e) in doubles(c["values"]).enumerated() { worst = max(worst, expectClose(Double(values[i]), e, "\(name) value[\(i)]")) }
        let (advantages, returns) = PPO.rolloutAdvantages(rewards: floats(c["rewards"]), values: floats(c["values"]), lastValues: last,
                                                          nextValues: Array(repeating: 0, count: n * steps), terminated: ended, ended: ended,
                                                          envs: n, config: config)
        let expected = c["expected"] as! [String: Any]
        for (i, e) in doubles(expected["advantages"]).enumerated() { worst = max(worst, expectClose(Double(advantages[i]), e, "\(name) advantage[\(i)]")) }
        for (i, e) in doubles(expected["returns"]).enumerated() { worst = max(worst, expectClose(Double(returns[i]), e, "\(name) return[\(i)]")) }

        let batch = PPOBatch(observations: observations, discreteActions: continuous ? [] : (c["actions"] as! [Int]),
                             continuousActions: continuous ? floats(c["actions"]) : [], logProbs: logProbs, values: floats(c["values"]),
                             advantages: advantages, returns: returns)
        let optimizer = Adam(learningRate: config.learningRate, eps: 1e-5)
        var orders = (c["orders"] as! [[Int]]).makeIterator()
        let stats = PPO.update(agent: agent, optimizer: optimizer, batch: batch, config: config) { indices in
            // CleanRL's np.random.shuffle of each epoch, as recorded.
            indices = orders.next()!
        }
        let logged: [(String, Float)] = [
            ("losses/value_loss", stats.valueLoss), ("losses/policy_loss", stats.policyLoss), ("losses/entropy", stats.entropy),
            ("losses/old_approx_kl", stats.oldApproxKL), ("losses/approx_kl", stats.approxKL), ("losses/clipfrac", stats.clipFraction),
            ("losses/explained_variance", explainedVariance(predicted: floats(c["values"]), target: returns)),
        ]
        for (key, value) in logged {
            worst = max(worst, expectClose(Double(value), try #require(expected[key] as? Double), "\(name) \(key)"))
        }
        // Every parameter after the update.
        let updated = expected["updated"] as! [String: Any]
        for (part, mlp) in [("actor", agent.actor), ("critic", agent.critic)] {
            for (l, (layer, spec)) in zip(mlp.layers, updated[part] as! [[String: Any]]).enumerated() {
                for (i, e) in doubles(spec["weight"]).enumerated() {
                    worst = max(worst, expectClose(Double(layer.weight.scalars[i]), e, "\(name) \(part)[\(l)].weight[\(i)]"))
                }
                for (i, e) in doubles(spec["bias"]).enumerated() {
                    worst = max(worst, expectClose(Double(layer.bias!.scalars[i]), e, "\(name) \(part)[\(l)].bias[\(i)]"))
                }
            }
        }
        if continuous {
            for (i, e) in doubles(updated["actor_logstd"]).enumerated() {
                worst = max(worst, expectClose(Double(agent.logStd!.scalars[i]), e, "\(name) actor_logstd[\(i)]"))
            }
        }
        print("parity cleanrl ppo \(name): max relative difference \(worst)")
    }
}
