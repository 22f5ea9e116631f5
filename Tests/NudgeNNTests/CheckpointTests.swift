// Module and optimizer checkpoints: round trip, strict loading, and a resumed run that continues
// bit-identically.

import Foundation
import Testing
@testable import NudgeNN
import NudgeTensor

func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-test-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Checkpoint") struct CheckpointTests {
    /// One training step of a small MLP on fixed data.
    func trainStep(_ model: MLP, _ opt: Adam, _ x: Tensor, _ y: Tensor) -> Float {
        let (loss, g) = valueAndGrad(model) { m in mseLoss(m(x), y) }
        opt.update(model, gradients: g)
        return loss.item()
    }

    @Test func resumedRunIsBitIdentical() throws {
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.normal([16, 3], using: &rng), y = Tensor.normal([16, 2], using: &rng)
        func fresh() -> (MLP, Adam) {
            var r = RandomGenerator(seed: 12)
            return (MLP(sizes: [3, 16, 2], using: &r), AdamW(learningRate: 1e-2, weightDecay: 0.1))
        }
        let (straight, opt) = fresh()
        let lossesStraight = (0..<10).map { _ in trainStep(straight, opt, x, y) }

        let dir = temporaryDirectory().appendingPathComponent("ckpt")
        let (first, opt1) = fresh()
        var losses = (0..<5).map { _ in trainStep(first, opt1, x, y) }
        try Checkpoint.save(model: first, optimizer: opt1, step: 5, to: dir)
        let (resumed, opt2) = fresh()
        let step = try Checkpoint.restore(model: resumed, optimizer: opt2, from: dir)
        #expect(step == 5 && opt2.step == 5)
        losses += (0..<5).map { _ in trainStep(resumed, opt2, x, y) }
        #expect(losses == lossesStraight)
        for (a, b) in zip(straight.parameters().tensors, resumed.parameters().tensors) {
            #expect(a.scalars == b.scalars)
        }
    }

    @Test func saveOverwritesAtomicallyAndLoadsStrictly() throws {
        let dir = temporaryDirectory()
        var rng = RandomGenerator(seed: 1)
        let model = MLP(sizes: [2, 4, 1], using: &rng)
        let url = dir.appendingPathComponent("m.safetensors")
        try model.save(to: url)
        try model.save(to: url)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["m.safetensors"])
        let other = MLP(sizes: [2, 4, 1], using: &rng)
        try other.load(from: url)
        #expect(other.layers[0].weight.scalars == model.layers[0].weight.scalars)
        let wrong = MLP(sizes: [2, 5, 1], using: &rng)
        #expect(throws: ModuleError.shapeMismatch(key: "layers.0.weight", expected: [5, 2], actual: [4, 2])) {
            try wrong.load(from: url)
        }
        let checkpointDir = dir.appendingPathComponent("latest")
        try Checkpoint.save(model: model, optimizer: nil, step: 3, to: checkpointDir)
        try Checkpoint.save(model: model, optimizer: nil, step: 4, to: checkpointDir)
        #expect(try Checkpoint.restore(model: other, optimizer: nil, from: checkpointDir) == 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["latest", "m.safetensors"])
    }
}
