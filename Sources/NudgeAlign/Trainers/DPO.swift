// Direct preference optimization trainer (TRL's DPOTrainer): batches of (prompt, chosen, rejected)
// completions, summed completion log-probs under the policy and the reference, any loss of the
// DPO family, AdamW with clipping, TRL's metrics. The reference log-probs are computed once, before
// training, with the initial policy (or a given reference model), so no second copy of the weights
// is needed during training.

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

/// DPO hyperparameters (TRL's defaults: β 0.1, sigmoid loss).
public struct DPOConfig: Sendable {
    /// β of EQ R6.6: strength of the KL leash.
    public var beta: Float = 0.1
    public var loss: PreferenceLoss = .sigmoid()
    public var learningRate: Float = 1e-6
    public var epochs = 1
    public var batchSize = 8
    public var maxLength: Int? = 1024
    public var maxPromptLength: Int? = 512
    public var maxGradNorm: Float = 1
    public var seed: UInt64 = 0

    public init() {}
}

/// DPO training and evaluation.
public enum DPOTrainer {
    /// Summed completion log-probs of chosen and rejected rows, the completion lengths, and with
    /// `sequenceNLL` the chosen rows' mean next-token cross-entropy over their whole sequences
    /// (ORPO's NLL term in TRL: prompt and completion, padding excluded).
    static func logProbs(_ model: any CausalLanguageModel, _ pb: PreferenceBatch, sequenceNLL: Bool = false)
        -> (chosen: Tensor, rejected: Tensor, lengths: [Int], chosenNLL: Tensor?)
    {
        let b = pb.batch
        let input = TokenBatch(ids: b.inputIDs, attentionMask: b.attentionMask.map { $0.map { $0 != 0 } })
        let logits = model(input)
        let result = completionLogProbs(logits: logits, ids: input.ids, completionMask: b.lossMask.map { $0.map { $0 != 0 } })
        let n = pb.pairCount
        let lengths = b.lossMask.map { $0.dropFirst().reduce(0, +) }
        let nll = sequenceNLL ? causalLanguageModelLoss(logits: logits.slice(axis: 0, 0..<n), ids: Array(input.ids[0..<n]),
                                                        lossMask: Array(b.attentionMask[0..<n]).map { $0.map { $0 != 0 } }) : nil
        return (result.sums.slice(axis: 0, 0..<n), result.sums.slice(axis: 0, n..<(2 * n)), lengths, nll)
    }

    /// Trains `policy` on preference rows; returns the metrics of every step. `optimizer` (default:
    /// AdamW from the config) carries its state across a resume; `control` starts, stops and
    /// checkpoints the loop.
    public static func train(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)? = nil, tokenizer: any Tokenizer,
                             template: ChatTemplate? = nil, rows: [DatasetRow], config c: DPOConfig, optimizer: Adam? = nil,
                             control: TrainingControl = TrainingControl(),
                             onMetrics: ((Int, [(String, Double)]) -> Void)? = nil) throws -> [PreferenceMetrics] {
        var options = TokenizationOptions()
        options.maxLength = c.maxLength
        options.maxPromptLength = c.maxPromptLength
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, options: options, model: policy)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.preference($0) }
        if let reference { try checkReference(reference, of: policy) }
        let padID = Collator.padID(for: tokenizer)
        // Reference log-probs, once per dataset (EQ R6.6's π_ref), in fixed batches; a resumed run
        // gets the same ones from the same initial weights or reference. Reference-free losses need none.
        var referenceChosen = [Float](repeating: 0, count: examples.count), referenceRejected = referenceChosen
        if !c.loss.isReferenceFree {
            withoutGradients {
                for start in stride(from: 0, to: examples.count, by: c.batchSize) {
                    let indices = Array(start..<Swift.min(start + c.batchSize, examples.count))
                    let (rc, rr, _, _) = logProbs(reference ?? policy, Collator.preference(indices.map { examples[$0] }, padID: padID))
                    for (k, i) in indices.enumerated() { referenceChosen[i] = rc.scalars[k]; referenceRejected[i] = rr.scalars[k] }
                }
            }
        }
        let optimizer = optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: 0)
        var history: [PreferenceMetrics] = []
        let schedule = EpochSchedule(count: examples.count, batchSize: c.batchSize, epochs: c.epochs, seed: c.seed)
        try schedule.run(control: control) { step, group in
            let indices = group[0]
            let pb = Collator.preference(indices.map { examples[$0] }, padID: padID)
            var metrics: PreferenceMetrics?
            var (_, grads) = valueAndGrad(policy) { m in
                let (chosen, rejected, lengths, nll) = logProbs(m, pb, sequenceNLL: c.loss.nllOverSequences)
                let n = indices.count
                let pairs = PairedLogProbs(chosen: chosen, rejected: rejected,
                                           referenceChosen: Tensor(indices.map { referenceChosen[$0] }),
                                           referenceRejected: Tensor(indices.map { referenceRejected[$0] }),
                                           chosenLengths: Array(lengths[0..<n]), rejectedLengths: Array(lengths[n..<(2 * n)]), chosenNLL: nll)
                let (loss, m) = preferenceLoss(c.loss, beta: c.beta, pairs)
                metrics = m
                return loss
            }
            guard let metrics else { return }
            let norm = try applyUpdate(optimizer, to: policy, gradients: &grads, maxNorm: c.maxGradNorm, step: step, loss: metrics.loss)
            history.append(metrics)
            onMetrics?(step, metrics.named + [("grad_norm", Double(norm)), ("learning_rate", Double(optimizer.learningRate))])
        }
        return history
    }

    /// The loss and metrics of `policy` against `reference` on `rows`, without training.
    public static func evaluate(policy: any CausalLanguageModel, reference: any CausalLanguageModel, tokenizer: any Tokenizer,
                                template: ChatTemplate? = nil, rows: [DatasetRow], config c: DPOConfig) throws -> PreferenceMetrics {
        // The training run's truncation, so evaluation scores the same tokens training saw.
        var options = TokenizationOptions()
        options.maxLength = c.maxLength
        options.maxPromptLength = c.maxPromptLength
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, options: options, model: policy)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.preference($0) }
        try checkReference(reference, of: policy)
        let pb = Collator.preference(examples, padID: Collator.padID(for: tokenizer))
        return withoutGradients {
            let (chosen, rejected, lengths, nll) = logProbs(policy, pb, sequenceNLL: c.loss.nllOverSequences)
            let (rc, rr, _, _) = logProbs(reference, pb)
            let n = examples.count
            return preferenceLoss(c.loss, beta: c.beta, PairedLogProbs(chosen: chosen, rejected: rejected, referenceChosen: rc, referenceRejected: rr,
                                                                       chosenLengths: Array(lengths[0..<n]), rejectedLengths: Array(lengths[n..<(2 * n)]),
                                                                       chosenNLL: nll)).metrics
        }
    }
}

/// Throws unless `reference` can score `policy`'s tokens: the same vocabulary (a reference with
/// another vocabulary or tokenizer would give log-probs of different tokens, or trap on an id).
func checkReference(_ reference: any CausalLanguageModel, of policy: any CausalLanguageModel) throws {
    let (r, p) = (reference.configuration.vocabularySize, policy.configuration.vocabularySize)
    guard r == p else {
        throw TrainerConfigurationError(field: "ref_model", message: "the reference model's vocabulary (\(r)) differs from the policy's (\(p)); it must be the same model family and tokenizer")
    }
}
