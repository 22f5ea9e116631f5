// Token log-probabilities of given completions, the quantity every post-training loss is built on
// (DPO's log-ratios, PPO's and GRPO's ratios, KL to the reference): logits at position t − 1 score
// token t (the one-position shift), only completion tokens count (EOS included when it is part of
// the completion), padding never does. Uses the fused log-softmax-and-gather op, so no (B, T, V)
// log-softmax is materialized.

import Foundation
import NudgeTensor

/// Per-token and summed log-probabilities of the tokens marked in `completionMask`.
public struct CompletionLogProbs {
    /// (B, T − 1): log p(token t | tokens < t) at index t − 1, 0 where not part of a completion.
    public var perToken: Tensor
    /// (B): the sum over each completion.
    public var sums: Tensor
    /// (B, T − 1) 0/1 mask of the counted positions.
    public var mask: Tensor
}

/// Log-probabilities of completion tokens under `model`, with the logits divided by `temperature`
/// (as sampling used it). `completionMask[b][t]` marks tokens of the completion (the prompt and
/// padding are false); the first token can never be scored.
public func completionLogProbs(
    model: any CausalLanguageModel, batch: TokenBatch, completionMask: [[Bool]], temperature: Float = 1
) -> CompletionLogProbs {
    let logits = model(batch)  // (B, T, V)
    return completionLogProbs(logits: logits, ids: batch.ids, completionMask: completionMask, temperature: temperature)
}

/// The same from precomputed logits: (B, T, V), or (B, k, V) of the last k positions only
/// (`logits(_:keepingLast:)`) when no completion token comes before position T − k + 1; the result
/// is (B, T − 1) either way, 0 before the kept positions.
public func completionLogProbs(logits: Tensor, ids: [[Int]], completionMask: [[Bool]], temperature: Float = 1) -> CompletionLogProbs {
    let (b, k, v) = (logits.shape[0], logits.shape[1], logits.shape[2])
    let t = ids.first?.count ?? 0
    precondition(ids.count == b && completionMask.count == b && ids.allSatisfy { $0.count == t } && k <= t && k >= 1,
                 "completionLogProbs: ids and mask must be (B, T) with T ≥ the logits' positions")
    let offset = t - k
    precondition(offset == 0 || completionMask.allSatisfy { !$0.prefix(offset + 1).contains(true) },
                 "completionLogProbs: a completion token precedes the kept logits")
    let shifted = logits.slice(axis: 1, 0..<(k - 1)).reshaped([b * (k - 1), v])
    let scaled = temperature == 1 ? shifted : shifted * (1 / temperature)
    let targets = ids.flatMap { $0.dropFirst(offset + 1) }
    let mask = Tensor(shape: [b, t - 1], values: completionMask.flatMap { $0.dropFirst().map { $0 ? Float(1) : 0 } })
    var kept = selectedLogProbabilities(logits: scaled, targets: targets).reshaped([b, k - 1])
    if offset > 0 { kept = kept.padded(axis: 1, before: offset, after: 0) }
    let perToken = kept * mask
    return CompletionLogProbs(perToken: perToken, sums: perToken.sum(axis: 1), mask: mask)
}

/// The causal-LM (SFT) loss: mean cross-entropy of the next token over the positions whose target
/// is marked in `lossMask` (all tokens after the first when nil), as Hugging Face computes it.
public func causalLanguageModelLoss(logits: Tensor, ids: [[Int]], lossMask: [[Bool]]? = nil) -> Tensor {
    let (b, t, v) = (logits.shape[0], logits.shape[1], logits.shape[2])
    let targets = ids.enumerated().flatMap { r, row in
        row.indices.dropFirst().map { i in (lossMask?[r][i] ?? true) ? row[i] : -100 }
    }
    return crossEntropy(logits: logits.slice(axis: 1, 0..<(t - 1)).reshaped([b * (t - 1), v]), targets: targets, ignoreIndex: -100)
}
