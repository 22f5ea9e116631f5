// Direct preference optimization trainer (TRL's DPOTrainer): batches of (prompt, chosen, rejected)
// completions, summed completion log-probs under the policy and the reference, any loss of the
// DPO family, AdamW with clipping, TRL's metrics. The reference log-probs are computed once, before
// training, with the initial policy (or a given reference model), so no second copy of the weights
// is needed during training.

import Foundation
import NudgeLM
import NudgeNN
import NudgePolicyGradient
import NudgeTensor

/// DPO hyperparameters (TRL's defaults: β 0.1, sigmoid loss).
public struct DPOConfig: Sendable {
    /// β of the DPO loss (Rafailov et al. 2023, eq. 7): strength of the KL leash.
    public var beta: Float = 0.1
    public var loss: PreferenceLoss = .sigmoid()
    public var learningRate: Float = 1e-6
    public var epochs = 1
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

/// DPO training and evaluation.
public enum DPOTrainer {
    /// Summed completion log-probs of chosen and rejected rows, the completion lengths, with
    /// `sequenceNLL` the chosen rows' mean next-token cross-entropy over their whole sequences
    /// (ORPO's NLL term in TRL: prompt and completion, padding excluded), and with `tokenMetrics`
    /// DPOTrainer's token statistics of the same forward pass.
    static func logProbs(_ model: any CausalLanguageModel, _ pb: PreferenceBatch, sequenceNLL: Bool = false, tokenMetrics: Bool = false)
        -> (chosen: Tensor, rejected: Tensor, lengths: [Int], chosenNLL: Tensor?, tokens: TokenMetrics?)
    {
        let b = pb.batch
        let input = TokenBatch(ids: b.inputIDs, attentionMask: b.attentionMask.map { $0.map { $0 != 0 } })
        if !sequenceNLL, let fused = fusedLogProbs(model, pb, input: input, tokenMetrics: tokenMetrics) { return fused }
        let logits = model(input)
        let result = completionLogProbs(logits: logits, ids: input.ids, completionMask: b.lossMask.map { $0.map { $0 != 0 } })
        let n = pb.pairCount
        let lengths = b.lossMask.map { $0.dropFirst().reduce(0, +) }
        let nll = sequenceNLL ? causalLanguageModelLoss(logits: logits.slice(axis: 0, 0..<n), ids: Array(input.ids[0..<n]),
                                                        lossMask: Array(b.attentionMask[0..<n]).map { $0.map { $0 != 0 } }) : nil
        let tokens = tokenMetrics ? Self.tokenMetrics(logits: logits, pb) : nil
        return (result.sums.slice(axis: 0, 0..<n), result.sums.slice(axis: 0, n..<(2 * n)), lengths, nll, tokens)
    }

    /// `logProbs` through the fused head (`fusedHead`) when the model's head is plain and at most three
    /// quarters of the positions are completion tokens: prompts and padding never reach the
    /// vocabulary-wide head and no (B, T, V) logits are held; the token metrics come from the same
    /// chunks of logits. nil when the logits path should run.
    static func fusedLogProbs(_ model: any CausalLanguageModel, _ pb: PreferenceBatch, input: TokenBatch, tokenMetrics: Bool)
        -> (chosen: Tensor, rejected: Tensor, lengths: [Int], chosenNLL: Tensor?, tokens: TokenMetrics?)?
    {
        let b = pb.batch, ids = input.ids
        let (rows, t) = (ids.count, input.length)
        let width = t - 1, n = pb.pairCount
        // Shifted frame: position i predicts token i + 1; −1 skips positions outside completions.
        let targets = (0..<rows).flatMap { r in (0..<width).map { i in b.lossMask[r][i + 1] != 0 ? ids[r][i + 1] : -1 } }
        let scored = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        guard let weight = model.plainHeadWeight, scored > 0, FusedHead.forced ?? (4 * scored <= 3 * rows * width) else { return nil }
        let hidden = model.finalHiddenStates(input)
        let head = fusedHead(hidden: hidden.slice(axis: 1, 0..<width).reshaped([rows * width, hidden.shape[2]]), weight: weight,
                             targets: targets, entropy: tokenMetrics, rowStatistics: tokenMetrics)
        let sums = head.logProbs.reshaped([rows, width]).sum(axis: 1)
        let lengths = b.lossMask.map { $0.dropFirst().reduce(0, +) }
        var tokens: TokenMetrics?
        if tokenMetrics {
            var entropy = 0.0, logitSums = [0.0, 0.0], counts = [0.0, 0.0], correct = 0.0
            for r in 0..<rows {
                for i in 0..<width where targets[r * width + i] >= 0 {
                    let k = r < n ? 0 : 1, j = r * width + i
                    entropy += Double(head.entropies[j])
                    logitSums[k] += Double(head.meanLogits[j])
                    counts[k] += 1
                    if k == 0 && head.argmax[j] == targets[j] { correct += 1 }
                }
            }
            func ratio(_ a: Double, _ b: Double) -> Float { b > 0 ? Float(a / b) : 0 }  // TRL: 0.0 without tokens
            tokens = TokenMetrics(entropy: ratio(entropy, counts[0] + counts[1]), logitsChosen: ratio(logitSums[0], counts[0]),
                                  logitsRejected: ratio(logitSums[1], counts[1]), meanTokenAccuracy: ratio(correct, counts[0]))
        }
        return (sums.slice(axis: 0, 0..<n), sums.slice(axis: 0, n..<(2 * n)), lengths, nil, tokens)
    }

    /// DPOTrainer's per-token metrics (TRL 1.16 `_compute_loss`, from its fused head's entropy,
    /// mean_logits and is_top1 at the positions predicting a completion token): the entropy's mean
    /// over every completion token of the batch, chosen and rejected; the vocabulary-mean logit's
    /// mean over the chosen and over the rejected tokens; the fraction of chosen tokens that are
    /// the argmax. Token-weighted over the batch, as TRL sums before it divides.
    struct TokenMetrics {
        var entropy: Float, logitsChosen: Float, logitsRejected: Float, meanTokenAccuracy: Float
    }

    static func tokenMetrics(logits: Tensor, _ pb: PreferenceBatch) -> TokenMetrics {
        withoutGradients {
            let (rows, t) = (logits.shape[0], logits.shape[1])
            let width = t - 1, n = pb.pairCount, ids = pb.batch.inputIDs
            // Shifted frame: position i predicts token i + 1.
            let mask = (0..<rows).flatMap { r in pb.batch.lossMask[r].dropFirst().map { $0 != 0 ? Float(1) : 0 } }
            let entropy = maskedMean(tokenEntropies(logits: logits, mask: mask, temperature: 1), mask)
            let (logitSum, count) = groupedMeanLogits(logits, mask: mask) { $0 < n ? 0 : 1 }
            let top = logits.argmax(axis: 2)  // (rows, T)
            var correct = 0.0
            for r in 0..<n {
                for i in 0..<width where mask[r * width + i] != 0 && top[r * t + i] == ids[r][i + 1] { correct += 1 }
            }
            func ratio(_ a: Double, _ b: Double) -> Float { b > 0 ? Float(a / b) : 0 }  // TRL: 0.0 without tokens
            return TokenMetrics(entropy: Float(entropy), logitsChosen: ratio(logitSum[0], count[0]),
                                logitsRejected: ratio(logitSum[1], count[1]), meanTokenAccuracy: ratio(correct, count[0]))
        }
    }

    /// Trains `policy` on preference rows; returns the metrics of every step. `optimizer` (default:
    /// AdamW from the config) carries its state across a resume; `control` starts, stops and
    /// checkpoints the loop.
    public static func train(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)? = nil, tokenizer: any Tokenizer,
                             template: ChatTemplate? = nil, rows: [DatasetRow], config c: DPOConfig, optimizer: Adam? = nil,
                             control: TrainingControl = TrainingControl(),
                             onMetrics: ((Int, [(String, Double)]) -> Void)? = nil) throws -> [PreferenceMetrics] {
        try train(policy: policy, reference: reference, tokenizer: tokenizer, template: template, rows: rows, config: c,
                  optimizer: optimizer, control: control, onMetrics: onMetrics, onParameterGradientNorms: nil)
    }

    /// `train`, and with `onParameterGradientNorms` each step's gradient norm per parameter before
    /// clipping (the TRL parity tests compare them; one more pass over the gradients, so off unless asked).
    static func train(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)?, tokenizer: any Tokenizer,
                      template: ChatTemplate?, rows: [DatasetRow], config c: DPOConfig, optimizer: Adam?,
                      control: TrainingControl, onMetrics: ((Int, [(String, Double)]) -> Void)?,
                      onParameterGradientNorms: ((Int, [String: Double]) -> Void)?) throws -> [PreferenceMetrics] {
        try plan(policy: policy, reference: reference, tokenizer: tokenizer, template: template, rows: rows, config: c,
                 optimizer: optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: 0, optim: c.optim), onParameterGradientNorms: onParameterGradientNorms)
            .run(control: control, onMetrics: onMetrics)
    }

    /// The same training as a `Trainer`, one optimizer step per `trainStep`.
    public static func trainer(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)? = nil, tokenizer: any Tokenizer,
                               template: ChatTemplate? = nil, rows: [DatasetRow], config c: DPOConfig,
                               optimizer: Adam? = nil) throws -> OfflineTrainer<PreferenceMetrics> {
        let optimizer = optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: 0, optim: c.optim)
        return OfflineTrainer(model: policy, optimizer: optimizer, bf16: c.bf16,
                              plan: try plan(policy: policy, reference: reference, tokenizer: tokenizer, template: template, rows: rows,
                                             config: c, optimizer: optimizer, onParameterGradientNorms: nil))
    }

    static func plan(policy: any CausalLanguageModel, reference: (any CausalLanguageModel)?, tokenizer: any Tokenizer,
                     template: ChatTemplate?, rows: [DatasetRow], config c: DPOConfig, optimizer: Adam,
                     onParameterGradientNorms: ((Int, [String: Double]) -> Void)?) throws -> OfflinePlan<PreferenceMetrics> {
        policy.gradientCheckpointing = c.gradientCheckpointing
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template,
                                        options: TokenizationOptions(maxLength: c.maxLength, maxPromptLength: c.maxPromptLength), model: policy)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.preference($0) }
        if let reference { try checkReference(reference, of: policy) }
        let padID = Collator.padID(for: tokenizer)
        // Reference log-probs, once per dataset (the π_ref of Rafailov et al. 2023, eq. 7), in fixed batches; a resumed run
        // gets the same ones from the same initial weights or reference. Reference-free losses need none.
        var referenceChosen = [Float](repeating: 0, count: examples.count), referenceRejected = referenceChosen
        if !c.loss.isReferenceFree {
            let sums = precomputedReferenceLogProbs(examples, batchSize: c.batchSize, columns: 2) { batch in
                let (rc, rr, _, _, _) = logProbs(reference ?? policy, Collator.preference(batch, padID: padID))
                return [rc, rr]
            }
            (referenceChosen, referenceRejected) = (sums[0], sums[1])
        }
        // TRL's num_tokens: the prompt and completion tokens of both rows of every pair seen so far
        // (padding excluded); a resumed run counts the skipped steps' too.
        var tokensSeen = 0
        func tokens(_ indices: [Int]) -> Int {
            indices.reduce(0) { $0 + 2 * examples[$1].promptIDs.count + examples[$1].chosenIDs.count + examples[$1].rejectedIDs.count }
        }
        // The token statistics TRL's DPOTrainer logs; CPOTrainer and ORPOTrainer (the reference-free
        // losses) log none of these under the same definitions.
        let tokenMetrics = !c.loss.isReferenceFree
        let schedule = EpochSchedule(count: examples.count, batchSize: c.batchSize, epochs: c.epochs, seed: c.seed)
        let world = Communicator.shared
        if world.isDistributed {
            switch c.loss {
            case .rpo, .cpo, .orpo:
                throw TrainerConfigurationError(field: "loss_type", message: "\(c.loss)'s NLL term is a token mean over the whole batch, not yet reduced across MPI ranks; run it in one process")
            default: break
            }
        }
        return OfflinePlan(schedule: schedule, skipped: { tokensSeen += tokens($0[0]) }) { step, group, _ in
            let whole = group[0]
            c.scheduleLearningRate(optimizer, step: step, total: schedule.totalSteps)
            // Data parallel: each rank scores its contiguous share of the batch's pairs; the loss is a
            // mean over pairs, so each share's mean is weighted by its share of the pairs.
            let indices = world.isDistributed ? Array(whole[world.shard(whole.count)]) : whole
            if world.isDistributed {
                tokensSeen += tokens(whole)
                return try distributedStep(step: step, indices: indices, whole: whole, world: world)
            }
            let pb = Collator.preference(indices.map { examples[$0] }, padID: padID)
            var metrics: PreferenceMetrics?
            var (_, grads) = valueAndGrad(policy) { m in
                let (chosen, rejected, lengths, nll, tokenStats) = logProbs(m, pb, sequenceNLL: c.loss.nllOverSequences, tokenMetrics: tokenMetrics)
                let n = indices.count
                let pairs = PairedLogProbs(chosen: chosen, rejected: rejected,
                                           referenceChosen: Tensor(indices.map { referenceChosen[$0] }),
                                           referenceRejected: Tensor(indices.map { referenceRejected[$0] }),
                                           chosenLengths: Array(lengths[0..<n]), rejectedLengths: Array(lengths[n..<(2 * n)]), chosenNLL: nll)
                let (loss, lossMetrics) = preferenceLoss(c.loss, beta: c.beta, pairs)
                metrics = lossMetrics
                metrics?.setTokenMetrics(tokenStats)
                return loss
            }
            guard let metrics else { return nil }
            tokensSeen += tokens(indices)
            onParameterGradientNorms?(step, grads.norms())
            let norm = try applyUpdate(optimizer, to: policy, gradients: &grads, maxNorm: c.maxGradNorm, step: step, loss: metrics.loss)
            return (metrics, metrics.named + [("grad_norm", Double(norm)), ("learning_rate", Double(optimizer.learningRate)),
                                              ("num_tokens", Double(tokensSeen))])
        }

        /// One rank's part of a step: its pairs' gradient and metrics, summed over the ranks with
        /// weights that make the sums the whole batch's (pairs for the pair means, tokens for the
        /// token means).
        func distributedStep(step: Int, indices: [Int], whole: [Int], world: Communicator) throws
            -> (PreferenceMetrics, [(String, Double)])? {
            let share = Float(indices.count) / Float(whole.count)
            var local = PreferenceMetrics(loss: 0, rewardsChosen: 0, rewardsRejected: 0, rewardsMargins: 0, rewardsAccuracies: 0,
                                          logpsChosen: 0, logpsRejected: 0)
            var grads: NamedTensors
            // Token counts of this rank's chosen and rejected completions (the token metrics' weights).
            var counts = [Double](repeating: 0, count: 3)
            if indices.isEmpty {
                grads = NamedTensors(policy.trainableParameters().map { ($0, Tensor(repeating: 0, shape: $1.shape)) })
            } else {
                let pb = Collator.preference(indices.map { examples[$0] }, padID: padID)
                let n = indices.count
                for (r, row) in pb.batch.lossMask.enumerated() {
                    let k = Double(row.dropFirst().filter { $0 != 0 }.count)
                    counts[r < n ? 0 : 1] += k
                    counts[2] += k
                }
                (_, grads) = valueAndGrad(policy) { m in
                    let (chosen, rejected, lengths, nll, tokenStats) = logProbs(m, pb, sequenceNLL: c.loss.nllOverSequences, tokenMetrics: tokenMetrics)
                    let pairs = PairedLogProbs(chosen: chosen, rejected: rejected,
                                               referenceChosen: Tensor(indices.map { referenceChosen[$0] }),
                                               referenceRejected: Tensor(indices.map { referenceRejected[$0] }),
                                               chosenLengths: Array(lengths[0..<n]), rejectedLengths: Array(lengths[n..<(2 * n)]), chosenNLL: nll)
                    let (loss, lossMetrics) = preferenceLoss(c.loss, beta: c.beta, pairs)
                    local = lossMetrics
                    local.setTokenMetrics(tokenStats)
                    return loss * share
                }
            }
            world.allreduceSum(grads)
            var totals = counts
            world.allreduceSum(&totals)
            func weight(_ k: Int) -> Float { totals[k] > 0 ? Float(counts[k] / totals[k]) : 0 }
            let pairMeans = [local.loss, local.rewardsChosen, local.rewardsRejected, local.rewardsMargins, local.rewardsAccuracies,
                             local.logpsChosen, local.logpsRejected].map { Double($0 * share) }
            let tokenMeans = tokenMetrics && !indices.isEmpty
                ? [Double(local.entropy * weight(2)), Double(local.logitsChosen * weight(0)), Double(local.logitsRejected * weight(1)),
                   Double(local.meanTokenAccuracy * weight(0))] : [0, 0, 0, 0]
            var sums = pairMeans + tokenMeans
            world.allreduceSum(&sums)
            var metrics = PreferenceMetrics(loss: Float(sums[0]), rewardsChosen: Float(sums[1]), rewardsRejected: Float(sums[2]),
                                            rewardsMargins: Float(sums[3]), rewardsAccuracies: Float(sums[4]), logpsChosen: Float(sums[5]),
                                            logpsRejected: Float(sums[6]))
            if tokenMetrics {
                (metrics.entropy, metrics.logitsChosen, metrics.logitsRejected, metrics.meanTokenAccuracy) =
                    (Float(sums[7]), Float(sums[8]), Float(sums[9]), Float(sums[10]))
            }
            onParameterGradientNorms?(step, grads.norms())
            let norm = try applyUpdate(optimizer, to: policy, gradients: &grads, maxNorm: c.maxGradNorm, step: step, loss: metrics.loss)
            return (metrics, metrics.named + [("grad_norm", Double(norm)), ("learning_rate", Double(optimizer.learningRate)),
                                              ("num_tokens", Double(tokensSeen))])
        }
    }

    /// The loss and metrics of `policy` against `reference` on `rows`, without training.
    public static func evaluate(policy: any CausalLanguageModel, reference: any CausalLanguageModel, tokenizer: any Tokenizer,
                                template: ChatTemplate? = nil, rows: [DatasetRow], config c: DPOConfig) throws -> PreferenceMetrics {
        // The training run's truncation, so evaluation scores the same tokens training saw.
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template,
                                        options: TokenizationOptions(maxLength: c.maxLength, maxPromptLength: c.maxPromptLength), model: policy)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.preference($0) }
        try checkReference(reference, of: policy)
        let pb = Collator.preference(examples, padID: Collator.padID(for: tokenizer))
        return withoutGradients {
            let (chosen, rejected, lengths, nll, tokenStats) = logProbs(policy, pb, sequenceNLL: c.loss.nllOverSequences,
                                                                        tokenMetrics: !c.loss.isReferenceFree)
            let (rc, rr, _, _, _) = logProbs(reference, pb)
            let n = examples.count
            var metrics = preferenceLoss(c.loss, beta: c.beta, PairedLogProbs(chosen: chosen, rejected: rejected, referenceChosen: rc, referenceRejected: rr,
                                                                              chosenLengths: Array(lengths[0..<n]), rejectedLengths: Array(lengths[n..<(2 * n)]),
                                                                              chosenNLL: nll)).metrics
            metrics.setTokenMetrics(tokenStats)
            return metrics
        }
    }
}

/// TRL's logits/chosen and logits/rejected before the division: over the positions where `mask`
/// (rows × (T − 1), the shifted frame of `logits` (rows, T, V)) is nonzero, the sum and the count of
/// the logits' mean over the vocabulary, for the rows of group 0 and of group 1 (`group(row)`).
func groupedMeanLogits(_ logits: Tensor, mask: [Float], group: (Int) -> Int) -> (sums: [Double], counts: [Double]) {
    let (rows, t) = (logits.shape[0], logits.shape[1])
    let width = t - 1, meanLogits = logits.mean(axis: 2).scalars  // (rows, T)
    var sums = [0.0, 0.0], counts = [0.0, 0.0]
    for r in 0..<rows {
        let k = group(r)
        for i in 0..<width where mask[r * width + i] != 0 {
            sums[k] += Double(meanLogits[r * t + i])
            counts[k] += 1
        }
    }
    return (sums, counts)
}

/// The reference's log-probs of every example, computed once before training (the offline losses'
/// π_ref), without gradients, in fixed batches of `batchSize` in dataset order, so a resumed run gets
/// the same ones: `score` gives, for a batch, `columns` tensors with one value per example (e.g. the
/// chosen and the rejected completions' sums); column k of the result holds the k-th for every example.
func precomputedReferenceLogProbs<Example>(_ examples: [Example], batchSize: Int, columns: Int, _ score: ([Example]) -> [Tensor])
    -> [[Float]]
{
    var out = [[Float]](repeating: [], count: columns)
    withoutGradients {
        for start in stride(from: 0, to: examples.count, by: batchSize) {
            let values = score(Array(examples[start..<Swift.min(start + batchSize, examples.count)]))
            for k in 0..<columns { out[k] += values[k].scalars }
        }
    }
    return out
}

/// Throws unless `reference` can score `policy`'s tokens: the same vocabulary (a reference with
/// another vocabulary or tokenizer would give log-probs of different tokens, or trap on an id).
func checkReference(_ reference: any CausalLanguageModel, of policy: any CausalLanguageModel) throws {
    let (r, p) = (reference.configuration.vocabularySize, policy.configuration.vocabularySize)
    guard r == p else {
        throw TrainerConfigurationError(field: "ref_model", message: "the reference model's vocabulary (\(r)) differs from the policy's (\(p)); it must be the same model family and tokenizer")
    }
}

extension PreferenceMetrics {
    /// Copies DPOTrainer's token statistics in (nil: leaves them NaN, unlogged).
    mutating func setTokenMetrics(_ t: DPOTrainer.TokenMetrics?) {
        guard let t else { return }
        entropy = t.entropy
        logitsChosen = t.logitsChosen
        logitsRejected = t.logitsRejected
        meanTokenAccuracy = t.meanTokenAccuracy
    }
}
