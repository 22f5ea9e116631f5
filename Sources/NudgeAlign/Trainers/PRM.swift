// Process reward models (TRL's PRMTrainer; Lightman et al. 2023, "Let's Verify Step by Step";
// Wang et al. 2024, Math-Shepherd): a token-classification head on a language-model trunk, read at
// the separator that ends each step of a worked solution, trained on stepwise supervision (`prompt`,
// `completions` as a list of steps, `labels` one boolean per step). Rows are laid out as TRL's
// `PRMTrainer.tokenize_row` does: BOS (when the tokenizer has one) and the prompt, then each step
// followed by `step_separator`, the step's label on the separator's last token and -100 (ignored)
// everywhere else; the completion cut to max_completion_length, the whole to max_length.
//
// The head is one logit per position (`ScalarHeadModel`, key `score.weight`), the two-class
// classifier written with one logit: p(correct) = σ(z), and the loss is the cross-entropy at the
// labelled positions, −[y·log σ(z) + (1 − y)·log σ(−z)], averaged over them. Metrics with TRL's
// names where it has them (`loss`, `accuracy`; `eval_` prefixed on held-out rows), and step-level
// precision, recall and F1 with the correct step (label 1) as the positive class.

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

/// PRM hyperparameters (TRL's PRMConfig defaults where it has them).
public struct PRMConfig: Sendable {
    public var learningRate: Float = 1e-5
    /// transformers' lr_scheduler_type: the learning rate over the run's optimizer steps.
    public var lrSchedulerType = LRSchedulerType.linear
    /// transformers' warmup_steps: steps of linear warmup to learning_rate (below 1: a fraction of all steps).
    public var warmupSteps: Double = 0
    public var epochs = 1
    public var batchSize = 8
    /// TRL's max_length: the whole sequence, cut at the end.
    public var maxLength: Int? = 1024
    /// TRL's max_completion_length: the completion (steps and separators), cut at the end.
    public var maxCompletionLength: Int?
    /// TRL's step_separator, appended to every step.
    public var stepSeparator = "\n"
    /// TRL's train_on_last_step_only: label only the last step of training rows (evaluation rows keep all).
    public var trainOnLastStepOnly = false
    public var maxGradNorm: Float = 1
    public var weightDecay: Float = 0
    /// Evaluate on the held-out rows every this many steps (0: only after the last).
    public var evalSteps = 0
    public var seed: UInt64 = 0
    /// Activation checkpointing (TRL's `gradient_checkpointing`): each decoder block of the trained
    /// model is recomputed in backward instead of keeping its activations; gradients are unchanged.
    public var gradientCheckpointing = false
    /// TRL's `bf16`: training products on bf16 operands with Float32 sums (`MixedPrecision`).
    public var bf16 = false
    /// The AdamW implementation (HF TrainingArguments' `optim`): Float32 moments, or bitsandbytes-style 8-bit ones.
    public var optim: OptimizerName = .adamwTorch
    /// Weight of an auxiliary language-modeling loss on the tokens of the correct steps (not in TRL;
    /// 0: TRL's loss alone). Why: a step label such as "a+b+c=s is right" depends on all its digits
    /// at once, with next to no signal in any one of them, so the classification loss alone gives a
    /// from-scratch model nothing to learn the sums from; predicting the correct steps' tokens does.
    /// Measured on carries (`nudge prm`, 60000 rows × 3 epochs, linear decay): held-out step accuracy
    /// 0.849 / 0.796 (seeds 0 / 1) with weight 1, 0.893 / 0.899 with 2 (`nudge prm`'s default for the
    /// preset model); of 128 wrong first-column sums the weight-2 models catch 104 / 0.
    public var lmLossWeight: Float = 0

    public init() {}
}

extension PRMConfig: OfflineTrainingConfig {}

/// One tokenized stepwise row: ids and per-token labels (1 correct, 0 wrong, -100 ignored).
public struct PRMExample: Sendable, Equatable {
    public var inputIDs: [Int]
    public var labels: [Int]
    /// Tokens before the first step (BOS and the prompt, as kept after max_length).
    public var promptLength = 0

    /// The labelled positions (the step separators kept after truncation).
    public var labelledPositions: [Int] { labels.indices.filter { labels[$0] != PRMTrainer.ignoredLabel } }
}

/// Step-level classification metrics (positive class: a correct step).
public struct PRMMetrics: Sendable {
    public var loss: Float
    /// Fraction of labelled steps classified right.
    public var accuracy: Double
    public var precision: Double
    public var recall: Double
    public var f1: Double
    /// Labelled steps counted.
    public var steps: Int

    /// From the counts of true/false positives and negatives.
    init(loss: Float, truePositives tp: Int, falsePositives fp: Int, trueNegatives tn: Int, falseNegatives fn: Int) {
        self.loss = loss
        steps = tp + fp + tn + fn
        accuracy = Double(tp + tn) / Double(max(steps, 1))
        precision = tp + fp == 0 ? 0 : Double(tp) / Double(tp + fp)
        recall = tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn)
        f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
    }

    /// The metrics named as TRL logs them, with `prefix` (e.g. "eval_").
    public func named(_ prefix: String = "") -> [(String, Double)] {
        [(prefix + "loss", Double(loss)), (prefix + "accuracy", accuracy), (prefix + "precision", precision),
         (prefix + "recall", recall), (prefix + "f1", f1)]
    }
}

/// Process-reward-model training, evaluation and step scoring.
public enum PRMTrainer {
    /// The label of positions the loss ignores (PyTorch's cross-entropy ignore_index).
    public static let ignoredLabel = -100

    /// A stepwise row laid out as TRL's `PRMTrainer.tokenize_row` (see the file's opening comment);
    /// `isEval` keeps every step's label when `trainOnLastStepOnly` is set, as TRL does.
    public static func tokenizeRow(prompt: String, completions: [String], labels: [Bool], tokenizer: any Tokenizer,
                                   stepSeparator: String, maxLength: Int?, maxCompletionLength: Int?,
                                   trainOnLastStepOnly: Bool = false, isEval: Bool = false) -> PRMExample {
        var promptIDs = tokenizer.encode(prompt, addSpecialTokens: false)
        let separatorIDs = tokenizer.encode(stepSeparator, addSpecialTokens: false)
        let stepLabels: [Int] = trainOnLastStepOnly && !isEval
            ? Array(repeating: ignoredLabel, count: max(labels.count - 1, 0)) + labels.suffix(1).map { $0 ? 1 : 0 }
            : labels.map { $0 ? 1 : 0 }
        var completionIDs: [Int] = [], completionLabels: [Int] = []
        for (step, label) in zip(completions, stepLabels) {
            let ids = tokenizer.encode(step, addSpecialTokens: false) + separatorIDs
            completionIDs += ids
            completionLabels += Array(repeating: ignoredLabel, count: max(ids.count - 1, 0)) + (ids.isEmpty ? [] : [label])
        }
        if let bos = tokenizer.bosTokenID { promptIDs = [bos] + promptIDs }
        if let maxCompletionLength {
            completionIDs = Array(completionIDs.prefix(maxCompletionLength))
            completionLabels = Array(completionLabels.prefix(maxCompletionLength))
        }
        var inputIDs = promptIDs + completionIDs
        var allLabels = Array(repeating: ignoredLabel, count: promptIDs.count) + completionLabels
        if let maxLength {
            inputIDs = Array(inputIDs.prefix(maxLength))
            allLabels = Array(allLabels.prefix(maxLength))
        }
        return PRMExample(inputIDs: inputIDs, labels: allLabels, promptLength: min(promptIDs.count, inputIDs.count))
    }

    /// The example of a stepwise row (an error naming the row's shape otherwise).
    static func example(_ row: DatasetRow, tokenizer: any Tokenizer, config c: PRMConfig, isEval: Bool) throws -> PRMExample {
        guard case .stepwiseSupervision(let prompt, let steps, let labels) = row else {
            throw TokenizationError.unsupportedShape(row.shape, expected: "stepwise supervision (prompt, completions, labels)")
        }
        return tokenizeRow(prompt: prompt, completions: steps, labels: labels, tokenizer: tokenizer, stepSeparator: c.stepSeparator,
                           maxLength: c.maxLength, maxCompletionLength: c.maxCompletionLength,
                           trainOnLastStepOnly: c.trainOnLastStepOnly, isEval: isEval)
    }

    /// Examples of `rows`, an error naming the first bad row (from 1); refuses a model too short for them.
    static func examples(_ rows: [DatasetRow], tokenizer: any Tokenizer, model: ScalarHeadModel, config c: PRMConfig,
                         isEval: Bool) throws -> [PRMExample] {
        let limits = TokenLimits(model: model.trunk)
        return try RowError.map(rows) { row in
            let e = try example(row, tokenizer: tokenizer, config: c, isEval: isEval)
            try limits.check(e.inputIDs)
            return e
        }
    }

    /// The logits (N) at the labelled positions of a batch, their 0/1 targets, and the (B, T) ids laid out.
    static func logitsAtLabels(_ model: ScalarHeadModel, _ batch: [PRMExample], padID: Int) -> (logits: Tensor, targets: [Float]) {
        let (logits, targets, _) = logitsAtLabels(model, batch, padID: padID, languageModelTargets: nil)
        return (logits, targets)
    }

    /// As above, and with `languageModelTargets` (one next-token target per position of each example,
    /// `ignoredLabel` where none) the mean next-token cross-entropy over those targets (nil without them).
    static func logitsAtLabels(_ model: ScalarHeadModel, _ batch: [PRMExample], padID: Int,
                               languageModelTargets: [[Int]]?) -> (logits: Tensor, targets: [Float], lmLoss: Tensor?) {
        let length = batch.map(\.inputIDs.count).max() ?? 0
        let ids = batch.map { $0.inputIDs + Array(repeating: padID, count: length - $0.inputIDs.count) }
        let mask = batch.map { Array(repeating: true, count: $0.inputIDs.count) + Array(repeating: false, count: length - $0.inputIDs.count) }
        var flat: [Int] = [], targets: [Float] = []
        for (r, e) in batch.enumerated() {
            for t in e.labelledPositions {
                flat.append(r * length + t)
                targets.append(Float(e.labels[t]))
            }
        }
        // values: (B, T), one logit per position; read at the separators only.
        let input = TokenBatch(ids: ids, attentionMask: mask)
        let hidden = model.trunk.finalHiddenStates(input)
        let values = model.score(hidden).reshaped([batch.count * length])
        var lmLoss: Tensor?
        if let languageModelTargets {
            // The vocabulary logits only at the positions with a target (the correct steps' tokens).
            var positions: [Int] = [], next: [Int] = []
            for (r, row) in languageModelTargets.enumerated() {
                for (t, target) in row.enumerated() where target != ignoredLabel {
                    positions.append(r * length + t)
                    next.append(target)
                }
            }
            if !positions.isEmpty {
                let rows = hidden.reshaped([batch.count * length, hidden.shape.last!]).indexSelect(positions)
                if let weight = model.trunk.plainHeadWeight {
                    // The head fused with log-softmax on those rows: no (rows × vocabulary) logits held.
                    let (selected, _) = linearSelectedLogProbabilities(hidden: rows, weight: weight, targets: next)
                    lmLoss = selected.sum() * (-1 / Float(next.count))
                } else {
                    lmLoss = crossEntropy(logits: model.trunk.logits(rows), targets: next)
                }
            }
        }
        return (values.indexSelect(flat), targets, lmLoss)
    }

    /// Next-token targets for the language-modeling loss: at each position before a token of a
    /// correct step (its text and separator), that token; `ignoredLabel` elsewhere (prompt, wrong steps, padding).
    static func languageModelTargets(_ e: PRMExample, promptLength: Int) -> [Int] {
        var next = Array(repeating: ignoredLabel, count: e.inputIDs.count)
        var start = promptLength
        for t in e.labelledPositions {
            if e.labels[t] == 1 {
                for u in max(start, 1)...t where u < e.inputIDs.count { next[u - 1] = e.inputIDs[u] }
            }
            start = t + 1
        }
        return next
    }

    /// Mean cross-entropy −[y·log σ(z) + (1 − y)·log σ(−z)] over the labelled positions.
    public static func loss(logits: Tensor, targets: [Float]) -> Tensor {
        let y = Tensor(shape: [targets.count], values: targets)
        let positive = logits.logSigmoid() * y
        let negative = (-logits).logSigmoid() * (1 - y)
        return -(positive + negative).mean()
    }

    /// Counts of a batch's predictions (σ(z) > 0.5, i.e. z > 0: correct) against its targets.
    static func counts(_ logits: [Float], _ targets: [Float]) -> (tp: Int, fp: Int, tn: Int, fn: Int) {
        var c = (tp: 0, fp: 0, tn: 0, fn: 0)
        for (z, y) in zip(logits, targets) {
            switch (z > 0, y > 0.5) {
            case (true, true): c.tp += 1
            case (true, false): c.fp += 1
            case (false, false): c.tn += 1
            case (false, true): c.fn += 1
            }
        }
        return c
    }

    /// The same training as a `Trainer`, one optimizer step per `trainStep`; evaluates on `evalRows`
    /// every `evalSteps` steps and after the last (`eval_loss`, `eval_accuracy`, `eval_precision`,
    /// `eval_recall`, `eval_f1`).
    public static func trainer(model: ScalarHeadModel, tokenizer: any Tokenizer, rows: [DatasetRow], evalRows: [DatasetRow] = [],
                               config c: PRMConfig, optimizer: Adam? = nil) throws -> OfflineTrainer<PRMMetrics> {
        let optimizer = optimizer ?? AdamW(learningRate: c.learningRate, weightDecay: c.weightDecay, optim: c.optim)
        return OfflineTrainer(model: model, optimizer: optimizer, bf16: c.bf16,
                              plan: try plan(model: model, tokenizer: tokenizer, rows: rows, evalRows: evalRows, config: c, optimizer: optimizer))
    }

    static func plan(model: ScalarHeadModel, tokenizer: any Tokenizer, rows: [DatasetRow], evalRows: [DatasetRow], config c: PRMConfig,
                     optimizer: Adam) throws -> OfflinePlan<PRMMetrics> {
        model.trunk.gradientCheckpointing = c.gradientCheckpointing
        let examples = try Self.examples(rows, tokenizer: tokenizer, model: model, config: c, isEval: false)
        guard examples.contains(where: { !$0.labelledPositions.isEmpty }) else {
            throw TrainerConfigurationError(field: "max_length", message: "no row has a step separator left to train on after truncation to max_length \(c.maxLength.map(String.init) ?? "none") / max_completion_length \(c.maxCompletionLength.map(String.init) ?? "none")")
        }
        let evalExamples = try Self.examples(evalRows, tokenizer: tokenizer, model: model, config: c, isEval: true)
        let padID = Collator.padID(for: tokenizer)
        let nextTokens: [[Int]]? = c.lmLossWeight > 0 ? examples.map { languageModelTargets($0, promptLength: $0.promptLength) } : nil
        let schedule = EpochSchedule(count: examples.count, batchSize: c.batchSize, epochs: c.epochs, seed: c.seed)
        return OfflinePlan(schedule: schedule) { step, group, final in
            let indices = group[0].filter { !examples[$0].labelledPositions.isEmpty }
            let batch = indices.map { examples[$0] }
            guard !batch.isEmpty else { return nil }
            var logitValues: [Float] = [], targets: [Float] = []
            var lmValue: Float?
            var (loss, grads) = valueAndGrad(model) { m in
                let (logits, y, lm) = logitsAtLabels(m, batch, padID: padID, languageModelTargets: nextTokens.map { t in indices.map { t[$0] } })
                logitValues = withoutGradients { logits.scalars }
                targets = y
                let classification = Self.loss(logits: logits, targets: y)
                guard let lm else { return classification }
                lmValue = withoutGradients { lm.item() }
                return classification + lm * c.lmLossWeight
            }
            let counted = counts(logitValues, targets)
            let metrics = PRMMetrics(loss: loss.item(), truePositives: counted.tp, falsePositives: counted.fp, trueNegatives: counted.tn,
                                     falseNegatives: counted.fn)
            c.scheduleLearningRate(optimizer, step: step, total: schedule.totalSteps)
            let norm = try applyUpdate(optimizer, to: model, gradients: &grads, maxNorm: c.maxGradNorm, step: step, loss: metrics.loss)
            var named: [(String, Double)] = [("loss", Double(metrics.loss)), ("accuracy", metrics.accuracy), ("grad_norm", Double(norm)),
                                             ("learning_rate", Double(optimizer.learningRate))]
            if let lmValue { named.append(("lm_loss", Double(lmValue))) }
            if !evalExamples.isEmpty && ((c.evalSteps > 0 && step % c.evalSteps == 0) || step == schedule.totalSteps || final) {
                named += evaluate(model: model, examples: evalExamples, batchSize: c.batchSize, padID: padID).named("eval_")
            }
            return (metrics, named)
        }
    }

    /// Step-level loss, accuracy, precision, recall and F1 of `model` on stepwise rows, without training.
    public static func evaluate(model: ScalarHeadModel, tokenizer: any Tokenizer, rows: [DatasetRow], config c: PRMConfig = PRMConfig(),
                                batchSize: Int = 32) throws -> PRMMetrics {
        evaluate(model: model, examples: try examples(rows, tokenizer: tokenizer, model: model, config: c, isEval: true),
                 batchSize: batchSize, padID: Collator.padID(for: tokenizer))
    }

    static func evaluate(model: ScalarHeadModel, examples: [PRMExample], batchSize: Int, padID: Int) -> PRMMetrics {
        withoutGradients {
            var total = 0.0, n = 0
            var c = (tp: 0, fp: 0, tn: 0, fn: 0)
            for start in stride(from: 0, to: examples.count, by: max(batchSize, 1)) {
                let batch = examples[start..<min(start + batchSize, examples.count)].filter { !$0.labelledPositions.isEmpty }
                guard !batch.isEmpty else { continue }
                let (logits, y) = logitsAtLabels(model, batch, padID: padID)
                total += Double(loss(logits: logits, targets: y).item()) * Double(y.count)
                n += y.count
                let k = counts(logits.scalars, y)
                c = (c.tp + k.tp, c.fp + k.fp, c.tn + k.tn, c.fn + k.fn)
            }
            return PRMMetrics(loss: Float(total / Double(max(n, 1))), truePositives: c.tp, falsePositives: c.fp, trueNegatives: c.tn,
                              falseNegatives: c.fn)
        }
    }
}
