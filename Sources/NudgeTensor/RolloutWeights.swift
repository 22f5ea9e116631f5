// bf16 stand-ins for Float32 weights while a model only samples (RL rollouts, generation).
//
// Decoding a few rows at a time reads every weight once per token, so it is bound by the bytes of
// the weights, not by arithmetic: the same products on a bf16 copy read half as much. Trainers keep
// the Float32 weights (the optimizer updates them) and score every sampled token with them; only
// which tokens get sampled comes from the copy, as with TRL's vLLM rollouts in bf16.
//
// The copies are registered for the duration of a closure (`RolloutWeights.with`) and looked up by
// `linear(_:weight:bias:)`, so every model family's projections and tied heads use them without a
// second code path. A product uses its copy only when it is not recorded for gradients and has
// fewer rows than the quantized kernels hand to sgemm (prefill keeps the exact Float32 product).

import Synchronization

/// Low-precision copies of Float32 weights that untaped, few-row products read in their place.
public enum RolloutWeights {
    /// Registered copies by the weight tensor's identity, with how many open scopes registered each.
    private static let table = Mutex<[ObjectIdentifier: (matrix: QuantizedMatrix, scopes: Int)]>([:])
    /// Whether any copy is registered: the one check an ordinary product pays.
    private static let active = Atomic<Int>(0)

    /// Runs `body` with bf16 copies of `weights` (2-D Float32 tensors that `body` must not change)
    /// standing in for them in untaped products of fewer than 16 rows; the copies are freed after.
    public static func with<R>(bf16 weights: [Tensor], _ body: () throws -> R) rethrows -> R {
        let unique = Dictionary(weights.filter { $0.rank == 2 }.map { (ObjectIdentifier($0), $0) }, uniquingKeysWith: { a, _ in a })
        let missing = table.withLock { t in unique.keys.filter { t[$0] == nil } }
        // Converted outside the lock (the conversion is parallel and takes milliseconds).
        let made = missing.map { ($0, QuantizedMatrix(quantizing: unique[$0]!, format: .bf16)) }
        table.withLock { t in
            for (key, matrix) in made where t[key] == nil { t[key] = (matrix, 0) }
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

    /// Whether `weight` has a copy registered now.
    public static func hasCopy(_ weight: Tensor) -> Bool { table.withLock { $0[ObjectIdentifier(weight)] != nil } }

    /// The copy standing in for `weight` in a product of `rows` rows, if any.
    @inline(__always)
    static func copy(of weight: Tensor, rows: Int) -> QuantizedMatrix? {
        guard rows < quantizedGemmRows, active.load(ordering: .relaxed) > 0 else { return nil }
        return table.withLock { $0[ObjectIdentifier(weight)]?.matrix }
    }
}
