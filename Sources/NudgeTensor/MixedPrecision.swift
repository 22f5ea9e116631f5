// Mixed-precision products: bf16 operands, Float32 sums, Float32 everything else.
//
// Inside `MixedPrecision.bf16 { … }` every matrix product large enough to be compute-bound
// (forward, the two backward products, attention, the LM head) rounds its operands to bf16 and
// sums their products in Float32 on `vdpbf16ps`, which does 32 products per instruction where an
// FMA does 16. This is what torch.autocast(device_type="cpu", dtype=torch.bfloat16) does to
// linear layers, and what TRL's `bf16=True` turns on; unlike autocast, every output stays Float32
// (no bf16 activations), and weights, gradients and optimizer state are Float32 throughout, so the
// only loss of precision is the operands' 8-bit mantissas.
//
// Decoding-sized products (at most `minimumRows` rows or columns) keep their Float32 paths, so
// sampling inside the scope is unchanged. CPUs without AVX512_BF16 have no such kernel: there the
// scope changes nothing (`isSupported` says which), as emulating it would be slower than Float32.

import CNudgeKernels
import Foundation

/// bf16 matrix products with Float32 accumulation for the length of a closure.
public enum MixedPrecision {
    /// Whether this CPU has the bf16 product kernel (AVX512_BF16).
    public static let isSupported = nudge_bf16_gemm_supported() != 0

    /// Products with at most this many rows or columns stay Float32: decoding batches, where
    /// packing a bf16 copy of the weight per call costs more than it saves.
    public static let minimumRows = 32

    /// Open scopes on this thread (the key's value is the count, not a pointer). Per thread, so
    /// a scope never reaches products of unrelated work running beside it (another trainer in
    /// the process, a parallel test); `parallelRanges` carries it to the threads it splits onto.
    private static let scopesKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    @inline(__always)
    private static var scopes: Int {
        get { Int(bitPattern: pthread_getspecific(scopesKey)) }
        set { pthread_setspecific(scopesKey, UnsafeRawPointer(bitPattern: newValue)) }
    }

    /// Runs `body` with every large product on bf16 operands when `enabled` and the CPU has the
    /// kernel (otherwise as it is). Scopes nest; they hold for this thread and the threads
    /// `parallelRanges` splits its work onto.
    public static func bf16<R>(_ enabled: Bool = true, _ body: () throws -> R) rethrows -> R {
        guard enabled && isSupported else { return try body() }
        scopes += 1
        defer { scopes -= 1 }
        return try body()
    }

    /// Whether a bf16 scope is open on this thread now.
    public static var isActive: Bool { scopes > 0 }

    /// Whether an m×k by k×n product runs on bf16 operands now.
    @inline(__always)
    static func appliesTo(m: Int, n: Int, k: Int) -> Bool {
        m > minimumRows && n > minimumRows && k > 0 && scopes > 0
    }
}
