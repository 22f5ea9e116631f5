// Generation: greedy decoding with the KV cache equals the argmax of a full forward pass at every
// step, left padding does not change a row's result, sampling filters behave, seeds reproduce.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Generation") struct GenerationTests {
    @Test(arguments: ["llama", "qwen2", "qwen3", "gemma3", "gpt2"])
    func greedyWithCacheEqualsFullForwardArgmax(_ name: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(name))
        var config = GenerationConfig()
        config.temperature = 0
        config.maxNewTokens = 12
        let prompt = [5, 17, 99, 3]
        let result = generate(model: model, prompts: [prompt], config: config)
        #expect(result.tokens[0].count == 12 && result.finishReasons == [.length])
        var sequence = prompt
        for (step, token) in result.tokens[0].enumerated() {
            let logits = withoutGradients { model(TokenBatch(ids: [sequence])) }
            let v = logits.shape[2]
            let lastRow = Array(logits.scalars[((sequence.count - 1) * v)..<(sequence.count * v)])
            let best = lastRow.indices.max { lastRow[$0] < lastRow[$1] }!
            #expect(token == best, "step \(step)")
            let logZ = Foundation.log(lastRow.reduce(Float(0)) { $0 + Foundation.exp($1) })
            #expect(abs(result.logProbs[0][step] - (lastRow[best] - logZ)) < 1e-4)
            sequence.append(token)
        }
    }

    @Test func leftPaddingDoesNotChangeARow() throws {
        let model = try LanguageModelLoader.load(directory: lmFixture("llama"))
        var config = GenerationConfig()
        config.temperature = 0
        config.maxNewTokens = 8
        let alone = generate(model: model, prompts: [[7, 8, 9]], config: config)
        let batched = generate(model: model, prompts: [[1, 2, 3, 4, 5, 6], [7, 8, 9]], config: config)
        #expect(batched.tokens[1] == alone.tokens[0])
        for (a, b) in zip(batched.logProbs[1], alone.logProbs[0]) { #expect(abs(a - b) < 1e-4) }
    }

    @Test func eosAndStopTokensEndRows() throws {
        let model = try LanguageModelLoader.load(directory: lmFixture("llama"))
        var config = GenerationConfig()
        config.temperature = 0
        config.maxNewTokens = 10
        let free = generate(model: model, prompts: [[5, 17]], config: config).tokens[0]
        // A row ends at the first occurrence of the EOS or stop token, which it keeps.
        config.eosTokenID = free[2]
        let eosAt = free.firstIndex(of: free[2])!
        let stopped = generate(model: model, prompts: [[5, 17]], config: config)
        #expect(stopped.tokens[0] == Array(free.prefix(eosAt + 1)) && stopped.finishReasons == [.eos])
        config.eosTokenID = nil
        config.stopTokens = [free[1]]
        let stopAt = free.firstIndex(of: free[1])!
        let stop = generate(model: model, prompts: [[5, 17]], config: config)
        #expect(stop.tokens[0] == Array(free.prefix(stopAt + 1)) && stop.finishReasons == [.stop])
    }

    @Test func samplingFiltersAndSeeds() {
        var config = GenerationConfig()
        config.topK = 2
        var rng = RandomGenerator(seed: 1)
        let logits: [Float] = [0, 1, 2, 3]
        var seen = Set<Int>()
        for _ in 0..<200 { seen.insert(sampleToken(logits, config: config, rng: &rng).0) }
        #expect(seen == [2, 3])
        // top-p 0.5 keeps only the most likely token here (p(3) ≈ 0.64).
        config.topK = 0
        config.topP = 0.5
        for _ in 0..<50 {
            let (t, lp) = sampleToken(logits, config: config, rng: &rng)
            #expect(t == 3 && lp == 0)
        }
        // min-p 0.3 drops tokens below 0.3 × p_max: p = (.032, .087, .237, .644) keeps 2 and 3.
        config.topP = 1
        config.minP = 0.3
        seen = []
        for _ in 0..<200 { seen.insert(sampleToken(logits, config: config, rng: &rng).0) }
        #expect(seen == [2, 3])
        // The returned log-prob is under the filtered distribution.
        var r2 = RandomGenerator(seed: 3)
        let (t, lp) = sampleToken(logits, config: config, rng: &r2)
        let z = Foundation.exp(Float(2)) + Foundation.exp(Float(3))
        #expect(abs(lp - (logits[t] - Foundation.log(z))) < 1e-6)
    }

    /// Sampled frequencies follow softmax(logits / T): 20 000 draws over four tokens, each
    /// frequency within 4.5 binomial standard deviations.
    @Test func samplingFollowsTheSoftmax() {
        let logits: [Float] = [0.5, -1, 2, 1.2]
        for temperature: Float in [1, 0.5] {
            var config = GenerationConfig()
            config.temperature = temperature
            var rng = RandomGenerator(seed: 11)
            let n = 20_000
            var counts = [0, 0, 0, 0]
            for _ in 0..<n {
                let (t, lp) = sampleToken(logits, config: config, rng: &rng)
                counts[t] += 1
                let z = logits.reduce(Float(0)) { $0 + Foundation.exp($1 / temperature) }
                #expect(abs(lp - (logits[t] / temperature - Foundation.log(z))) < 1e-5)
            }
            let z = logits.reduce(0.0) { $0 + Foundation.exp(Double($1 / temperature)) }
            for (i, c) in counts.enumerated() {
                let p = Foundation.exp(Double(logits[i] / temperature)) / z
                #expect(abs(Double(c) - Double(n) * p) < 4.5 * (Double(n) * p * (1 - p)).squareRoot(), "token \(i) at T = \(temperature)")
            }
        }
    }

    @Test func sameSeedSameSamples() throws {
        let model = try LanguageModelLoader.load(directory: lmFixture("gpt2"))
        var config = GenerationConfig()
        config.maxNewTokens = 6
        config.seed = 9
        let a = generate(model: model, prompts: [[1, 2], [3]], config: config)
        let b = generate(model: model, prompts: [[1, 2], [3]], config: config)
        #expect(a.tokens == b.tokens && a.logProbs == b.logProbs)
    }

    /// A batch of 9 rows, decoded whole (each product split by columns) or as two halves (4 + 5
    /// rows, side by side), gives each row what it gets decoded alone (also when prompts repeat),
    /// its sampled log-probs equal a re-scoring forward pass, and the same seed gives the same numbers.
    @Test(arguments: [false, true]) func batchesDecodeLikeSingleRows(halves: Bool) throws {
        try DecodeSplit.$forced.withValue(halves) { try batchDecodesLikeSingleRows() }
    }

    private func batchDecodesLikeSingleRows() throws {
        let model = try LanguageModelLoader.load(directory: lmFixture("llama"))
        let prompts = (0..<9).map { r in (0..<(2 + r % 4)).map { 3 + (r * 7 + $0 * 5) % 90 } }
        var greedy = GenerationConfig()
        greedy.temperature = 0
        greedy.maxNewTokens = 6
        let batched = generate(model: model, prompts: prompts, config: greedy)
        for (r, prompt) in prompts.enumerated() {
            let alone = generate(model: model, prompts: [prompt], config: greedy)
            #expect(batched.tokens[r] == alone.tokens[0], "row \(r)")
            for (a, b) in zip(batched.logProbs[r], alone.logProbs[0]) { #expect(abs(a - b) < 1e-4, "row \(r)") }
        }

        // Repeated prompts are prefilled once and decoded from copies of their cache.
        let repeated = [prompts[0], prompts[3], prompts[0], prompts[0], prompts[3], prompts[5], prompts[0], prompts[3], prompts[3]]
        let shared = generate(model: model, prompts: repeated, config: greedy)
        for (r, prompt) in repeated.enumerated() {
            let alone = generate(model: model, prompts: [prompt], config: greedy)
            #expect(shared.tokens[r] == alone.tokens[0], "repeated row \(r)")
            for (a, b) in zip(shared.logProbs[r], alone.logProbs[0]) { #expect(abs(a - b) < 1e-4, "repeated row \(r)") }
        }

        var sampling = GenerationConfig()
        sampling.maxNewTokens = 5
        sampling.seed = 4
        let sampled = generate(model: model, prompts: prompts, config: sampling)
        for (r, prompt) in prompts.enumerated() {
            let sequence = prompt + sampled.tokens[r]
            let logits = withoutGradients { model(TokenBatch(ids: [sequence])) }
            let v = logits.shape[2]
            for (i, token) in sampled.tokens[r].enumerated() {
                let position = prompt.count - 1 + i
                let row = Array(logits.scalars[(position * v)..<((position + 1) * v)])
                let logZ = Foundation.log(row.reduce(Float(0)) { $0 + Foundation.exp($1) })
                #expect(abs(sampled.logProbs[r][i] - (row[token] - logZ)) < 1e-4, "row \(r) token \(i)")
            }
        }
        let again = generate(model: model, prompts: prompts, config: sampling)
        #expect(again.tokens == sampled.tokens && again.logProbs == sampled.logProbs)
    }
}
