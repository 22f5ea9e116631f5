// bf16 stand-ins for Float32 weights while a model only samples (RL rollouts, generation).
//
// Decoding a few rows at a time reads every weight once per token for little arithmetic per byte:
// the same products on a bf16 copy read half as much and, on AVX512_BF16, do twice the products
// per instruction. (Measured on SmolLM2: Float32 decoding runs at about 57 GFLOP/s, short of both
// the memory's and the FMA units' limits, and the copies make it 1.2–1.3× faster, not 2×.) Trainers keep
// the Float32 weights (the optimizer updates them) and score every sampled token with them; only
// which tokens get sampled comes from the copy, as with TRL's vLLM rollouts in bf16.
//
// The copies are registered for the duration of a closure (`RolloutWeights.with`) and looked up by
// `linear(_:weight:bias:)`, so every model family's projections and tied heads use them without a
// second code path. A product uses its copy only when it is not recorded for gradients and has
// at most 32 rows, a decoding batch (a longer prompt goes to sgemm, which `generate` runs on bf16
// operands inside a `MixedPrecision` scope).

import Foundation
import Synchronization

/// Low-precision copies of Float32 weights that untaped, few-row products read in their place.
public enum RolloutWeights {
    /// A weight's bf16 copy and the kernel its products run on.
    struct Copy {
        let matrix: QuantizedMatrix
        let kernel: BF16Kernel
    }

    /// Registered copies by the weight tensor's identity, with how many open scopes registered each.
    private static let table = Mutex<[ObjectIdentifier: (copy: Copy, scopes: Int)]>([:])
    /// The most rows a product reads a copy for: a decoding step's batch. Longer products (prompts)
    /// are compute-bound, and sgemm on the Float32 weight is faster than the bf16 kernel there.
    static let maximumRows = 32
    /// Whether any copy is registered: the one check an ordinary product pays.
    private static let active = Atomic<Int>(0)

    /// Runs `body` with bf16 copies of `weights` (2-D Float32 tensors that `body` must not change)
    /// standing in for them in untaped products of at most `maximumRows` rows on `kernel` (one this
    /// CPU runs); the copies are freed after.
    public static func with<R>(bf16 weights: [Tensor], kernel: BF16Kernel = RolloutWeights.kernel, _ body: () throws -> R) rethrows -> R {
        precondition(kernel.isSupported, "RolloutWeights: the \(kernel) kernel does not run on this CPU")
        let unique = Dictionary(weights.filter { $0.rank == 2 }.map { (ObjectIdentifier($0), $0) }, uniquingKeysWith: { a, _ in a })
        let missing = table.withLock { t in unique.keys.filter { t[$0] == nil } }
        // Converted outside the lock (the conversion is parallel and takes milliseconds).
        let made = missing.map { ($0, Copy(matrix: QuantizedMatrix(quantizing: unique[$0]!, format: .bf16), kernel: kernel)) }
        table.withLock { t in
            for (key, copy) in made where t[key] == nil { t[key] = (copy, 0) }
            for key in unique.keys { t[key]!.scopes += 1 }
        }
        active.add(1, ordering: .sequentiallyConsistent)
        defer {
            table.withLock { t in
                for key in unique.keys {
                    t[key]!.scopes -= 1
                    if t[key]!.scopes == 0 { t[key] = nil }
                }
            }
            active.subtract(1, ordering: .sequentiallyConsistent)
            // Keep the tensors alive while their identities are keys.
            withExtendedLifetime(weights) {}
        }
        return try body()
    }

    /// The kernel of rollout products: `vdpbf16ps` where the CPU has AVX512_BF16 (x rounded to bf16
    /// too, as bf16 inference computes; SmolLM2 sampling 243–260 tokens/s against 196–220 with the
    /// widening kernel), else `BF16Kernel.active`; `NUDGE_BF16_KERNEL` overrides both.
    public static let kernel: BF16Kernel = ProcessInfo.processInfo.environment["NUDGE_BF16_KERNEL"] == nil && BF16Kernel.dot.isSupported
        ? .dot : .active

    /// y = x·Wᵀ + b on a copy, untaped, on the rollout kernel for any row count.
    static func linear(_ x: Tensor, copy: Copy, bias: Tensor?) -> Tensor {
        let w = copy.matrix, rows = x.count / Swift.max(w.columns, 1), outCount = w.rows
        let out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outCount])
        bf16Product(m: rows, x: x.data, ldx: w.columns, weight: w, y: out.data, ldy: outCount, kernel: copy.kernel)
        if let bias { addBias(bias, to: out, rows: rows) }
        return out
    }

    /// Whether `weight` has a copy registered now.
    public static func hasCopy(_ weight: Tensor) -> Bool { table.withLock { $0[ObjectIdentifier(weight)] != nil } }

    /// The copy standing in for `weight` in a product of `rows` rows, if any.
    @inline(__always)
    static func copy(of weight: Tensor, rows: Int) -> Copy? {
        guard rows <= maximumRows, active.load(ordering: .relaxed) > 0 else { return nil }
        return table.withLock { $0[ObjectIdentifier(weight)]?.copy }
    }
}
