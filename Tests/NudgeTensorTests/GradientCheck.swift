// Finite-difference gradient checking.
//
// L = Σ f(x) ⊙ W for a fixed random W (so every output element matters), analytical gradients from
// the tape against central differences (L(x + h) − L(x − h)) / 2h accumulated in Double.
// Tolerance: |analytic − numeric| ≤ atol + rtol·|numeric| with h = 1e-2, atol = 5e-3, rtol = 2e-2,
// which Float32 round-off and O(h²) truncation both stay well inside for smooth ops.

import Testing
@testable import NudgeTensor

func weightedSum(_ y: Tensor, _ w: [Float]) -> Double {
    var s = 0.0
    for i in 0..<y.count { s += Double(y.data[i]) * Double(w[i]) }
    return s
}

/// Checks the gradients of `f` at `inputs` against central differences.
func checkGradients(
    _ inputs: [Tensor], h: Float = 1e-2, atol: Float = 5e-3, rtol: Float = 2e-2,
    sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor
) {
    let probe = withoutGradients { f(inputs) }
    var rng = RandomGenerator(seed: 99)
    let w = (0..<probe.count).map { _ in Float(rng.uniform(-1, 1)) }
    let wTensor = Tensor(shape: probe.shape, values: w)
    let (_, grads) = valueAndGrad(inputs) { xs in (f(xs) * wTensor).sum() }
    for (n, x) in inputs.enumerated() {
        #expect(grads[n].shape == x.shape, "gradient shape for input \(n)", sourceLocation: sourceLocation)
        for i in 0..<x.count {
            let saved = x.data[i]
            x.data[i] = saved + h
            let plus = weightedSum(withoutGradients { f(inputs) }, w)
            x.data[i] = saved - h
            let minus = weightedSum(withoutGradients { f(inputs) }, w)
            x.data[i] = saved
            let numeric = Float((plus - minus) / Double(2 * h))
            let analytic = grads[n].data[i]
            #expect(abs(analytic - numeric) <= atol + rtol * abs(numeric),
                    "input \(n) element \(i): analytic \(analytic) vs numeric \(numeric)",
                    sourceLocation: sourceLocation)
        }
    }
}

/// A tensor of values in [low, high), seeded.
func randomTensor(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, using: &rng)
}

/// Values whose magnitude is at least `gap`, away from kinks at 0.
func awayFromZero(_ shape: [Int], seed: UInt64, gap: Float = 0.1) -> Tensor {
    randomTensor(shape, seed: seed).map { $0 >= 0 ? $0 + gap : $0 - gap }
}

func expectClose(_ a: [Float], _ b: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "counts \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= atol + rtol * abs(y)) {
        Issue.record("element \(i): \(x) vs \(y)", sourceLocation: sourceLocation)
        return
    }
}
