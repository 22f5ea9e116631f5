// Matrix products: 2-D, batched, and N-D times 2-D (a Linear layer), with transposes.
//
// All go to `sgemm` (BLAS or the built-in kernel). Transposes are flags, never copies.
// Backward (C = op(A)·op(B), G = ∂L/∂C):
//   A·B:   dA = G·Bᵀ,    dB = Aᵀ·G
//   Aᵀ·B:  dA = B·Gᵀ,    dB = A·G
//   A·Bᵀ:  dA = G·B,     dB = Gᵀ·A
//   Aᵀ·Bᵀ: dA = Bᵀ·Gᵀ,   dB = Gᵀ·Aᵀ

/// The matrix product of `a` and `b` (transposing the last two axes of either when asked).
///
/// Shapes: `[..., M, K] × [K, N]` (batch axes of `a` folded into one GEMM), or
/// `[..., M, K] × [..., K, N]` with equal batch axes, or 1-D vectors (treated as a row or column).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    if a.rank == 1 {
        return matmul(a.reshaped([1, a.count]), b, transposeB: transposeB).squeezed(axis: -2)
    }
    if b.rank == 1 {
        return matmul(a, b.reshaped([b.count, 1]), transposeA: transposeA).squeezed(axis: -1)
    }
    if b.rank == 2 && a.rank > 2 && !transposeA {
        let k = a.shape[a.rank - 1]
        let flat = matmul(a.reshaped([-1, k]), b, transposeB: transposeB)
        return flat.reshaped(Array(a.shape.dropLast()) + [flat.shape[1]])
    }
    precondition(a.rank == b.rank && a.shape.dropLast(2) == b.shape.dropLast(2),
                 "matmul: batch axes of \(a.shape) and \(b.shape) differ")
    let r = a.rank
    let m = transposeA ? a.shape[r - 1] : a.shape[r - 2]
    let k = transposeA ? a.shape[r - 2] : a.shape[r - 1]
    let kb = transposeB ? b.shape[r - 1] : b.shape[r - 2]
    let n = transposeB ? b.shape[r - 2] : b.shape[r - 1]
    precondition(k == kb, "matmul: inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") × \(b.shape)\(transposeB ? "ᵀ" : "")")
    let batchShape = Array(a.shape.dropLast(2))
    let batch = batchShape.reduce(1, *)
    let out = Tensor(uninitializedShape: batchShape + [m, n])
    let lda = a.shape[r - 1], ldb = b.shape[r - 1]
    for i in 0..<batch {
        sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
              a: a.data + i * a.shape[r - 2] * lda, lda: lda,
              b: b.data + i * b.shape[r - 2] * ldb, ldb: ldb,
              c: out.data + i * m * n, ldc: n)
    }
    if let tape = Tape.active(a, b) {
        let x = a.detached(), y = b.detached()
        // Only inputs on this tape get a gradient (a frozen weight or a constant input costs nothing).
        let needA = a.tape === tape, needB = b.tape === tape
        tape.record(out, a, b) { g in
            switch (transposeA, transposeB) {
            case (false, false): [needA ? matmul(g, y, transposeB: true) : nil, needB ? matmul(x, g, transposeA: true) : nil]
            case (true, false): [needA ? matmul(y, g, transposeB: true) : nil, needB ? matmul(x, g) : nil]
            case (false, true): [needA ? matmul(g, y) : nil, needB ? matmul(g, x, transposeA: true) : nil]
            case (true, true): [needA ? matmul(y, g, transposeA: true, transposeB: true) : nil,
                                needB ? matmul(g, x, transposeA: true, transposeB: true) : nil]
            }
        }
    }
    return out
}

/// y = x·Wᵀ + b for W of shape (out, in) (PyTorch's Linear layout); x is (…, in). The bias is
/// written into the output first and the product accumulated onto it (β = 1), so there is no
/// separate bias pass. Backward: dx = g·W, dW = gᵀ·x, db = Σ_rows g.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    let inCount = weight.shape[1], outCount = weight.shape[0]
    precondition(x.shape.last == inCount, "linear: input \(x.shape) for weight \(weight.shape)")
    let rows = x.count / Swift.max(inCount, 1)
    if let copy = RolloutWeights.copy(of: weight, rows: rows), Tape.active(bias.map { [x, weight, $0] } ?? [x, weight]) == nil {
        return RolloutWeights.linear(x, copy: copy, bias: bias)
    }
    let outShape = Array(x.shape.dropLast()) + [outCount]
    let out = Tensor(uninitializedShape: outShape)
    if let bias {
        precondition(bias.count == outCount, "linear: bias \(bias.shape) for weight \(weight.shape)")
        for r in 0..<rows { (out.data + r * outCount).update(from: bias.data, count: outCount) }
    }
    if rows > 0 {
        sgemm(transA: false, transB: true, m: rows, n: outCount, k: inCount, a: x.data, lda: inCount,
              b: weight.data, ldb: inCount, beta: bias == nil ? 0 : 1, c: out.data, ldc: outCount)
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    if let tape = Tape.active(inputs) {
        let inShape = x.shape
        let needX = x.tape === tape, needW = weight.tape === tape, needB = bias?.tape === tape
        tape.record(out, inputs) { g in
            let g2 = g.reshaped([rows, outCount]), x2 = x.reshaped([rows, inCount])
            var grads: [Tensor?] = [needX ? matmul(g2, weight).reshaped(inShape) : nil,
                                    needW ? matmul(g2, x2, transposeA: true) : nil]
            if bias != nil { grads.append(needB ? g2.sum(axis: 0) : nil) }
            return grads
        }
    }
    return out
}
