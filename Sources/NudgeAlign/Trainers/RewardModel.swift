// Reward-model training (TRL's RewardTrainer; Ouyang et al. 2022, eq. 1): a scalar head on a language-model trunk
// reads each completion's last real token; the Bradley–Terry loss −log σ(r_w − r_l − margin) with
// optional reward centering; accuracy and margin metrics with TRL's names.

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

/// Reward-model hyperparameters (TRL's defaults where they apply).
public struct RewardConfig: Sendable {
    public var learningRate: Float = 1e-5
    public var epochs = 1
    public var batchSize = 8
    public var maxLength: Int? = 1024
    /// TRL's center_rewards_coefficient.
    public var centeringCoefficient: Float = 0
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

/// Reward-model training and scoring.
public enum RewardTrainer {
    /// Rewards of chosen and rejected completions of a preference batch (right-padded rows).
    static func rewards(_ model: ScalarHeadModel, _ pb: PreferenceBatch) -> (chosen: Tensor, rejected: Tensor) {
        let b = pb.batch
        let scores = model(TokenBatch(ids: b.inputIDs, attentionMask: b.attentionMask.map { $0.map { $0 != 0 } }))
        return (scores.slice(axis: 0, 0..<pb.pairCount), scores.slice(axis: 0, pb.pairCount..<(2 * pb.pairCount)))
    }

    /// Trains `model` on preference rows; returns each step's metrics. `optimizer` (default: AdamW
    /// from the config) carries its state across a resume; `control` starts, stops and checkpoints the loop.
    public static func train(model: ScalarHeadModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil, rows: [DatasetRow],
                             config c: RewardConfig, optimizer: Adam? = nil, control: TrainingControl = TrainingControl(),
                             onMetrics: ((Int, [(String, Double)]) -> Void)? = nil) throws -> [RewardMetrics] {
        try plan(model: model, tokenizer: tokenizer, template: template, rows: rows, config: c,
                 optimizer: optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: 0, optim: c.optim))
            .run(control: control, onMetrics: onMetrics)
    }

    /// The same training as a `Trainer`, one optimizer step per `trainStep`.
    public static func trainer(model: ScalarHeadModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil, rows: [DatasetRow],
                               config c: RewardConfig, optimizer: Adam? = nil) throws -> OfflineTrainer<RewardMetrics> {
        let optimizer = optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: 0, optim: c.optim)
        return OfflineTrainer(model: model, optimizer: optimizer, bf16: c.bf16,
                              plan: try plan(model: model, tokenizer: tokenizer, template: template, rows: rows, config: c, optimizer: optimizer))
    }

    static func plan(model: ScalarHeadModel, tokenizer: any Tokenizer, template: ChatTemplate?, rows: [DatasetRow], config c: RewardConfig,
                     optimizer: Adam) throws -> OfflinePlan<RewardMetrics> {
        model.trunk.gradientCheckpointing = c.gradientCheckpointing
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, options: TokenizationOptions(maxLength: c.maxLength),
                                        model: model.trunk)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.preference($0) }
        let padID = Collator.padID(for: tokenizer)
        let schedule = EpochSchedule(count: examples.count, batchSize: c.batchSize, epochs: c.epochs, seed: c.seed)
        return OfflinePlan(schedule: schedule) { step, group, _ in
            let pb = Collator.preference(group[0].map { examples[$0] }, padID: padID)
            var metrics: RewardMetrics?
            var (_, grads) = valueAndGrad(model) { m in
                let (chosen, rejected) = rewards(m, pb)
                let (loss, metricValues) = bradleyTerryLoss(chosen: chosen, rejected: rejected, centeringCoefficient: c.centeringCoefficient)
                metrics = metricValues
                return loss
            }
            guard let metrics else { return nil }
            c.scheduleLearningRate(optimizer, step: step, total: schedule.totalSteps)
            let norm = try applyUpdate(optimizer, to: model, gradients: &grads, maxNorm: c.maxGradNorm, step: step, loss: metrics.loss)
            return (metrics, [("loss", Double(metrics.loss)), ("accuracy", Double(metrics.accuracy)), ("margin", Double(metrics.margin)),
                              ("grad_norm", Double(norm)), ("learning_rate", Double(optimizer.learningRate))])
        }
    }

    /// Loss, accuracy and margin of `model` on preference rows (TRL's eval metrics), in batches of
    /// `batchSize`, without training.
    public static func evaluate(model: ScalarHeadModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil, rows: [DatasetRow],
                                batchSize: Int = 32) throws -> RewardMetrics {
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, model: model.trunk)
        let examples = try rowTokenizer.each(rows) { try rowTokenizer.preference($0) }
        let padID = Collator.padID(for: tokenizer)
        var loss = 0.0, wins = 0.0, margin = 0.0
        for start in stride(from: 0, to: examples.count, by: max(batchSize, 1)) {
            let group = Array(examples[start..<min(start + batchSize, examples.count)])
            let m = withoutGradients {
                let (chosen, rejected) = rewards(model, Collator.preference(group, padID: padID))
                return bradleyTerryLoss(chosen: chosen, rejected: rejected).metrics
            }
            let n = Double(group.count)
            (loss, wins, margin) = (loss + Double(m.loss) * n, wins + Double(m.accuracy) * n, margin + Double(m.margin) * n)
        }
        let n = Double(max(examples.count, 1))
        return RewardMetrics(loss: Float(loss / n), accuracy: Float(wins / n), margin: Float(margin / n))
    }
}
