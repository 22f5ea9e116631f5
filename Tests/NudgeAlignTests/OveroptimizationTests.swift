// The over-optimization probe and its helpers: the sequence KL is 0 against itself and matches the
// exact KL on a one-token case; proxy and gold means equal the scores of the same seeded sample;
// the affine proxy map, the length bonus and the run summary equal their formulas.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Over-optimization lab") struct OveroptimizationTests {
    let ascii = ClosureReward(name: "ascii") { s in Double(s.completionIDs.filter { $0 < 128 }.count) }
    let length = ClosureReward(name: "length") { s in Double(s.completionIDs.count) }

    func prompts(_ tokenizer: ByteTokenizer, _ texts: [String]) -> [OnlinePrompt] {
        texts.map { OnlinePrompt(ids: tokenizer.encode($0, addSpecialTokens: false), text: $0, answer: nil) }
    }

    @Test func probeOfAPolicyAgainstItselfHasZeroKLAndTheSampleMeans() throws {
        let (model, tokenizer) = tinyPolicy(seed: 3)
        let ps = prompts(tokenizer, ["What is 1 + 2?", "Sort the letters: cab"])
        let probe = try probeOveroptimization(policy: model, reference: model, tokenizer: tokenizer, prompts: ps, samplesPerPrompt: 4,
                                              proxy: ascii, gold: length, maxNewTokens: 5, seed: 9, step: 7)
        #expect(probe.kl == 0 && probe.sqrtKL == 0 && probe.step == 7)
        var config = GenerationConfig()
        config.maxNewTokens = 5
        config.temperature = 1
        config.eosTokenID = tokenizer.eosTokenID
        config.padTokenID = Collator.padID(for: tokenizer)
        config.seed = 9
        let rollout = try Rollout.sample(model: model, tokenizer: tokenizer, prompts: ps, repeats: 4, generation: config)
        let asciiMean = try ascii.scores(rollout.samples).map { $0! }.reduce(0, +) / 8
        let lengths = rollout.completions.map { Double($0.count) }
        #expect(probe.proxy == asciiMean)
        #expect(probe.gold == lengths.reduce(0, +) / 8 && probe.meanLength == probe.gold)
        #expect(probe.metrics.map(\.0) == ["probe/kl", "probe/sqrt_kl", "probe/proxy", "probe/gold", "probe/mean_length"])
    }

    @Test func oneTokenKLMatchesTheExactKL() throws {
        let (policy, tokenizer) = tinyPolicy(seed: 3)
        let (reference, _) = tinyPolicy(seed: 4)
        let prompt = prompts(tokenizer, ["ab"])
        let n = 3000
        let probe = try probeOveroptimization(policy: policy, reference: reference, tokenizer: tokenizer, prompts: prompt,
                                              samplesPerPrompt: n, proxy: length, gold: length, maxNewTokens: 1, seed: 1, batchSize: n)
        // Exact: Σ_v π(v) log(π(v) / π_ref(v)) at the prompt's last position.
        let batch = TokenBatch(ids: [prompt[0].ids], attentionMask: [prompt[0].ids.map { _ in true }])
        func distribution(_ m: any CausalLanguageModel) -> [Double] {
            let logits = withoutGradients { m(batch) }
            let v = logits.shape[2], t = logits.shape[1]
            let row = Array(logits.scalars[((t - 1) * v)..<(t * v)]).map(Double.init)
            let top = row.max()!
            let z = row.reduce(0) { $0 + exp($1 - top) }
            return row.map { exp($0 - top) / z }
        }
        let p = distribution(policy), q = distribution(reference)
        let ratios = zip(p, q).map { log($0 / $1) }
        let exact = zip(p, ratios).reduce(0) { $0 + $1.0 * $1.1 }
        let variance = zip(p, ratios).reduce(0) { $0 + $1.0 * $1.1 * $1.1 } - exact * exact
        #expect(exact > 0.005, "the two random models should differ: KL \(exact)")
        #expect(abs(probe.kl - exact) < 4 * (variance / Double(n)).squareRoot() + 1e-4, "estimate \(probe.kl) vs exact \(exact)")
    }

    @Test func momentMatchingAndAffineReward() throws {
        let values = [1.0, 2, 3, 6], target = [0.1, 0.5, 0.2, 0.4]
        let (scale, shift) = momentMatching(values, onto: target)
        let mapped = values.map { scale * $0 + shift }
        func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }
        func std(_ x: [Double]) -> Double { let m = mean(x); return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count)).squareRoot() }
        #expect(abs(mean(mapped) - mean(target)) < 1e-12 && abs(std(mapped) - std(target)) < 1e-12 && scale > 0)
        #expect(momentMatching([2, 2], onto: [0, 1]) == (1, -1.5))
        let base = ClosureReward(name: "base") { s in s.completion.isEmpty ? nil : Double(s.completion.count) }
        let affine = AffineReward(base, scale: 2, shift: -1)
        let samples = [RewardSample(prompt: "p", completion: "abc"), RewardSample(prompt: "p", completion: "")]
        #expect(try affine.scores(samples) == [5, nil] && affine.name == "base")
        let bonus = LengthBonus(perToken: 0.1)
        #expect(try bonus.scores([RewardSample(prompt: "", completion: "", completionIDs: [1, 2, 3])]) == [0.1 * 3])
    }

    @Test func summaryFindsTheGoldPeakAndTheChanges() {
        func probe(_ step: Int, _ kl: Double, _ proxy: Double, _ gold: Double) -> OveroptimizationProbe {
            OveroptimizationProbe(step: step, kl: kl, proxy: proxy, gold: gold, meanLength: 3)
        }
        let rising = [probe(0, 0, 0.2, 0.2), probe(10, 1, 0.4, 0.3), probe(20, 4, 0.6, 0.25)]
        let s = OveroptimizationSummary(label: "run", probes: rising)
        #expect(s.turnedOver && s.peakGold == 0.3 && s.peakSqrtKL == 1 && s.finalKL == 4)
        #expect(abs(s.proxyChange - 0.4) < 1e-12 && abs(s.goldChange - 0.05) < 1e-12)
        let still = OveroptimizationSummary(label: "run", probes: [probe(0, 0, 0.2, 0.2), probe(10, -0.01, 0.3, 0.3)])
        #expect(!still.turnedOver && still.peakSqrtKL == 0)
        let series = probeSeries("run", rising)
        #expect(series.sqrtKL == [0, 1, 2] && series.gold == [0.2, 0.3, 0.25] && series.proxy == [0.2, 0.4, 0.6])
    }
}

@Suite("GRPO checkpoints") struct GRPOResumeTests {
    @Test func resumingFromACheckpointRepeatsTheUninterruptedRun() throws {
        func trainer() throws -> GRPOTrainer {
            let (model, tokenizer) = tinyPolicy(seed: 5)
            var config = GRPOConfig()
            config.promptsPerStep = 2
            config.numGenerations = 4
            config.maxCompletionLength = 4
            config.learningRate = 3e-3
            config.beta = 0.04
            config.seed = 3
            let sevens = ClosureReward(name: "sevens") { s in Double(s.completion.filter { $0 == "7" }.count) }
            // 3 prompts, 2 per step: the cursor reshuffles mid-step, which the replay must reproduce.
            return try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 3, seed: 1),
                                   rewards: WeightedRewards([(sevens, 1)]), config: config)
        }
        func comparable(_ r: OnlineStepResult?) throws -> [String] {
            try #require(r).metrics.filter { $0.0 != "step_time" }.map { "\($0.0)=\($0.1)" }
        }
        let straight = try trainer()
        let uninterrupted = try (1...4).map { _ in try comparable(try straight.trainStep()) }

        let first = try trainer()
        for _ in 1...2 { try first.trainStep() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-grpo-resume-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try first.saveCheckpoint(to: directory)

        let resumed = try trainer()
        try resumed.restoreCheckpoint(from: directory)
        #expect(resumed.step == 2)
        let after = try (3...4).map { _ in try comparable(try resumed.trainStep()) }
        #expect(after == Array(uninterrupted[2...]))
    }
}

@Suite("Evaluation") struct EvaluationTests {
    @Test func passAtKMatchesTheCombinatorialFormula() {
        #expect(abs(passAtK(samples: 5, correct: 2, k: 1) - 0.4) < 1e-12)
        #expect(abs(passAtK(samples: 5, correct: 2, k: 2) - (1 - 3.0 / 10)) < 1e-12)  // 1 − C(3,2)/C(5,2)
        #expect(abs(passAtK(samples: 8, correct: 3, k: 4) - (1 - 5.0 / 70)) < 1e-12)  // 1 − C(5,4)/C(8,4)
        #expect(passAtK(samples: 4, correct: 0, k: 2) == 0 && passAtK(samples: 4, correct: 3, k: 2) == 1)
    }

    @Test func greedyAccuracyAgreesWithExactMatchAndPassAtKIsMonotone() throws {
        let (model, tokenizer) = tinyPolicy(seed: 2)
        let rows = SyntheticTask.addition(digits: 1).verifiableRows(count: 6, seed: 3)
        let gold = ClosureReward(name: "gold") { SyntheticTask.goldReward(prompt: $0.prompt, completion: $0.completion) }
        let e = try evaluateVerifiable(model: model, tokenizer: tokenizer, rows: rows, maxNewTokens: 3, samplesPerPrompt: 4, gold: gold, seed: 1)
        #expect(e.greedyAccuracy == (try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: rows, maxNewTokens: 3)))
        #expect(e.rows == 6 && e.passAtK.map(\.k) == [1, 2, 4] && e.examples.count == 5 && e.greedyGold != nil)
        #expect(abs(e.passAtK[0].value - e.sampledAccuracy!) < 1e-12)  // pass@1 is the mean sampled accuracy
        #expect(e.passAtK[0].value <= e.passAtK[1].value && e.passAtK[1].value <= e.passAtK[2].value)
        #expect(e.metrics.map(\.0) == ["eval/accuracy", "eval/mean_length", "eval/gold", "eval/sampled_accuracy", "eval/pass@1", "eval/pass@2", "eval/pass@4"])
    }
}

@Suite("PPO-RLHF checkpoints") struct PPOResumeTests {
    @Test func resumingFromACheckpointRepeatsTheUninterruptedRun() throws {
        func trainer() throws -> PPORLHFTrainer {
            let (model, tokenizer) = tinyPolicy(seed: 6)
            var config = PPORLHFConfig()
            config.batchSize = 4
            config.miniBatches = 2
            config.ppoEpochs = 2
            config.maxCompletionLength = 3
            config.temperature = 1
            config.learningRate = 3e-3
            config.klCoefficient = 0.05
            // The adaptive controller's β is trainer state the checkpoint must carry.
            config.adaptiveKL = AdaptiveKLController(target: 0.5, horizon: 100)
            config.seed = 4
            let ascii = ClosureReward(name: "ascii") { s in Double(s.completionIDs.filter { $0 < 128 }.count) }
            let value = ScalarHeadModel(trunk: try LanguageModelLoader.frozenCopy(of: model), seed: 1)
            value.unfreeze()
            return try PPORLHFTrainer(policy: model, value: value, tokenizer: tokenizer,
                                      rows: SyntheticTask.addition(digits: 1).verifiableRows(count: 6, seed: 1),
                                      rewards: WeightedRewards([(ascii, 1)]), config: config)
        }
        func comparable(_ r: OnlineStepResult?) throws -> [String] {
            try #require(r).metrics.filter { $0.0 != "step_time" }.map { "\($0.0)=\($0.1)" }
        }
        let straight = try trainer()
        let uninterrupted = try (1...4).map { _ in try comparable(try straight.trainStep()) }

        let first = try trainer()
        for _ in 1...2 { try first.trainStep() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-ppo-resume-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try first.saveCheckpoint(to: directory)

        let resumed = try trainer()
        try resumed.restoreCheckpoint(from: directory)
        #expect(resumed.step == 2 && resumed.klCoefficient == first.klCoefficient)
        let after = try (3...4).map { _ in try comparable(try resumed.trainStep()) }
        #expect(after == Array(uninterrupted[2...]))
    }
}
