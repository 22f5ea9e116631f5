// Reductions over axes (sum, mean, max, min, argmax, logsumexp, variance) and softmax.
//
// An axis reduction views the tensor as (outer, n, inner). Sums over a contiguous row use eight
// SIMD accumulators in a fixed order, so results never depend on threading. Softmax and
// log-softmax are fused kernels with their own backward rules.

import CNudgeKernels
import Foundation

@inlinable
func axisView(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int) {
    let outer = shape[..<axis].reduce(1, *)
    let inner = shape[(axis + 1)...].reduce(1, *)
    return (outer, shape[axis], inner)
}

/// Sum of `n` contiguous floats in a fixed order (8-lane SIMD accumulators).
@inlinable
func rowSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 16 <= n {
        acc0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc1 += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
        i += 16
    }
    var s = (acc0 + acc1).sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

extension Tensor {
    /// Sums one axis (not recorded), keeping it with extent 1.
    func sumKeepingAxis(_ axis: Int) -> Tensor {
        let (outer, n, inner) = axisView(shape, axis)
        var outShape = shape
        outShape[axis] = 1
        let out = Tensor(shape: outShape, count: outer * inner)
        let x = data, y = out.data
        if inner == 1 {
            parallelRanges(outer, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(n, 1)), grain: 1) { r in
                for o in r { y[o] = rowSum(x + o * n, n) }
            }
        } else {
            parallelRanges(outer, minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(n * inner, 1)), grain: 1) { r in
                for o in r {
                    let dst = y + o * inner
                    dst.update(repeating: 0, count: inner)
                    for k in 0..<n {
                        let src = x + (o * n + k) * inner
                        for j in 0..<inner { dst[j] += src[j] }
                    }
                }
            }
        }
        return out
    }

    /// The sum over `axes` (all axes when empty... use `sum()` for that).
    public func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        let normalized = Set(axes.map { axis($0) }).sorted(by: >)
        var result = self.detached()
        for a in normalized { result = result.sumKeepingAxis(a) }
        let keptShape = result.shape
        let finalShape = keepDims ? keptShape : shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
        let out = Tensor(shape: finalShape, sharing: result.storage, count: result.count)
        if let tape = Tape.active(self) {
            let inShape = shape
            tape.record(out, self) { g in
                [Tensor(shape: keptShape, sharing: g.storage, count: g.count).expand(to: inShape)]
            }
        }
        return out
    }

    /// The sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// The sum of all elements, as a scalar.
    public func sum() -> Tensor {
        let out = Tensor(rowSum(data, count))
        if let tape = Tape.active(self) {
            let inShape = shape
            tape.record(out, self) { g in [Tensor(repeating: g.data[0], shape: inShape)] }
        }
        return out
    }

    /// The mean over `axes`.
    public func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        let n = Set(axes.map { axis($0) }).reduce(1) { $0 * shape[$1] }
        return sum(axes: axes, keepDims: keepDims) * (1 / Float(n))
    }

    /// The mean over one axis.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// The mean of all elements, as a scalar.
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// The variance over `axes` with Bessel's `correction` (1: unbiased, as PyTorch's default).
    public func variance(axes: [Int], correction: Int = 1, keepDims: Bool = false) -> Tensor {
        let n = Set(axes.map { axis($0) }).reduce(1) { $0 * shape[$1] }
        let centered = self - mean(axes: axes, keepDims: true)
        return centered.square().sum(axes: axes, keepDims: keepDims) * (1 / Float(Swift.max(n - correction, 1)))
    }

    /// The variance of all elements.
    public func variance(correction: Int = 1) -> Tensor {
        variance(axes: Array(0..<rank), correction: correction).reshaped([])
    }

    /// The standard deviation over `axes`.
    public func standardDeviation(axes: [Int], correction: Int = 1, keepDims: Bool = false) -> Tensor {
        variance(axes: axes, correction: correction, keepDims: keepDims).sqrt()
    }

    /// The largest (or smallest) value along an axis and where it is (first occurrence).
    func extremum(axis a: Int, largest: Bool) -> (values: Tensor, indices: [Int32]) {
        let ax = axis(a)
        let (outer, n, inner) = axisView(shape, ax)
        precondition(n > 0, "max/min over an empty axis of \(shape)")
        var outShape = shape
        outShape.remove(at: ax)
        let out = Tensor(shape: outShape, count: outer * inner)
        var indices = [Int32](repeating: 0, count: outer * inner)
        let x = data, y = out.data
        for o in 0..<outer {
            for j in 0..<inner {
                var best = x[o * n * inner + j], at = 0
                for k in 1..<n {
                    let v = x[(o * n + k) * inner + j]
                    if largest ? (v > best || (v.isNaN && !best.isNaN)) : (v < best || (v.isNaN && !best.isNaN)) {
                        best = v
                        at = k
                    }
                }
                y[o * inner + j] = best
                indices[o * inner + j] = Int32(at)
            }
        }
        return (out, indices)
    }

    func recordExtremum(_ out: Tensor, _ indices: [Int32], axis ax: Int, keepDims: Bool) -> Tensor {
        var result = out
        if keepDims {
            var kept = shape
            kept[ax] = 1
            result = Tensor(shape: kept, sharing: out.storage, count: out.count)
        }
        if let tape = Tape.active(self) {
            let (outer, n, inner) = axisView(shape, ax)
            let inShape = shape
            tape.record(result, self) { g in
                let gx = Tensor(repeating: 0, shape: inShape)
                for o in 0..<outer {
                    for j in 0..<inner {
                        gx.data[(o * n + Int(indices[o * inner + j])) * inner + j] = g.data[o * inner + j]
                    }
                }
                return [gx]
            }
        }
        return result
    }

    /// The maximum along an axis; the gradient goes to the first maximal element.
    public func max(axis a: Int, keepDims: Bool = false) -> Tensor {
        let (v, i) = extremum(axis: a, largest: true)
        return recordExtremum(v, i, axis: axis(a), keepDims: keepDims)
    }

    /// The minimum along an axis; the gradient goes to the first minimal element.
    public func min(axis a: Int, keepDims: Bool = false) -> Tensor {
        let (v, i) = extremum(axis: a, largest: false)
        return recordExtremum(v, i, axis: axis(a), keepDims: keepDims)
    }

    /// The maximum of all elements, as a scalar.
    public func max() -> Tensor { reshaped([count]).max(axis: 0) }
    /// The minimum of all elements, as a scalar.
    public func min() -> Tensor { reshaped([count]).min(axis: 0) }

    /// Indices of the maximum along an axis (first occurrence), as integers.
    public func argmax(axis a: Int) -> [Int] { extremum(axis: a, largest: true).indices.map(Int.init) }
    /// Indices of the minimum along an axis (first occurrence), as integers.
    public func argmin(axis a: Int) -> [Int] { extremum(axis: a, largest: false).indices.map(Int.init) }
}

// MARK: - logsumexp, softmax, log-softmax

extension Tensor {
    /// Calls `body(rowStart, stride)` for every 1-D lane along `axis` (n elements, stride `inner`).
    @inlinable
    func forEachLane(axis ax: Int, _ body: (_ start: Int, _ stride: Int) -> Void) {
        let (outer, n, inner) = axisView(shape, ax)
        for o in 0..<outer { for j in 0..<inner { body(o * n * inner + j, inner) } }
    }

    /// log Σ exp(x) along an axis, computed stably.
    public func logSumExp(axis a: Int, keepDims: Bool = false) -> Tensor {
        let ax = axis(a)
        let (outer, n, inner) = axisView(shape, ax)
        var kept = shape
        kept[ax] = 1
        let out = Tensor(shape: kept, count: outer * inner)
        let x = data, y = out.data
        var lane = 0
        forEachLane(axis: ax) { start, stride in
            var m = -Float.infinity
            for k in 0..<n { m = Swift.max(m, x[start + k * stride]) }
            if m == -.infinity { y[lane] = m; lane += 1; return }
            var s: Float = 0
            for k in 0..<n { s += Foundation.exp(x[start + k * stride] - m) }
            y[lane] = m + Foundation.log(s)
            lane += 1
        }
        var finalShape = shape
        finalShape.remove(at: ax)
        let result = keepDims ? out : Tensor(shape: finalShape, sharing: out.storage, count: out.count)
        if let tape = Tape.active(self) {
            let xs = self.detached(), lse = out.detached()
            tape.record(result, self) { g in
                let gk = Tensor(shape: kept, sharing: g.storage, count: g.count).expand(to: xs.shape)
                let l = lse.expand(to: xs.shape)
                return [Tensor.zipMap(gk, xs, l) { g, x, l in g * Foundation.exp(x - l) }]
            }
        }
        return result
    }

    /// softmax along an axis (default: the last).
    public func softmax(axis a: Int = -1) -> Tensor {
        let ax = axis(a)
        let (_, n, inner) = axisView(shape, ax)
        let out = Tensor(shape: shape, count: count)
        let x = data, y = out.data
        let rowKernel = inner == 1 ? ElementwiseKernels.forRows() : nil
        if let k = rowKernel {
            // Contiguous rows on the C kernel, whatever their length (one summation order for all sizes).
            Tensor.forRows(count: count, n: n) { start, rows in nudge_softmax_rows(k, x + start, y + start, rows, n) }
        } else if inner == 1 {
            parallelRanges(count / Swift.max(n, 1), minimum: Swift.max(1, Engine.parallelThreshold / Swift.max(n, 1)), grain: 1) { r in
                for row in r { softmaxRow(x + row * n, y + row * n, n) }
            }
        } else {
            forEachLane(axis: ax) { start, stride in
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, x[start + k * stride]) }
                var s: Float = 0
                for k in 0..<n {
                    let e = Foundation.exp(x[start + k * stride] - m)
                    y[start + k * stride] = e
                    s += e
                }
                let inv = 1 / s
                for k in 0..<n { y[start + k * stride] *= inv }
            }
        }
        if let tape = Tape.active(self) {
            let ys = out.detached()
            tape.record(out, self) { g in
                if let k = rowKernel {
                    let dx = Tensor(shape: g.shape, count: g.count)
                    let gp = g.data, yp = ys.data, d = dx.data
                    Tensor.forRows(count: g.count, n: n) { start, rows in
                        nudge_softmax_backward_rows(k, gp + start, yp + start, d + start, rows, n)
                    }
                    return [dx]
                }
                // dx = y ⊙ (g − Σ g⊙y)
                let gy = Tensor.zipMap(g, ys, *)
                let dot = gy.sum(axes: [ax], keepDims: true).expand(to: ys.shape)
                return [Tensor.zipMap(gy, ys, dot) { gy, y, d in gy - y * d }]
            }
        }
        return out
    }

    /// log softmax along an axis (default: the last), computed stably.
    public func logSoftmax(axis a: Int = -1) -> Tensor {
        let ax = axis(a)
        if ax == rank - 1, let k = ElementwiseKernels.forRows() {
            // Contiguous rows on the C kernel, fused (max, Σ exp, subtract), whatever their length.
            let n = shape.last ?? 1
            let out = Tensor(shape: shape, count: count)
            let x = data, y = out.data
            Tensor.forRows(count: count, n: n) { start, rows in nudge_log_softmax_rows(k, x + start, y + start, rows, n) }
            if let tape = Tape.active(self) {
                let ys = out.detached()
                tape.record(out, self) { g in
                    let dx = Tensor(shape: g.shape, count: g.count)
                    let gp = g.data, yp = ys.data, d = dx.data
                    Tensor.forRows(count: g.count, n: n) { start, rows in
                        nudge_log_softmax_backward_rows(k, gp + start, yp + start, d + start, rows, n)
                    }
                    return [dx]
                }
            }
            return out
        }
        let lse = withoutGradients { self.logSumExp(axis: ax, keepDims: true) }
        let out = Tensor.broadcastMap(self, lse, -)
        if let tape = Tape.active(self) {
            let ys = out.detached()
            tape.record(out, self) { g in
                // dx = g − softmax ⊙ Σ g
                let total = g.sum(axes: [ax], keepDims: true).expand(to: ys.shape)
                return [Tensor.zipMap(g, ys, total) { g, y, t in g - Foundation.exp(y) * t }]
            }
        }
        return out
    }
}

/// Largest of `n` contiguous floats (SIMD lanes, then a fixed-order tail).
@inlinable
func rowMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        m = m.replacing(with: v, where: v .> m)
        i += 8
    }
    var best = m.max()
    while i < n { best = Swift.max(best, p[i]); i += 1 }
    return best
}

/// softmax of one contiguous row: vectorized exp with SIMD accumulators.
@inlinable
func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    let m = rowMax(x, n)
    let shift = SIMD8<Float>(repeating: m)
    // exp(x − max) and its sum in one pass, eight lanes at a time (fixed order).
    var acc = SIMD8<Float>()
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    while i + 8 <= n {
        let e = vexp(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - shift)
        ry.storeBytes(of: e, toByteOffset: i * 4, as: SIMD8<Float>.self)
        acc += e
        i += 8
    }
    var total = acc.sum()
    while i < n {
        y[i] = Foundation.exp(x[i] - m)
        total += y[i]
        i += 1
    }
    let inv = 1 / total
    for k in 0..<n { y[k] *= inv }
}
