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

/// The causal-LM (SFT) loss of `model` on `input`, equal to `causalLanguageModelLoss(logits:…)` on
/// its logits. When the head is plain and at most three quarters of the positions are scored (a
/// completion-only loss), the head runs fused with log-softmax on the scored positions only
/// (`linearSelectedLogProbabilities`): prompt and padding positions never reach the 49k–152k-wide
/// head, and no (B, T, V) logits are held. Fused costs four head products per scored position
/// (one recomputed in backward) against three per position, hence the three quarters.
/// `fused` forces the choice.
public func causalLanguageModelLoss(model: any CausalLanguageModel, input: TokenBatch, lossMask: [[Bool]]? = nil,
                                    fused: Bool? = nil) -> Tensor {
    let ids = input.ids
    let (b, t) = (ids.count, input.length)
    let targets = ids.enumerated().flatMap { r, row in
        row.indices.dropFirst().map { i in (lossMask?[r][i] ?? true) ? row[i] : -1 }
    }
    let scored = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
    guard let weight = model.plainHeadWeight, scored > 0,
          fused ?? (FusedHead.forced ?? (4 * scored <= 3 * b * (t - 1) || FusedHead.use(positions: b * (t - 1), vocabulary: weight.shape[0])))
    else {
        return causalLanguageModelLoss(logits: model(input), ids: ids, lossMask: lossMask)
    }
    let hidden = model.finalHiddenStates(input)  // (B, T, H)
    let rows = hidden.slice(axis: 1, 0..<(t - 1)).reshaped([b * (t - 1), hidden.shape[2]])
    let (selected, _) = linearSelectedLogProbabilities(hidden: rows, weight: weight, targets: targets)
    return selected.sum() * (-1 / Float(scored))
}

/// Completion log-probs (and optionally each scored position's entropy, in the same (B, T − 1)
/// frame, 0 elsewhere) from the last `k` positions of `input`, through the model's head fused with
/// log-softmax (`linearSelectedLogProbabilities`) when the head is plain: no (B, k, V) logits and
/// only completion positions go through the head. Other heads use `completionLogProbs(logits:…)`.
/// `fused` forces the choice (nil: `FusedHead.use`, by the size of the logits).
public func completionLogProbs(
    model: any CausalLanguageModel, input: TokenBatch, keepingLast k: Int, sharing: SharedPrefixes?,
    completionMask: [[Bool]], temperature: Float = 1, entropy: Bool = false, fused: Bool? = nil
) -> (logProbs: CompletionLogProbs, entropies: [Float]?) {
    let ids = input.ids
    let (b, t) = (ids.count, input.length)
    let mask = Tensor(shape: [b, t - 1], values: completionMask.flatMap { $0.dropFirst().map { $0 ? Float(1) : 0 } })
    guard let weight = model.plainHeadWeight, fused ?? FusedHead.use(positions: b * (k - 1), vocabulary: weight.shape[0]) else {
        let logits = model.logits(input, keepingLast: k, sharing: sharing)
        let result = completionLogProbs(logits: logits, ids: ids, completionMask: completionMask, temperature: temperature)
        return (result, entropy ? tokenEntropies(logits: logits, mask: mask.scalars, temperature: temperature) : nil)
    }
    let hidden = model.finalHiddenStates(input, keepingLast: k, sharing: sharing)  // (B, k, H)
    let offset = t - k
    precondition(offset == 0 || completionMask.allSatisfy { !$0.prefix(offset + 1).contains(true) },
                 "completionLogProbs: a completion token precedes the kept positions")
    // Position j of the kept frame scores token offset + j + 1; −1 skips positions outside completions.
    let targets = (0..<b).flatMap { r in (0..<(k - 1)).map { j in completionMask[r][offset + j + 1] ? ids[r][offset + j + 1] : -1 } }
    let scored = hidden.slice(axis: 1, 0..<(k - 1)).reshaped([b * (k - 1), hidden.shape[2]])
    let (selected, rowEntropies) = linearSelectedLogProbabilities(
        hidden: scored, weight: weight, targets: targets, scale: 1 / temperature, entropy: entropy)
    var perToken = selected.reshaped([b, k - 1])
    if offset > 0 { perToken = perToken.padded(axis: 1, before: offset, after: 0) }
    var entropies: [Float]?
    if entropy {
        var out = [Float](repeating: 0, count: b * (t - 1))
        for r in 0..<b { for j in 0..<(k - 1) { out[r * (t - 1) + offset + j] = rowEntropies[r * (k - 1) + j] } }
        entropies = out
    }
    return (CompletionLogProbs(perToken: perToken, sums: perToken.sum(axis: 1), mask: mask), entropies)
}

/// When `completionLogProbs(model:input:…)` uses the fused head. It recomputes the logits in the
/// backward pass (one more head product: SmolLM2's head on 2,048 positions, forward + backward,
/// 2.6 s fused against 1.9 s plain, 0.36 against 1.10 GB peak; `NudgeBench --only fusedhead`), so
/// it pays where the logits are large: from `minimumLogitBytes` of (positions × vocabulary) logits.
/// `NUDGE_FUSED_HEAD=1` always uses it, `=0` never.
public enum FusedHead {
    public static let minimumLogitBytes = 256 << 20
    /// `NUDGE_FUSED_HEAD`: 1 always fused, 0 never, unset by size.
    public static let forced: Bool? = ProcessInfo.processInfo.environment["NUDGE_FUSED_HEAD"].flatMap { $0 == "1" ? true : $0 == "0" ? false : nil }

    public static func use(positions: Int, vocabulary: Int) -> Bool {
        forced ?? (positions * vocabulary * MemoryLayout<Float>.size >= minimumLogitBytes)
    }
}

/// The entropy of each masked position's distribution in the shifted (B, T − 1) frame of `mask`,
/// from logits (B, T, V) or of the last k positions only (B, k, V); 0 elsewhere.
public func tokenEntropies(logits: Tensor, mask: [Float], temperature: Float) -> [Float] {
    let (b, k) = (logits.shape[0], logits.shape[1])
    let width = mask.count / Swift.max(b, 1), offset = width + 1 - k
    let entropies = withoutGradients { (temperature == 1 ? logits : logits * (1 / temperature)).categoricalEntropy().scalars }
    var out = [Float](repeating: 0, count: b * width)
    for r in 0..<b {
        for i in Swift.max(offset, 0)..<width where mask[r * width + i] != 0 { out[r * width + i] = entropies[r * k + i - offset] }
    }
    return out
}
