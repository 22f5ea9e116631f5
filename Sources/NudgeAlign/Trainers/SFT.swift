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
    public var packing = false
    public var completionOnlyLoss = true
    public var maxGradNorm: Float = 1
    public var weightDecay: Float = 0
    public var seed: UInt64 = 0

    public init() {}
}

/// SFT training.
public enum SFTTrainer {
    /// Trains `model` on `rows`; calls `onMetrics(step, metrics)` after each optimizer step.
    public static func train(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate? = nil,
                             rows: [DatasetRow], config c: SFTConfig, onMetrics: ((Int, [(String, Double)]) -> Void)? = nil) throws -> [Float] {
        var options = TokenizationOptions()
        options.maxLength = c.maxLength
        options.completionOnlyLoss = c.completionOnlyLoss
        let rowTokenizer = RowTokenizer(tokenizer: tokenizer, template: template, options: options)
        let examples = try rows.map { try rowTokenizer.sft($0) }
        let padID = Collator.padID(for: tokenizer)
        let optimizer = AdamW(learningRate: c.learningRate, weightDecay: c.weightDecay)
        var rng = RandomGenerator(seed: c.seed)
        var losses: [Float] = []
        var step = 0, tokensSeen = 0
        for _ in 0..<c.epochs {
            var order = Array(examples.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(below: i + 1)) }
            let microBatches = stride(from: 0, to: order.count, by: c.batchSize).map { Array(order[$0..<Swift.min($0 + c.batchSize, order.count)]) }
            for group in stride(from: 0, to: microBatches.count, by: c.gradientAccumulationSteps) {
                let micro = microBatches[group..<Swift.min(group + c.gradientAccumulationSteps, microBatches.count)]
                let batches = micro.map { Collator.sft($0.map { examples[$0] }, padID: padID) }
                // Normalize over every counted token of the whole step, so accumulation equals one big batch.
                let totalTokens = batches.reduce(0) { $0 + $1.lossMask.reduce(0) { $0 + $1.dropFirst().reduce(0, +) } }
                var accumulated: NamedTensors?
                var stepLoss: Float = 0
                for batch in batches {
                    let mask = batch.lossMask.map { $0.map { $0 != 0 } }
                    let input = TokenBatch(ids: batch.inputIDs, attentionMask: batch.attentionMask.map { $0.map { $0 != 0 } })
                    let counted = batch.lossMask.reduce(0) { $0 + $1.dropFirst().reduce(0, +) }
                    let (loss, grads) = valueAndGrad(model) { m in
                        causalLanguageModelLoss(logits: m(input), ids: batch.inputIDs, lossMask: mask) * (Float(counted) / Float(Swift.max(totalTokens, 1)))
                    }
                    stepLoss += loss.item()
                    accumulated = accumulated.map { $0.adding(grads) } ?? grads
                    tokensSeen += batch.attentionMask.reduce(0) { $0 + $1.reduce(0, +) }
                }
                guard var grads = accumulated else { continue }
                let norm = clipGradientNorm(&grads, maxNorm: c.maxGradNorm)
                optimizer.update(model, gradients: grads)
                step += 1
                losses.append(stepLoss)
                onMetrics?(step, [("loss", Double(stepLoss)), ("grad_norm", Double(norm)),
                                  ("learning_rate", Double(optimizer.learningRate)), ("num_tokens", Double(tokensSeen))])
            }
        }
        return losses
    }
}
