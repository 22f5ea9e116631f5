// Language-model speed at the peer script's sizes (Benchmarks: Benchmarks/peers/bench_torch_lm.py):
// a training step (forward + causal-LM loss + backward + AdamW) and KV-cache sampling
// (batch 8, 16-token prompt, 128 new tokens, temperature 1).

import Foundation
import NudgeLM
import NudgeNN
import NudgeTensor

extension EngineBenchmarks {
    /// ms per training step and tokens/s for preset "S" (8×128) or "M" (8×256).
    public static func lmTrainStep(_ preset: String) -> (msMedian: Double, msBest: Double, tokensPerSecond: Double) {
        let config = TransformerConfiguration.preset(preset)!
        let (batch, length) = preset == "S" ? (8, 128) : (8, 256)
        let model = LlamaModel(config, seed: 1)
        var rng = RandomGenerator(seed: 2)
        let ids = (0..<batch).map { _ in (0..<length).map { _ in rng.int(below: config.vocabularySize) } }
        let optimizer = AdamW(learningRate: 1e-4)
        let input = TokenBatch(ids: ids)
        let t = timePerUnit(repeats: 5, minSeconds: 0.5, warmup: 2) {
            let (_, grads) = valueAndGrad(model) { m in causalLanguageModelLoss(logits: m(input), ids: ids) }
            optimizer.update(model, gradients: grads)
        }
        return (t.median * 1e3, t.best * 1e3, Double(batch * length) / t.median)
    }

    /// Sampled tokens per second (new tokens of all rows) for preset "S" or "M".
    public static func lmSampling(_ preset: String) -> (tokensPerSecond: Double, msPerStep: Double) {
        let config = TransformerConfiguration.preset(preset)!
        let model = LlamaModel(config, seed: 1)
        var rng = RandomGenerator(seed: 3)
        let prompts = (0..<8).map { _ in (0..<16).map { _ in 3 + rng.int(below: config.vocabularySize - 3) } }
        var gen = GenerationConfig()
        gen.maxNewTokens = 128
        gen.seed = 4
        let t = timePerUnit(repeats: 3, minSeconds: 0, warmup: 1) { _ = generate(model: model, prompts: prompts, config: gen) }
        return (Double(8 * 128) / t.median, t.median * 1e3 / 128)
    }
}
