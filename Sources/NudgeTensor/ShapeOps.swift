// Shape and indexing ops: reshape, permute/transpose, slice, concat, stack, pad, gather along an
// axis, index select (embedding), scatter-add, one-hot.
//
// Reshape shares storage; every other op copies into a fresh contiguous buffer, so every tensor
// is row-major and contiguous and kernels never deal with strides.

import Foundation

extension Tensor {
    /// The same values with another shape of equal count (one axis may be -1). Shares storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[unknown] = count / known
        }
        precondition(resolved.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        let out = Tensor(shape: resolved, sharing: storage, count: count)
        if let tape = Tape.active(self) {
            let inShape = shape
            tape.record(out, self) { g in [Tensor(shape: inShape, sharing: g.storage, count: g.count)] }
        }
        return out
    }

    /// A view with all axes flattened into one.
    public func flattened() -> Tensor { reshaped([count]) }

    /// The tensor with a new axis of extent 1 at `axis`.
    public func expandingDims(at a: Int) -> Tensor {
        var s = shape
        s.insert(1, at: a < 0 ? a + rank + 1 : a)
        return reshaped(s)
    }

    /// The tensor without the axis `a` of extent 1.
    public func squeezed(axis a: Int) -> Tensor {
        let ax = axis(a)
        precondition(shape[ax] == 1, "squeeze axis \(a) of \(shape) is not 1")
        var s = shape
        s.remove(at: ax)
        return reshaped(s)
    }

    /// The axes reordered: output axis i is input axis `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permutation \(order) for shape \(shape)")
        let outShape = order.map { shape[$0] }
        let inStrides = strides(of: shape)
        let permutedStrides = order.map { inStrides[$0] }
        let out = Tensor(shape: outShape, count: count)
        let x = data, y = out.data
        let innerStride = permutedStrides.last ?? 1
        forEachRow(outShape, [permutedStrides]) { o, off, n in
            let p = x + off[0], q = y + o
            if innerStride == 1 { q.update(from: p, count: n) } else { for i in 0..<n { q[i] = p[i * innerStride] } }
        }
        if let tape = Tape.active(self) {
            var inverse = [Int](repeating: 0, count: order.count)
            for (i, o) in order.enumerated() { inverse[o] = i }
            tape.record(out, self) { g in [g.permuted(inverse)] }
        }
        return out
    }

    /// The two axes swapped (default: the last two).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(axis(a), axis(b))
        return permuted(order)
    }

    /// Elements `range` along `axis`.
    public func slice(axis a: Int, _ range: Range<Int>) -> Tensor {
        let ax = axis(a)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice \(range) out of bounds for axis \(ax) of \(shape)")
        let (outer, n, inner) = axisView(shape, ax)
        var outShape = shape
        outShape[ax] = range.count
        let out = Tensor(shape: outShape, count: outer * range.count * inner)
        let m = range.count * inner
        for o in 0..<outer {
            (out.data + o * m).update(from: data + (o * n + range.lowerBound) * inner, count: m)
        }
        if let tape = Tape.active(self) {
            let size = shape[ax]
            tape.record(out, self) { g in [g.padded(axis: ax, before: range.lowerBound, after: size - range.upperBound)] }
        }
        return out
    }

    /// Pads `axis` with `before` and `after` elements of `value`.
    public func padded(axis a: Int, before: Int, after: Int, value: Float = 0) -> Tensor {
        let ax = axis(a)
        let (outer, n, inner) = axisView(shape, ax)
        var outShape = shape
        outShape[ax] = n + before + after
        let out = Tensor(repeating: value, shape: outShape)
        let m = n * inner, mOut = (n + before + after) * inner
        for o in 0..<outer {
            (out.data + o * mOut + before * inner).update(from: data + o * m, count: m)
        }
        if let tape = Tape.active(self) {
            tape.record(out, self) { g in [g.slice(axis: ax, before..<(before + n))] }
        }
        return out
    }

    /// Pads every axis with `(before, after)` widths.
    public func padded(_ widths: [(Int, Int)], value: Float = 0) -> Tensor {
        precondition(widths.count == rank, "pad widths \(widths.count) for rank \(rank)")
        var out = self
        for (ax, (b, e)) in widths.enumerated() where b != 0 || e != 0 {
            out = out.padded(axis: ax, before: b, after: e, value: value)
        }
        return out
    }

    /// Joins tensors along an existing axis.
    public static func concat(_ tensors: [Tensor], axis a: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "concat of no tensors")
        let first = tensors[0]
        let ax = first.axis(a)
        for t in tensors {
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                         "concat: shape \(t.shape) does not match \(first.shape) off axis \(ax)")
        }
        let sizes = tensors.map { $0.shape[ax] }
        var outShape = first.shape
        outShape[ax] = sizes.reduce(0, +)
        let out = Tensor(uninitializedShape: outShape)
        let (outer, total, inner) = axisView(outShape, ax)
        var offset = 0
        for (t, n) in zip(tensors, sizes) {
            for o in 0..<outer {
                (out.data + (o * total + offset) * inner).update(from: t.data + o * n * inner, count: n * inner)
            }
            offset += n
        }
        if let tape = Tape.active(tensors) {
            tape.record(out, tensors) { g in
                var start = 0
                return sizes.map { n in
                    defer { start += n }
                    return g.slice(axis: ax, start..<(start + n))
                }
            }
        }
        return out
    }

    /// Joins equal-shaped tensors along a new axis.
    public static func stack(_ tensors: [Tensor], axis a: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack of no tensors")
        let ax = a < 0 ? a + tensors[0].rank + 1 : a
        return concat(tensors.map { $0.expandingDims(at: ax) }, axis: ax)
    }

    /// `out[..., k, ...] = self[..., indices[..., k, ...], ...]` along `axis`; `indices` has this
    /// tensor's shape except along `axis` (NumPy's take_along_axis, PyTorch's gather).
    public func takeAlongAxis(_ indices: [Int], indexShape: [Int], axis a: Int) -> Tensor {
        let ax = axis(a)
        precondition(indexShape.count == rank && indices.count == indexShape.reduce(1, *)
                     && (0..<rank).allSatisfy { $0 == ax || indexShape[$0] == shape[$0] },
                     "takeAlongAxis: index shape \(indexShape) for \(shape) along \(ax)")
        let (outer, n, inner) = axisView(shape, ax)
        let m = indexShape[ax]
        let out = Tensor(shape: indexShape, count: indices.count)
        for o in 0..<outer {
            for k in 0..<m {
                for j in 0..<inner {
                    let i = indices[(o * m + k) * inner + j]
                    precondition(i >= 0 && i < n, "index \(i) out of range 0..<\(n) along axis \(ax)")
                    out.data[(o * m + k) * inner + j] = data[(o * n + i) * inner + j]
                }
            }
        }
        if let tape = Tape.active(self) {
            let inShape = shape
            tape.record(out, self) { g in
                let gx = Tensor(repeating: 0, shape: inShape)
                for o in 0..<outer {
                    for k in 0..<m {
                        for j in 0..<inner {
                            gx.data[(o * n + indices[(o * m + k) * inner + j]) * inner + j] += g.data[(o * m + k) * inner + j]
                        }
                    }
                }
                return [gx]
            }
        }
        return out
    }

    /// One element per lane of the last axis: `out[r] = self[r, indices[r]]` (token log-probs).
    public func pick(_ indices: [Int]) -> Tensor {
        var s = shape
        s[rank - 1] = 1
        return takeAlongAxis(indices, indexShape: s, axis: -1).squeezed(axis: -1)
    }

    /// Rows of this tensor (along axis 0) at `indices`; output shape `indexShape + shape[1...]`
    /// (an embedding lookup).
    public func indexSelect(_ indices: [Int], indexShape: [Int]? = nil) -> Tensor {
        let rows = shape[0]
        let width = count / Swift.max(rows, 1)
        let outShape = (indexShape ?? [indices.count]) + shape.dropFirst()
        precondition(indices.count == (indexShape ?? [indices.count]).reduce(1, *), "indexSelect: \(indices.count) indices for shape \(indexShape ?? [])")
        let out = Tensor(shape: outShape, count: indices.count * width)
        for (r, i) in indices.enumerated() {
            precondition(i >= 0 && i < rows, "index \(i) out of range 0..<\(rows)")
            (out.data + r * width).update(from: data + i * width, count: width)
        }
        if let tape = Tape.active(self) {
            let inShape = shape
            tape.record(out, self) { g in
                let gx = Tensor(repeating: 0, shape: inShape)
                for (r, i) in indices.enumerated() {
                    let dst = gx.data + i * width, src = g.data + r * width
                    for j in 0..<width { dst[j] += src[j] }
                }
                return [gx]
            }
        }
        return out
    }

    /// This tensor with `source` rows added at `indices` along axis 0 (index_add / scatter-add);
    /// repeated indices accumulate.
    public func scatterAdd(_ indices: [Int], _ source: Tensor) -> Tensor {
        let rows = shape[0]
        let width = count / Swift.max(rows, 1)
        precondition(source.count == indices.count * width, "scatterAdd: source \(source.shape) for \(indices.count) rows of \(shape)")
        let out = copy()
        for (r, i) in indices.enumerated() {
            precondition(i >= 0 && i < rows, "index \(i) out of range 0..<\(rows)")
            let dst = out.data + i * width, src = source.data + r * width
            for j in 0..<width { dst[j] += src[j] }
        }
        if let tape = Tape.active(self, source) {
            let sourceShape = source.shape
            tape.record(out, self, source) { g in
                [g, g.indexSelect(indices).reshaped(sourceShape)]
            }
        }
        return out
    }

    /// One-hot rows: shape `[indices.count, classes]` (no gradient).
    public static func oneHot(_ indices: [Int], classes: Int) -> Tensor {
        let out = Tensor(repeating: 0, shape: [indices.count, classes])
        for (r, i) in indices.enumerated() {
            precondition(i >= 0 && i < classes, "class \(i) out of range 0..<\(classes)")
            out.data[r * classes + i] = 1
        }
        return out
    }
}
