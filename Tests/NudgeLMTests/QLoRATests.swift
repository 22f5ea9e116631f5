// LoRA over a Q8_0-quantized (and a bf16) frozen base (QLoRA-style) on the tiny Llama fixture: logits stay
// close to the Float32 base, the quantized weights leave the parameter list and take about a
// quarter of the memory, adapters still train (gradients cross the quantized layers), the base
// does not change, and unloading gives back a quantized or merged Float32 layer.

import Foundation
import Testing
@testable import NudgeLM
import NudgeNN
import NudgeTensor

private func tinyLlama() throws -> any CausalLanguageModel {
    let url = try #require(Bundle.module.url(forResource: "llama", withExtension: nil, subdirectory: "Fixtures/lm"))
    return try LanguageModelLoader.load(directory: url)
}

private let batch = TokenBatch(ids: [[1, 5, 9, 200, 3, 7, 42], [2, 8, 100, 4, 6, 11, 250]])
private let projections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

/// A LoRA model (all projections, or `targets`) with non-zero B so the adapters matter.
private func adapted(_ targets: [String] = projections) throws -> any CausalLanguageModel {
    let model = try tinyLlama()
    try applyLoRA(to: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targetModules: targets))
    var rng = RandomGenerator(seed: 3)
    for (_, layer) in loraLayers(in: model) { layer.loraB.weight.assign(Tensor.normal(layer.loraB.weight.shape, std: 0.1, using: &rng)) }
    return model
}

@Suite("QLoRA: Q8_0 frozen base") struct QLoRATests {
    @Test func logitsStayCloseAndBaseMemoryDrops() throws {
        let reference = try adapted(), model = try adapted()
        let floatBytes = loraLayers(in: model).reduce(0) { $0 + $1.layer.weight.count * 4 }
        let keysBefore = model.parameters().keys
        let paths = quantizeFrozenBase(of: model)
        #expect(paths.count == 14)
        let layers = loraLayers(in: model)
        #expect(layers.allSatisfy { $0.layer.isBaseQuantized })
        let quantizedBytes = layers.reduce(0) { $0 + $1.layer.quantizedBase!.byteCount }
        // 1 byte per value plus a 4-byte scale per 32 (and down_proj's 176 inputs padded to 192).
        #expect(Double(floatBytes) / Double(quantizedBytes) > 3.3)
        // The quantized weights are no longer parameters; everything else keeps its key and order.
        let keys = model.parameters().keys
        #expect(keys == keysBefore.filter { k in !paths.contains { k == $0 + ".weight" } })
        #expect(model.trainableParameters().keys == reference.trainableParameters().keys)

        let a = withoutGradients { reference(batch).scalars }, b = withoutGradients { model(batch).scalars }
        let maxDiff = zip(a, b).map { abs($0 - $1) }.max()!
        let range = a.map(abs).max()!
        print("QLoRA tiny llama: max |Δlogit| = \(maxDiff) (max |logit| \(range))")
        // Measured: 0.0623 of 3.19 (seeded fixture, 2 layers, random B).
        #expect(maxDiff < 3e-2 * range)
    }

    @Test func adaptersTrainOverTheQuantizedBase() throws {
        let model = try adapted()
        quantizeFrozenBase(of: model)
        let bases = loraLayers(in: model).map { $0.layer.quantizedBase! }
        let dequantized = bases.map { $0.dequantized().scalars }
        let trainable = model.trainableParameters()
        let before = trainable.tensors.map { $0.copy() }
        let optimizer = Adam(learningRate: 1e-2)
        let targets = batch.ids.flatMap { Array($0.dropFirst()) + [0] }
        var losses: [Float] = []
        for _ in 0..<5 {
            let (loss, gradients) = valueAndGrad(model) { m in crossEntropy(logits: m(batch), targets: targets) }
            #expect(gradients.keys == trainable.keys)
            // Layer 0's adapters get gradient only through the quantized layers above them.
            #expect(gradients.tensors.allSatisfy { g in g.scalars.contains { $0 != 0 } })
            optimizer.update(model, gradients: gradients)
            losses.append(loss.item())
        }
        #expect(losses.last! < losses.first!)
        for (key, (now, then)) in zip(trainable.keys, zip(model.trainableParameters().tensors, before)) {
            #expect(now.scalars != then.scalars, "\(key) did not change")
        }
        // The base is the same objects holding the same values.
        let after = loraLayers(in: model).map { $0.layer.quantizedBase! }
        #expect(zip(bases, after).allSatisfy { $0 === $1 })
        #expect(after.map { $0.dequantized().scalars } == dequantized)
    }

    @Test func adapterGradientsMatchTheDequantizedBase() throws {
        // A Float32 base set to the dequantized weights: the same function up to rounding.
        let quantized = try adapted(), float = try adapted()
        quantizeFrozenBase(of: quantized)
        for ((_, q), (_, f)) in zip(loraLayers(in: quantized), loraLayers(in: float)) { f.weight.assign(q.weight) }
        let targets = batch.ids.flatMap { Array($0.dropFirst()) + [0] }
        let (lq, gq) = valueAndGrad(quantized) { m in crossEntropy(logits: m(batch), targets: targets) }
        let (lf, gf) = valueAndGrad(float) { m in crossEntropy(logits: m(batch), targets: targets) }
        #expect(abs(lq.item() - lf.item()) <= 1e-4 * abs(lf.item()))
        for (key, (a, b)) in zip(gq.keys, zip(gq.tensors, gf.tensors)) {
            let scale = b.scalars.map(abs).max()!
            let diff = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-3 * scale, "\(key): max difference \(diff) of \(scale)")
        }
    }

    @Test func untargetedFrozenLinearsAreQuantizedToo() throws {
        let model = try adapted(["q_proj", "v_proj"])
        let paths = quantizeFrozenBase(of: model)
        #expect(paths.count == 14)
        #expect(paths.contains("model.layers.0.mlp.down_proj") && paths.contains("model.layers.1.self_attn.q_proj"))
        let llama = try #require(model as? LlamaModel)
        #expect(llama.model.layers[0].mlp.down is QuantizedLinear)
        #expect(!model.parameters().keys.contains("model.layers.0.mlp.down_proj.weight"))
        #expect(model.parameters().keys.contains("lm_head.weight"))
        // Idempotent.
        #expect(quantizeFrozenBase(of: model).isEmpty)
    }

    @Test func unloadingGivesBackQuantizedOrMergedLayers() throws {
        let model = try adapted(["q_proj"])
        quantizeFrozenBase(of: model)
        let expected = withoutGradients { model(batch).scalars }
        let copy = try adapted(["q_proj"])
        quantizeFrozenBase(of: copy)
        unloadLoRA(from: copy, merge: true)
        let llama = try #require(copy as? LlamaModel)
        #expect(llama.model.layers[0].attention.queryProjection is Linear)
        let merged = withoutGradients { copy(batch).scalars }
        #expect(zip(expected, merged).allSatisfy { abs($0 - $1) <= 1e-3 })
        unloadLoRA(from: model, merge: false)
        #expect((model as! LlamaModel).model.layers[0].attention.queryProjection is QuantizedLinear)
    }
}

@Suite("QLoRA: bf16 frozen base") struct BF16BaseTests {
    @Test func logitsStayCloseInHalfTheBytesAndAdaptersTrain() throws {
        let reference = try adapted(), model = try adapted()
        let floatBytes = loraLayers(in: model).reduce(0) { $0 + $1.layer.weight.count * 4 }
        let paths = quantizeFrozenBase(of: model, to: .bf16)
        #expect(paths.count == 14)
        let layers = loraLayers(in: model)
        #expect(layers.allSatisfy { $0.layer.quantizedBase?.format == .bf16 })
        let bf16Bytes = layers.reduce(0) { $0 + $1.layer.quantizedBase!.byteCount }
        // 2 bytes per value (down_proj's 176 inputs padded to 192).
        #expect(Double(floatBytes) / Double(bf16Bytes) > 1.9)
        let a = withoutGradients { reference(batch).scalars }, b = withoutGradients { model(batch).scalars }
        let maxDiff = zip(a, b).map { abs($0 - $1) }.max()!
        let range = a.map(abs).max()!
        print("bf16 base tiny llama: max |Δlogit| = \(maxDiff) (max |logit| \(range))")
        #expect(maxDiff < 1e-2 * range)
        // Gradients reach every adapter through the bf16 layers, and a step lowers the loss.
        let targets = batch.ids.flatMap { Array($0.dropFirst()) + [0] }
        let optimizer = Adam(learningRate: 1e-2)
        var losses: [Float] = []
        for _ in 0..<3 {
            let (loss, gradients) = valueAndGrad(model) { m in crossEntropy(logits: m(batch), targets: targets) }
            #expect(gradients.tensors.allSatisfy { g in g.scalars.contains { $0 != 0 } })
            optimizer.update(model, gradients: gradients)
            losses.append(loss.item())
        }
        #expect(losses.last! < losses.first!)
    }
}
