// Kahneman–Tversky optimization (Ethayarajh et al. 2024; TRL's KTOTrainer) on unpaired completions
// labelled desirable or not. The reference point z is the batch's KL(π‖π_ref) estimated on
// mismatched pairs — each prompt of a training batch with the completion of the batch's row before
// it, the first with the last (TRL shifts its KL dataset the same way, batch by batch) — detached and
// clamped at 0. The pairs are formed from the batch as scheduled (after shuffling), so they are that
// batch's completions; the reference's log-probs of the matched rows are computed once before
// training, those of the mismatched pairs with each batch (they depend on the shuffle). Without a
// reference model a frozen copy of the initial policy is the reference, as in TRL.

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeTensor

/// KTO hyperparameters (TRL's defaults: β 0.1, weights 1).
public struct KTOConfig: Sendable {
    /// β: strength of the KL leash.
    public var beta: Float = 0.1
    /// λ_D, the weight of desirable completions' losses.
    public var desirableWeight: Float = 1
    /// λ_U, the weight of undesirable completions' losses.
    public var undesirableWeight: Float = 1
    public var learningRate: Float = 1e-6
    public var epochs = 1
    /// Rows per batch; at least 2, so the mismatched pairs exist.
    public var batchSize = 8
    public var maxLength: Int? = 1024
    public var maxPromptLength: Int? = 512
    public var maxGradNorm: Float = 1
    public var seed: UInt64 = 0
    /// Activation checkpointing (TRL's `gradient_checkpointing`): each decoder block of the trained
    /// model is recomputed in backward instead of keeping its activations; gradients are unchanged.
    public var gradientCheckpointing = false
    /// TRL's `bf16`: training products on bf16 operands with Float32 sums (`MixedPrecision`).
    public var bf16 = false
    /// The AdamW implementation (HF TrainingArguments' `optim`): Float32 moments, or bitsandbytes-style 8-bit ones.
    public var optim: OptimizerName = .adamwTorch
    /// transformers' lr_scheduler_type; constant here unless set (transformers' default is linear).
    public var lrSchedulerType = LRSchedulerType.constant
    /// transformers' warmup_steps: steps of linear warmup to learning_rate (below 1: a fraction of all steps).
    public var warmupSteps: Double = 0

    public init() {}
}

/// KTO's metrics (TRL's names: rewards/chosen, rewards/rejected, rewards/margins, logps/…, kl).
public struct KTOMetrics: Sendable {
    public var loss: Float
    /// Mean implicit reward β·(log π − log π_ref) of the desirable completions (NaN if none).
    public var rewardsChosen: Float
    /// The same for the undesirable ones.
    public var rewardsRejected: Float
    public var logpsChosen: Float
    public var logpsRejected: Float
    /// The reference point z.
    public var kl: Float
    /// The policy's mean token entropy over the batch's completion tokens.
    public var entropy: Float = .nan
    /// The mean over the desirable (undesirable) completion tokens of the logits' mean over the
    /// vocabulary at the position predicting them (TRL's logits/chosen, logits/rejected; NaN if none).
    public var logitsChosen: Float = .nan
    public var logitsRejected: Float = .nan

    public var named: [(String, Double)] {
        var out: [(String, Double)] = [("loss", Double(loss)), ("kl", Double(kl))]
        if entropy.isFinite { out.append(("entropy", Double(entropy))) }
        if logitsChosen.isFinite { out.append(("logits/chosen", Double(logitsChosen))) }
        if logitsRejected.isFinite { out.append(("logits/rejected", Double(logitsRejected))) }
        if rewardsChosen.isFinite { out += [("rewards/chosen", Double(rewardsChosen)), ("logps/chosen", Double(logpsChosen))] }
        if rewardsRejected.isFinite { out += [("rewards/rejected", Double(rewardsRejected)), ("logps/rejected", Double(logpsRejected))] }
        if rewardsChosen.isFinite && rewardsRejected.isFinite { out.append(("rewards/margins", Double(rewardsChosen - rewardsRejected))) }
        return out
    }
}

/// KTO training.
public enum KTOTrainer {
    /// A batch's mismatched (prompt k, completion of row k − 1) pairs; the first row takes the last
    /// row's completion.
    static func mismatched(_ batch: [UnpairedExample]) -> [UnpairedExample] {
        batch.indices.map { k in
            let j = k == 0 ? batch.count - 1 : k - 1
            return UnpairedExample(promptIDs: batch[k].promptIDs, completionIDs: batch[j].completionIDs, label: batch[k].label)
        }
    }

    /// (prompt + completion) rows, padded, and their completion masks.
    static func padded(_ examples: [UnpairedExample], padID: Int) -> (TokenBatch, [[Bool]]) {
        let b = Collator.pad(examples.map { $0.promptIDs + $0.completionIDs },
                             lossMasks: examples.map { Array(repeating: 0, count: $0.promptIDs.count) + Array(repeating: 1, count: $0.completionIDs.count) },
                             padID: padID)
        return (TokenBatch(ids: b.inputIDs, attentionMask: b.attentionMask.map { $0.map { $0 != 0 } }), b.lossMask.map { $0.map { $0 != 0 } })
    }

    /// Summed completion log-probs of (prompt + completion) rows.
    static func logProbs(_ model: any CausalLanguageModel, _ examples: [UnpairedExample], padID: Int) -> Tensor {
        let (input, mask) = padded(examples, padID: padID)
        return completionLogProbs(model: model, batch: input, completionMask: mask).sums
    }

    /// One batch's loss and metrics, what `train` differentiates: the policy's summed completion
    /// log-probs of the batch and of its mismatched pairs, `referenceLogps` / `referenceKL` the
    /// reference's for the same rows.
    static func batchLoss(_ m: any CausalLanguageModel, batch: [UnpairedExample], referenceLogps: [Float], referenceKL: [Float],
                          config c: KTOConfig, padID: Int) -> (Tensor, KTOMetrics) {
        let n = batch.count
        let desirable = batch.map(\.label)
        let (input, completionMask) = padded(batch + mismatched(batch), padID: padID)
        let logits = m(input)  // (2n, T, V)
        let sums = completionLogProbs(logits: logits, ids: input.ids, completionMask: completionMask).sums
        let logps = sums.slice(axis: 0, 0..<n)
        let ratios = logps - Tensor(referenceLogps)
        // z: detached, as TRL computes it under no_grad.
        let klTerms = zip(sums.scalars[n...], referenceKL).map { $0 - $1 }
        let z = Swift.max(klTerms.reduce(0, +) / Float(n), 0)
        let loss = ktoLoss(logRatios: ratios, desirable: desirable, klEstimate: z, beta: c.beta,
                           desirableWeight: c.desirableWeight, undesirableWeight: c.undesirableWeight)
        let metrics = withoutGradients {
            let r = ratios.scalars, lp = logps.scalars
            func mean(_ values: [Float], _ wanted: Bool) -> Float {
                let picked = zip(values, desirable).filter { $0.1 == wanted }.map(\.0)
                return picked.isEmpty ? .nan : picked.reduce(0, +) / Float(picked.count)
            }
            var out = KTOMetrics(loss: loss.item(), rewardsChosen: c.beta * mean(r, true), rewardsRejected: c.beta * mean(r, false),
                                 logpsChosen: mean(lp, true), logpsRejected: mean(lp, false), kl: z)
            // The batch's own rows (not the mismatched ones), at the positions predicting a completion token.
            let rows = logits.slice(axis: 0, 0..<n)
            let mask = (0..<n).flatMap { r in completionMask[r].dropFirst().map { $0 ? Float(1) : 0 } }
            let entropies = tokenEntropies(logits: rows, mask: mask, temperature: 1)
            out.entropy = Float(maskedMean(entropies, mask))
            let (sum, count) = groupedMeanLogits(rows, mask: mask) { desirable[$0] ? 0 : 1 }
            out.logitsChosen = count[0] > 0 ? Float(sum[0] / count[0]) : .nan
            out.logitsRejected = count[1] > 0 ? Float(sum[1] / count[1]) : .nan
            return out
        }
        return (loss, metrics)
    }

    /// Trains `policy` on unpaired rows (prompt/completion/label); returns every step's metrics.
    /// `reference` defaults to the initial policy; `optimizer` (default: AdamW from the config)
    /// carries its state across a resume; `control` starts, stops and checkpoints the loop.
    public static func train(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)? = nil, tokenizer: any Tokenizer,
                             template: ChatTemplate? = nil, rows: [DatasetRow], config c: KTOConfig, optimizer: Adam? = nil,
                             control: TrainingControl = TrainingControl(),
                             onMetrics: ((Int, [(String, Double)]) -> Void)? = nil) throws -> [KTOMetrics] {
        try plan(policy: policy, reference: reference, tokenizer: tokenizer, template: template, rows: rows, config: c,
                 optimizer: optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: 0, optim: c.optim))
            .run(control: control, onMetrics: onMetrics)
    }

    /// The same training as a `Trainer`, one optimizer step per `trainStep`.
    public static func trainer(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)? = nil, tokenizer: any Tokenizer,
                               template: ChatTemplate? = nil, rows: [DatasetRow], config c: KTOConfig,
                               optimizer: Adam? = nil) throws -> OfflineTrainer<KTOMetrics> {
        let optimizer = optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: 0, optim: c.optim)
        return OfflineTrainer(model: policy, optimizer: optimizer, bf16: c.bf16,
                              plan: try plan(policy: policy, reference: reference, tokenizer: tokenizer, template: template, rows: rows,
                                             config: c, optimizer: optimizer))
    }

    static func plan(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)?, tokenizer: any Tokenizer,
                     template: ChatTemplate?, rows: [DatasetRow], config c: KTOConfig, optimizer: Adam) throws -> OfflinePlan<KTOMetrics> {
        policy.gradientCheckpointing = c.gradientCheckpointing
        guard c.batchSize >= 2 else { throw TrainerConfigurationError(field: "batch_size", message: "KTO needs at least 2 rows per batch (its KL estimate pairs rows), got \(c.batchSize)") }
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template,
                                        options: TokenizationOptions(maxLength: c.maxLength, maxPromptLength: c.maxPromptLength), model: policy)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.unpaired($0) }
        let padID = Collator.padID(for: tokenizer)
        let referenceModel = try reference ?? LanguageModelLoader.frozenCopy(of: policy)
        let referenceLogps = precomputedReferenceLogProbs(examples, batchSize: c.batchSize, columns: 1) { batch in
            [logProbs(referenceModel, batch, padID: padID)]
        }[0]
        let schedule = EpochSchedule(count: examples.count, batchSize: c.batchSize, epochs: c.epochs, seed: c.seed)
        return OfflinePlan(schedule: schedule) { step, group, _ in
            let indices = group[0]
            c.scheduleLearningRate(optimizer, step: step, total: schedule.totalSteps)
            guard let (metrics, norm) = try trainStep(policy: policy, reference: referenceModel, batch: indices.map { examples[$0] },
                                                      referenceLogps: indices.map { referenceLogps[$0] }, config: c,
                                                      optimizer: optimizer, padID: padID, step: step) else { return nil }
            return (metrics, metrics.named + [("grad_norm", Double(norm)), ("learning_rate", Double(optimizer.learningRate))])
        }
    }

    /// One optimizer step on a scheduled batch, what `train` runs for each: the reference's
    /// log-probs of the batch's mismatched pairs (they depend on the batch, so per step), `batchLoss`
    /// and its gradient, the clipped update. `referenceLogps` are the reference's for the batch's
    /// own rows (precomputed once by `train`). Returns the metrics and the gradient norm before
    /// clipping; `onParameterGradientNorms` gets that norm per parameter (the TRL parity tests).
    static func trainStep(policy: any CausalLanguageModel, reference: any CausalLanguageModel, batch: [UnpairedExample],
                          referenceLogps: [Float], config c: KTOConfig, optimizer: Adam, padID: Int, step: Int,
                          onParameterGradientNorms: (([String: Double]) -> Void)? = nil) throws -> (KTOMetrics, Float)? {
        let referenceKL = withoutGradients { logProbs(reference, mismatched(batch), padID: padID).scalars }
        var metrics: KTOMetrics?
        var (_, grads) = valueAndGrad(policy) { m in
            let (loss, batchMetrics) = batchLoss(m, batch: batch, referenceLogps: referenceLogps, referenceKL: referenceKL,
                                                 config: c, padID: padID)
            metrics = batchMetrics
            return loss
        }
        guard let metrics else { return nil }
        onParameterGradientNorms?(grads.norms())
        let norm = try applyUpdate(optimizer, to: policy, gradients: &grads, maxNorm: c.maxGradNorm, step: step, loss: metrics.loss)
        return (metrics, norm)
    }
}
