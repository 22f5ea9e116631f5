// Matrix products through BLAS, loaded at run time.
//
// On Apple platforms Accelerate is linked. On Linux a CBLAS is opened with dlopen on first use
// (libopenblas.so.0, then libblas.so.3; `NUDGE_BLAS=/path/lib.so` names another,
// `NUDGE_BLAS=builtin` forces the fallback) and `cblas_sgemm` is called through a function
// pointer, so `swift build` needs no system package. The fallback is Nudge's own kernel
// (Gemm.swift): packed C with AVX-512 or AVX2+FMA micro-kernels, or the portable Swift kernel,
// which is also the oracle the tests compare the others against.

import CNudgeKernels
import Foundation
#if canImport(Accelerate)
import Accelerate
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Which implementation computes matrix products.
public enum GemmBackend: Sendable, Equatable {
    /// Apple's Accelerate framework.
    case accelerate
    /// A CBLAS shared library opened at run time.
    case library(path: String)
    /// Nudge's own kernel: packed C with AVX-512 or AVX2+FMA where the CPU has them, else the
    /// portable Swift kernel (`BuiltinGemm.kernel` says which).
    case builtin
    /// Nudge's portable Swift kernel, whatever the CPU (the fallback and the tests' oracle).
    case portable
}

typealias CBLASSgemm = @convention(c) (
    Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
    UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
) -> Void
typealias SetThreads = @convention(c) (Int32) -> Void

struct LoadedBLAS: @unchecked Sendable {
    let backend: GemmBackend
    let sgemm: CBLASSgemm?
    let setThreads: SetThreads?
    let note: String
}

/// The BLAS backend in use and how it was chosen.
public enum BLAS {
    static let loaded: LoadedBLAS = load()

    /// The backend every `matmul` uses.
    public static var backend: GemmBackend { loaded.backend }

    /// How the backend was found (or why the fallback is active).
    public static var note: String { loaded.note }

    /// Whether x·Wᵀ on up to 8 rows and decoding attention run on the AVX2/FMA C kernels (the CPU
    /// has them and `NUDGE_SMALL_GEMM` is not 0).
    public static let smallRowKernel = nudge_has_avx2_fma() != 0 && ProcessInfo.processInfo.environment["NUDGE_SMALL_GEMM"] != "0"
    /// The instruction sets of the small-row kernels this CPU runs (products; decoding attention).
    public static var smallRowKernelName: String {
        nudge_small_product_kernel() == 2 ? "AVX-512 products, AVX2/FMA attention" : "AVX2/FMA"
    }

    /// Sets the BLAS library's thread count, where the library allows it.
    public static func setThreads(_ n: Int) {
        loaded.setThreads?(Int32(n))
    }


    /// Library names tried in order on Linux.
    public static let candidates = [
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libblas.so.3",
    ]

    static func load() -> LoadedBLAS {
        #if canImport(Accelerate)
        return LoadedBLAS(backend: .accelerate, sgemm: nil, setThreads: nil, note: "Accelerate framework")
        #elseif canImport(Glibc)
        let request = ProcessInfo.processInfo.environment["NUDGE_BLAS"]
        if request == "builtin" {
            return LoadedBLAS(backend: .builtin, sgemm: nil, setThreads: nil, note: "NUDGE_BLAS=builtin")
        }
        let paths = request.map { [$0] } ?? candidates
        // OPENBLAS_THREAD_TIMEOUT is set at process start (CNudgeKernels' environment.c).
        var tried: [String] = []
        for path in paths {
            guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
                tried.append(path)
                continue
            }
            guard let symbol = dlsym(handle, "cblas_sgemm") else {
                tried.append("\(path) (no cblas_sgemm)")
                dlclose(handle)
                continue
            }
            let sgemm = unsafeBitCast(symbol, to: CBLASSgemm.self)
            let setThreads = dlsym(handle, "openblas_set_num_threads").map { unsafeBitCast($0, to: SetThreads.self) }
            let threads = Engine.threads
            setThreads?(Int32(threads))
            return LoadedBLAS(backend: .library(path: path), sgemm: sgemm, setThreads: setThreads,
                              note: "dlopen(\(path))" + (setThreads != nil ? ", \(threads) thread(s)" : ""))
        }
        return LoadedBLAS(backend: .builtin, sgemm: nil, setThreads: nil,
                          note: "no CBLAS found (tried \(tried.joined(separator: ", ")))")
        #else
        return LoadedBLAS(backend: .builtin, sgemm: nil, setThreads: nil, note: "no BLAS on this platform")
        #endif
    }
}

/// Rows up to which C = A·Bᵀ goes to the unpacked AVX2 kernel (where the CPU has it).
let smallProductRows = 8
/// Rows up to which it does when B has 2¹⁶ values or more: a decoding batch of 16 reads a model's
/// weights from memory, where the unpacked kernel prefetches them (one core, 16 rows: SmolLM2's
/// 1536 × 576 weight 406 µs against 654 µs packed, 192 × 576 48 µs against 79 µs); on weights
/// in cache the two are within 8 % from 2¹⁶ values, and the packed one is faster on smaller ones.
let smallProductRowsFromMemory = 16

/// C = α·op(A)·op(B) + β·C on row-major matrices, op(X) = Xᵀ when its flag is set.
/// `backend` defaults to the active one; `.builtin` forces Nudge's own kernel, `.portable` its
/// Swift kernel.
public func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, backend: GemmBackend? = nil
) {
    if m == 0 || n == 0 { return }
    if backend == nil && !transA && transB && (m <= smallProductRows || (m <= smallProductRowsFromMemory && n * k >= 1 << 16))
        && alpha == 1 && beta == 0 && k > 0 && BLAS.smallRowKernel
    {
        // A linear layer on a few rows (decoding): dot products over the weight in place beat a
        // BLAS that packs the whole weight for every call. A weight of 2¹⁸ values or more is split
        // by output columns over threads (the team joins in a few µs; 2¹⁶ measured no better);
        // each value of C is still one dot product in a fixed order.
        parallelRanges(n, minimum: n * k >= 1 << 18 ? 2 : Int.max, grain: 64) { columns in
            nudge_sgemm_nt_small(Int32(m), Int32(columns.count), Int32(k), a, Int32(lda), b + columns.lowerBound * ldb, Int32(ldb),
                                 c + columns.lowerBound, Int32(ldc))
        }
        return
    }
    if backend == nil && MixedPrecision.appliesTo(m: m, n: n, k: k) {
        builtinGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bf16: true)
        return
    }
    let chosen = backend ?? BLAS.loaded.backend
    switch chosen {
    case .builtin:
        builtinGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    case .portable:
        builtinSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    case .accelerate:
        #if canImport(Accelerate)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #else
        preconditionFailure("Accelerate is not available on this platform")
        #endif
    case .library:
        guard let f = BLAS.loaded.sgemm else { preconditionFailure("no BLAS library loaded") }
        // OpenBLAS threads products above 2¹⁸ multiply-adds itself: the team's spinning helpers
        // would take cores its threads need. (Real-model SFT steps, which are mostly such
        // products, measured within this machine's noise either way: 3.3–4.6 s.)
        if m * n * k > 1 << 18 { nudge_team_rest() }
        f(101, transA ? 112 : 111, transB ? 112 : 111, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
          b, Int32(ldb), beta, c, Int32(ldc))
    }
}
