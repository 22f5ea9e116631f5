// Reverse-mode automatic differentiation on a tape.
//
// `valueAndGrad` opens a tape and marks its inputs as tracked. Each op whose input is tracked
// appends a node (its inputs and one backward closure) and gives its output a slot. Backward walks
// the nodes in reverse, summing gradients per slot, and frees each intermediate gradient as soon as
// its producer has consumed it; the tape's nodes and the activations they saved are dropped as
// soon as backward returns. Ops on untracked tensors record nothing.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An autodiff tape: the ops recorded since `valueAndGrad` began, in order.
public final class Tape: @unchecked Sendable {
    @usableFromInline struct Node {
        @usableFromInline let output: Int
        // One or two inputs are stored inline (no array allocation per op); more go in `rest`.
        @usableFromInline let first: Tensor
        @usableFromInline let second: Tensor?
        @usableFromInline let rest: [Tensor]?
        /// Maps the output's gradient to one gradient per input (nil where it has none).
        @usableFromInline let backward: (Tensor) -> [Tensor?]

        @inlinable
        init(output: Int, first: Tensor, second: Tensor?, rest: [Tensor]?, backward: @escaping (Tensor) -> [Tensor?]) {
            self.output = output
            self.first = first
            self.second = second
            self.rest = rest
            self.backward = backward
        }

        @inlinable
        func input(_ i: Int) -> Tensor {
            if let rest { return rest[i] }
            return i == 0 ? first : second!
        }

        @inlinable
        var inputCount: Int { rest?.count ?? (second == nil ? 1 : 2) }
    }

    // Exclusivity is unchecked: a tape belongs to one thread and these are hot per-op fields.
    @exclusivity(unchecked) @usableFromInline var nodes: [Node] = []
    @exclusivity(unchecked) @usableFromInline var slotCount = 0
    /// False once backward has run, and while `withoutGradients` is active.
    @exclusivity(unchecked) @usableFromInline var isRecording = true

    init() {}

    /// The recording tape shared by the inputs, if any.
    @inlinable @inline(__always)
    static func active(_ a: Tensor) -> Tape? {
        if let t = a.tape, t.isRecording { return t }
        return nil
    }

    @inlinable @inline(__always)
    static func active(_ a: Tensor, _ b: Tensor) -> Tape? {
        if let t = a.tape, t.isRecording { return t }
        if let t = b.tape, t.isRecording { return t }
        return nil
    }

    @inlinable
    static func active(_ inputs: [Tensor]) -> Tape? {
        for x in inputs { if let t = x.tape, t.isRecording { return t } }
        return nil
    }

    /// Marks `tensor` as tracked on this tape (a leaf or an op's output).
    @inlinable
    func track(_ tensor: Tensor) {
        tensor.tape = self
        tensor.slot = slotCount
        slotCount += 1
    }

    /// Records `output = op(inputs)` with its backward rule.
    @inlinable
    func record(_ output: Tensor, _ inputs: [Tensor], _ backward: @escaping (Tensor) -> [Tensor?]) {
        track(output)
        nodes.append(Node(output: output.slot, first: inputs[0], second: nil, rest: inputs, backward: backward))
    }

    /// Records `output = op(input)`.
    @inlinable
    func record(_ output: Tensor, _ input: Tensor, _ backward: @escaping (Tensor) -> [Tensor?]) {
        track(output)
        nodes.append(Node(output: output.slot, first: input, second: nil, rest: nil, backward: backward))
    }

    /// Records `output = op(a, b)`.
    @inlinable
    func record(_ output: Tensor, _ a: Tensor, _ b: Tensor, _ backward: @escaping (Tensor) -> [Tensor?]) {
        track(output)
        nodes.append(Node(output: output.slot, first: a, second: b, rest: nil, backward: backward))
    }

    /// Runs backward from `root` (seeded with ones, or `seed`) and returns the gradients of the
    /// requested leaves; the tape is emptied and stops recording.
    func gradients(of root: Tensor, seed: Tensor? = nil, for leaves: [Tensor]) -> [Tensor] {
        isRecording = false
        defer { nodes.removeAll(); isRecording = false }
        var grads = [Tensor?](repeating: nil, count: slotCount)
        if root.tape === self {
            grads[root.slot] = seed ?? Tensor(repeating: 1, shape: root.shape)
        }
        var keep = [Bool](repeating: false, count: slotCount)
        for leaf in leaves where leaf.tape === self { keep[leaf.slot] = true }
        for node in nodes.reversed() {
            guard let g = grads[node.output] else { continue }
            if !keep[node.output] { grads[node.output] = nil }
            let inputGrads = node.backward(g)
            precondition(inputGrads.count == node.inputCount, "backward returned \(inputGrads.count) gradients for \(node.inputCount) inputs")
            for (i, grad) in inputGrads.enumerated() {
                let input = node.input(i)
                guard let grad, input.tape === self else { continue }
                precondition(grad.shape == input.shape,
                             "backward produced gradient \(grad.shape) for input \(input.shape)")
                if let existing = grads[input.slot] {
                    grads[input.slot] = existing + grad
                } else {
                    grads[input.slot] = grad
                }
            }
        }
        return leaves.map { leaf in
            if leaf.tape === self, let g = grads[leaf.slot] { return g }
            return Tensor.zeros(leaf.shape)
        }
    }
}

// MARK: - Thread-local stack of recording tapes (for `withoutGradients`)

final class TapeStack {
    var tapes: [Tape] = []
}

private let tapeStackKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { pointer in
        #if canImport(Darwin)
        Unmanaged<TapeStack>.fromOpaque(pointer).release()
        #else
        if let pointer { Unmanaged<TapeStack>.fromOpaque(pointer).release() }
        #endif
    }
    return key
}()

func currentTapeStack() -> TapeStack {
    if let p = pthread_getspecific(tapeStackKey) {
        return Unmanaged<TapeStack>.fromOpaque(p).takeUnretainedValue()
    }
    let stack = TapeStack()
    pthread_setspecific(tapeStackKey, Unmanaged.passRetained(stack).toOpaque())
    return stack
}

// MARK: - Public API

/// Runs `body` without recording any op on any tape of this thread (rollouts, evaluation,
/// reference log-probs). Costs nothing when no tape is active.
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    let stack = currentTapeStack()
    if stack.tapes.isEmpty { return try body() }
    let paused = stack.tapes.filter { $0.isRecording }
    for t in paused { t.isRecording = false }
    defer { for t in paused { t.isRecording = true } }
    return try body()
}

/// Runs `body` with `leaves` tracked and returns its value and the gradient of that value with
/// respect to each leaf. The leaves themselves are tracked only during the call.
///
/// The value need not be a scalar: its gradient is seeded with ones (the gradient of its sum).
public func valueAndGrad(
    at leaves: [Tensor], _ body: () throws -> Tensor
) rethrows -> (value: Tensor, gradients: [Tensor]) {
    let tape = Tape()
    for leaf in leaves {
        precondition(leaf.tape == nil || leaf.tape?.isRecording == false,
                     "valueAndGrad: a leaf is already tracked by an enclosing tape")
        tape.track(leaf)
    }
    let stack = currentTapeStack()
    stack.tapes.append(tape)
    defer {
        stack.tapes.removeAll { $0 === tape }
        tape.nodes.removeAll()
        tape.isRecording = false
        for leaf in leaves { leaf.tape = nil; leaf.slot = -1 }
    }
    let value = try body()
    let grads = tape.gradients(of: value, for: leaves)
    value.tape = nil
    return (value, grads)
}

/// The value of `f(inputs)` and its gradients with respect to each input.
public func valueAndGrad(
    _ inputs: [Tensor], _ f: ([Tensor]) throws -> Tensor
) rethrows -> (value: Tensor, gradients: [Tensor]) {
    // Track aliases so the caller's tensors are never marked.
    let aliases = inputs.map { $0.detached() }
    return try valueAndGrad(at: aliases) { try f(aliases) }
}

/// The gradients of `f(inputs)` with respect to each input.
public func grad(_ inputs: [Tensor], _ f: ([Tensor]) throws -> Tensor) rethrows -> [Tensor] {
    try valueAndGrad(inputs, f).gradients
}

extension Tensor {
    /// The same values with no gradient path (stop-gradient). Shares storage.
    public func detached() -> Tensor {
        Tensor(shape: shape, sharing: storage, count: count)
    }
}

/// Runs `f(x)` with `x` tracked and returns the result without running backward (for measuring
/// recording cost). The tape is discarded.
public func recordOnly(_ x: Tensor, _ f: (Tensor) -> Tensor) -> Tensor {
    let tape = Tape()
    tape.track(x)
    defer { x.tape = nil; tape.nodes.removeAll(); tape.isRecording = false }
    let y = f(x)
    return y.detached()
}

// MARK: - Activation checkpointing

/// Activation checkpointing (transformers' `gradient_checkpointing`) of one segment, e.g. a decoder
/// block: `body(x)` runs without recording, so none of its intermediate activations are kept, and
/// one node is recorded for the whole segment with `x` and the tracked `parameters` as inputs. Its
/// backward runs `body` again on the saved input under a tape of its own and backpropagates the
/// output's gradient through that, returning the gradients of `x` and of each parameter; the
/// parameters' places on the enclosing tape are restored afterwards. The recomputation is the same
/// computation on the same values, so the gradients equal the unchecked pass's bit for bit, as long
/// as `body` draws the same random numbers: `rewindPoint` (when the segment draws any, e.g. dropout)
/// returns a closure that puts the random state back to where it stood when it was called; the
/// state is rewound for the recomputation and restored after it.
///
/// - Parameters:
///   - parameters: every tensor `body` reads that may carry a gradient (its module's parameters);
///     those not tracked are ignored.
///   - body: the segment; it must read no other tracked tensor than `x` and `parameters`.
/// Without an active tape (inference, `withoutGradients`) it is just `body(x)`.
public func checkpointed(_ x: Tensor, parameters: [Tensor], rewindPoint: (() -> () -> Void)? = nil,
                         _ body: @escaping (Tensor) -> Tensor) -> Tensor {
    let tape = Tape.active(x) ?? parameters.first(where: { $0.isTracked })?.tape
    guard let tape else { return body(x) }
    let leaves = parameters.filter { $0.tape === tape && $0.isTracked }
    let inputTracked = x.tape === tape
    let rewind = rewindPoint?()
    let y = withoutGradients { body(x) }.detached()
    let saved = x.detached()
    tape.record(y, [x] + leaves) { gradient in
        let restore = rewindPoint?()
        rewind?()
        defer { restore?() }
        // The parameters are the enclosing tape's leaves: keep their places to put them back.
        let places = leaves.map { ($0.tape, $0.slot) }
        let nested = Tape()
        let input = saved.detached()
        if inputTracked { nested.track(input) }
        for p in leaves { nested.track(p) }
        let stack = currentTapeStack()
        stack.tapes.append(nested)
        let output = body(input)
        stack.tapes.removeAll { $0 === nested }
        let grads = nested.gradients(of: output, seed: gradient, for: (inputTracked ? [input] : []) + leaves)
        nested.nodes.removeAll()
        for (p, place) in zip(leaves, places) { p.tape = place.0; p.slot = place.1 }
        input.tape = nil
        let perInput: [Tensor?] = grads.map { $0 }
        return inputTracked ? perInput : [nil] + perInput
    }
    return y
}
