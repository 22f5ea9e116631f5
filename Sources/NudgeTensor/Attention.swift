// Fused transformer kernels on token-major tensors (B, T, heads·d), the layout the projections
// produce, so no head transposes are ever materialized.
//
// `causalAttention` works per (batch row, key-value group): for each block of queries, the scores
// are one GEMM against only the keys that block can see (causality skips about half the work),
// the additive mask and the softmax are applied in place, and the output is a second GEMM written
// straight into the head's columns. Grouped-query attention reads the shared key-value head
// directly, with no repeated copy. The probabilities are kept for backward. Tasks own disjoint
// output columns and gradient rows and every element is computed in a fixed order, so results do
// not depend on the thread count.
//
// `rotaryEmbedding` rotates each (x_i, x_{i+d/2}) pair of every head by its position's angle in
// one pass; backward is the rotation by the opposite angle.

import CNudgeKernels
import Foundation

/// Queries per score block: at most 64, and few enough that every per-head product stays at or
/// under OpenBLAS's threading threshold (m·n·k ≤ 2¹⁸). Tasks then run side by side, each product
/// single-threaded inside BLAS, without touching BLAS's global thread count, which other threads
/// may be relying on (a product's last bits depend on how BLAS splits it).
func attentionQueryBlock(keys s: Int, headDimension d: Int) -> Int { max(1, min(64, (1 << 18) / max(1, s * d))) }

/// Causal multi-head attention, softmax(q·kᵀ·scale + mask)·v per head, on token-major tensors.
///
/// - q: (B, T, heads·d). k, v: (B, S′, keyValueHeads·d), of which the first `keyLength` (default
///   S′) rows are used; S ≥ T, and query t sees keys `0...t + S − T` (earlier keys come from a
///   cache). Query head h reads key-value head h / (heads / keyValueHeads).
/// - mask: additive and constant (no gradient), B·S values (per key, shape (B, 1, 1, S)) or
///   B·T·S values (per query and key, shape (B, 1, T, S)).
/// - Returns (B, T, heads·d).
public func causalAttention(
    queries q: Tensor, keys k: Tensor, values v: Tensor, heads: Int, keyValueHeads: Int,
    keyLength: Int? = nil, mask: Tensor? = nil, scale: Float? = nil
) -> Tensor {
    precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "causalAttention: expects (B, T, heads·d) tensors, got \(q.shape), \(k.shape), \(v.shape)")
    let (b, t, width) = (q.shape[0], q.shape[1], q.shape[2])
    precondition(heads > 0 && keyValueHeads > 0 && heads % keyValueHeads == 0 && width % heads == 0,
                 "causalAttention: \(heads) heads and \(keyValueHeads) key-value heads for width \(width)")
    let d = width / heads
    let kvWidth = keyValueHeads * d
    let buffered = k.shape[1], s = keyLength ?? buffered
    precondition(k.shape == [b, buffered, kvWidth] && v.shape == k.shape && s >= t && s <= buffered,
                 "causalAttention: keys \(k.shape) and values \(v.shape) for queries \(q.shape) and \(s) keys")
    let perQueryMask: Bool
    if let mask {
        precondition(mask.count == b * s || mask.count == b * t * s, "causalAttention: mask \(mask.shape) for \(b)×\(t) queries and \(s) keys")
        perQueryMask = mask.count == b * t * s && t > 1
    } else {
        perQueryMask = false
    }
    let alpha = scale ?? 1 / Float(d).squareRoot()
    let groups = heads / keyValueHeads
    let tape = Tape.active([q, k, v])
    precondition(tape == nil || s == buffered, "causalAttention: gradients need keyLength equal to the keys' length")
    let out = Tensor(uninitializedShape: [b, t, width])
    // Probabilities (B, heads, T, S) are kept only when backward will need them.
    let probabilities = tape != nil ? Tensor(uninitializedShape: [b, heads, t, s]) : nil
    let geometry = AttentionGeometry(b: b, t: t, s: s, buffered: buffered, d: d, heads: heads, groups: groups, alpha: alpha)
    let (qp, kp, vp, op) = (q.data, k.data, v.data, out.data)
    let pp = probabilities?.data, mp = mask?.data
    let parallel = b * heads * t * s * d >= 1 << 20
    parallelRanges(b * keyValueHeads, minimum: parallel ? 2 : Int.max, grain: 1) { tasks in
        let scratch = pp == nil ? UnsafeMutablePointer<Float>.allocate(capacity: min(t, geometry.block) * s) : nil
        defer { scratch?.deallocate() }
        for task in tasks {
            let (bi, g) = task.quotientAndRemainder(dividingBy: keyValueHeads)
            let keys = kp + bi * buffered * kvWidth + g * d, values = vp + bi * buffered * kvWidth + g * d
            for h in (g * groups)..<((g + 1) * groups) {
                if t == 1 {
                    // Decoding one token: a BLAS call per head costs more than these few dot products.
                    let p = pp.map { $0 + (bi * heads + h) * s } ?? scratch!
                    if BLAS.smallRowKernel {
                        nudge_attend_one_query(qp + bi * width + h * d, keys, values, Int32(kvWidth), Int32(s), Int32(d), alpha,
                                               mp.map { $0 + bi * s }, p, op + bi * width + h * d)
                    } else {
                        attendOneQuery(qp + bi * width + h * d, keys: keys, values: values, stride: kvWidth, count: s, d: d, alpha: alpha,
                                       mask: mp.map { $0 + bi * s }, probabilities: p, out: op + bi * width + h * d)
                    }
                    continue
                }
                geometry.forEachBlock { t0, rows, visible in
                    let p = pp.map { $0 + ((bi * heads + h) * t + t0) * s } ?? scratch!
                    let queries = qp + (bi * t + t0) * width + h * d
                    sgemm(transA: false, transB: true, m: rows, n: visible, k: d, alpha: alpha,
                          a: queries, lda: width, b: keys, ldb: kvWidth, c: p, ldc: s)
                    for r in 0..<rows {
                        let row = p + r * s, seen = geometry.visibleKeys(query: t0 + r)
                        if let mp {
                            let m = perQueryMask ? mp + (bi * t + t0 + r) * s : mp + bi * s
                            for j in 0..<seen { row[j] += m[j] }
                        }
                        softmaxRow(row, row, seen)
                        if seen < s { (row + seen).update(repeating: 0, count: s - seen) }
                    }
                    sgemm(transA: false, transB: false, m: rows, n: d, k: visible, a: p, lda: s,
                          b: values, ldb: kvWidth, c: op + (bi * t + t0) * width + h * d, ldc: width)
                }
            }
        }
    }
    if let tape, let probabilities {
        let (qs, ks, vs) = (q.detached(), k.detached(), v.detached())
        tape.record(out, [q, k, v]) { grad in
            attentionBackward(grad, q: qs, k: ks, v: vs, probabilities: probabilities, geometry: geometry, keyValueHeads: keyValueHeads)
        }
    }
    return out
}

/// One query against `count` keys: scores by dot products, softmax, and the weighted sum of values.
private func attendOneQuery(
    _ q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int, count: Int, d: Int,
    alpha: Float, mask: UnsafePointer<Float>?, probabilities p: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
) {
    for j in 0..<count {
        let key = keys + j * stride
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= d {
            acc += UnsafeRawPointer(q + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(key + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var dot = acc.sum()
        while i < d { dot += q[i] * key[i]; i += 1 }
        p[j] = alpha * dot + (mask?[j] ?? 0)
    }
    softmaxRow(p, p, count)
    out.update(repeating: 0, count: d)
    for j in 0..<count {
        let weight = p[j], value = values + j * stride
        var i = 0
        while i + 8 <= d {
            let o = UnsafeMutableRawPointer(out + i)
            o.storeBytes(of: o.loadUnaligned(as: SIMD8<Float>.self) + SIMD8(repeating: weight) * UnsafeRawPointer(value + i).loadUnaligned(as: SIMD8<Float>.self),
                         as: SIMD8<Float>.self)
            i += 8
        }
        while i < d { out[i] += weight * value[i]; i += 1 }
    }
}

/// Sizes shared by the attention passes.
struct AttentionGeometry {
    let b, t, s, buffered, d, heads, groups: Int
    let alpha: Float
    var block: Int { attentionQueryBlock(keys: s, headDimension: d) }

    /// Keys query `t` may see.
    @inline(__always) func visibleKeys(query: Int) -> Int { query + s - t + 1 }

    /// Calls `body(firstQuery, rows, visibleKeys)` for each block of queries.
    @inline(__always) func forEachBlock(_ body: (Int, Int, Int) -> Void) {
        var t0 = 0
        while t0 < t {
            let rows = min(block, t - t0)
            body(t0, rows, visibleKeys(query: t0 + rows - 1))
            t0 += rows
        }
    }
}

/// Gradients of q, k and v from the output gradient and the saved probabilities P:
/// dV = Pᵀ·G, dP = G·Vᵀ, dS = P ⊙ (dP − rowΣ dP⊙P), dQ = α·dS·K, dK = α·dSᵀ·Q.
private func attentionBackward(
    _ grad: Tensor, q: Tensor, k: Tensor, v: Tensor, probabilities: Tensor, geometry: AttentionGeometry,
    keyValueHeads: Int
) -> [Tensor?] {
    let (b, t, s, d, heads, groups) = (geometry.b, geometry.t, geometry.s, geometry.d, geometry.heads, geometry.groups)
    let width = heads * d, kvWidth = keyValueHeads * d
    let dq = Tensor(uninitializedShape: q.shape)
    // Several heads and query blocks add into the same key-value rows.
    let dk = Tensor.zeros(k.shape), dv = Tensor.zeros(v.shape)
    let (gp, qp, kp, vp, pp) = (grad.data, q.data, k.data, v.data, probabilities.data)
    let (dqp, dkp, dvp) = (dq.data, dk.data, dv.data)
    let alpha = geometry.alpha
    let parallel = b * heads * t * s * d >= 1 << 19
    parallelRanges(b * keyValueHeads, minimum: parallel ? 2 : Int.max, grain: 1) { tasks in
        let dScores = UnsafeMutablePointer<Float>.allocate(capacity: min(t, geometry.block) * s)
        defer { dScores.deallocate() }
        for task in tasks {
            let (bi, g) = task.quotientAndRemainder(dividingBy: keyValueHeads)
            let kvOffset = bi * s * kvWidth + g * d
            for h in (g * groups)..<((g + 1) * groups) {
                geometry.forEachBlock { t0, rows, visible in
                    let p = pp + ((bi * heads + h) * t + t0) * s
                    let rowOffset = (bi * t + t0) * width + h * d
                    sgemm(transA: true, transB: false, m: visible, n: d, k: rows, a: p, lda: s,
                          b: gp + rowOffset, ldb: width, beta: 1, c: dvp + kvOffset, ldc: kvWidth)
                    sgemm(transA: false, transB: true, m: rows, n: visible, k: d, a: gp + rowOffset, lda: width,
                          b: vp + kvOffset, ldb: kvWidth, c: dScores, ldc: s)
                    for r in 0..<rows {
                        let dRow = dScores + r * s, pRow = p + r * s
                        let seen = geometry.visibleKeys(query: t0 + r)
                        var dot: Float = 0
                        for j in 0..<seen { dot += dRow[j] * pRow[j] }
                        for j in 0..<seen { dRow[j] = pRow[j] * (dRow[j] - dot) }
                        if seen < visible { (dRow + seen).update(repeating: 0, count: visible - seen) }
                    }
                    sgemm(transA: false, transB: false, m: rows, n: d, k: visible, alpha: alpha, a: dScores, lda: s,
                          b: kp + kvOffset, ldb: kvWidth, c: dqp + rowOffset, ldc: width)
                    sgemm(transA: true, transB: false, m: visible, n: d, k: rows, alpha: alpha, a: dScores, lda: s,
                          b: qp + rowOffset, ldb: width, beta: 1, c: dkp + kvOffset, ldc: kvWidth)
                }
            }
        }
    }
    return [dq, dk, dv]
}

/// Rotary position embedding (Su et al. 2021) in Hugging Face's rotate-half layout, on every head
/// of x (B, T, heads·d): for i < d/2 the pair (x_i, x_{i+d/2}) becomes
/// (x_i·cos − x_{i+d/2}·sin, x_{i+d/2}·cos + x_i·sin) with the angle of the token's position and
/// frequency i. `cos` and `sin` hold B·T·(d/2) values (one row per token).
public func rotaryEmbedding(_ x: Tensor, cos: Tensor, sin: Tensor, heads: Int) -> Tensor {
    precondition(x.rank == 3 && x.shape[2] % (2 * heads) == 0, "rotaryEmbedding: input \(x.shape) for \(heads) heads")
    let (b, t, width) = (x.shape[0], x.shape[1], x.shape[2])
    let half = width / heads / 2
    precondition(cos.count == b * t * half && sin.count == cos.count, "rotaryEmbedding: tables \(cos.shape) for input \(x.shape)")
    let out = Tensor(uninitializedShape: x.shape)
    rotate(x.data, out.data, cos: cos.data, sin: sin.data, tokens: b * t, heads: heads, half: half, direction: 1)
    if let tape = Tape.active(x) {
        tape.record(out, x) { g in
            let dx = Tensor(uninitializedShape: g.shape)
            rotate(g.data, dx.data, cos: cos.data, sin: sin.data, tokens: b * t, heads: heads, half: half, direction: -1)
            return [dx]
        }
    }
    return out
}

/// Rotates every head's pairs by +angle (direction 1) or −angle (−1).
private func rotate(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
    tokens: Int, heads: Int, half: Int, direction: Float
) {
    let d = 2 * half
    for token in 0..<tokens {
        let c = cos + token * half, s = sin + token * half
        for h in 0..<heads {
            let xi = x + (token * heads + h) * d, yi = y + (token * heads + h) * d
            for i in 0..<half {
                let (a, bb) = (xi[i], xi[i + half])
                let si = direction * s[i]
                yi[i] = a * c[i] - bb * si
                yi[i + half] = bb * c[i] + a * si
            }
        }
    }
}
