// Packing without cross-contamination (a packed row's logits equal each example's own), the SFT
// evaluation loss, resuming an offline trainer with identical steps, refusing a non-finite step,
// ORPO in the DPO trainer, and KTO (hand value at the reference, learning on unpaired rows).

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Offline trainers") struct OfflineTrainerTests {
    /// The logits of `ids` alone, unpadded.
    func logits(_ model: any CausalLanguageModel, _ ids: [Int]) -> [Float] { withoutGradients { model(TokenBatch(ids: [ids])).scalars } }

    @Test("Packed rows: each example's logits equal its own forward pass (Llama and GPT-2)")
    func packedLogitsMatch() throws {
        let (llama, tokenizer) = tinyPolicy(seed: 3)
        var gptConfig = TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize)!
        gptConfig.eosTokenID = tokenizer.eosTokenID
        let gpt = GPT2Model(gptConfig, seed: 3)
        let examples = [SFTExample(inputIDs: [5, 9, 13, 2], completionMask: [0, 1, 1, 1]),
                        SFTExample(inputIDs: [7, 8, 30], completionMask: [0, 1, 1]),
                        SFTExample(inputIDs: [40, 41, 42, 43, 44], completionMask: [0, 0, 1, 1, 1])]
        let packed = Packer.pack(examples, maxLength: 9, padID: 257, strategy: .sequential)
        #expect(packed.segmentIDs[0] == [1, 1, 1, 1, 2, 2, 2, 0, 0])
        for model in [llama as any CausalLanguageModel, gpt] {
            let out = withoutGradients { model(SFTTrainer.input(packed)) }
            let v = out.shape[2], t = out.shape[1]
            for (row, members) in packed.exampleIndices.enumerated() {
                var offset = 0
                for index in members {
                    let ids = examples[index].inputIDs
                    let own = logits(model, ids)
                    let start = (row * t + offset) * v
                    let slice = Array(out.scalars[start..<(start + ids.count * v)])
                    let worst = zip(own, slice).map { abs($0 - $1) }.max() ?? 0
                    #expect(worst < 1e-4, "example \(index): largest logit difference \(worst)")
                    offset += ids.count
                }
            }
        }
        // The first token of a later segment is never a target (its predecessor is another example).
        #expect(SFTTrainer.targets(packed)[0] == [false, true, true, true, false, true, true, false, false])
    }

    @Test("Packed SFT: same loss as unpacked on the same examples, fewer rows")
    func packedLossEqualsUnpacked() throws {
        let (model, tokenizer) = tinyPolicy(seed: 2)
        let rows = SyntheticTask.addition(digits: 2).sftRows(count: 12, seed: 4)
        var config = SFTConfig()
        config.batchSize = 12
        let unpacked = try SFTTrainer.evaluationLoss(model: model, tokenizer: tokenizer, rows: rows, config: config)
        // One step at learning rate 0 on all rows, packed: the step's loss is the same mean.
        config.learningRate = 0
        config.packing = true
        config.maxLength = 64
        var tokens = 0.0
        let losses = try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: config) { _, m in
            tokens = m.first { $0.0 == "num_tokens" }!.1
        }
        #expect(losses.count == 1)
        #expect(abs(losses[0] - unpacked) < 1e-4, "packed \(losses[0]) vs unpacked \(unpacked)")
        // Every token of every example is there once (no padding counted).
        let tokenizerRows = RowTokenizer(tokenizer: tokenizer)
        #expect(Int(tokens) == (try rows.map { try tokenizerRows.sft($0).inputIDs.count }.reduce(0, +)))
    }

    @Test("SFT reports eval_loss when due and at the end; it falls with training")
    func sftEvalLoss() throws {
        let (model, tokenizer) = tinyPolicy(seed: 6)
        let task = SyntheticTask.addition(digits: 1)
        var config = SFTConfig()
        config.learningRate = 3e-3
        config.epochs = 2
        config.batchSize = 16
        config.evalSteps = 3
        let evalRows = task.sftRows(count: 32, seed: 99)
        let before = try SFTTrainer.evaluationLoss(model: model, tokenizer: tokenizer, rows: evalRows, config: config)
        var evals: [(Int, Double)] = []
        _ = try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: task.sftRows(count: 64, seed: 1), evalRows: evalRows,
                                 config: config) { step, m in
            if let e = m.first(where: { $0.0 == "eval_loss" }) { evals.append((step, e.1)) }
        }
        #expect(evals.map(\.0) == [3, 6, 8])
        let after = try SFTTrainer.evaluationLoss(model: model, tokenizer: tokenizer, rows: evalRows, config: config)
        #expect(abs(Double(after) - evals.last!.1) < 1e-5)
        #expect(after < before * 0.8, "eval loss \(before) → \(after)")
    }

    @Test("An SFT run stopped after step 3 and resumed from its checkpoint makes the same steps")
    func sftResumeIsIdentical() throws {
        let rows = SyntheticTask.reversal(length: 4).sftRows(count: 40, seed: 3)
        var config = SFTConfig()
        config.learningRate = 2e-3
        config.batchSize = 8
        config.epochs = 2
        let (whole, tokenizer) = tinyPolicy(seed: 8)
        var wholeMetrics: [[(String, Double)]] = []
        let wholeLosses = try SFTTrainer.train(model: whole, tokenizer: tokenizer, rows: rows, config: config) { wholeMetrics.append($1) }
        #expect(wholeLosses.count == 10)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-sft-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (first, _) = tinyPolicy(seed: 8)
        let firstOptimizer = AdamW(learningRate: config.learningRate, weightDecay: 0)
        var saved: [Int] = []
        var firstSteps = 0
        // Ctrl-C during step 3: the loop stops after it and writes the checkpoint.
        let control = TrainingControl(shouldStop: { firstSteps == 3 }, checkpointEvery: 100) { step in
            saved.append(step)
            try Checkpoint.save(model: first, optimizer: firstOptimizer, step: step, to: dir)
        }
        _ = try SFTTrainer.train(model: first, tokenizer: tokenizer, rows: rows, config: config, optimizer: firstOptimizer,
                                 control: control) { step, _ in firstSteps = step }
        #expect(saved == [3])

        let (second, _) = tinyPolicy(seed: 123)  // other weights: all of them come from the checkpoint
        let secondOptimizer = AdamW(learningRate: config.learningRate, weightDecay: 0)
        let start = try Checkpoint.restore(model: second, optimizer: secondOptimizer, from: dir)
        var resumedMetrics: [(Int, [(String, Double)])] = []
        let resumed = try SFTTrainer.train(model: second, tokenizer: tokenizer, rows: rows, config: config, optimizer: secondOptimizer,
                                           control: TrainingControl(startStep: start)) { resumedMetrics.append(($0, $1)) }
        #expect(resumedMetrics.map(\.0) == Array(4...10))
        #expect(resumed == Array(wholeLosses[3...]))
        for (k, (_, m)) in resumedMetrics.enumerated() {
            #expect(m.map(\.0) == wholeMetrics[k + 3].map(\.0))
            #expect(m.map(\.1) == wholeMetrics[k + 3].map(\.1), "step \(k + 4)")
        }
        #expect(zip(whole.parameters().tensors, second.parameters().tensors).allSatisfy { $0.scalars == $1.scalars })
    }

    @Test("A NaN loss stops DPO before the update, naming the step and the metric")
    func nonFiniteStops() throws {
        let (policy, tokenizer) = tinyPolicy(seed: 9)
        let rows = SyntheticTask.addition(digits: 1).preferenceRows(count: 16, seed: 2)
        var config = DPOConfig()
        config.learningRate = 1e-3
        config.batchSize = 4
        var steps = 0
        // Poison the weights after step 2: step 3's loss is NaN and must not be applied.
        var snapshot: [[Float]] = []
        do {
            _ = try DPOTrainer.train(policy: policy, tokenizer: tokenizer, rows: rows, config: config) { step, _ in
                steps = step
                if step == 2 {
                    let w = policy.model.norm.weight
                    w.data[0] = .nan
                    snapshot = policy.parameters().tensors.map(\.scalars)
                }
            }
            Issue.record("expected a NonFiniteValueError")
        } catch let error as NonFiniteValueError {
            #expect(error.step == 3 && error.metric == "loss")
            #expect(error.description.contains("step 3: loss is nan"))
        }
        #expect(steps == 2)
        let after = policy.parameters().tensors.map(\.scalars)
        #expect(after.count == snapshot.count)
        for (a, b) in zip(after, snapshot) { #expect(zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }) }
    }

    @Test("ORPO through the DPO trainer: reference-free, loss equals the hand formula at step 1")
    func orpoInTrainer() throws {
        // Hand value: average log-probs −0.5 and −1.5, λ = 0.5.
        let cw: Float = -0.5, cl: Float = -1.5
        func logOdds(_ lp: Float) -> Float { lp - log(1 - exp(lp)) }
        let expected = -cw - 0.5 * log(1 / (1 + exp(-(logOdds(cw) - logOdds(cl)))))
        let pairs = PairedLogProbs(chosen: Tensor([-1.0]), rejected: Tensor([-4.5]), referenceChosen: nil, referenceRejected: nil,
                                   chosenLengths: [2], rejectedLengths: [3])
        let (loss, _) = preferenceLoss(.orpo(lambda: 0.5), beta: 0.1, pairs)
        #expect(abs(loss.item() - expected) < 1e-5)
        #expect(PreferenceLoss.orpo(lambda: 0.1).isReferenceFree)

        let (policy, tokenizer) = tinyPolicy(seed: 10)
        let rows = SyntheticTask.addition(digits: 1).preferenceRows(count: 32, seed: 2)
        var config = DPOConfig()
        config.loss = .orpo(lambda: 0.5)
        config.learningRate = 2e-3
        config.epochs = 3
        let history = try DPOTrainer.train(policy: policy, tokenizer: tokenizer, rows: rows, config: config)
        #expect(history.count == 12)
        let early = history.prefix(2).map(\.loss).reduce(0, +) / 2, late = history.suffix(2).map(\.loss).reduce(0, +) / 2
        #expect(late < early, "\(history.map(\.loss))")
    }

    /// SFT, the reward model, DPO and KTO log transformers' scheduled learning rate each step
    /// (`lr_scheduler_type`, `warmup_steps`), and keep the configured one when it is constant.
    @Test("Offline trainers follow lr_scheduler_type and warmup_steps")
    func learningRateSchedules() throws {
        let task = SyntheticTask.addition(digits: 1)
        typealias Runner = (LRSchedulerType, Double, @escaping (Int, [(String, Double)]) -> Void) throws -> Void
        func rates(_ kind: LRSchedulerType, warmup: Double, _ run: Runner) rethrows -> [Double] {
            var logged: [Double] = []
            try run(kind, warmup) { _, m in logged.append(m.first { $0.0 == "learning_rate" }!.1) }
            return logged
        }
        let peak: Float = 1e-3
        /// `c` with 8 steps (16 rows, batches of 4, 2 epochs) at `peak` on the schedule.
        func scheduled<C: OfflineTrainingConfig>(_ c: C, _ kind: LRSchedulerType, _ warmup: Double) -> C {
            var c = c
            (c.learningRate, c.batchSize, c.epochs, c.lrSchedulerType, c.warmupSteps) = (peak, 4, 2, kind, warmup)
            return c
        }
        // Each run trains a fresh copy of the same tiny model.
        let tokenizer = tinyPolicy(seed: 5).1
        func policy() -> LlamaModel { tinyPolicy(seed: 5).0 }
        let sft: Runner = { kind, warmup, log in
            _ = try SFTTrainer.train(model: policy(), tokenizer: tokenizer, rows: task.sftRows(count: 16, seed: 1),
                                     config: scheduled(SFTConfig(), kind, warmup), onMetrics: log)
        }
        let reward: Runner = { kind, warmup, log in
            _ = try RewardTrainer.train(model: ScalarHeadModel(trunk: policy(), seed: 5), tokenizer: tokenizer,
                                        rows: task.preferenceRows(count: 16, seed: 1), config: scheduled(RewardConfig(), kind, warmup), onMetrics: log)
        }
        let dpo: Runner = { kind, warmup, log in
            _ = try DPOTrainer.train(policy: policy(), tokenizer: tokenizer, rows: task.preferenceRows(count: 16, seed: 1),
                                     config: scheduled(DPOConfig(), kind, warmup), onMetrics: log)
        }
        let kto: Runner = { kind, warmup, log in
            _ = try KTOTrainer.train(policy: policy(), tokenizer: tokenizer, rows: task.unpairedRows(count: 16, seed: 1),
                                     config: scheduled(KTOConfig(), kind, warmup), onMetrics: log)
        }
        for (name, run) in [("sft", sft), ("reward", reward), ("dpo", dpo), ("kto", kto)] {
            // 8 steps: 2 of warmup up to the peak, then linear decay over the other 6 (to 0 after the last).
            let expected = (0..<8).map { Double(LRSchedulerType.linear.learningRate(step: $0, total: 8, peak: peak, warmupSteps: 2)) }
            let linear = try rates(.linear, warmup: 2, run)
            #expect(linear.count == 8 && zip(linear, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(name): \(linear)")
            #expect(linear[1] == Double(peak) && linear[7] < linear[2], "\(name): \(linear)")
            let constant = try rates(.constant, warmup: 0, run)
            #expect(constant == Array(repeating: Double(peak), count: 8), "\(name): \(constant)")
        }
    }

    @Test("KTO: loss 1/2 at the reference, mismatched pairs within the batch, desirable rewards rise above undesirable")
    func kto() throws {
        // A batch as scheduled (shuffled rows 3, 0, 4): each prompt takes the completion of the row before it, the first the last's (TRL).
        let batch = [3, 0, 4].map { UnpairedExample(promptIDs: [$0], completionIDs: [10 + $0], label: $0 % 2 == 0) }
        let shifted = KTOTrainer.mismatched(batch)
        #expect(shifted.map(\.promptIDs) == [[3], [0], [4]])
        #expect(shifted.map(\.completionIDs) == [[14], [13], [10]])
        #expect(shifted.map(\.label) == batch.map(\.label))

        let (policy, tokenizer) = tinyPolicy(seed: 11)
        let rows = SyntheticTask.addition(digits: 1).unpairedRows(count: 48, seed: 7)
        var config = KTOConfig()
        config.learningRate = 1e-3
        config.epochs = 3
        let history = try KTOTrainer.train(policy: policy, tokenizer: tokenizer, rows: rows, config: config)
        #expect(history.count == 18)
        // Step 1: π = π_ref, so every log-ratio and z are 0 and each term is 1 − σ(0). z is 0 up to
        // the last bits: the policy scores matched and mismatched rows in one padded batch, the
        // reference the mismatched ones alone, and BLAS rounding depends on the matrix shapes.
        #expect(abs(history[0].loss - 0.5) < 1e-6 && abs(history[0].kl) < 1e-5, "\(history[0])")
        let late = history.suffix(4)
        let margin = late.map { $0.rewardsChosen - $0.rewardsRejected }.reduce(0, +) / 4
        #expect(margin > 0.1, "\(history.map { $0.rewardsChosen - $0.rewardsRejected })")
        #expect(late.map(\.loss).reduce(0, +) / 4 < 0.49)

        var bad = KTOConfig()
        bad.batchSize = 1
        #expect(throws: TrainerConfigurationError.self) { try KTOTrainer.train(policy: policy, tokenizer: tokenizer, rows: rows, config: bad) }
    }
}
