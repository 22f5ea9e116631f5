// Supervised fine-tuning (TRL's SFTTrainer): next-token cross-entropy on completion (or assistant)
// tokens only, optional packing, gradient accumulation normalized over the whole step, AdamW with
// gradient clipping, an evaluation loss, and TRL's metric names.

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

/// SFT hyperparameters (TRL/HF Trainer defaults where a tiny model does not need otherwise).
public struct SFTConfig: Sendable {
    public var learningRate: Float = 2e-5
    public var epochs = 1
    public var batchSize = 8
    public var gradientAccumulationSteps = 1
    public var maxLength: Int? = 1024
    /// Pack examples into rows of `maxLength` tokens (best-fit decreasing); each example keeps its
    /// own positions and attends only to itself.
    public var packing = false
    public var completionOnlyLoss = true
    public var maxGradNorm: Float = 1
    public var weightDecay: Float = 0
    /// Evaluate every this many steps (0: only after the last step); needs evaluation rows.
    public var evalSteps = 0
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

/// SFT training.
public enum SFTTrainer {
    /// The packing length when `maxLength` is nil (TRL's default max_length).
    static let defaultPackingLength = 1024

    /// Trains `model` on `rows`; calls `onMetrics(step, metrics)` after each optimizer step (with
    /// `eval_loss` on `evalRows` when due). `optimizer` (default: AdamW from the config) carries its
    /// state across a resume; `control` starts, stops and checkpoints the loop. Returns each step's loss.
    public static func train(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                             rows: [DatasetRow], evalRows: [DatasetRow] = [], config c: SFTConfig, optimizer: Adam? = nil,
                             control: TrainingControl = TrainingControl(),
                             onMetrics: ((Int, [(String, Double)]) -> Void)? = nil) throws -> [Float] {
        try plan(model: model, tokenizer: tokenizer, template: template, rows: rows, evalRows: evalRows, config: c,
                 optimizer: optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: c.weightDecay, optim: c.optim))
            .run(control: control, onMetrics: onMetrics)
    }

    /// The same training as a `Trainer`, one optimizer step per `trainStep` (each step's loss in `history`).
    public static func trainer(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                               rows: [DatasetRow], evalRows: [DatasetRow] = [], config c: SFTConfig,
                               optimizer: Adam? = nil) throws -> OfflineTrainer<Float> {
        let optimizer = optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: c.weightDecay, optim: c.optim)
        return OfflineTrainer(model: model, optimizer: optimizer, bf16: c.bf16,
                              plan: try plan(model: model, tokenizer: tokenizer, template: template, rows: rows, evalRows: evalRows,
                                             config: c, optimizer: optimizer))
    }

    static func plan(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate?, rows: [DatasetRow],
                     evalRows: [DatasetRow], config c: SFTConfig, optimizer: Adam) throws -> OfflinePlan<Float> {
        model.gradientCheckpointing = c.gradientCheckpointing
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, options: tokenization(c), model: model)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.sft($0) }
        guard examples.isEmpty || examples.contains(where: { $0.completionMask.contains(1) }) else {
            throw TrainerConfigurationError(field: "max_length", message: "no row has a token left to train on after truncation to max_length \(c.maxLength.map(String.init) ?? "none") (every completion was cut away); raise max_length")
        }
        let padID = Collator.padID(for: tokenizer)
        // The items batched are packed rows (several examples each) or single examples.
        let packed = c.packing ? Packer.pack(examples, maxLength: c.maxLength ?? defaultPackingLength, padID: padID) : nil
        func batch(_ items: [Int]) -> Batch {
            guard let packed else { return Collator.sft(items.map { examples[$0] }, padID: padID) }
            return trimmed(Batch(inputIDs: items.map { packed.inputIDs[$0] }, attentionMask: items.map { packed.attentionMask[$0] },
                                 lossMask: items.map { packed.lossMask[$0] }, positionIDs: items.map { packed.positionIDs[$0] },
                                 segmentIDs: items.map { packed.segmentIDs[$0] }, exampleIndices: items.map { packed.exampleIndices[$0] }))
        }
        let evalBatches = try evalRows.isEmpty ? [] : Self.batches(rowTokenizer.each(evalRows) { try rowTokenizer.sft($0) }, size: c.batchSize, padID: padID)
        let schedule = EpochSchedule(count: packed?.rowCount ?? examples.count, batchSize: c.batchSize,
                                     accumulation: c.gradientAccumulationSteps, epochs: c.epochs, seed: c.seed)
        var tokensSeen = 0
        func tokens(_ b: Batch) -> Int { b.attentionMask.reduce(0) { $0 + $1.reduce(0, +) } }
        let world = Communicator.shared
        return OfflinePlan(schedule: schedule, skipped: { group in tokensSeen += group.reduce(0) { $0 + tokens(batch($1)) } }) { step, group, final in
            let batches = group.map { b in let b = batch(b), t = targets(b); return (batch: b, targets: t, counted: counted(t)) }
            // Normalize over every counted token of the whole step, so accumulation equals one big batch.
            let totalTokens = batches.reduce(0) { $0 + $1.counted }
            var accumulated: NamedTensors?
            var stepLoss: Float = 0
            for (items, whole) in zip(group, batches) {
                tokensSeen += tokens(whole.batch)
                // Data parallel: each rank trains on its contiguous share of every batch's rows; the
                // shares' losses (each weighted by its own counted tokens) sum to the batch's.
                let share = world.shard(items.count)
                guard !share.isEmpty else { continue }
                let (b, t, n) = world.isDistributed ? { let b = batch(Array(items[share])), t = targets(b); return (b, t, counted(t)) }() : whole
                let (loss, grads) = valueAndGrad(model) { m in
                    causalLanguageModelLoss(model: m, input: input(b), lossMask: t) * (Float(n) / Float(Swift.max(totalTokens, 1)))
                }
                stepLoss += loss.item()
                accumulated = accumulated.map { $0.adding(grads) } ?? grads
            }
            if world.isDistributed {
                // A rank with no rows this step still takes part in the sums, with zeros.
                let grads = accumulated ?? NamedTensors(model.trainableParameters().map { ($0, Tensor(repeating: 0, shape: $1.shape)) })
                world.allreduceSum(grads)
                accumulated = grads
                stepLoss = Float(world.sum(Double(stepLoss)))
            }
            guard var grads = accumulated else { return nil }
            c.scheduleLearningRate(optimizer, step: step, total: schedule.totalSteps)
            let norm = try applyUpdate(optimizer, to: model, gradients: &grads, maxNorm: c.maxGradNorm, step: step, loss: stepLoss)
            var metrics: [(String, Double)] = [("loss", Double(stepLoss)), ("grad_norm", Double(norm)),
                                               ("learning_rate", Double(optimizer.learningRate)), ("num_tokens", Double(tokensSeen))]
            if !evalBatches.isEmpty && ((c.evalSteps > 0 && step % c.evalSteps == 0) || step == schedule.totalSteps || final) {
                metrics.append(("eval_loss", Double(evaluationLoss(model: model, batches: evalBatches, communicator: world))))
            }
            return (stepLoss, metrics)
        }
    }

    /// The mean next-token loss of `model` over every counted token of `rows` (TRL's eval_loss).
    public static func evaluationLoss(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                                      rows: [DatasetRow], config c: SFTConfig) throws -> Float {
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, options: tokenization(c), model: model)
        return evaluationLoss(model: model, batches: try batches(rowTokenizer.each(rows) { try rowTokenizer.sft($0) }, size: c.batchSize,
                                                                  padID: Collator.padID(for: tokenizer)))
    }

    static func tokenization(_ c: SFTConfig) -> TokenizationOptions {
        var options = TokenizationOptions()
        options.maxLength = c.maxLength
        options.completionOnlyLoss = c.completionOnlyLoss
        return options
    }

    static func batches(_ examples: [SFTExample], size: Int, padID: Int) -> [Batch] {
        stride(from: 0, to: examples.count, by: size).map { Collator.sft(Array(examples[$0..<Swift.min($0 + size, examples.count)]), padID: padID) }
    }

    static func evaluationLoss(model: any CausalLanguageModel, batches: [Batch], communicator: Communicator = .single) -> Float {
        withoutGradients {
            var total: Double = 0, count = 0
            // Each rank scores a contiguous share of the batches; the sums are added over the ranks.
            for b in batches[communicator.shard(batches.count)] {
                let t = targets(b), n = counted(t)
                guard n > 0 else { continue }
                total += Double(causalLanguageModelLoss(model: model, input: input(b), lossMask: t).item()) * Double(n)
                count += n
            }
            if communicator.isDistributed {
                var sums = [total, Double(count)]
                communicator.allreduceSum(&sums)
                (total, count) = (sums[0], Int(sums[1]))
            }
            return count == 0 ? .nan : Float(total / Double(count))
        }
    }

    /// The model input of a batch: packed rows carry their segments (block-diagonal attention).
    static func input(_ b: Batch) -> TokenBatch {
        if b.segmentIDs.contains(where: { $0.contains { $0 > 1 } }) {
            return TokenBatch(ids: b.inputIDs, positions: b.positionIDs, segments: b.segmentIDs)
        }
        return TokenBatch(ids: b.inputIDs, attentionMask: b.attentionMask.map { $0.map { $0 != 0 } })
    }

    /// Which tokens are prediction targets: marked in the loss mask and not the first token of an
    /// example (in a packed row, the previous token belongs to another example).
    static func targets(_ b: Batch) -> [[Bool]] {
        zip(b.lossMask, b.positionIDs).map { loss, positions in
            loss.indices.map { t in loss[t] != 0 && (t == 0 || positions[t] != 0) }
        }
    }

    /// The tokens the loss counts among `targets` (the first column is never predicted).
    static func counted(_ targets: [[Bool]]) -> Int { targets.reduce(0) { $0 + $1.dropFirst().filter { $0 }.count } }

    /// Drops the columns that are padding in every row (packed rows are padded to the full length).
    static func trimmed(_ b: Batch) -> Batch {
        let used = b.attentionMask.map { $0.lastIndex(of: 1).map { $0 + 1 } ?? 0 }.max() ?? 0
        guard used < b.length else { return b }
        func cut(_ rows: [[Int]]) -> [[Int]] { rows.map { Array($0.prefix(used)) } }
        return Batch(inputIDs: cut(b.inputIDs), attentionMask: cut(b.attentionMask), lossMask: cut(b.lossMask),
                     positionIDs: cut(b.positionIDs), segmentIDs: cut(b.segmentIDs), exampleIndices: b.exampleIndices)
    }
}
