// RLAIF pair labelling: two samples of a policy per prompt, the judge's preferred one chosen, as
// `goldLabelledPairs` does with the hidden gold reward; ties and failed rows give no pair, and the
// failures are kept so the caller reports them with their rows.

import Foundation
import NudgeLM

/// Judge-labelled preference pairs and what the judge could not label.
public struct JudgeLabelledPairs {
    public var pairs: [DatasetRow] = []
    /// Pairs the judge called equal.
    public var ties = 0
    /// Rows without a verdict (their row is the index in the round's batch; `round` says which round).
    public var failures: [(round: Int, failure: JudgeFailure)] = []
}

/// Preference pairs for a reward model labelled by `judge`: per round, two samples of `policy` for each of
/// up to 256 prompts of `rows` (cycled, in order), judged as one batch (so an HTTP judge keeps its
/// requests in flight), until `count` pairs or `maxRounds` rounds.
public func judgeLabelledPairs(policy: any CausalLanguageModel, tokenizer: any Tokenizer, rows: [DatasetRow], count: Int, maxNewTokens: Int,
                               temperature: Float = 1, seed: UInt64, judge: any PairwiseJudge, maxRounds: Int? = nil) throws -> JudgeLabelledPairs {
    var result = JudgeLabelledPairs()
    let prompts = try onlinePrompts(rows: rows, tokenizer: tokenizer, limits: TokenLimits(model: policy), maxNewTokens: maxNewTokens)
    guard !prompts.isEmpty else { throw RunSetupError("judge labelling: no prompts in the rows") }
    var generation = GenerationConfig(tokenizer: tokenizer, maxNewTokens: maxNewTokens, temperature: temperature)
    let rounds = maxRounds ?? (20 + 4 * count / 256)
    var next = 0
    for round in 0..<rounds where result.pairs.count < count {
        generation.seed = seed &+ UInt64(round)
        let batch = (0..<min(256, 2 * (count - result.pairs.count))).map { k in prompts[(next + k) % prompts.count] }
        next += batch.count
        let rollout = try Rollout.sample(model: policy, tokenizer: tokenizer, prompts: batch, repeats: 2, generation: generation)
        let pairs = stride(from: 0, to: rollout.count, by: 2).map { JudgePair(first: rollout.samples[$0], second: rollout.samples[$0 + 1]) }
        for (pair, verdict) in zip(pairs, judge.judge(pairs)) where result.pairs.count < count {
            switch verdict {
            case .first, .second:
                let (chosen, rejected) = verdict == .first ? (pair.first, pair.second) : (pair.second, pair.first)
                result.pairs.append(.preference(prompt: .text(pair.prompt), chosen: .text(chosen.completion), rejected: .text(rejected.completion)))
            case .tie: result.ties += 1
            case .failed(let failure): result.failures.append((round, failure))
            }
        }
    }
    return result
}
