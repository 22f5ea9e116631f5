// Nudge's own single-precision GEMM: what `.builtin` products run on when no BLAS is loaded.
//
// Two implementations. On x86-64 CPUs with AVX2+FMA (or AVX-512F) the packed, cache-blocked C
// kernel in CNudgeKernels/gemm.c runs; its micro-kernels carry their own `target` attributes and
// are chosen at run time, because the manifest may not pass `-march`. Everywhere else the portable
// Swift kernel below runs; it is also the tests' oracle.
//
// Large products are split over threads by whole register tiles of C (columns when n ≥ m, else
// rows). Each element of C is computed by one call in the C kernel's fixed order, so the result is
// bit-identical for every thread count.

import CNudgeKernels
import Dispatch
import Foundation

/// Which of Nudge's own kernels computes `.builtin` matrix products on this machine.
public enum BuiltinGemm {
    /// An implementation of the built-in kernel.
    public enum Kernel: String, Sendable, CaseIterable {
        /// Packed C kernel with a 12×32 tile on 512-bit vectors.
        case avx512 = "AVX-512"
        /// Packed C kernel with a 6×16 tile on 256-bit vectors and FMA.
        case avx2 = "AVX2+FMA"
        /// The portable Swift kernel (`SIMD8<Float>`, no FMA).
        case portable = "portable Swift"

        /// The C library's id for the kernel (`NUDGE_SGEMM_NONE` for the Swift one).
        var cKernel: Int32 {
            switch self {
            case .avx512: Int32(NUDGE_SGEMM_AVX512)
            case .avx2: Int32(NUDGE_SGEMM_AVX2)
            case .portable: Int32(NUDGE_SGEMM_NONE)
            }
        }

        /// Whether this CPU can run the kernel.
        public var isSupported: Bool { self == .portable || nudge_sgemm_best_kernel() >= cKernel }

        /// The fastest kernel this CPU runs, or the one the environment variable `variable` names
        /// (`avx512`, `avx2`, `portable`) when the CPU runs it.
        static func chosen(by variable: String) -> Kernel {
            let requested: Kernel? = switch ProcessInfo.processInfo.environment[variable]?.lowercased() {
            case "avx512", "avx-512": .avx512
            case "avx2": .avx2
            case "portable", "swift": .portable
            default: nil
            }
            if let requested, requested.isSupported { return requested }
            switch Int(nudge_sgemm_best_kernel()) {
            case Int(NUDGE_SGEMM_AVX512): return .avx512
            case Int(NUDGE_SGEMM_AVX2): return .avx2
            default: return .portable
            }
        }
    }

    /// The kernel `.builtin` products use: the fastest this CPU runs, or the one
    /// `NUDGE_GEMM_KERNEL` names (`avx512`, `avx2`, `portable`) when the CPU runs it.
    public static let kernel = Kernel.chosen(by: "NUDGE_GEMM_KERNEL")

    /// C = α·op(A)·op(B) + β·C on `kernel`, which must be supported (for benchmarks and
    /// side-by-side checks; `sgemm(…, backend: .builtin)` runs the active kernel). `bf16Operands`
    /// runs the mixed-precision kernel instead (`MixedPrecision.isSupported` must hold).
    public static func sgemm(
        kernel: Kernel, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, bf16Operands: Bool = false
    ) {
        precondition(kernel.isSupported, "BuiltinGemm: this CPU cannot run the \(kernel.rawValue) kernel")
        precondition(!bf16Operands || MixedPrecision.isSupported, "BuiltinGemm: this CPU has no bf16 product kernel")
        if m == 0 || n == 0 { return }
        builtinGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, kernel: kernel, bf16: bf16Operands)
    }

    /// Multiply-adds (m·n·k) from which a product is split over threads. Below it the pieces are
    /// too small to gain from a second thread that may have to be woken. With the helper team a
    /// split costs 1–2 µs while the helpers spin and ~50 µs once they sleep, so back-to-back
    /// training products gain from 2^20 (a 256×64×64 product on 2 threads: 71 → 105 GFLOP/s, AVX2);
    /// the demo, whose tiny models run 68 % of their multiply-adds in products of 2^20–2^23, took
    /// 209 s against 245 s at the earlier 2^23 (`NUDGE_BLAS=builtin nudge demo`, 2-core Zen 3, one
    /// run each, the same results).
    static let parallelMinimum = 1 << 20
}

/// C = α·op(A)·op(B) + β·C on Nudge's own kernel `kernel` (the active one by default), split
/// over up to `threads` threads when m·n·k reaches `parallelMinimum` (the tests lower both).
func builtinGemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, kernel: BuiltinGemm.Kernel = BuiltinGemm.kernel,
    threads: Int = Engine.threads, parallelMinimum: Int = BuiltinGemm.parallelMinimum, bf16: Bool = false
) {
    if !bf16 && kernel == .portable {
        builtinSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    // The bf16 kernel has the AVX-512 kernel's tile, so C splits alike.
    let id = bf16 ? Int32(NUDGE_SGEMM_AVX512) : kernel.cKernel
    let ta: Int32 = transA ? 1 : 0, tb: Int32 = transB ? 1 : 0
    let call = { (m: Int, n: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) in
        if bf16 {
            nudge_bf16_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        } else {
            nudge_sgemm(id, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
    }
    // Split the longer side of C, so the operand every piece packs again is the smaller one.
    let splitColumns = n >= m
    let extent = splitColumns ? n : m
    let tile = Int(splitColumns ? nudge_sgemm_tile_columns(id) : nudge_sgemm_tile_rows(id))
    let tiles = (extent + tile - 1) / tile
    let pieces = m * n * k < parallelMinimum ? 1 : min(threads, tiles)
    if pieces < 2 {
        call(m, n, a, b, c)
        return
    }
    forkJoin(pieces, threads: threads) { piece in
        // Piece boundaries fall on whole tiles, so every tile is computed as in one call.
        let lo = piece * tiles / pieces * tile, hi = min(extent, (piece + 1) * tiles / pieces * tile)
        if splitColumns {
            call(m, hi - lo, a, transB ? b + lo * ldb : b + lo, c + lo)
        } else {
            call(hi - lo, n, transA ? a + lo : a + lo * lda, b, c + lo * ldc)
        }
    }
}

// MARK: The portable Swift kernel
//
// Goto-style blocking: B is packed into KC×NR panels, A into MC×KC blocks of MR-row panels, and
// an MR×NR register tile accumulates with SIMD8 vectors. NR = 8 and MR = 4 fit the 16 vector
// registers of baseline x86-64 (SSE; no `-march` flags are allowed in the manifest). Rows of C are
// split across threads in fixed blocks for large problems; each C element is computed by one
// thread in a fixed order, so results do not depend on the thread count.

private let mr = 4
private let nr = 8
private let kc = 256
private let mc = 64

@inline(__always)
private func element(_ p: UnsafePointer<Float>, _ ld: Int, _ trans: Bool, _ row: Int, _ col: Int) -> Float {
    trans ? p[col * ld + row] : p[row * ld + col]
}

func builtinSgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    // Scale C by β first; the blocks below then accumulate α·A·B into it.
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 { row.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { row[j] *= beta } }
    }
    if k == 0 || alpha == 0 { return }
    let panels = (n + nr - 1) / nr
    let packedB = UnsafeMutablePointer<Float>.allocate(capacity: panels * nr * kc)
    defer { packedB.deallocate() }
    var pc = 0
    while pc < k {
        let kb = min(kc, k - pc)
        // Pack B[pc..<pc+kb, :] into NR-column panels, zero-padded on the right.
        for p in 0..<panels {
            let dst = packedB + p * nr * kb
            let j0 = p * nr
            for kk in 0..<kb {
                for jj in 0..<nr {
                    let j = j0 + jj
                    dst[kk * nr + jj] = j < n ? element(b, ldb, transB, pc + kk, j) : 0
                }
            }
        }
        let blocks = (m + mc - 1) / mc
        let work = m * n * kb
        let pcNow = pc
        parallelRanges(blocks, minimum: work >= (1 << 22) ? 2 : Int.max, grain: 1) { range in
            let packedA = UnsafeMutablePointer<Float>.allocate(capacity: mc * kb)
            defer { packedA.deallocate() }
            for block in range {
                let i0 = block * mc
                let mb = min(mc, m - i0)
                let rowPanels = (mb + mr - 1) / mr
                for rp in 0..<rowPanels {
                    let dst = packedA + rp * mr * kb
                    for kk in 0..<kb {
                        for ii in 0..<mr {
                            let i = i0 + rp * mr + ii
                            dst[kk * mr + ii] = i < m ? element(a, lda, transA, i, pcNow + kk) : 0
                        }
                    }
                }
                for rp in 0..<rowPanels {
                    for p in 0..<panels {
                        microKernel(packedA + rp * mr * kb, packedB + p * nr * kb, kb, alpha,
                                    c, ldc, i0 + rp * mr, p * nr, m, n)
                    }
                }
            }
        }
        pc += kb
    }
}

@inline(__always)
private func microKernel(
    _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ kb: Int, _ alpha: Float,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ i0: Int, _ j0: Int, _ m: Int, _ n: Int
) {
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    let rb = UnsafeRawPointer(b)
    for kk in 0..<kb {
        let bv = rb.loadUnaligned(fromByteOffset: kk * nr * 4, as: SIMD8<Float>.self)
        let ap = a + kk * mr
        c0 = c0 + SIMD8(repeating: ap[0]) * bv
        c1 = c1 + SIMD8(repeating: ap[1]) * bv
        c2 = c2 + SIMD8(repeating: ap[2]) * bv
        c3 = c3 + SIMD8(repeating: ap[3]) * bv
    }
    let cols = min(nr, n - j0)
    let rows = min(mr, m - i0)
    @inline(__always) func store(_ r: Int, _ v: SIMD8<Float>) {
        guard r < rows else { return }
        let row = c + (i0 + r) * ldc + j0
        let scaled = v * alpha
        if cols == nr {
            let raw = UnsafeMutableRawPointer(row)
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Float>.self) + scaled, as: SIMD8<Float>.self)
        } else {
            for j in 0..<cols { row[j] += scaled[j] }
        }
    }
    store(0, c0)
    store(1, c1)
    store(2, c2)
    store(3, c3)
}
