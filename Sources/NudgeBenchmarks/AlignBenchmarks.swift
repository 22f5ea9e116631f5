// DPO step time at the TRL peer's setting (Benchmarks/peers/bench_trl.py): Llama "S" (vocab 512),
// 8 pairs per step, 32-character prompts and 64–95-character completions of random lowercase words
// with a byte tokenizer, β = 0.1, sigmoid loss. The reference log-probs are computed once per
// dataset pass (TRL runs a frozen copy every step); that pass is included in the per-step time.

import Foundation
import NudgeAlign
import NudgeLM
import NudgeTensor

/// Lowercase words of 2 to 7 letters joined by spaces, cut to `length` characters (the text of the
/// TRL peers' benchmark rows).
func randomWords(_ length: Int, using rng: inout RandomGenerator) -> String {
    var s = ""
    while s.count < length {
        let w = String((0..<(2 + rng.int(below: 6))).map { _ in Character(UnicodeScalar(97 + rng.int(below: 26))!) })
        s += (s.isEmpty ? "" : " ") + w
    }
    return String(s.prefix(length))
}

/// The median of per-step times after the first (warm-up) step, as the TRL peers report it.
func medianAfterFirst(_ times: [Double]) -> Double { times.dropFirst().sorted()[(times.count - 1) / 2] }

extension EngineBenchmarks {
    /// Seconds per DPO optimizer step: the median after the first (as the TRL peer reports it) and
    /// the mean over all steps with tokenization and the reference pass included.
    public static func dpoStepSeconds(steps: Int = 12) throws -> (median: Double, meanWithReference: Double) {
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        let config = TransformerConfiguration.preset("S", vocabularySize: 512)!
        let model = LlamaModel(config, seed: 1)
        var rng = RandomGenerator(seed: 2)
        func words(_ length: Int) -> String { randomWords(length, using: &rng) }
        let rows = (0..<(8 * steps)).map { _ in
            DatasetRow.preference(prompt: .text(words(32)), chosen: .text(" " + words(64 + rng.int(below: 32))),
                                  rejected: .text(" " + words(64 + rng.int(below: 32))))
        }
        var dpo = DPOConfig()
        dpo.batchSize = 8
        let start = Date()
        var last = start
        var times: [Double] = []
        _ = try DPOTrainer.train(policy: model, tokenizer: tokenizer, rows: rows, config: dpo) { _, _ in
            times.append(Date().timeIntervalSince(last))
            last = Date()
        }
        return (medianAfterFirst(times), Date().timeIntervalSince(start) / Double(steps))
    }
}

extension EngineBenchmarks {
    /// SFT at the setting of Benchmarks/peers/bench_trl_sft.py: Llama "S" (vocab 512), 8
    /// prompt/completion rows per step (32-character prompts, 64–95-character completions), byte
    /// tokenizer, completion-only loss, no packing. Returns the median step time after the first and
    /// the tokens (prompt + completion + EOS) per second at that median.
    public static func sftStep(steps: Int = 12) throws -> (seconds: Double, tokensPerSecond: Double) {
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        let model = LlamaModel(TransformerConfiguration.preset("S", vocabularySize: 512)!, seed: 1)
        var rng = RandomGenerator(seed: 2)
        func words(_ length: Int) -> String { randomWords(length, using: &rng) }
        let rows = (0..<(8 * steps)).map { _ in DatasetRow.promptCompletion(prompt: .text(words(32)), completion: .text(words(64 + rng.int(below: 32)))) }
        var sft = SFTConfig()
        sft.batchSize = 8
        sft.maxLength = 128
        var times: [Double] = [], tokens: [Double] = []
        var last = Date()
        _ = try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: rows, config: sft) { _, metrics in
            let now = Date()
            times.append(now.timeIntervalSince(last))
            last = now
            tokens.append(metrics.first { $0.0 == "num_tokens" }!.1)
        }
        let perStep = zip(tokens, [0] + tokens).map { $0 - $1 }
        let median = medianAfterFirst(times)
        return (median, perStep.dropFirst().reduce(0, +) / Double(perStep.count - 1) / median)
    }
}

extension EngineBenchmarks {
    /// Seconds per GRPO step at the TRL peer's setting: Llama "S" (vocab 512), 2 prompts × 4
    /// generations × 32 new tokens, 32-character prompts, reward = fraction of 'a'/'e' characters.
    /// The first step is a warm-up; the median of the rest is returned.
    public static func grpoStepSeconds(beta: Float, steps: Int = 12) throws -> Double {
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        let model = LlamaModel(TransformerConfiguration.preset("S", vocabularySize: 512)!, seed: 1)
        var rng = RandomGenerator(seed: 3)
        let rows = (0..<(2 * steps)).map { _ in
            DatasetRow.promptOnly(.text(String((0..<32).map { _ in Character(UnicodeScalar(97 + rng.int(below: 26))!) })))
        }
        var config = GRPOConfig()
        config.promptsPerStep = 2
        config.numGenerations = 4
        config.maxCompletionLength = 32
        config.beta = beta
        config.learningRate = 1e-5
        let vowels = ClosureReward(name: "vowels") { s in
            Double(s.completion.filter { $0 == "a" || $0 == "e" }.count) / Double(max(1, s.completion.count))
        }
        let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: rows, rewards: WeightedRewards([(vowels, 1)]), config: config)
        var times: [Double] = []
        for _ in 0..<steps {
            let start = Date()
            try trainer.trainStep()
            times.append(Date().timeIntervalSince(start))
        }
        return medianAfterFirst(times)
    }
}

extension EngineBenchmarks {
    /// GRPO on two-digit addition: a tiny Llama is trained from scratch by SFT to partial accuracy,
    /// then GRPO with the exact-answer reward; prints held-out greedy accuracy along the way.
    public static func grpoAdditionExperiment(sftEpochs: Int, grpoSteps: Int, learningRate: Float, beta: Float, promptsPerStep: Int,
                                              generations: Int, evalEvery: Int) throws {
        let tokenizer = ByteTokenizer(eosToken: "<|endoftext|>", padToken: "<|pad|>")
        var configuration = TransformerConfiguration.preset("tiny", vocabularySize: tokenizer.vocabularySize)!
        configuration.eosTokenID = tokenizer.eosTokenID
        let model = LlamaModel(configuration, seed: 1)
        let task = SyntheticTask.addition(digits: 2)
        let heldOut = task.verifiableRows(count: 200, seed: 999)
        var sft = SFTConfig()
        sft.learningRate = 3e-3
        sft.batchSize = 32
        sft.epochs = sftEpochs
        var start = Date()
        _ = try SFTTrainer.train(model: model, tokenizer: tokenizer, rows: task.sftRows(count: 2000, seed: 1), config: sft)
        let sftTime = Date().timeIntervalSince(start)
        let initial = try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: heldOut, maxNewTokens: 6)
        print(String(format: "SFT %d epochs: %.1f s, held-out accuracy %.3f", sftEpochs, sftTime, initial))
        var config = GRPOConfig()
        config.learningRate = learningRate
        config.beta = beta
        config.promptsPerStep = promptsPerStep
        config.numGenerations = generations
        config.maxCompletionLength = 6
        config.seed = 5
        let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: task.verifiableRows(count: 5000, seed: 2),
                                      rewards: WeightedRewards([(ExactAnswerReward(), 1)]), config: config)
        start = Date()
        for step in 1...grpoSteps {
            let r = try trainer.trainStep()
            if step % evalEvery == 0 || step == grpoSteps {
                let accuracy = try exactMatchAccuracy(model: model, tokenizer: tokenizer, rows: heldOut, maxNewTokens: 6)
                print(String(format: "step %d (%.0f s): reward %.3f kl %.4f entropy %.3f held-out %.3f", step, Date().timeIntervalSince(start),
                             r?["reward"] ?? .nan, r?["kl"] ?? 0, r?["entropy"] ?? .nan, accuracy))
            }
        }
    }
}
