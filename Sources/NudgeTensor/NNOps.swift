// Neural-network ops: layer norm and RMS norm (fused, with their own backward), causal
// scaled-dot-product attention with padding masks, cross-entropy (ignore index, label
// smoothing; fused), categorical entropy, and Normal / tanh-squashed Normal log-densities.

import Foundation

extension Tensor {
    /// Layer normalization over the last axis: (x − μ)/√(σ² + ε) · weight + bias (Ba et al. 2016).
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let n = shape.last ?? 1
        let rows = count / Swift.max(n, 1)
        let out = Tensor(shape: shape, count: count)
        let xhat = Tensor(shape: shape, count: count)
        let rstd = Tensor(shape: [rows], count: rows)
        let w = weight?.data, b = bias?.data
        for r in 0..<rows {
            let x = data + r * n, y = out.data + r * n, h = xhat.data + r * n
            let mu = rowSum(x, n) / Float(n)
            var v: Float = 0
            for j in 0..<n { let d = x[j] - mu; v += d * d }
            let rs = 1 / (v / Float(n) + eps).squareRoot()
            rstd.data[r] = rs
            for j in 0..<n {
                h[j] = (x[j] - mu) * rs
                y[j] = h[j] * (w?[j] ?? 1) + (b?[j] ?? 0)
            }
        }
        let inputs = [self] + [weight, bias].compactMap { $0 }
        if let tape = Tape.active(inputs) {
            let wd = weight?.detached()
            tape.record(out, inputs) { g in
                let gx = Tensor(shape: g.shape, count: g.count)
                let gw = Tensor(repeating: 0, shape: [n]), gb = Tensor(repeating: 0, shape: [n])
                for r in 0..<rows {
                    let gr = g.data + r * n, h = xhat.data + r * n, dx = gx.data + r * n
                    var sumD: Float = 0, sumDH: Float = 0
                    for j in 0..<n {
                        let d = gr[j] * (wd?.data[j] ?? 1)
                        sumD += d
                        sumDH += d * h[j]
                        gw.data[j] += gr[j] * h[j]
                        gb.data[j] += gr[j]
                    }
                    let rs = rstd.data[r], meanD = sumD / Float(n), meanDH = sumDH / Float(n)
                    for j in 0..<n { dx[j] = rs * (gr[j] * (wd?.data[j] ?? 1) - meanD - h[j] * meanDH) }
                }
                var grads: [Tensor?] = [gx]
                if weight != nil { grads.append(gw) }
                if bias != nil { grads.append(gb) }
                return grads
            }
        }
        return out
    }

    /// RMS normalization over the last axis: x / √(mean(x²) + ε) · weight (Zhang & Sennrich 2019).
    public func rmsNorm(weight: Tensor?, eps: Float = 1e-6) -> Tensor {
        let n = shape.last ?? 1
        let rows = count / Swift.max(n, 1)
        let out = Tensor(shape: shape, count: count)
        let rstd = Tensor(shape: [rows], count: rows)
        let w = weight?.data, x0 = data, y0 = out.data, rp = rstd.data
        parallelRanges(rows, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(n, 1)), grain: 1) { range in
            for r in range {
                let x = x0 + r * n, y = y0 + r * n
                let ss = rowSumOfSquares(x, n)
                let rs = 1 / (ss / Float(n) + eps).squareRoot()
                rp[r] = rs
                if let w { for j in 0..<n { y[j] = x[j] * rs * w[j] } } else { for j in 0..<n { y[j] = x[j] * rs } }
            }
        }
        let inputs = [self] + [weight].compactMap { $0 }
        if let tape = Tape.active(inputs) {
            let xs = self.detached(), wd = weight?.detached()
            tape.record(out, inputs) { g in
                let gx = Tensor(shape: g.shape, count: g.count)
                let gw = Tensor(repeating: 0, shape: [n])
                for r in 0..<rows {
                    let gr = g.data + r * n, x = xs.data + r * n, dx = gx.data + r * n
                    let rs = rstd.data[r]
                    var sumDH: Float = 0
                    for j in 0..<n {
                        let h = x[j] * rs
                        let d = gr[j] * (wd?.data[j] ?? 1)
                        sumDH += d * h
                        gw.data[j] += gr[j] * h
                    }
                    let meanDH = sumDH / Float(n)
                    for j in 0..<n { dx[j] = rs * (gr[j] * (wd?.data[j] ?? 1) - x[j] * rs * meanDH) }
                }
                return weight == nil ? [gx] : [gx, gw]
            }
        }
        return out
    }
}

/// Σ x² over `n` contiguous floats with SIMD accumulators (fixed order).
@inlinable
func rowSumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 16 <= n {
        let a = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let b = raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
        acc0 += a * a
        acc1 += b * b
        i += 16
    }
    var s = (acc0 + acc1).sum()
    while i < n { s += p[i] * p[i]; i += 1 }
    return s
}

/// An additive attention mask of shape `[T, S]`: 0 where query t may see key s, a large negative
/// number elsewhere. With `causal`, query t sees keys `0...t + (S − T)` (S > T when a KV cache
/// holds earlier positions).
public func causalMask(queries t: Int, keys s: Int) -> Tensor {
    let m = Tensor(repeating: 0, shape: [t, s])
    for i in 0..<t { for j in 0..<s where j > i + (s - t) { m.data[i * s + j] = maskedScore } }
    return m
}

/// The score given to masked positions: finite, so a fully masked row yields a uniform row
/// instead of NaN.
public let maskedScore: Float = -1e30

/// An additive key-padding mask of shape `[B, 1, 1, S]` from `valid[b][s]` (false = padding).
public func paddingMask(_ valid: [[Bool]]) -> Tensor {
    let b = valid.count, s = valid.first?.count ?? 0
    let m = Tensor(repeating: 0, shape: [b, 1, 1, s])
    for i in 0..<b { for j in 0..<s where !valid[i][j] { m.data[i * s + j] = maskedScore } }
    return m
}

/// An additive mask of shape `[B, 1, T, T]` for packed rows: query t may see key s only when
/// both belong to the same segment (`segments[b][t]`, 1-based; 0 marks padding, which sees nothing).
public func segmentMask(_ segments: [[Int]]) -> Tensor {
    let b = segments.count, t = segments.first?.count ?? 0
    let m = Tensor(repeating: maskedScore, shape: [b, 1, t, t])
    for i in 0..<b {
        let row = segments[i]
        for q in 0..<t where row[q] != 0 {
            for k in 0..<t where row[k] == row[q] { m.data[(i * t + q) * t + k] = 0 }
        }
    }
    return m
}

/// softmax(q·kᵀ/√d + mask)·v (Vaswani et al. 2017). q: (B, H, T, D); k, v: (B, H, S, D);
/// `mask` is additive and broadcasts to (B, H, T, S); `causal` adds `causalMask`.
public func scaledDotProductAttention(
    queries q: Tensor, keys k: Tensor, values v: Tensor, mask: Tensor? = nil, causal: Bool = false,
    scale: Float? = nil
) -> Tensor {
    let d = q.shape[q.rank - 1]
    var scores = matmul(q, k, transposeB: true) * (scale ?? 1 / Float(d).squareRoot())
    if causal {
        scores = scores + causalMask(queries: q.shape[q.rank - 2], keys: k.shape[k.rank - 2])
    }
    if let mask { scores = scores + mask }
    return matmul(scores.softmax(axis: -1), v)
}

/// Mean cross-entropy of `logits` (…, C) against integer `targets` (one per row), skipping rows
/// whose target is `ignoreIndex`, with optional label smoothing ε (target mass 1 − ε, ε spread
/// uniformly over all C classes, as PyTorch). Returns a scalar; 0 when every row is ignored.
public func crossEntropy(
    logits: Tensor, targets: [Int], ignoreIndex: Int = -100, labelSmoothing: Float = 0
) -> Tensor {
    let c = logits.shape.last ?? 1
    let rows = logits.count / Swift.max(c, 1)
    precondition(targets.count == rows, "crossEntropy: \(targets.count) targets for \(rows) rows of \(logits.shape)")
    let eps = labelSmoothing
    var total: Float = 0
    var used = 0
    let lse = Tensor(shape: [rows], count: rows)
    for r in 0..<rows {
        let x = logits.data + r * c
        let l = rowLogSumExp(x, c)
        lse.data[r] = l
        let t = targets[r]
        if t == ignoreIndex { continue }
        precondition(t >= 0 && t < c, "crossEntropy: target \(t) out of range 0..<\(c)")
        var loss = (1 - eps) * (l - x[t])
        if eps != 0 { loss += eps * (l - rowSum(x, c) / Float(c)) }
        total += loss
        used += 1
    }
    let out = Tensor(used == 0 ? 0 : total / Float(used))
    if let tape = Tape.active(logits) {
        let xs = logits.detached()
        tape.record(out, logits) { g in
            let scale = used == 0 ? 0 : g.data[0] / Float(used)
            let gx = Tensor(repeating: 0, shape: xs.shape)
            for r in 0..<rows where targets[r] != ignoreIndex {
                scaledSoftmaxRow(xs.data + r * c, gx.data + r * c, c, logNormalizer: lse.data[r], scale: scale, offset: -scale * eps / Float(c))
                gx.data[r * c + targets[r]] -= scale * (1 - eps)
            }
            return [gx]
        }
    }
    return out
}

extension Tensor {
    /// Entropy −Σ p log p of softmax(self) over the last axis.
    public func categoricalEntropy() -> Tensor { Tensor.categoricalEntropy(logProbabilities: logSoftmax(axis: -1)) }

    /// Entropy −Σ p log p over the last axis, from log-probabilities already normalized there.
    public static func categoricalEntropy(logProbabilities logp: Tensor) -> Tensor { -(logp.exp() * logp).sum(axis: -1) }
}

/// Elementwise log-density of Normal(mean, exp(logStd)) at `x`.
public func normalLogProb(_ x: Tensor, mean: Tensor, logStd: Tensor) -> Tensor {
    let z = (x - mean) * (-logStd).exp()
    return z.square() * -0.5 - logStd - 0.5 * Float(Foundation.log(2 * Double.pi))
}

/// Elementwise log-density of a = tanh(u), u ~ Normal(mean, exp(logStd)), at pre-squash `u`:
/// log N(u) − log(1 − tanh²u), with the stable form log(1 − tanh²u) = 2(log 2 − u − softplus(−2u))
/// (Haarnoja et al. 2018, appendix C).
public func tanhNormalLogProb(preTanh u: Tensor, mean: Tensor, logStd: Tensor) -> Tensor {
    let correction = ((-u * 2).softplus() + u) * -2 + 2 * Float(Foundation.log(2.0))
    return normalLogProb(u, mean: mean, logStd: logStd) - correction
}

/// log softmax(logits)[target] per row of `logits` (N, V) for one target per row, fused: the
/// (N, V) log-softmax is never materialized. Backward: g·(onehot − softmax).
public func selectedLogProbabilities(logits: Tensor, targets: [Int]) -> Tensor {
    let v = logits.shape.last ?? 1
    let rows = logits.count / Swift.max(v, 1)
    precondition(targets.count == rows, "selectedLogProbabilities: \(targets.count) targets for \(rows) rows of \(logits.shape)")
    let out = Tensor(uninitializedShape: Array(logits.shape.dropLast()))
    let lse = Tensor(uninitializedShape: [rows])
    let x0 = logits.data, o = out.data, l = lse.data
    parallelRanges(rows, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(v, 1)), grain: 1) { range in
        for r in range {
            let x = x0 + r * v
            let t = targets[r]
            precondition(t >= 0 && t < v, "target \(t) out of range 0..<\(v)")
            l[r] = rowLogSumExp(x, v)
            o[r] = x[t] - l[r]
        }
    }
    if let tape = Tape.active(logits) {
        let xs = logits.detached()
        tape.record(out, logits) { g in
            let gx = Tensor(uninitializedShape: xs.shape)
            let xp = xs.data, dp = gx.data, gp = g.data, lp = lse.data
            parallelRanges(rows, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(v, 1)), grain: 1) { range in
                for r in range {
                    scaledSoftmaxRow(xp + r * v, dp + r * v, v, logNormalizer: lp[r], scale: -gp[r], offset: 0)
                    dp[r * v + targets[r]] += gp[r]
                }
            }
            return [gx]
        }
    }
    return out
}

/// log Σ exp(x) over `n` contiguous floats (vector exp, fixed order).
@inlinable
func rowLogSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let m = rowMax(x, n)
    if m == -.infinity { return m }
    let shift = SIMD8<Float>(repeating: m)
    var acc = SIMD8<Float>()
    var i = 0
    let raw = UnsafeRawPointer(x)
    while i + 8 <= n {
        acc += vexp(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - shift)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += Foundation.exp(x[i] - m); i += 1 }
    return m + Foundation.log(s)
}

/// out[j] = scale·exp(x[j] − logNormalizer) + offset over `n` floats (vector exp).
@inlinable
func scaledSoftmaxRow(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int,
                      logNormalizer: Float, scale: Float, offset: Float) {
    let shift = SIMD8<Float>(repeating: logNormalizer)
    var i = 0
    let rx = UnsafeRawPointer(x), ro = UnsafeMutableRawPointer(out)
    while i + 8 <= n {
        let e = vexp(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - shift)
        ro.storeBytes(of: e * scale + offset, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { out[i] = scale * Foundation.exp(x[i] - logNormalizer) + offset; i += 1 }
}
