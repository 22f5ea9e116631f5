// Periodic evaluation during training (Stable-Baselines3's EvalCallback): every `every` environment
// steps, and once more when the step budget is spent, the agent's deterministic policy plays
// `episodes` episodes of a separate copy of the environment, without the training wrappers and from
// a fixed seed, so every evaluation sees the same episodes' starts. The mean return is logged as
// eval/mean_return; the agent with the best mean so far is written to a checkpoint directory (a
// run's checkpoints/best), atomically. Evaluation touches neither the training environments nor the
// sampling generator, so a resumed run evaluates exactly as the uninterrupted one does.

import Foundation
import NudgeNN
import NudgePolicyGradient

/// Evaluates a training agent now and then and keeps the best one.
public final class PeriodicEvaluation {
    public let environmentID: String
    /// Environment steps between evaluations (0: only when the budget is spent).
    public let every: Int
    public let episodes: Int
    /// The evaluation environment's seed (the same for every evaluation).
    public let seed: UInt64
    /// Where the best agent is written (with `eval_mean_return`, `eval_episodes` and `step` in its metadata).
    public let directory: URL
    /// Extra metadata stored with the best agent (e.g. algorithm and env_id for `rl eval --best`).
    public var metadata: [String: String]
    /// The best mean return so far (nil before the first evaluation).
    public private(set) var best: Double?
    /// The step of the last evaluation (or of the checkpoint a run resumed from).
    public private(set) var evaluatedThrough = 0

    public init(environmentID: String, every: Int, episodes: Int, seed: UInt64, directory: URL, metadata: [String: String] = [:]) {
        precondition(every >= 0 && episodes >= 1, "evaluation needs every ≥ 0 and episodes ≥ 1")
        self.environmentID = environmentID
        self.every = every
        self.episodes = episodes
        self.seed = seed
        self.directory = directory
        self.metadata = metadata
    }

    /// Continues from a checkpoint taken at `step` whose best mean return was `best`.
    func resume(at step: Int, best: Double?) {
        evaluatedThrough = step
        self.best = best
    }

    /// Whether an evaluation is due at `step`: a multiple of `every` was crossed since the last
    /// one, or the budget is spent (`last`) and this step was not evaluated yet.
    public func isDue(step: Int, last: Bool) -> Bool {
        guard step > evaluatedThrough else { return false }
        return last || (every > 0 && step / every > evaluatedThrough / every)
    }

    /// Evaluates `agent` at `step`, keeps it in `directory` when it is the best so far (unless
    /// `save` is false) and returns the metrics to log.
    func evaluate(_ agent: Module, step: Int, save: Bool) throws -> [(String, Double)] {
        guard let act = deterministicPolicy(of: agent) else {
            throw EnvironmentError.invalidArgument("no deterministic policy for a \(type(of: agent))")
        }
        let returns = try NudgeRL.evaluate(env: try Registry.make(environmentID), episodes: episodes, seed: seed, act: act)
        evaluatedThrough = step
        let (mean, variance) = meanAndVariance(returns, correction: 0)
        let std = variance.squareRoot()
        if save && mean > (best ?? -.infinity) {
            best = mean
            var meta = metadata
            meta["eval_mean_return"] = String(mean)
            meta["eval_episodes"] = String(episodes)
            try Checkpoint.save(model: agent, optimizer: nil, step: step, to: directory, metadata: meta)
        }
        return [("eval/mean_return", mean), ("eval/std_return", std), ("eval/best_mean_return", best ?? mean)]
    }
}

/// The deterministic policy of a trained agent: the greedy action of a Q-network, the mean action
/// of a SAC actor, the argmax or Gaussian mean of an actor-critic; nil for any other module.
public func deterministicPolicy(of agent: Module) -> (([Float]) -> ActionValue)? {
    if let q = agent as? QNetwork { return { .discrete(q.greedyAction($0)) } }
    if let actor = agent as? SACActor { return { .continuous(actor.deterministicAction($0)) } }
    if let agent = agent as? ActorCriticAgent { return { agent.deterministicAction($0) } }
    return nil
}
