// Module discovery, keys, freezing, strict loading, the printed tree, initializers.

import Foundation
import Testing
@testable import NudgeNN
import NudgeTensor

final class Block: Module {
    let attention: Linear
    @Key("mlp_out") var output = Linear(weight: Tensor.ones([2, 2]))
    let norms: [RMSNorm]
    let scale: Tensor
    var extra: Linear?

    init(using rng: inout RandomGenerator) {
        attention = Linear(inputCount: 2, outputCount: 2, bias: false, using: &rng)
        norms = [RMSNorm(dimensions: 2), RMSNorm(dimensions: 2)]
        scale = Tensor([1, 1])
    }
}

final class Tiny: Module {
    let layers: [Block]
    let head: Linear

    init(seed: UInt64 = 0) {
        var rng = RandomGenerator(seed: seed)
        layers = [Block(using: &rng)]
        head = Linear(inputCount: 2, outputCount: 3, using: &rng)
    }
}

@Suite("Module") struct ModuleTests {
    @Test func keysAreDottedAndOrdered() {
        let m = Tiny()
        #expect(m.parameters().keys == [
            "layers.0.scale", "layers.0.attention.weight", "layers.0.mlp_out.weight",
            "layers.0.norms.0.weight", "layers.0.norms.1.weight", "head.weight", "head.bias",
        ])
        #expect(m.parameterCount == 2 + 4 + 4 + 2 + 2 + 6 + 3)
    }

    @Test func printedTreeIsPinned() {
        let expected = """
        Tiny  [23 params]
          (layers.0): Block  [14 params]
            (attention): Linear(2 → 2, no bias)  [4 params]
            (mlp_out): Linear(2 → 2, no bias)  [4 params]
            (norms.0): RMSNorm(2, eps: 1e-06)  [2 params]
            (norms.1): RMSNorm(2, eps: 1e-06)  [2 params]
          (head): Linear(2 → 3)  [9 params]
        """
        #expect(Tiny().description == expected)
    }

    @Test func freezeExcludesFromTraining() {
        let m = Tiny()
        m.layers[0].freeze()
        #expect(m.trainableParameters().keys == ["head.weight", "head.bias"])
        let (_, grads) = valueAndGrad(m) { m in m.head(m.layers[0].attention(Tensor.ones([1, 2]))).sum() }
        #expect(grads.keys == ["head.weight", "head.bias"])
        m.unfreeze()
        #expect(m.trainableParameters().count == 7)
    }

    @Test func strictUpdateNamesTheKey() throws {
        let a = Tiny(seed: 1), b = Tiny(seed: 2)
        try a.update(parameters: b.parameters())
        #expect(a.head.weight.scalars == b.head.weight.scalars)
        var missing = b.parameters()
        missing["head.bias"] = nil
        #expect(throws: ModuleError.missingKey("head.bias")) { try a.update(parameters: missing) }
        var extra = b.parameters()
        extra["head.gain"] = Tensor([1])
        #expect(throws: ModuleError.unusedKey("head.gain")) { try a.update(parameters: extra) }
        var wrong = b.parameters()
        wrong["head.bias"] = Tensor([1, 2])
        #expect(throws: ModuleError.shapeMismatch(key: "head.bias", expected: [3], actual: [2])) {
            try a.update(parameters: wrong)
        }
        try a.update(parameters: missing, strict: false)
    }

    @Test func tiedTensorsAreListedOnce() {
        let shared = Tensor.ones([2, 2])
        final class Tied: Module {
            let a: Linear, b: Linear
            init(_ t: Tensor) { a = Linear(weight: t); b = Linear(weight: t) }
        }
        let m = Tied(shared)
        #expect(m.parameters().keys == ["a.weight"])
        let (_, g) = valueAndGrad(m) { m in (m.a(Tensor.ones([1, 2])) + m.b(Tensor.ones([1, 2]))).sum() }
        #expect(g["a.weight"]!.scalars == [2, 2, 2, 2])
    }

    @Test func orthogonalInitIsOrthonormal() {
        var rng = RandomGenerator(seed: 3)
        for shape in [[8, 4], [4, 8], [5, 5]] {
            let w = Initializer.orthogonal(gain: 2).make(shape, using: &rng)
            let (r, c) = (shape[0], shape[1])
            let wtw = shape[0] >= shape[1] ? matmul(w, w, transposeA: true) : matmul(w, w, transposeB: true)
            let k = min(r, c)
            for i in 0..<k { for j in 0..<k {
                #expect(abs(wtw[i, j] - (i == j ? 4 : 0)) < 1e-4)
            } }
        }
        let x = Initializer.xavierUniform().make([100, 300], using: &rng)
        #expect(x.scalars.allSatisfy { abs($0) <= (6.0 / 400).squareRoot() })
        let k = Initializer.kaimingNormal().make([200, 300], using: &rng)
        #expect(abs(k.variance().item() - 2.0 / 300) < 2e-4)
    }

    @Test func dropoutIsSeededAndOffInEval() {
        let d1 = Dropout(probability: 0.5, seed: 1), d2 = Dropout(probability: 0.5, seed: 1)
        let x = Tensor.ones([100])
        let y = d1(x)
        #expect(y.scalars == d2(x).scalars)
        #expect(Set(y.scalars).isSubset(of: [0, 2]))
        d1.eval()
        #expect(d1(x).scalars == x.scalars)
    }
}
