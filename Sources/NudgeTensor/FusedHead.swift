// FusedHead.swift
//
// A language-model head fused with log-softmax and gather: log p(target) for each row of hidden
// states without ever holding the (rows × vocabulary) logits. Post-training needs only the
// selected log-probs (and, for metrics, each row's entropy); at 49k–152k vocabularies the full
// logits and their gradient are the largest tensors of a step. Rows are processed `chunkRows` at a
// time — logits of one chunk in scratch memory, log-sum-exp kept per row — and the backward pass
// recomputes each chunk's logits (a second head product) instead of storing them, Liger-Kernel's
// fused linear cross-entropy trade. Each chunk's products go through `sgemm`, so a row's logits are
// the same FMA chain as the unfused head's on the built-in kernel.

import Foundation

/// Per row r of `hidden` (…, H): log softmax(scale · hidden[r] · weightᵀ)[targets[r]] for `weight`
/// (V, H), with gradients to both; rows whose target is negative are skipped (0, no gradient).
/// Memory beyond the inputs is `chunkRows` × V. With `entropy`, also each kept row's entropy of
/// softmax(scale · logits) (no gradient; 0 for skipped rows).
public func linearSelectedLogProbabilities(
    hidden: Tensor, weight: Tensor, targets: [Int], scale: Float = 1, chunkRows: Int = 256, entropy: Bool = false
) -> (logProbs: Tensor, entropies: [Float]) {
    let result = fusedHead(hidden: hidden, weight: weight, targets: targets, scale: scale, chunkRows: chunkRows, entropy: entropy)
    return (result.logProbs, result.entropies)
}

/// What `fusedHead` returns: log p(target) per row (differentiable), and per kept row (0 for
/// skipped rows) the entropy, the logits' mean over the vocabulary and the argmax, when asked.
public struct FusedHeadResult {
    public var logProbs: Tensor
    public var entropies: [Float]
    public var meanLogits: [Float]
    public var argmax: [Int]
}

/// `linearSelectedLogProbabilities`, and with `rowStatistics` each kept row's vocabulary-mean logit
/// and argmax (the first largest), read from the same chunk of logits (DPO's token metrics).
public func fusedHead(
    hidden: Tensor, weight: Tensor, targets: [Int], scale: Float = 1, chunkRows: Int = 256, entropy: Bool = false,
    rowStatistics: Bool = false
) -> FusedHeadResult {
    precondition(weight.rank == 2, "linearSelectedLogProbabilities: weight must be (V, H), got \(weight.shape)")
    let (v, h) = (weight.shape[0], weight.shape[1])
    precondition(hidden.shape.last == h, "linearSelectedLogProbabilities: hidden \(hidden.shape) against weight \(weight.shape)")
    let n = hidden.count / Swift.max(h, 1)
    precondition(targets.count == n, "linearSelectedLogProbabilities: \(targets.count) targets for \(n) rows")
    precondition(targets.allSatisfy { $0 < v }, "linearSelectedLogProbabilities: a target is outside the \(v) classes")
    let active = targets.indices.filter { targets[$0] >= 0 }
    let chunk = Swift.max(1, chunkRows)
    let out = Tensor(repeating: 0, shape: Array(hidden.shape.dropLast()))
    var logNormalizers = [Float](repeating: 0, count: n)
    var entropies = [Float](repeating: 0, count: entropy ? n : 0)
    var meanLogits = [Float](repeating: 0, count: rowStatistics ? n : 0)
    var argmax = [Int](repeating: 0, count: rowStatistics ? n : 0)
    let rowsBuffer = Tensor(uninitializedShape: [Swift.min(chunk, Swift.max(active.count, 1)), h])
    let logits = Tensor(uninitializedShape: [Swift.min(chunk, Swift.max(active.count, 1)), v])
    let hp = hidden.data, wp = weight.data, op = out.data

    /// Copies the chunk's rows into `rowsBuffer` and computes their scaled logits into `logits`.
    func chunkLogits(_ rows: ArraySlice<Int>) {
        for (i, r) in rows.enumerated() { (rowsBuffer.data + i * h).update(from: hp + r * h, count: h) }
        sgemm(transA: false, transB: true, m: rows.count, n: v, k: h, alpha: scale, a: rowsBuffer.data, lda: h,
              b: wp, ldb: h, c: logits.data, ldc: v)
    }

    var start = 0
    while start < active.count {
        let rows = active[start..<Swift.min(start + chunk, active.count)]
        chunkLogits(rows)
        let lp = logits.data
        logNormalizers.withUnsafeMutableBufferPointer { lse in
            entropies.withUnsafeMutableBufferPointer { ent in
                meanLogits.withUnsafeMutableBufferPointer { means in
                    argmax.withUnsafeMutableBufferPointer { top in
                        let rowList = Array(rows)
                        parallelRanges(rowList.count, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(v, 1)), grain: 1) { range in
                            for i in range {
                                let r = rowList[i], x = lp + i * v
                                let l = rowLogSumExp(x, v)
                                lse[r] = l
                                op[r] = x[targets[r]] - l
                                if entropy { ent[r] = rowEntropy(x, v, logNormalizer: l) }
                                if rowStatistics { (means[r], top[r]) = rowMeanAndArgmax(x, v) }
                            }
                        }
                    }
                }
            }
        }
        start += chunk
    }

    if let tape = Tape.active(hidden, weight) {
        let hs = hidden.detached(), ws = weight.detached(), lse = logNormalizers
        // A frozen head (LoRA base, reference copies) needs no (V, H) weight gradient: skip its product.
        let weightTracked = weight.tape != nil
        tape.record(out, hidden, weight) { g in
            let gh = Tensor(repeating: 0, shape: hs.shape), gw = Tensor(repeating: 0, shape: weightTracked ? ws.shape : [0])
            let scratchRows = Tensor(uninitializedShape: [Swift.min(chunk, Swift.max(active.count, 1)), h])
            let scratchLogits = Tensor(uninitializedShape: [Swift.min(chunk, Swift.max(active.count, 1)), v])
            let gradRows = Tensor(uninitializedShape: [Swift.min(chunk, Swift.max(active.count, 1)), h])
            let gp = g.data
            var start = 0
            while start < active.count {
                let rows = Array(active[start..<Swift.min(start + chunk, active.count)])
                for (i, r) in rows.enumerated() { (scratchRows.data + i * h).update(from: hs.data + r * h, count: h) }
                sgemm(transA: false, transB: true, m: rows.count, n: v, k: h, alpha: scale, a: scratchRows.data, lda: h,
                      b: ws.data, ldb: h, c: scratchLogits.data, ldc: v)
                // d log p(t) / d logits = onehot(t) − softmax, times the incoming gradient.
                let lp = scratchLogits.data
                parallelRanges(rows.count, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(v, 1)), grain: 1) { range in
                    for i in range {
                        let r = rows[i], x = lp + i * v
                        scaledSoftmaxRow(x, x, v, logNormalizer: lse[r], scale: -gp[r], offset: 0)
                        x[targets[r]] += gp[r]
                    }
                }
                // The logits were scale · h·Wᵀ: both products carry the scale.
                sgemm(transA: false, transB: false, m: rows.count, n: h, k: v, alpha: scale, a: lp, lda: v,
                      b: ws.data, ldb: h, c: gradRows.data, ldc: h)
                for (i, r) in rows.enumerated() { (gh.data + r * h).update(from: gradRows.data + i * h, count: h) }
                if weightTracked {
                    sgemm(transA: true, transB: false, m: v, n: h, k: rows.count, alpha: scale, a: lp, lda: v,
                          b: scratchRows.data, ldb: h, beta: 1, c: gw.data, ldc: h)
                }
                start += chunk
            }
            return [gh, weightTracked ? gw : nil]
        }
    }
    return FusedHeadResult(logProbs: out, entropies: entropies, meanLogits: meanLogits, argmax: argmax)
}

/// The mean of `n` floats (summed in Double) and the index of the first largest.
@inlinable
func rowMeanAndArgmax(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Int) {
    var sum = 0.0, best = 0
    for j in 0..<n {
        sum += Double(x[j])
        if x[j] > x[best] { best = j }
    }
    return (Float(sum / Double(Swift.max(n, 1))), best)
}

/// H = log Z − Σ p·x of softmax(x) over `n` floats, given log Z: p·x summed in SIMD lanes, blocks of
/// 512 values carried into a Double so 150k-wide rows keep Float32 rounding out of the sum.
@inlinable
func rowEntropy(_ x: UnsafePointer<Float>, _ n: Int, logNormalizer: Float) -> Float {
    let shift = SIMD8<Float>(repeating: logNormalizer)
    let raw = UnsafeRawPointer(x)
    var expectation = 0.0
    var i = 0
    while i + 8 <= n {
        var block = SIMD8<Float>()
        let end = Swift.min(n - n % 8, i + 512)
        while i < end {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            block += vexp(v - shift) * v
            i += 8
        }
        expectation += Double(block.sum())
    }
    while i < n { expectation += Double(Foundation.exp(x[i] - logNormalizer)) * Double(x[i]); i += 1 }
    return Float(Double(logNormalizer) - expectation)
}
