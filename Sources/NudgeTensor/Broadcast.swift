// NumPy broadcasting: shapes align from the right; an axis of 1 (or a missing axis) stretches.
//
// Kernels iterate the output with an odometer over all axes but the last and run the last axis
// as a tight inner loop with per-operand strides of 0 or 1.

/// The broadcast shape of two shapes (NumPy rules); traps naming both shapes when incompatible.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    if a == b { return a }
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) do not broadcast")
        out[i] = x == 1 ? y : x
    }
    return out
}

/// Strides of `shape` viewed inside `outShape` (0 on broadcast axes).
@usableFromInline
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let own = strides(of: shape)
    let pad = outShape.count - shape.count
    return (0..<outShape.count).map { i in
        i < pad || shape[i - pad] == 1 ? 0 : own[i - pad]
    }
}

/// Visits `outShape` row by row: `body(outOffset, offsets, innerCount)` where `offsets[k]` is the
/// start of operand k's row and `innerStrides[k]` its stride along the last axis.
@inlinable
func forEachRow(
    _ outShape: [Int], _ operandStrides: [[Int]],
    _ body: (_ outOffset: Int, _ offsets: UnsafeMutableBufferPointer<Int>, _ inner: Int) -> Void
) {
    let rank = outShape.count
    let total = outShape.reduce(1, *)
    if total == 0 { return }
    let inner = rank == 0 ? 1 : outShape[rank - 1]
    let k = operandStrides.count
    var index = [Int](repeating: 0, count: max(rank - 1, 0))
    withUnsafeTemporaryAllocation(of: Int.self, capacity: max(k, 1)) { offsets in
        for j in 0..<k { offsets[j] = 0 }
        var out = 0
        while out < total {
            body(out, offsets, inner)
            out += inner
            // Advance the odometer over the outer axes.
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                for j in 0..<k { offsets[j] += operandStrides[j][axis] }
                if index[axis] < outShape[axis] { break }
                for j in 0..<k { offsets[j] -= operandStrides[j][axis] * outShape[axis] }
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

extension Tensor {
    /// This tensor materialized at a broadcast-compatible larger shape.
    public func expand(to outShape: [Int]) -> Tensor {
        if outShape == shape { return self }
        precondition(broadcastShape(shape, outShape) == outShape, "cannot expand \(shape) to \(outShape)")
        let out = Tensor(uninitializedShape: outShape)
        let s = broadcastStrides(shape, to: outShape)
        let src = data, dst = out.data
        let innerStride = s.last ?? 0
        forEachRow(outShape, [s]) { o, off, n in
            let p = src + off[0]
            if innerStride == 0 {
                (dst + o).update(repeating: p[0], count: n)
            } else {
                (dst + o).update(from: p, count: n)
            }
        }
        if let tape = Tape.active(self) {
            let inShape = shape
            tape.record(out, self) { g in [g.sum(toShape: inShape)] }
        }
        return out
    }

    /// Sums a broadcast result back to `target` (the reverse of broadcasting). Not recorded.
    public func sum(toShape target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = Tensor(repeating: 0, shape: target)
        let s = broadcastStrides(target, to: shape)
        let src = data, dst = out.data
        let innerStride = s.last ?? 0
        forEachRow(shape, [s]) { o, off, n in
            let d = dst + off[0]
            let p = src + o
            if innerStride == 0 {
                var acc: Float = 0
                for i in 0..<n { acc += p[i] }
                d[0] += acc
            } else {
                for i in 0..<n { d[i] += p[i] }
            }
        }
        return out
    }
}
