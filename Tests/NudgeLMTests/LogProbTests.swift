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

    @Test func sharedPromptsAreGroupedAndLaidOut() throws {
        #expect(SharedPrefixes(prompts: [[1, 2], [3], [4, 5]]) == nil)
        let sharing = try #require(SharedPrefixes(prompts: [[1, 2], [3, 4, 5], [1, 2], [3, 4, 5], [1, 2]]))
        #expect(sharing.group == [0, 1, 0, 1, 0] && sharing.lengths == [2, 3] && sharing.firstRow == [0, 1])
        // T = 6: prompt rows 2 and 3 tokens long, so 4 later columns; keep the last 5 positions.
        let input = TokenBatch(ids: [[1, 2, 7, 8, 0, 0], [3, 4, 5, 9, 9, 9], [1, 2, 6, 6, 6, 6], [3, 4, 5, 1, 0, 0], [1, 2, 3, 0, 0, 0]],
                               attentionMask: [[true, true, true, true, false, false], Array(repeating: true, count: 6),
                                               Array(repeating: true, count: 6), [true, true, true, true, false, false],
                                               [true, true, true, false, false, false]])
        let (prompts, later) = sharing.split(input)
        #expect(prompts.ids == [[0, 1, 2], [3, 4, 5]] && prompts.attentionMask == [[false, true, true], [true, true, true]])
        #expect(later.ids[1] == [9, 9, 9, 0] && later.positions[1] == [3, 4, 5, 0] && later.attentionMask?[1] == [true, true, true, false])
        #expect(later.ids[0] == [7, 8, 0, 0] && later.positions[0] == [2, 3, 0, 0] && later.attentionMask?[0] == [true, true, false, false])
        // Table rows: prompts 0..<6, later tokens 6..<26, zero row 26.
        let rows = sharing.keptRows(length: 6, keep: 5)
        #expect(Array(rows[0..<5]) == [2, 6, 7, 8, 9])
        #expect(Array(rows[5..<10]) == [26, 5, 10, 11, 12])
    }

    /// Two prompts (3 and 5 tokens), rows 0, 2, 3 on the first and 1, 4 on the second; completions
    /// of different lengths, right-padded to T = 10.
    static func sharedPromptBatch() -> (prompts: [[Int]], ids: [[Int]], batch: TokenBatch, mask: [[Bool]]) {
        let promptA = [5, 9, 2], promptB = [3, 8, 6, 2, 9]
        let completions = [[7, 7, 1, 4], [4, 1, 6], [2, 2, 2, 2, 2, 2, 2], [8], [1, 1, 3, 5, 2]]
        let prompts = [promptA, promptB, promptA, promptA, promptB]
        let sequences = zip(prompts, completions).map { $0 + $1 }
        let t = sequences.map(\.count).max()!
        let ids = sequences.map { $0 + Array(repeating: 0, count: t - $0.count) }
        let batch = TokenBatch(ids: ids, attentionMask: sequences.map { Array(repeating: true, count: $0.count) + Array(repeating: false, count: t - $0.count) })
        let mask = zip(prompts, completions).map { p, c in
            Array(repeating: false, count: p.count) + Array(repeating: true, count: c.count) + Array(repeating: false, count: t - p.count - c.count)
        }
        return (prompts, ids, batch, mask)
    }

    @Test(arguments: ["llama", "qwen3", "gemma3", "gpt2"])
    func sharedPromptsComputedOnceGiveTheSameLogProbsAndGradients(fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        let (prompts, ids, batch, mask) = Self.sharedPromptBatch()
        let t = batch.length
        let sharing = try #require(SharedPrefixes(prompts: prompts))
        let keep = t - 3 + 1
        #expect(model.finalHiddenStates(batch, sharing: sharing, keepingLast: keep)?.shape == [5, keep, model.configuration.hiddenSize])
        // Random weights per token, so every position's gradient counts.
        var rng = RandomGenerator(seed: 4)
        let weights = Tensor(shape: [5, t - 1], values: (0..<(5 * (t - 1))).map { _ in Float(rng.uniform()) })
        for temperature: Float in [1, 0.7] {
            func loss(_ m: any CausalLanguageModel, _ sharing: SharedPrefixes?) -> Tensor {
                (completionLogProbs(logits: m.logits(batch, keepingLast: keep, sharing: sharing), ids: ids, completionMask: mask,
                                    temperature: temperature).perToken * weights).sum()
            }
            let (plainLoss, plainGrads) = valueAndGrad(model) { loss($0, nil) }
            let (sharedLoss, sharedGrads) = valueAndGrad(model) { loss($0, sharing) }
            let plain = withoutGradients { completionLogProbs(logits: model.logits(batch, keepingLast: keep), ids: ids, completionMask: mask, temperature: temperature) }
            let shared = withoutGradients {
                completionLogProbs(logits: model.logits(batch, keepingLast: keep, sharing: sharing), ids: ids, completionMask: mask, temperature: temperature)
            }
            for (a, b) in zip(plain.perToken.scalars, shared.perToken.scalars) { #expect(abs(a - b) < 1e-5) }
            #expect(abs(plainLoss.item() - sharedLoss.item()) < 1e-4)
            #expect(plainGrads.keys == sharedGrads.keys)
            for (key, g) in plainGrads {
                let h = try #require(sharedGrads[key])
                let scale = max(1, g.scalars.map(abs).max() ?? 0)
                #expect(zip(g.scalars, h.scalars).allSatisfy { abs($0 - $1) < 1e-4 * scale }, "\(key)")
            }
        }
    }

    /// The fused head (no (B, k, V) logits) gives the log-probs, entropies and gradients of the
    /// logits path, with and without shared prompts; Gemma 3 with soft-capping falls back to logits.
    @Test(arguments: ["llama", "qwen3", "gemma3", "gpt2"])
    func fusedHeadGivesTheLogitsPathsLogProbsEntropiesAndGradients(fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        #expect((model.plainHeadWeight == nil) == (model.configuration.finalLogitSoftcap != nil))
        let (prompts, ids, batch, mask) = Self.sharedPromptBatch()
        let t = batch.length
        let keep = t - 3 + 1
        var rng = RandomGenerator(seed: 5)
        let weights = Tensor(shape: [5, t - 1], values: (0..<(5 * (t - 1))).map { _ in Float(rng.uniform()) })
        for (temperature, sharing) in [(Float(1), SharedPrefixes?.none), (0.7, SharedPrefixes(prompts: prompts))] {
            let (fusedLoss, fusedGrads) = valueAndGrad(model) { m in
                (completionLogProbs(model: m, input: batch, keepingLast: keep, sharing: sharing, completionMask: mask,
                                    temperature: temperature, fused: true).logProbs.perToken * weights).sum()
            }
            let (plainLoss, plainGrads) = valueAndGrad(model) { m in
                (completionLogProbs(logits: m.logits(batch, keepingLast: keep, sharing: sharing), ids: ids, completionMask: mask,
                                    temperature: temperature).perToken * weights).sum()
            }
            #expect(abs(fusedLoss.item() - plainLoss.item()) < 1e-4 * max(1, abs(plainLoss.item())))
            for (key, g) in plainGrads {
                let h = try #require(fusedGrads[key])
                let scale = max(1, g.scalars.map(abs).max() ?? 0)
                #expect(zip(g.scalars, h.scalars).allSatisfy { abs($0 - $1) < 1e-4 * scale }, "\(fixture) \(key)")
            }
            let (fused, entropies) = withoutGradients {
                completionLogProbs(model: model, input: batch, keepingLast: keep, sharing: sharing, completionMask: mask,
                                   temperature: temperature, entropy: true, fused: true)
            }
            let logits = withoutGradients { model.logits(batch, keepingLast: keep, sharing: sharing) }
            let plain = withoutGradients { completionLogProbs(logits: logits, ids: ids, completionMask: mask, temperature: temperature) }
            for (a, b) in zip(fused.perToken.scalars, plain.perToken.scalars) { #expect(abs(a - b) < 1e-5) }
            let expectedEntropies = tokenEntropies(logits: logits, mask: plain.mask.scalars, temperature: temperature)
            #expect(zip(try #require(entropies), expectedEntropies).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    /// The SFT loss through the fused head on the scored positions only equals the loss on the full
    /// logits, value and gradients, with a completion-only mask and with none (every family with a
    /// plain head; Gemma 3's soft-capped head takes the logits path either way).
    @Test(arguments: ["llama", "qwen3", "gemma3", "gpt2"])
    func fusedSFTLossEqualsTheLogitsLoss(fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        let (_, ids, batch, mask) = Self.sharedPromptBatch()
        for lossMask in [mask, nil] {
            let (fusedLoss, fusedGrads) = valueAndGrad(model) { m in causalLanguageModelLoss(model: m, input: batch, lossMask: lossMask, fused: true) }
            let (plainLoss, plainGrads) = valueAndGrad(model) { m in causalLanguageModelLoss(logits: m(batch), ids: ids, lossMask: lossMask) }
            #expect(abs(fusedLoss.item() - plainLoss.item()) < 1e-5 * max(1, abs(plainLoss.item())), "\(fixture)")
            #expect(fusedGrads.keys == plainGrads.keys)
            for (key, g) in plainGrads {
                let h = try #require(fusedGrads[key])
                let scale = max(1, g.scalars.map(abs).max() ?? 0)
                #expect(zip(g.scalars, h.scalars).allSatisfy { abs($0 - $1) < 1e-5 * scale }, "\(fixture) \(key)")
            }
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
