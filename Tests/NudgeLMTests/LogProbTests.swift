// Completion log-probabilities and the SFT loss and gradient norms against transformers' values
// (Fixtures/lm/llama/rl_expected.json).

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Log-probs and SFT") struct LogProbTests {
    func expected() throws -> [String: Any] {
        let url = try lmFixture("llama").appendingPathComponent("rl_expected.json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    @Test func completionLogProbsMatchTransformers() throws {
        let model = try LanguageModelLoader.load(directory: lmFixture("llama"))
        let cases = try expected()["completion_logps"] as! [[String: Any]]
        for c in cases {
            let ids = c["input_ids"] as! [Int]
            let promptLength = c["prompt_len"] as! Int
            let mask = [ids.indices.map { $0 >= promptLength }]
            let result = withoutGradients { completionLogProbs(model: model, batch: TokenBatch(ids: [ids]), completionMask: mask) }
            let reference = (c["per_token_logps"] as! [NSNumber]).map(\.floatValue)
            let ours = Array(result.perToken.scalars[(promptLength - 1)...])
            #expect(ours.count == reference.count)
            for (a, b) in zip(ours, reference) { #expect(abs(a - b) < 1e-4) }
            #expect(abs(result.sums.item() - (c["sum_logps"] as! NSNumber).floatValue) < 1e-3)
        }
    }

    @Test(arguments: ["llama", "gpt2"])
    func logitsOfTheLastPositionsOnlyGiveTheSameLogProbsAndGradients(fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        // Right-padded rows with prompts of 3 and 5 tokens: positions from the shorter prompt's last token on are kept.
        let ids = [[5, 9, 2, 7, 7, 1, 4, 0, 0], [3, 8, 6, 2, 9, 4, 4, 1, 6]]
        let mask = [[false, false, false, true, true, true, true, false, false], [false, false, false, false, false, true, true, true, true]]
        let batch = TokenBatch(ids: ids, attentionMask: [[true, true, true, true, true, true, true, false, false], Array(repeating: true, count: 9)])
        let keep = 9 - 3 + 1
        #expect(model.logits(batch, keepingLast: keep).shape == [2, keep, model.configuration.vocabularySize])
        for temperature: Float in [1, 0.7] {
            let (fullSum, fullGrads) = valueAndGrad(model) { m in
                completionLogProbs(logits: m(batch), ids: ids, completionMask: mask, temperature: temperature).sums.sum()
            }
            let (keptSum, keptGrads) = valueAndGrad(model) { m in
                completionLogProbs(logits: m.logits(batch, keepingLast: keep), ids: ids, completionMask: mask, temperature: temperature).sums.sum()
            }
            let full = withoutGradients { completionLogProbs(logits: model(batch), ids: ids, completionMask: mask, temperature: temperature) }
            let kept = withoutGradients {
                completionLogProbs(logits: model.logits(batch, keepingLast: keep), ids: ids, completionMask: mask, temperature: temperature)
            }
            #expect(kept.perToken.shape == [2, 8])
            for (a, b) in zip(full.perToken.scalars, kept.perToken.scalars) { #expect(abs(a - b) < 1e-5) }
            #expect(abs(fullSum.item() - keptSum.item()) < 1e-4)
            #expect(abs(fullGrads.globalNorm() - keptGrads.globalNorm()) < 1e-4 * max(1, fullGrads.globalNorm()))
        }
    }

    @Test func sftLossAndGradientNormsMatchTransformers() throws {
        let model = try LanguageModelLoader.load(directory: lmFixture("llama"))
        let sft = try expected()["sft"] as! [String: Any]
        let ids = sft["input_ids"] as! [[Int]]
        let (loss, grads) = valueAndGrad(model) { m in causalLanguageModelLoss(logits: m(TokenBatch(ids: ids)), ids: ids) }
        #expect(abs(loss.item() - (sft["loss"] as! NSNumber).floatValue) < 1e-5)
        #expect(abs(grads.globalNorm() - (sft["grad_global_l2"] as! NSNumber).floatValue) < 1e-4)
        let perParameter = try #require(sft["grad_l2_per_param"] as? [String: NSNumber])
        #expect(perParameter.count == grads.count)
        for (key, value) in perParameter {
            let norm = value.floatValue
            let g = try #require(grads[key], "no gradient for \(key)")
            #expect(abs(NamedTensors([(key, g)]).globalNorm() - norm) < 1e-4 * max(1, norm), "\(key)")
        }
    }
}
