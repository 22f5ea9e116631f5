// The Tensor: a row-major Float32 array with a shape, and its place on an autodiff tape.
//
// Tensors are immutable values in practice: every op writes a fresh buffer. Reshape and detach
// share storage. A tensor created while a tape records, from a tracked input, carries that tape
// and its slot on it; everything else carries nothing, so code outside `valueAndGrad` pays for no
// bookkeeping.

import Foundation

/// A row-major Float32 tensor with NumPy broadcasting semantics and reverse-mode autodiff.
public final class Tensor: @unchecked Sendable {
    /// The extent of each axis; `[]` for a scalar.
    public let shape: [Int]
    /// The number of elements (the product of `shape`).
    public let count: Int
    /// The buffer holding the values; may be shared with reshaped or detached views.
    public let storage: TensorStorage
    /// The tape recording operations on this tensor, when it is tracked.
    @exclusivity(unchecked) @usableFromInline var tape: Tape?
    /// This tensor's index in `tape`'s gradient table.
    @exclusivity(unchecked) @usableFromInline var slot: Int = -1

    /// A tensor with uninitialized values; the creator must write every element.
    @inlinable
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = TensorStorage(count: count)
    }

    @inlinable
    init(shape: [Int], count: Int) {
        self.shape = shape
        self.count = count
        self.storage = TensorStorage(count: count)
    }

    /// A view of `storage` with another shape of the same element count.
    @inlinable
    init(shape: [Int], sharing storage: TensorStorage, count: Int) {
        self.shape = shape
        self.count = count
        self.storage = storage
    }

    /// A tensor holding `values` in row-major order.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(uninitializedShape: shape)
        precondition(values.count == count, "shape \(shape) needs \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A 1-D tensor of `values`.
    public convenience init(_ values: [Float]) {
        self.init(shape: [values.count], values: values)
    }

    /// A 2-D tensor from rows of equal length.
    public convenience init(rows: [[Float]]) {
        let columns = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == columns }, "rows of unequal length")
        self.init(shape: [rows.count, columns], values: rows.flatMap { $0 })
    }

    /// A scalar (rank-0) tensor.
    public convenience init(_ value: Float) {
        self.init(shape: [], values: [value])
    }

    /// A tensor of `shape` filled with `value`.
    public convenience init(repeating value: Float, shape: [Int]) {
        self.init(uninitializedShape: shape)
        data.update(repeating: value, count: count)
    }

    /// Zeros of `shape`.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    /// Ones of `shape`.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }
    /// Zeros shaped like `other`.
    public static func zeros(like other: Tensor) -> Tensor { Tensor(repeating: 0, shape: other.shape) }

    /// `0, 1, …, n-1` (or `start ..< end` by `step`).
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) -> Tensor {
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let t = Tensor(uninitializedShape: [n])
        for i in 0..<n { t.data[i] = start + Float(i) * step }
        return t
    }

    /// The number of axes.
    @inlinable public var rank: Int { shape.count }

    /// Direct access to the values (row-major). Writing is allowed only on a tensor the caller
    /// just created or owns outright (see `TensorStorage`).
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.pointer }

    /// The values in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The value of a one-element tensor.
    public func item() -> Float {
        precondition(count == 1, "item() needs one element, shape is \(shape)")
        return data[0]
    }

    /// The element at a multi-index.
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == rank, "index \(index) for shape \(shape)")
        var offset = 0
        for (i, (x, n)) in zip(index, shape).enumerated() {
            precondition(x >= 0 && x < n, "index \(x) out of range for axis \(i) of \(shape)")
            offset = offset * n + x
        }
        return data[offset]
    }

    /// Whether this tensor is recorded on an active tape (its gradient will be computed).
    public var isTracked: Bool { tape?.isRecording == true }

    /// A copy with its own storage, not tracked.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape, count: count)
        t.data.update(from: data, count: count)
        return t
    }

    /// Overwrites this tensor's values with `other`'s (same count). For optimizers and loaders;
    /// never call it on a tensor that a recorded computation still uses.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: shape \(other.shape) into \(shape)")
        if other.data != data { data.update(from: other.data, count: count) }
    }

    /// Normalizes a possibly negative axis.
    @inlinable
    public func axis(_ a: Int) -> Int {
        let r = a < 0 ? a + rank : a
        precondition(r >= 0 && r < Swift.max(rank, 1), "axis \(a) out of range for shape \(shape)")
        return r
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}

@inlinable
func strides(of shape: [Int]) -> [Int] {
    var s = Array(repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        s[i] = acc
        acc *= shape[i]
    }
    return s
}
