// The direct preference optimization family (Rafailov et al. 2023, eq. 7), as TRL computes it, on summed (or,
// where the method says so, length-averaged) completion log-probs:
//   DPO (Rafailov et al. 2023)       −log σ(β·h),  h = (log π_w − log π_ref,w) − (log π_l − log π_ref,l)
//   cDPO (label smoothing ε)         −(1 − ε)·log σ(β·h) − ε·log σ(−β·h)
//   robust DPO (Chowdhury et al.)    [−(1 − ε)·log σ(β·h) + ε·log σ(−β·h)] / (1 − 2ε)
//   hinge (SLiC)                     max(0, 1 − β·h)
//   IPO (Azar et al. 2023)           (h − 1/(2β))², on length-averaged log-probs
//   RPO (Pang et al. 2024)           DPO + α·NLL(chosen)   (NLL: one token mean over the batch's chosen tokens)
//   KTO (Ethayarajh et al. 2024)     unpaired: λ_D·(1 − σ(β(r − z))) or λ_U·(1 − σ(β(z − r))), z = max(0, KL̂)
//   SimPO (Meng et al. 2024)         −log σ(β·(log π_w/|w| − log π_l/|l|) − γ), reference-free
//   CPO (Xu et al. 2024)             −log σ(β·(log π_w − log π_l)) + λ·NLL(chosen), reference-free
//   ORPO (Hong et al. 2024)          NLL(chosen) − λ·log σ(log odds_w − log odds_l), odds = p/(1 − p), p = exp(mean log π)
//                                    (TRL: the NLL over the chosen rows' whole sequences, prompt included)
// Implicit rewards β·(log π − log π_ref) give TRL's metrics; SimPO and ORPO report them, and logps/*,
// on length-averaged log-probs as TRL does.

import Foundation
import NudgeTensor

/// Which preference loss.
public enum PreferenceLoss: Sendable, Equatable {
    case sigmoid(labelSmoothing: Float = 0)
    case robust(labelSmoothing: Float)
    case hinge
    case ipo
    /// DPO plus α times the chosen completions' negative log-likelihood per token.
    case rpo(alpha: Float)
    /// SimPO's target margin γ (reference-free; log-probs are length-averaged).
    case simpo(gamma: Float)
    /// CPO's behaviour-cloning weight λ (reference-free).
    case cpo(lambda: Float)
    /// ORPO's odds-ratio weight λ (reference-free; log-probs are length-averaged; β only scales
    /// the reported rewards).
    case orpo(lambda: Float)

    /// Whether the NLL term runs over the chosen rows' whole sequences (ORPO in TRL) rather than
    /// their completions.
    public var nllOverSequences: Bool {
        if case .orpo = self { return true }
        return false
    }

    /// Whether the loss ignores the reference model.
    public var isReferenceFree: Bool {
        switch self {
        case .simpo, .cpo, .orpo: true
        default: false
        }
    }
}

/// A batch of paired completions' log-probabilities.
public struct PairedLogProbs {
    /// Σ log π(chosen tokens) per pair (B).
    public var chosen: Tensor
    public var rejected: Tensor
    /// The same under the frozen reference (ignored by reference-free losses).
    public var referenceChosen: Tensor?
    public var referenceRejected: Tensor?
    /// Completion lengths in tokens (for length-normalized losses and the NLL terms).
    public var chosenLengths: [Int]
    public var rejectedLengths: [Int]
    /// The NLL term when the trainer computed it over more than the completions (ORPO's whole chosen
    /// sequences); nil: −Σ chosen / Σ chosen lengths, one token mean over the batch.
    public var chosenNLL: Tensor?

    public init(chosen: Tensor, rejected: Tensor, referenceChosen: Tensor?, referenceRejected: Tensor?,
                chosenLengths: [Int], rejectedLengths: [Int], chosenNLL: Tensor? = nil) {
        self.chosenNLL = chosenNLL
        self.chosen = chosen
        self.rejected = rejected
        self.referenceChosen = referenceChosen
        self.referenceRejected = referenceRejected
        self.chosenLengths = chosenLengths
        self.rejectedLengths = rejectedLengths
    }
}

/// TRL's DPO metrics.
public struct PreferenceMetrics: Sendable {
    public var loss: Float
    /// rewards/chosen: mean β·(log π_w − log π_ref,w).
    public var rewardsChosen: Float
    public var rewardsRejected: Float
    /// rewards/margins.
    public var rewardsMargins: Float
    /// rewards/accuracies: fraction with a larger chosen reward.
    public var rewardsAccuracies: Float
    /// logps/chosen, logps/rejected: mean summed log-probs.
    public var logpsChosen: Float
    public var logpsRejected: Float
    /// DPOTrainer's token statistics, which need the logits (`preferenceLoss` sees only log-probs;
    /// `DPOTrainer` fills them for the losses TRL's DPOTrainer computes, NaN otherwise and then not
    /// in `named`): the policy's mean entropy over all completion tokens (chosen and rejected)...
    public var entropy: Float = .nan
    /// ... the mean over the chosen (rejected) completion tokens of the logits' mean over the
    /// vocabulary at the position predicting them (logits/chosen, logits/rejected) ...
    public var logitsChosen: Float = .nan
    public var logitsRejected: Float = .nan
    /// ... and the fraction of chosen completion tokens that are the policy's top-1 prediction.
    public var meanTokenAccuracy: Float = .nan

    /// As (name, value) pairs with TRL's names.
    public var named: [(String, Double)] {
        var out: [(String, Double)] = [
            ("loss", Double(loss)), ("rewards/chosen", Double(rewardsChosen)), ("rewards/rejected", Double(rewardsRejected)),
            ("rewards/margins", Double(rewardsMargins)), ("rewards/accuracies", Double(rewardsAccuracies)),
            ("logps/chosen", Double(logpsChosen)), ("logps/rejected", Double(logpsRejected))]
        for (name, value) in [("entropy", entropy), ("logits/chosen", logitsChosen), ("logits/rejected", logitsRejected),
                              ("mean_token_accuracy", meanTokenAccuracy)] where value.isFinite {
            out.append((name, Double(value)))
        }
        return out
    }

    /// The named metrics as one JSON object with sorted keys.
    public func json() throws -> String {
        let data = try JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: named), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// The named metrics, one `name: value` line each.
    public var summary: String { named.map { String(format: "%@: %.5f", $0.0, $0.1) }.joined(separator: "\n") }
}

/// Each pair's loss of `kind` at strength β (B): what `preferenceLoss` averages, for callers that
/// weight pairs (e.g. by how often each was sampled). Batch-level terms (the NLL of RPO, CPO and
/// ORPO, one token mean over the batch) are added to every pair, so the mean is unchanged.
public func preferencePairLosses(_ kind: PreferenceLoss, beta: Float, _ p: PairedLogProbs) -> Tensor {
    let chosenLength = Tensor(p.chosenLengths.map { Float(Swift.max($0, 1)) })
    let rejectedLength = Tensor(p.rejectedLengths.map { Float(Swift.max($0, 1)) })
    let referenceFree = kind.isReferenceFree
    let refChosen = referenceFree ? Tensor.zeros(p.chosen.shape) : (p.referenceChosen ?? Tensor.zeros(p.chosen.shape))
    let refRejected = referenceFree ? Tensor.zeros(p.rejected.shape) : (p.referenceRejected ?? Tensor.zeros(p.rejected.shape))
    let h = (p.chosen - refChosen) - (p.rejected - refRejected)
    // TRL's cross-entropy over all chosen tokens of the batch: a token-weighted mean, not a mean of means.
    let nllChosen = p.chosenNLL ?? p.chosen.sum() * (-1 / Float(Swift.max(p.chosenLengths.reduce(0, +), 1)))
    switch kind {
    case .sigmoid(let eps):
        let agree: Tensor = (h * beta).logSigmoid() * (eps - 1)
        let disagree: Tensor = (h * -beta).logSigmoid() * eps
        return agree - disagree
    case .robust(let eps):
        let agree: Tensor = (h * beta).logSigmoid() * (eps - 1)
        let disagree: Tensor = (h * -beta).logSigmoid() * eps
        return (agree + disagree) * (1 / (1 - 2 * eps))
    case .hinge:
        return (1 - h * beta).relu()
    case .ipo:
        let averaged = (p.chosen - refChosen) / chosenLength - (p.rejected - refRejected) / rejectedLength
        return (averaged - 1 / (2 * beta)).square()
    case .rpo(let alpha):
        return -(h * beta).logSigmoid() + nllChosen * alpha
    case .simpo(let gamma):
        let margin = p.chosen / chosenLength - p.rejected / rejectedLength
        return -(margin * beta - gamma).logSigmoid()
    case .cpo(let lambda):
        return -((p.chosen - p.rejected) * beta).logSigmoid() + nllChosen * lambda
    case .orpo(let lambda):
        return orpoPairLosses(chosenAverage: p.chosen / chosenLength, rejectedAverage: p.rejected / rejectedLength, lambda: lambda,
                              nll: nllChosen)
    }
}

/// The loss of `kind` at strength β over a batch of pairs, and its metrics: the mean of
/// `preferencePairLosses` (TRL's `per_sequence_loss.mean()`).
public func preferenceLoss(_ kind: PreferenceLoss, beta: Float, _ p: PairedLogProbs) -> (loss: Tensor, metrics: PreferenceMetrics) {
    let chosenLength = Tensor(p.chosenLengths.map { Float(Swift.max($0, 1)) })
    let rejectedLength = Tensor(p.rejectedLengths.map { Float(Swift.max($0, 1)) })
    let referenceFree = kind.isReferenceFree
    let refChosen = referenceFree ? Tensor.zeros(p.chosen.shape) : (p.referenceChosen ?? Tensor.zeros(p.chosen.shape))
    let refRejected = referenceFree ? Tensor.zeros(p.rejected.shape) : (p.referenceRejected ?? Tensor.zeros(p.rejected.shape))
    let chosenRatio = p.chosen - refChosen, rejectedRatio = p.rejected - refRejected
    let losses = preferencePairLosses(kind, beta: beta, p)
    let loss = losses.mean()
    // SimPO and ORPO score length-averaged log-probs, and TRL reports those.
    let averaged: Bool
    switch kind {
    case .simpo, .orpo: averaged = true
    default: averaged = false
    }
    let metricChosen = averaged ? p.chosen / chosenLength : p.chosen, metricRejected = averaged ? p.rejected / rejectedLength : p.rejected
    let metrics = withoutGradients { () -> PreferenceMetrics in
        let rc = averaged ? (metricChosen * beta).scalars : (chosenRatio * beta).scalars
        let rr = averaged ? (metricRejected * beta).scalars : (rejectedRatio * beta).scalars
        let n = Float(Swift.max(rc.count, 1))
        return PreferenceMetrics(
            loss: loss.item(), rewardsChosen: rc.reduce(0, +) / n, rewardsRejected: rr.reduce(0, +) / n,
            rewardsMargins: zip(rc, rr).reduce(0) { $0 + ($1.0 - $1.1) } / n,  // each pair's margin first, as TRL
            rewardsAccuracies: Float(zip(rc, rr).filter { $0 > $1 }.count) / n,
            logpsChosen: metricChosen.scalars.reduce(0, +) / n, logpsRejected: metricRejected.scalars.reduce(0, +) / n)
    }
    return (loss, metrics)
}

/// ORPO's loss from length-averaged log-probs: NLL(chosen) − λ·mean log σ(log odds_w − log odds_l);
/// `nll` defaults to the mean of −`chosenAverage`.
public func orpoLoss(chosenAverage: Tensor, rejectedAverage: Tensor, lambda: Float, nll: Tensor? = nil) -> Tensor {
    orpoPairLosses(chosenAverage: chosenAverage, rejectedAverage: rejectedAverage, lambda: lambda, nll: nll ?? -chosenAverage.mean()).mean()
}

/// ORPO's per-pair loss, NLL − λ·log σ(log odds_w − log odds_l), the NLL (a batch scalar) added to each.
func orpoPairLosses(chosenAverage: Tensor, rejectedAverage: Tensor, lambda: Float, nll: Tensor) -> Tensor {
    // log odds = log p − log(1 − p) with log p the average log-prob (< 0); log1mexp keeps the digits
    // that log1p(−eˣ) loses near 0 (a confident model's average log-prob).
    func logOdds(_ lp: Tensor) -> Tensor { lp - lp.log1mexp() }
    return nll - (logOdds(chosenAverage) - logOdds(rejectedAverage)).logSigmoid() * lambda
}

/// KTO's loss for unpaired completions: `logRatios` = log π − log π_ref per completion,
/// `desirable` its label, `klEstimate` the batch's reference point z (detached, clamped at 0).
public func ktoLoss(logRatios: Tensor, desirable: [Bool], klEstimate: Float, beta: Float,
                    desirableWeight: Float = 1, undesirableWeight: Float = 1) -> Tensor {
    let z = Swift.max(klEstimate, 0)
    let sign = Tensor(desirable.map { $0 ? Float(1) : -1 })
    let weight = Tensor(desirable.map { $0 ? desirableWeight : undesirableWeight })
    // Desirable: 1 − σ(β(r − z)); undesirable: 1 − σ(β(z − r)).
    return ((1 - ((logRatios - z) * sign * beta).sigmoid()) * weight).mean()
}
