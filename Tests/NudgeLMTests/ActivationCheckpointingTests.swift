// Activation checkpointing (`gradientCheckpointing`): the recomputed backward gives the same loss and
// the same gradients, bit for bit, as the pass that keeps every activation — on each model family
// (Llama, Qwen 2, Gemma 3, GPT-2), through the full logits and the fused LM head, with prompt
// sharing, and with LoRA adapters whose dropout masks must be drawn again identically.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

@Suite("Activation checkpointing") struct ActivationCheckpointingTests {
    /// A padded batch of two rows of the model's vocabulary, and its completion mask (all but the
    /// first three tokens of each row's real tokens).
    func batch(_ model: any CausalLanguageModel) -> (TokenBatch, [[Bool]]) {
        let v = model.configuration.vocabularySize
        var rng = RandomGenerator(seed: 3)
        let ids = (0..<2).map { _ in (0..<12).map { _ in Int(rng.next() % UInt64(v)) } }
        let attention = [[Bool](repeating: true, count: 12), [Bool](repeating: true, count: 9) + [false, false, false]]
        let completion = attention.map { row in row.enumerated().map { $0.offset >= 3 && $0.element } }
        return (TokenBatch(ids: ids, attentionMask: attention), completion)
    }

    /// The loss and the gradients of every trainable parameter, with and without checkpointing;
    /// each dropout layer's random state is the same at the start of both passes, and must be the
    /// same at their ends.
    func compare(_ model: any CausalLanguageModel, _ loss: @escaping (any CausalLanguageModel) -> Tensor) {
        let dropouts = loraLayers(in: model).compactMap(\.layer.dropout)
        let start = dropouts.map(\.randomState)
        func pass(_ on: Bool) -> (Float, NamedTensors, [[UInt64]]) {
            for (d, s) in zip(dropouts, start) { d.randomState = s }
            model.gradientCheckpointing = on
            defer { model.gradientCheckpointing = false }
            let (value, grads) = valueAndGrad(model as Module) { _ in loss(model) }
            return (value.item(), grads, dropouts.map(\.randomState))
        }
        let (plainLoss, plain, plainEnd) = pass(false)
        let (checkpointedLoss, checkpointed, checkpointedEnd) = pass(true)
        #expect(plainLoss == checkpointedLoss)
        #expect(plain.keys == checkpointed.keys && !plain.keys.isEmpty)
        for ((key, a), b) in zip(plain, checkpointed.tensors) {
            #expect(a.scalars == b.scalars, "\(key): gradients differ (max |Δ| \(zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0))")
        }
        #expect(plain.tensors.contains { $0.scalars.contains { $0 != 0 } }, "the gradients are not all zero")
        #expect(plainEnd == checkpointedEnd, "the dropout streams end where the plain pass left them")
    }

    static let families = ["llama", "qwen2", "gemma3", "gpt2"]

    @Test(arguments: families) func gradientsEqualThroughTheFullLogits(_ fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        let (input, completion) = batch(model)
        compare(model) { causalLanguageModelLoss(logits: $0(input), ids: input.ids, lossMask: completion) }
    }

    @Test(arguments: families) func gradientsEqualThroughTheFusedHead(_ fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        try #require(model.plainHeadWeight != nil)
        let (input, completion) = batch(model)
        compare(model) {
            completionLogProbs(model: $0, input: input, keepingLast: input.length, sharing: nil, completionMask: completion, fused: true)
                .logProbs.sums.sum()
        }
    }

    @Test(arguments: ["llama", "gemma3", "gpt2"]) func gradientsEqualWithSharedPrompts(_ fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        let v = model.configuration.vocabularySize
        let prompt = [1, 5, 9, 2].map { $0 % v }
        let ids = [prompt + [3, 4, 6], prompt + [7, 8, 0].map { $0 % v }]
        let input = TokenBatch(ids: ids, attentionMask: [[Bool](repeating: true, count: 7), [true, true, true, true, true, true, false]])
        let completion = input.attentionMask!.map { row in row.enumerated().map { $0.offset >= 4 && $0.element } }
        let sharing = try #require(SharedPrefixes(prompts: [prompt, prompt]))
        compare(model) {
            completionLogProbs(model: $0, input: input, keepingLast: 4, sharing: sharing, completionMask: completion, fused: true)
                .logProbs.sums.sum()
        }
    }

    @Test(arguments: families) func gradientsEqualWithLoRAAndDropout(_ fixture: String) throws {
        let model = try LanguageModelLoader.load(directory: lmFixture(fixture))
        let targets = fixture == "gpt2" ? ["c_attn", "c_proj", "c_fc"] : ["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"]
        try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 2, alpha: 4, dropout: 0.2, targetModules: targets, seed: 7))
        // B starts at zero, which would leave A's gradient zero: give the adapters a nonzero start.
        var rng = RandomGenerator(seed: 11)
        for (_, layer) in loraLayers(in: model) {
            layer.loraB.weight.assign(Tensor(shape: layer.loraB.weight.shape, values: (0..<layer.loraB.weight.count).map { _ in Float(rng.uniform() - 0.5) * 0.1 }))
        }
        quantizeFrozenBase(of: model, to: .q8_0)
        let (input, completion) = batch(model)
        compare(model) { causalLanguageModelLoss(logits: $0(input), ids: input.ids, lossMask: completion) }
        compare(model) {
            completionLogProbs(model: $0, input: input, keepingLast: input.length, sharing: nil, completionMask: completion, fused: true)
                .logProbs.sums.sum()
        }
    }

    @Test func inferenceAndCachedDecodingAreUnchanged() throws {
        let model = try LanguageModelLoader.load(directory: lmFixture("llama"))
        let (input, _) = batch(model)
        let plain = withoutGradients { model(input) }.scalars
        model.gradientCheckpointing = true
        #expect(withoutGradients { model(input) }.scalars == plain)
        #expect(model(input).scalars == plain)
    }
}
