// SFT and DPO trainers on a tiny from-scratch Llama with the byte tokenizer and built-in tasks:
// the SFT loss falls; DPO's implicit reward margin and accuracy rise; evaluation without training
// gives the same metrics as the loss functions; accumulation equals one big batch.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

func tinyPolicy(seed: UInt64 = 1) -> (LlamaModel, ByteTokenizer) {
    let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
    var config = TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize)!
    config.eosTokenID = tokenizer.eosTokenID
    return (LlamaModel(config, seed: seed), tokenizer)
}

@Suite("Trainers") struct TrainerTests {
    @Test func sftLossFalls() throws {
        let (model, tokenizer) = tinyPolicy()
        let rows = SyntheticTask.addition(digits: 1).sftRows(count: 64, seed: 1)
        var config = SFTConfig()
        config.learningRate = 3e-3
        config.epochs = 3
        config.batchSize = 16
        let losses = try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: config)
        #expect(losses.count == 12)
        let early: Float = losses.prefix(2).reduce(0, +) / 2
        let late: Float = losses.suffix(3).reduce(0, +) / 3
        #expect(late < early * 0.7, "\(losses)")
    }

    @Test func dpoRaisesTheMarginAndAccuracy() throws {
        let (policy, tokenizer) = tinyPolicy()
        let rows = SyntheticTask.addition(digits: 1).preferenceRows(count: 32, seed: 2)
        var config = DPOConfig()
        config.learningRate = 2e-3
        config.beta = 0.1
        config.epochs = 4
        config.batchSize = 8
        let history = try DPOTrainer.train(policy: policy, tokenizer: tokenizer, rows: rows, config: config)
        #expect(history.count == 16)
        // At step 1 the policy is the reference: zero margins, loss log 2.
        let firstLoss: Float = history[0].loss
        #expect(abs(history[0].rewardsMargins) < 1e-5)
        #expect(abs(firstLoss - Float(log(2.0))) < 1e-4)
        let lateMargin: Float = history.suffix(4).map(\.rewardsMargins).reduce(0, +) / 4
        let lateAccuracy: Float = history.suffix(4).map(\.rewardsAccuracies).reduce(0, +) / 4
        #expect(lateMargin > 0.2, "\(history.map(\.rewardsMargins))")
        #expect(lateAccuracy > 0.7)
        // Evaluation against a fresh copy of the initial weights (the reference) on the training set.
        let (reference, _) = tinyPolicy()
        let evaluated = try DPOTrainer.evaluate(policy: policy, reference: reference, tokenizer: tokenizer, rows: rows, config: config)
        #expect(evaluated.rewardsMargins > 0.2 && evaluated.loss < Float(log(2.0)))
    }

    @Test func sftAccumulationEqualsOneBigBatch() throws {
        let rows = SyntheticTask.reversal(length: 4).sftRows(count: 8, seed: 3)
        var big = SFTConfig(), small = SFTConfig()
        big.batchSize = 8
        small.batchSize = 4
        small.gradientAccumulationSteps = 2
        big.learningRate = 1e-3
        small.learningRate = 1e-3
        let (a, tokenizer) = tinyPolicy(seed: 5)
        let (b, _) = tinyPolicy(seed: 5)
        // Same shuffled order: one epoch over all 8 rows in one optimizer step either way.
        let la = try SFTTrainer.train(model: a, tokenizer: tokenizer, rows: rows, config: big)
        let lb = try SFTTrainer.train(model: b, tokenizer: tokenizer, rows: rows, config: small)
        // The step's loss is normalized over all counted tokens of the step: equal to 1e-4.
        #expect(abs(la[0] - lb[0]) < 1e-4)
        // AdamW's first update is about lr·sign(g) per element, so parameters are compared against
        // the step size: summation-order noise in near-zero gradients moves an element by a small
        // fraction of lr, a wrong accumulation by up to 2·lr.
        var worst: Float = 0
        for (x, y) in zip(a.parameters().tensors, b.parameters().tensors) {
            for i in 0..<x.count { worst = Swift.max(worst, abs(x.data[i] - y.data[i])) }
        }
        #expect(worst < 0.05 * big.learningRate, "largest parameter difference \(worst)")
    }

    /// DPO's log-probs and TRL's token metrics through the fused head (completion positions only)
    /// equal the logits path's, gradients included.
    @Test func fusedDPOLogProbsAndTokenMetricsEqualTheLogitsPath() throws {
        let (model, _) = tinyPolicy(seed: 4)
        var rng = RandomGenerator(seed: 9)
        func ids(_ n: Int) -> [Int] { (0..<n).map { _ in 3 + rng.int(below: 200) } }
        let examples = [(14, 3, 5), (20, 4, 2), (9, 6, 6)].map { PreferenceExample(promptIDs: ids($0.0), chosenIDs: ids($0.1), rejectedIDs: ids($0.2)) }
        let pb = Collator.preference(examples, padID: 0)
        let input = TokenBatch(ids: pb.batch.inputIDs, attentionMask: pb.batch.attentionMask.map { $0.map { $0 != 0 } })
        let (fusedLoss, fusedGrads) = try valueAndGrad(model) { m in
            let f = try #require(DPOTrainer.fusedLogProbs(m, pb, input: input, tokenMetrics: false))
            return (f.chosen - f.rejected * 0.5).sum()
        }
        let (plainLoss, plainGrads) = valueAndGrad(model) { m in
            let r = completionLogProbs(logits: m(input), ids: input.ids, completionMask: pb.batch.lossMask.map { $0.map { $0 != 0 } })
            let n = pb.pairCount
            return (r.sums.slice(axis: 0, 0..<n) - r.sums.slice(axis: 0, n..<(2 * n)) * 0.5).sum()
        }
        #expect(abs(fusedLoss.item() - plainLoss.item()) < 1e-4 * max(1, abs(plainLoss.item())))
        for (key, g) in plainGrads {
            let h = try #require(fusedGrads[key])
            let scale = max(1, g.scalars.map(abs).max() ?? 0)
            #expect(zip(g.scalars, h.scalars).allSatisfy { abs($0 - $1) < 1e-4 * scale }, "\(key)")
        }
        let fused = try #require(withoutGradients { DPOTrainer.fusedLogProbs(model, pb, input: input, tokenMetrics: true) }?.tokens)
        let plain = withoutGradients { DPOTrainer.tokenMetrics(logits: model(input), pb) }
        #expect(abs(fused.entropy - plain.entropy) < 1e-4)
        #expect(abs(fused.logitsChosen - plain.logitsChosen) < 1e-5)
        #expect(abs(fused.logitsRejected - plain.logitsRejected) < 1e-5)
        #expect(fused.meanTokenAccuracy == plain.meanTokenAccuracy)
    }
}

@Suite("Reward model") struct RewardModelTests {
    @Test func rewardModelLearnsTheGoldPreference() throws {
        let (trunk, tokenizer) = tinyPolicy(seed: 4)
        let model = ScalarHeadModel(trunk: trunk, seed: 4)
        let rows = SyntheticTask.addition(digits: 1).preferenceRows(count: 48, seed: 5)
        var config = RewardConfig()
        config.learningRate = 1e-3
        config.epochs = 4
        let history = try RewardTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: config)
        let firstLoss: Float = history[0].loss
        let lateAccuracy: Float = history.suffix(6).map(\.accuracy).reduce(0, +) / 6
        #expect(abs(firstLoss - Float(log(2.0))) < 0.1)
        #expect(lateAccuracy > 0.8, "\(history.map(\.accuracy))")
    }

    /// Evaluation in batches gives the metrics of one whole batch: pair-weighted means of the loss,
    /// the accuracy and the margin.
    @Test func evaluationInBatchesMatchesOneBatch() throws {
        let (trunk, tokenizer) = tinyPolicy(seed: 6)
        let model = ScalarHeadModel(trunk: trunk, seed: 6)
        let rows = SyntheticTask.addition(digits: 1).preferenceRows(count: 11, seed: 7)
        let whole = try RewardTrainer.evaluate(model: model, tokenizer: tokenizer, rows: rows, batchSize: 11)
        let batched = try RewardTrainer.evaluate(model: model, tokenizer: tokenizer, rows: rows, batchSize: 4)
        // By hand: the scores of each pair read one row at a time.
        let examples = try rows.map { try RowTokenizer(tokenizer: tokenizer).preference($0) }
        var wins = 0, loss = 0.0
        for e in examples {
            let pair = RewardTrainer.rewards(model, Collator.preference([e], padID: Collator.padID(for: tokenizer)))
            let d = Double(pair.chosen.item() - pair.rejected.item())
            if d > 0 { wins += 1 }
            loss += log(1 + exp(-d))
        }
        #expect(whole.accuracy == Float(wins) / 11 && batched.accuracy == whole.accuracy)
        #expect(abs(Double(whole.loss) - loss / 11) < 1e-4 && abs(batched.loss - whole.loss) < 1e-5)
        #expect(abs(batched.margin - whole.margin) < 1e-5)
    }
}
