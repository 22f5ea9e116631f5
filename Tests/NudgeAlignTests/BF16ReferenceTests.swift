// lora.base = bf16 holds the frozen projections under the adapters in bf16; ref_model_dtype = bf16:
// the frozen copy of the initial policy an online trainer makes as its
// reference holds its projections in bf16 (half their bytes), scores close to the Float32 copy,
// and the key reaches the trainers' configs.

import Foundation
import Testing
@testable import NudgeAlign
import NudgeLM
import NudgeNN
import NudgeTensor

/// The bf16 matrices under `module` and the bytes they take.
private func bf16Linears(_ module: Module) -> [QuantizedMatrix] {
    module.items().children.flatMap { child -> [QuantizedMatrix] in
        if let q = child.1 as? QuantizedLinear { return q.quantizedWeight.format == .bf16 ? [q.quantizedWeight] : [] }
        return bf16Linears(child.1)
    }
}

@Suite("bf16 reference model") struct BF16ReferenceTests {
    @Test func grpoHoldsItsReferenceInBF16() throws {
        let (model, tokenizer) = tinyPolicy(seed: 2)
        var config = GRPOConfig()
        config.promptsPerStep = 2
        config.numGenerations = 2
        config.maxCompletionLength = 4
        config.beta = 0.04
        let rows = SyntheticTask.addition(digits: 1).verifiableRows(count: 8, seed: 1)
        let rewards = WeightedRewards([(ClosureReward(name: "length") { s in Double(s.completion.count) }, 1)])
        let float = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: rows, rewards: rewards, config: config)
        config.refModelDtype = .bf16
        let half = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: rows, rewards: rewards, config: config)
        let f = try #require(float.reference), h = try #require(half.reference)
        #expect(bf16Linears(f).isEmpty)
        let matrices = bf16Linears(h)
        // Every attention and MLP projection of every layer.
        #expect(matrices.count == 7 * model.configuration.layerCount)
        let floatBytes = f.parameters().tensors.reduce(0) { $0 + $1.count * 4 }
        let halfBytes = h.parameters().tensors.reduce(0) { $0 + $1.count * 4 } + matrices.reduce(0) { $0 + $1.byteCount }
        let projectionFloatBytes = matrices.reduce(0) { $0 + $1.rows * $1.columns * 4 }
        #expect(floatBytes - halfBytes >= projectionFloatBytes * 4 / 10, "\(floatBytes) → \(halfBytes)")
        // The policy itself is untouched and still trains in Float32.
        #expect(bf16Linears(model).isEmpty)

        let batch = TokenBatch(ids: [[1, 5, 9, 100, 3, 7, 42, 11], [2, 8, 100, 4, 6, 11, 250, 12]])
        let a = withoutGradients { f(batch).logSoftmax(axis: -1).scalars }, b = withoutGradients { h(batch).logSoftmax(axis: -1).scalars }
        let maxDiff = zip(a, b).map { abs($0 - $1) }.max()!
        print("bf16 reference, tiny preset: max |Δ log p| = \(maxDiff)")
        #expect(maxDiff < 2e-2)
        let step = try #require(try half.trainStep())
        #expect(step["kl"].map(\.isFinite) ?? false)
    }

    @Test func grpoSamplesWithBF16RolloutWeightsAndTrainsInFloat32() throws {
        let (model, tokenizer) = tinyPolicy(seed: 2)
        let run = GroupRun.grpo
        var config = run.keys.apply(try run.schema.resolve(overrides: ["grpo.rollout_dtype=bf16"]), to: run.defaults)
        #expect(config.rolloutDtype == .bf16)
        config.promptsPerStep = 2
        config.numGenerations = 2
        config.maxCompletionLength = 4
        let rows = SyntheticTask.addition(digits: 1).verifiableRows(count: 8, seed: 1)
        // A reward that differs between samples, so the advantages are not all zero.
        let rewards = WeightedRewards([(ClosureReward(name: "ids") { s in Double(s.completionIDs.reduce(0, +) % 7) }, 1)])
        let trainer = try GRPOTrainer(policy: model, tokenizer: tokenizer, rows: rows, rewards: rewards, config: config)
        #expect(trainer.generation.weights == .bf16)
        let before = model.parameters().tensors.map(\.scalars)
        let step = try #require(try trainer.trainStep())
        #expect(step["loss"].map(\.isFinite) ?? false)
        // The Float32 policy trained (its weights moved) and holds no bf16 copy after the step.
        #expect(model.parameters().tensors.map(\.scalars) != before)
        #expect(!model.parameters().tensors.contains(where: RolloutWeights.hasCopy))
    }

    @Test func loraBaseBF16HoldsTheFrozenProjectionsInBF16() throws {
        let config = try SFTRun.schema.resolve(overrides: ["lora.r=2", "lora.base=bf16"])
        let (model, _) = try AlignRun(config: config).loadModel()
        let layers = model.configuration.layerCount
        let paths = try AdapterKeys.apply(config, to: model)
        #expect(paths.count == 2 * layers)  // q_proj and v_proj by default
        #expect(loraLayers(in: model).allSatisfy { $0.layer.quantizedBase?.format == .bf16 })
        // The untargeted frozen projections are held in bf16 too.
        #expect(bf16Linears(model).count == 5 * layers)
    }

    @Test func theKeyReachesTheOnlineTrainers() throws {
        let grpo = GroupRun.grpo.keys.apply(try GroupRun.grpo.schema.resolve(overrides: ["grpo.ref_model_dtype=bf16"]), to: GRPOConfig())
        #expect(grpo.refModelDtype == .bf16)
        let ppo = PPORun.keys.apply(try PPORun.schema.resolve(overrides: ["ppo.ref_model_dtype=bf16"]), to: PPORLHFConfig())
        #expect(ppo.refModelDtype == .bf16)
        #expect(GroupRun.grpo.keys.apply(try GroupRun.grpo.schema.resolve(), to: GRPOConfig()).refModelDtype == .float32)
        #expect(throws: (any Error).self) { try GroupRun.grpo.schema.resolve(overrides: ["grpo.ref_model_dtype=fp8"]) }
    }
}
