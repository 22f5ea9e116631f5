// Every differentiable op against central finite differences (tolerances in GradientCheck.swift),
// including broadcasting and fan-out.

import Foundation
import Testing
@testable import NudgeTensor

@Suite("Gradients") struct GradientTests {
    @Test func arithmeticWithBroadcasting() {
        let a = randomTensor([2, 3, 4], seed: 1), b = randomTensor([3, 1], seed: 2)
        let c = randomTensor([4], seed: 3, low: 0.5, high: 2)
        checkGradients([a, b]) { $0[0] + $0[1] }
        checkGradients([a, b]) { $0[0] - $0[1] }
        checkGradients([a, b]) { $0[0] * $0[1] }
        checkGradients([a, c]) { $0[0] / $0[1] }
        checkGradients([c, a]) { $0[1] / $0[0] }
        checkGradients([a]) { ($0[0] + 2) * 3 - 1 }
        checkGradients([c]) { 1.5 / $0[0] }
        checkGradients([a]) { -$0[0] / 4 }
        checkGradients([Tensor(0.7), a]) { $0[0] * $0[1] }  // scalar broadcast
    }

    @Test func powerAndSelection() {
        let a = randomTensor([3, 4], seed: 4, low: 0.5, high: 2), b = randomTensor([4], seed: 5, low: -1, high: 2)
        checkGradients([a, b]) { Tensor.pow($0[0], $0[1]) }
        checkGradients([a]) { $0[0].pow(2.5) }
        let x = randomTensor([3, 4], seed: 6), y = randomTensor([3, 4], seed: 7)
        checkGradients([x, y]) { Tensor.minimum($0[0], $0[1]) }
        checkGradients([x, y]) { Tensor.maximum($0[0], $0[1]) }
        let mask = Tensor.greater(x, y)
        checkGradients([x, y]) { Tensor.where(mask, $0[0], $0[1]) }
    }

    @Test func unaryOps() {
        let x = awayFromZero([2, 5], seed: 8)
        let pos = randomTensor([2, 5], seed: 9, low: 0.2, high: 3)
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("exp", { $0.exp() }), ("tanh", { $0.tanh() }), ("sigmoid", { $0.sigmoid() }),
            ("logSigmoid", { $0.logSigmoid() }), ("softplus", { $0.softplus() }), ("relu", { $0.relu() }),
            ("gelu", { $0.gelu() }), ("geluTanh", { $0.gelu(approximate: true) }), ("silu", { $0.silu() }),
            ("abs", { $0.abs() }), ("square", { $0.square() }), ("clamp", { $0.clamp(min: -0.5, max: 0.5) }),
        ]
        for (_, op) in ops { checkGradients([x]) { op($0[0]) } }
        for op in [{ (t: Tensor) in t.log() }, { $0.log1p() }, { $0.sqrt() }, { $0.rsqrt() }] {
            checkGradients([pos]) { op($0[0]) }
        }
        let negative = randomTensor([2, 5], seed: 11, low: -3, high: -0.05)
        checkGradients([negative]) { $0[0].log1mexp() }
        // Near 0, where log1p(−eˣ) loses every digit: log(1 − e^−1e-6) = log(1e-6 − 5e-13) to float precision.
        let tiny = Tensor([-1e-6, -1e-5, -2]).log1mexp().scalars
        #expect(abs(tiny[0] - Float(Foundation.log(1e-6 - 5e-13))) < 1e-5)
        #expect(abs(tiny[1] - Float(Foundation.log(-Foundation.expm1(-1e-5)))) < 1e-5)
        #expect(abs(tiny[2] - Float(Foundation.log1p(-Foundation.exp(-2.0)))) < 1e-6)
        // Large magnitudes stay finite in the stable forms.
        let big = Tensor([-100, 100])
        #expect(big.logSigmoid().scalars.allSatisfy { $0.isFinite })
        #expect(big.softplus().scalars[0] < 1e-30 && big.softplus().scalars[1] == 100)
    }

    @Test func clampGradientIsZeroOutside() {
        let x = Tensor([-2, 0.1, 3])
        let g = grad([x]) { $0[0].clamp(min: -1, max: 1).sum() }
        #expect(g[0].scalars == [0, 1, 0])
    }

    @Test func reductions() {
        let x = randomTensor([2, 3, 4], seed: 10)
        checkGradients([x]) { $0[0].sum() }
        checkGradients([x]) { $0[0].sum(axis: 1) }
        checkGradients([x]) { $0[0].sum(axes: [0, 2], keepDims: true) }
        checkGradients([x]) { $0[0].mean(axis: -1) }
        checkGradients([x]) { $0[0].mean() }
        checkGradients([x]) { $0[0].max(axis: 1) }
        checkGradients([x]) { $0[0].min(axis: 2, keepDims: true) }
        checkGradients([x]) { $0[0].logSumExp(axis: 1) }
        checkGradients([x]) { $0[0].variance(axes: [2]) }
        checkGradients([x]) { $0[0].standardDeviation(axes: [1, 2], correction: 0) }
        checkGradients([x]) { $0[0].softmax(axis: -1) }
        checkGradients([x]) { $0[0].softmax(axis: 1) }
        checkGradients([x]) { $0[0].logSoftmax(axis: -1) }
        checkGradients([x]) { $0[0].logSoftmax(axis: 0) }
    }

    @Test func shapeOps() {
        let x = randomTensor([2, 3, 4], seed: 11)
        checkGradients([x]) { $0[0].reshaped([6, -1]) }
        checkGradients([x]) { $0[0].permuted([2, 0, 1]) }
        checkGradients([x]) { $0[0].transposed() }
        checkGradients([x]) { $0[0].slice(axis: 1, 1..<3) }
        checkGradients([x]) { $0[0].padded(axis: 2, before: 1, after: 2, value: 3) }
        checkGradients([x]) { $0[0].expand(to: [5, 2, 3, 4]) }
        let y = randomTensor([2, 1, 4], seed: 12)
        checkGradients([x, y]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        checkGradients([x, x.copy()]) { Tensor.stack([$0[0], $0[1]], axis: 1) }
        checkGradients([x]) { $0[0].takeAlongAxis([0, 2, 1, 2, 0, 0, 1, 2], indexShape: [2, 1, 4], axis: 1) }
        checkGradients([x]) { $0[0].reshaped([6, 4]).pick([0, 3, 3, 1, 2, 0]) }
        let table = randomTensor([5, 3], seed: 13)
        checkGradients([table]) { $0[0].indexSelect([4, 1, 4, 0], indexShape: [2, 2]) }
        let src = randomTensor([3, 3], seed: 14)
        checkGradients([table, src]) { $0[0].scatterAdd([2, 2, 0], $0[1]) }
    }

    @Test func matmulAllTransposes() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomTensor(ta ? [4, 3] : [3, 4], seed: 15), b = randomTensor(tb ? [5, 4] : [4, 5], seed: 16)
            checkGradients([a, b]) { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            let ba = randomTensor(ta ? [2, 4, 3] : [2, 3, 4], seed: 17), bb = randomTensor(tb ? [2, 5, 4] : [2, 4, 5], seed: 18)
            checkGradients([ba, bb]) { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
        }
        // N-D × 2-D (a Linear layer on a batch of sequences) and vectors.
        let x = randomTensor([2, 3, 4], seed: 19), w = randomTensor([5, 4], seed: 20)
        checkGradients([x, w]) { matmul($0[0], $0[1], transposeB: true) }
        let b = randomTensor([5], seed: 33)
        checkGradients([x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients([x, w]) { linear($0[0], weight: $0[1], bias: nil) }
        let v = randomTensor([4], seed: 21)
        checkGradients([v, w]) { matmul($0[1], $0[0]) }
    }

    @Test func normalizationAndAttention() {
        let x = randomTensor([3, 8], seed: 22), w = randomTensor([8], seed: 23, low: 0.5, high: 1.5)
        let b = randomTensor([8], seed: 24)
        checkGradients([x, w, b]) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        checkGradients([x]) { $0[0].layerNorm(weight: nil, bias: nil) }
        checkGradients([x, w]) { $0[0].rmsNorm(weight: $0[1], eps: 1e-5) }
        let q = randomTensor([1, 2, 3, 4], seed: 25), k = randomTensor([1, 2, 5, 4], seed: 26)
        let v = randomTensor([1, 2, 5, 4], seed: 27)
        let pad = paddingMask([[false, true, true, true, true]])
        checkGradients([q, k, v]) { scaledDotProductAttention(queries: $0[0], keys: $0[1], values: $0[2], mask: pad, causal: true) }
    }

    @Test func lossesAndDistributions() {
        let logits = randomTensor([4, 5], seed: 28, low: -2, high: 2)
        checkGradients([logits]) { crossEntropy(logits: $0[0], targets: [1, -100, 4, 0]) }
        checkGradients([logits]) { crossEntropy(logits: $0[0], targets: [1, 2, 4, 0], labelSmoothing: 0.1) }
        checkGradients([logits]) { $0[0].categoricalEntropy() }
        checkGradients([logits]) { selectedLogProbabilities(logits: $0[0], targets: [1, 3, 4, 0]) }
        let wide = randomTensor([3, 21], seed: 34, low: -2, high: 2)  // a width that is not a multiple of 8
        checkGradients([wide]) { selectedLogProbabilities(logits: $0[0], targets: [20, 0, 7]) }
        expectClose(selectedLogProbabilities(logits: wide, targets: [20, 0, 7]).scalars,
                    wide.logSoftmax().pick([20, 0, 7]).scalars, atol: 1e-6)
        // The fused head: chunks of 2 rows over 5 (the last one short), a skipped row, a temperature scale.
        let hidden = randomTensor([5, 4], seed: 35, low: -1, high: 1), head = randomTensor([21, 4], seed: 36, low: -1, high: 1)
        let fusedTargets = [3, -1, 20, 0, 7]
        checkGradients([hidden, head]) {
            linearSelectedLogProbabilities(hidden: $0[0], weight: $0[1], targets: fusedTargets, scale: 0.7, chunkRows: 2).logProbs
        }
        let (fused, entropies) = linearSelectedLogProbabilities(hidden: hidden, weight: head, targets: fusedTargets, scale: 0.7, chunkRows: 2, entropy: true)
        let unfusedLogP = (matmul(hidden, head, transposeB: true) * 0.7).logSoftmax()
        let unfused = unfusedLogP.pick([3, 0, 20, 0, 7]).scalars
        expectClose(fused.scalars, [unfused[0], 0, unfused[2], unfused[3], unfused[4]], atol: 1e-5)
        let unfusedEntropy = (-(unfusedLogP.exp() * unfusedLogP).sum(axis: 1)).scalars
        expectClose(entropies, [unfusedEntropy[0], 0, unfusedEntropy[2], unfusedEntropy[3], unfusedEntropy[4]], atol: 1e-5)
        let x = randomTensor([6], seed: 29), mu = randomTensor([6], seed: 30), logStd = randomTensor([6], seed: 31, low: -1, high: 0.5)
        checkGradients([x, mu, logStd]) { normalLogProb($0[0], mean: $0[1], logStd: $0[2]) }
        checkGradients([x, mu, logStd]) { tanhNormalLogProb(preTanh: $0[0], mean: $0[1], logStd: $0[2]) }
    }

    @Test func fanOutAccumulates() {
        // f(x) = x·x + exp(x) + x uses x three times; df/dx = 2x + eˣ + 1.
        let x = randomTensor([5], seed: 32)
        checkGradients([x]) { $0[0] * $0[0] + $0[0].exp() + $0[0] }
        let g = grad([x]) { ($0[0] * $0[0] + $0[0]).sum() }[0]
        expectClose(g.scalars, x.scalars.map { 2 * $0 + 1 })
    }
}
