// The fused token-major kernels against the unfused ops they replace (whose gradients are
// finite-difference checked in GradientTests), and their own finite-difference gradients.

import Foundation
import Testing
@testable import NudgeTensor

/// Unfused attention on token-major tensors: split heads, repeat key-value heads, attend, merge.
private func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, keyValueHeads: Int, mask: Tensor?) -> Tensor {
    let (b, t, width) = (q.shape[0], q.shape[1], q.shape[2])
    let d = width / heads, s = k.shape[1]
    func split(_ x: Tensor, _ n: Int) -> Tensor { x.reshaped([b, x.shape[1], n, d]).transposed(1, 2) }
    func repeated(_ x: Tensor) -> Tensor {
        let groups = heads / keyValueHeads
        return x.reshaped([b, keyValueHeads, 1, s, d]).expand(to: [b, keyValueHeads, groups, s, d]).reshaped([b, heads, s, d])
    }
    let out = scaledDotProductAttention(queries: split(q, heads), keys: repeated(split(k, keyValueHeads)),
                                        values: repeated(split(v, keyValueHeads)), mask: mask, causal: true)
    return out.transposed(1, 2).reshaped([b, t, width])
}

@Suite("Fused attention and rotary kernels") struct AttentionTests {
    @Test func matchesUnfusedAttentionAcrossQueryBlocks() {
        // 70 queries cross the 64-query block; 4 query heads share 2 key-value heads; the size
        // is above the threshold where batch rows and groups are split across threads.
        let (b, t, heads, kv, d) = (4, 70, 4, 2, 16)
        let q = randomTensor([b, t, heads * d], seed: 1), k = randomTensor([b, t, kv * d], seed: 2)
        let v = randomTensor([b, t, kv * d], seed: 3)
        let padding = paddingMask([Array(repeating: true, count: t), Array(repeating: false, count: 5) + Array(repeating: true, count: t - 5)]
                                  + Array(repeating: Array(repeating: true, count: t), count: b - 2))
        let segments = segmentMask([(0..<t).map { $0 < 30 ? 1 : 2 }, (0..<t).map { $0 < 3 ? 0 : 1 }]
                                   + Array(repeating: (0..<t).map { $0 / 20 + 1 }, count: b - 2))
        // Queries that see no real key (left padding, segment 0) have no meaningful output (the
        // unfused op even spreads them over future keys), so they are weighted out.
        for (mask, blind) in [(nil, 0), (padding, 5), (segments, 3)] as [(Tensor?, Int)] {
            let weights = randomTensor([b, t, heads * d], seed: 12)
            for i in 0..<(blind * heads * d) { weights.data[t * heads * d + i] = 0 }
            let fused = causalAttention(queries: q, keys: k, values: v, heads: heads, keyValueHeads: kv, mask: mask) * weights
            let reference = referenceAttention(q, k, v, heads: heads, keyValueHeads: kv, mask: mask) * weights
            expectClose(fused.scalars, reference.scalars, atol: 1e-5, rtol: 1e-4)

            let (_, fusedGrads) = valueAndGrad([q, k, v]) { x in
                (causalAttention(queries: x[0], keys: x[1], values: x[2], heads: heads, keyValueHeads: kv, mask: mask) * weights).sum()
            }
            let (_, referenceGrads) = valueAndGrad([q, k, v]) { x in
                (referenceAttention(x[0], x[1], x[2], heads: heads, keyValueHeads: kv, mask: mask) * weights).sum()
            }
            for i in 0..<3 { expectClose(fusedGrads[i].scalars, referenceGrads[i].scalars, atol: 1e-5, rtol: 1e-3) }
        }
    }

    @Test func cachedKeysSeeEarlierPositions() {
        // 3 new queries over 7 keys: query t sees keys 0...t + 4. Only the first 7 of 10 buffered
        // rows are used; the rest hold junk that must not leak in.
        let (b, heads, d) = (2, 2, 4)
        let q = randomTensor([b, 3, heads * d], seed: 4)
        let k = randomTensor([b, 7, heads * d], seed: 5), v = randomTensor([b, 7, heads * d], seed: 6)
        let junk = Tensor(repeating: 1e6, shape: [b, 3, heads * d])
        let (kBuffer, vBuffer) = (Tensor.concat([k, junk], axis: 1), Tensor.concat([v, junk], axis: 1))
        let mask = paddingMask([Array(repeating: true, count: 7), [false, false] + Array(repeating: true, count: 5)])
        let fused = causalAttention(queries: q, keys: kBuffer, values: vBuffer, heads: heads, keyValueHeads: heads, keyLength: 7, mask: mask)
        let reference = referenceAttention(q, k, v, heads: heads, keyValueHeads: heads, mask: mask)
        expectClose(fused.scalars, reference.scalars, atol: 1e-5, rtol: 1e-4)
        // One new query (decoding) takes the dot-product path instead of BLAS.
        let last = q.slice(axis: 1, 2..<3)
        let step = causalAttention(queries: last, keys: kBuffer, values: vBuffer, heads: heads, keyValueHeads: heads, keyLength: 7, mask: mask)
        expectClose(step.scalars, reference.slice(axis: 1, 2..<3).scalars, atol: 1e-5, rtol: 1e-4)
    }

    /// Decoding one query (the AVX2 kernel where the CPU has it): head sizes with and without a
    /// remainder of 8 and above 32, key counts around the 4- and 8-key blocks, padding masked.
    @Test func oneQueryMatchesTheUnfusedAttention() {
        for d in [4, 8, 12, 32, 40, 64] {
            for s in [1, 3, 4, 9, 65] {
                let (b, heads, kv) = (2, 4, 2)
                let q = randomTensor([b, s, heads * d], seed: 20), k = randomTensor([b, s, kv * d], seed: 21, low: -2, high: 2)
                let v = randomTensor([b, s, kv * d], seed: 22)
                let mask = paddingMask([Array(repeating: true, count: s), (0..<s).map { $0 >= s / 2 }])
                let reference = referenceAttention(q, k, v, heads: heads, keyValueHeads: kv, mask: mask).slice(axis: 1, (s - 1)..<s)
                let step = causalAttention(queries: q.slice(axis: 1, (s - 1)..<s), keys: k, values: v, heads: heads, keyValueHeads: kv, mask: mask)
                expectClose(step.scalars, reference.scalars, atol: 1e-5, rtol: 1e-4)
            }
        }
    }

    @Test func finiteDifferenceGradients() {
        let q = randomTensor([1, 3, 4], seed: 7), k = randomTensor([1, 3, 2], seed: 8), v = randomTensor([1, 3, 2], seed: 9)
        let pad = paddingMask([[false, true, true]])
        checkGradients([q, k, v]) { causalAttention(queries: $0[0], keys: $0[1], values: $0[2], heads: 2, keyValueHeads: 1, mask: pad) }
        checkGradients([q.slice(axis: 1, 0..<1), k, v]) {
            causalAttention(queries: $0[0], keys: $0[1], values: $0[2], heads: 2, keyValueHeads: 1, mask: paddingMask([[true, false, true]]))
        }
        let segments = segmentMask([[1, 1, 2]])
        checkGradients([q, k, v]) { causalAttention(queries: $0[0], keys: $0[1], values: $0[2], heads: 2, keyValueHeads: 1, mask: segments, scale: 0.7) }
        let x = randomTensor([2, 3, 8], seed: 10), angles = randomTensor([2, 3, 2], seed: 11, low: -3, high: 3)
        let (cos, sin) = (angles.map { Foundation.cos($0) }, angles.map { Foundation.sin($0) })
        checkGradients([x]) { rotaryEmbedding($0[0], cos: cos, sin: sin, heads: 2) }
    }

    @Test func rotaryRotatesEachHeadsHalves() {
        // One token, one head of d = 4: pairs (x0, x2) and (x1, x3) turn by angles a0 and a1.
        let x = Tensor(shape: [1, 1, 4], values: [1, 2, 3, 4])
        let (a0, a1): (Float, Float) = (0.3, -1.1)
        let cos = Tensor(shape: [1, 1, 2], values: [Foundation.cos(a0), Foundation.cos(a1)])
        let sin = Tensor(shape: [1, 1, 2], values: [Foundation.sin(a0), Foundation.sin(a1)])
        let y = rotaryEmbedding(x, cos: cos, sin: sin, heads: 1).scalars
        let expected: [Float] = [1 * Foundation.cos(a0) - 3 * Foundation.sin(a0), 2 * Foundation.cos(a1) - 4 * Foundation.sin(a1),
                                 3 * Foundation.cos(a0) + 1 * Foundation.sin(a0), 4 * Foundation.cos(a1) + 2 * Foundation.sin(a1)]
        expectClose(y, expected, atol: 1e-6)
    }
}
