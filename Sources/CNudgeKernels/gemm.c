// Nudge's packed single-precision GEMM for x86-64: C = α·op(A)·op(B) + β·C, row-major.
//
// The structure is Goto's (K. Goto, R. van de Geijn, "Anatomy of high-performance matrix
// multiplication", 2008) as BLIS lays it out, written for row-major C, where a row of C is the
// vector dimension:
//
//   for each block of MC rows of C:
//     for each block of KC along k:
//       pack op(A)[rows, k-block] into MR-row slivers, MR values per k  (KC × MC: L3)
//       for each block of NC columns:
//         pack op(B)[k-block, columns] into NR-column slivers           (KC × NC: L2)
//         for each MR-row sliver of A:                                  (KC × MR: L1)
//           for each NR-column sliver of B:                             (streamed from L2)
//             micro-kernel: an MR × NR tile of C in registers, one FMA chain per element over k
//
// B is packed once per block of MC rows (once for the shapes Nudge trains) and A once per call,
// so the micro-kernel reads contiguous memory. Two exceptions, where packing costs more than it
// saves: with few rows of C, the kernels read a row-major B in place, and with few columns, a
// transposed A. Partial tiles at the edges are packed with zeros and run on a smaller kernel
// (a third, two thirds or all of MR rows; half or all of NR columns), through a scratch tile when
// even that one is larger than what is left.
//
// Determinism: every element of C is the same sequence of operations whatever the tile, kernel
// or thread layout: per KC block an FMA chain over k in order starting from 0, then C = α·acc
// (β = 0) or C = fma(α, acc, β·C) on the first block and fma(α, acc, C) on later ones. So callers
// may split C into column or row ranges on tile boundaries and run them concurrently, and the
// AVX2 and AVX-512 kernels (same KC) give the same bits as each other.
//
// The instruction set is chosen at run time (`__builtin_cpu_supports`) and each kernel carries its
// own `target` attribute, because a Swift package may not pass `-march`. Packing buffers belong
// to the calling thread; there is no other state between calls.

#include "CNudgeKernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
// Loops over the register tile must unroll completely so the accumulators live in registers.
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

static long min_long(long x, long y) { return x < y ? x : y; }

// MARK: Packing (inlined into each kernel's driver so it is compiled for that kernel's target)

/// Transposes 4 rows × 8 columns of `s` (row stride ld) into 8 rows at `d` (row stride dst), of
/// which the first `width` (4 or 2) values are stored. Rows from `valid` on (when under 4) read
/// as zeros and are not loaded.
TARGET_AVX2 INLINE void transpose4x8(const float *restrict s, long ld, long valid, const int width, float *restrict d, long dst) {
    __m256 zero = _mm256_setzero_ps();
    __m256 r0 = valid > 0 ? _mm256_loadu_ps(s) : zero, r1 = valid > 1 ? _mm256_loadu_ps(s + ld) : zero;
    __m256 r2 = valid > 2 ? _mm256_loadu_ps(s + 2 * ld) : zero, r3 = valid > 3 ? _mm256_loadu_ps(s + 3 * ld) : zero;
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    // u[q] holds column q of the four rows in its low half and column q + 4 in its high half.
    __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE), _mm256_shuffle_ps(t1, t3, 0x44),
                   _mm256_shuffle_ps(t1, t3, 0xEE)};
    UNROLL
    for (int q = 0; q < 4; q++) {
        __m128 lo = _mm256_castps256_ps128(u[q]), hi = _mm256_extractf128_ps(u[q], 1);
        if (width == 4) {
            _mm_storeu_ps(d + q * dst, lo);
            _mm_storeu_ps(d + (q + 4) * dst, hi);
        } else {
            _mm_storel_pi((__m64 *)(d + q * dst), lo);
            _mm_storel_pi((__m64 *)(d + (q + 4) * dst), hi);
        }
    }
}

/// Transposes 8 rows × 8 columns of `s` (row stride ld) into 8 rows of 8 at `d` (row stride dst).
TARGET_AVX2 INLINE void transpose8x8(const float *restrict s, long ld, float *restrict d, long dst) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * ld);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
    }
    // u[q] (rows 0-3) and u[q + 4] (rows 4-7) hold columns q and q + 4 in their two halves.
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(d + q * dst, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
        _mm256_storeu_ps(d + (q + 4) * dst, _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
    }
}

/// Packs rows [0, mc) × k [0, kc) of op(A) into MR-row slivers: sliver s holds, for each p, the MR
/// values op(A)[s·MR + 0 ..< MR][p], zero past row mc. op(A)[i][p] = trans ? a[p·lda + i] : a[i·lda + p].
TARGET_AVX2 INLINE void pack_a(int trans, const float *restrict a, long lda, long mc, long kc, const int mr, float *restrict dst) {
    for (long i0 = 0; i0 < mc; i0 += mr) {
        long rows = min_long(mr, mc - i0);
        float *d = dst + i0 * kc;
        if (trans) {
            for (long p = 0; p < kc; p++) {
                const float *s = a + p * lda + i0;
                if (rows == mr) {
                    UNROLL
                    for (int i = 0; i < mr; i++) d[p * mr + i] = s[i];
                } else {
                    for (long i = 0; i < rows; i++) d[p * mr + i] = s[i];
                    for (long i = rows; i < mr; i++) d[p * mr + i] = 0;
                }
            }
        } else {
            // A transpose, in blocks of 4 rows × 8 values of k (2 rows for the last block of a
            // 6-row sliver); rows past the end of A are zeros.
            long p = 0;
            for (; p + 8 <= kc; p += 8) {
                UNROLL
                for (int i = 0; i < mr; i += 4) {
                    long valid = rows - i;
                    transpose4x8(a + (i0 + i) * lda + p, lda, valid, mr - i < 4 ? mr - i : 4, d + p * mr + i, mr);
                }
            }
            for (; p < kc; p++) {
                for (long i = 0; i < rows; i++) d[p * mr + i] = a[(i0 + i) * lda + p];
                for (long i = rows; i < mr; i++) d[p * mr + i] = 0;
            }
        }
    }
}

/// Packs k [0, kc) × columns [0, nc) of op(B) into NR-column slivers: sliver s holds, for each p,
/// the NR values op(B)[p][s·NR + 0 ..< NR], zero past column nc. op(B)[p][j] = trans ? b[j·ldb + p] : b[p·ldb + j].
/// NR is a multiple of 8.
TARGET_AVX2 INLINE void pack_b(int trans, const float *restrict b, long ldb, long kc, long nc, const int nr, float *restrict dst) {
    for (long j0 = 0; j0 < nc; j0 += nr) {
        long cols = min_long(nr, nc - j0);
        float *d = dst + j0 * kc;
        if (!trans) {
            for (long p = 0; p < kc; p++) {
                const float *s = b + p * ldb + j0;
                if (cols == nr) {
                    UNROLL
                    for (int j = 0; j < nr; j += 8) _mm256_store_ps(d + p * nr + j, _mm256_loadu_ps(s + j));
                } else {
                    for (long j = 0; j < cols; j++) d[p * nr + j] = s[j];
                    for (long j = cols; j < nr; j++) d[p * nr + j] = 0;
                }
            }
        } else if (cols == nr) {
            long p = 0;
            for (; p + 8 <= kc; p += 8) {
                UNROLL
                for (int j = 0; j < nr; j += 8) transpose8x8(b + (j0 + j) * ldb + p, ldb, d + p * nr + j, nr);
            }
            for (; p < kc; p++) {
                UNROLL
                for (int j = 0; j < nr; j++) d[p * nr + j] = b[(j0 + j) * ldb + p];
            }
        } else {
            for (long p = 0; p < kc; p++) {
                for (long j = 0; j < cols; j++) d[p * nr + j] = b[(j0 + j) * ldb + p];
                for (long j = cols; j < nr; j++) d[p * nr + j] = 0;
            }
        }
    }
}

// MARK: Packing buffers

// One buffer per thread, grown as needed and freed when the thread exits: allocating per call
// cost a third of the time at 256³ (glibc maps and unmaps blocks this size, so every call paid
// fresh page faults). A call never runs inside another on the same thread, so one buffer suffices.
typedef struct {
    float *data;
    size_t capacity;
} workspace;

static pthread_key_t workspace_key;
static pthread_once_t workspace_once = PTHREAD_ONCE_INIT;

static void workspace_release(void *p) {
    workspace *w = p;
    free(w->data);
    free(w);
}

static void workspace_make_key(void) { pthread_key_create(&workspace_key, workspace_release); }

/// This thread's buffer of at least `floats` floats, 64-byte aligned.
static float *workspace_get(size_t floats) {
    pthread_once(&workspace_once, workspace_make_key);
    workspace *w = pthread_getspecific(workspace_key);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) abort();
        pthread_setspecific(workspace_key, w);
    }
    if (w->capacity < floats) {
        free(w->data);
        w->data = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        if (!w->data) abort();
        w->capacity = floats;
    }
    return w->data;
}

// MARK: Micro-kernels

/// A register tile of C (row stride ldc) = α·Σ_p a_p ⊗ b_p (β = 0) or fma(α, Σ, β·c), from an A
/// sliver and B (a packed sliver, or B itself). Each kernel covers a fixed number of rows and columns
/// of a full MR × NR sliver pair; the smaller ones serve partial tiles at the edges of C.
typedef void (*micro_kernel)(long kc, const float *restrict a, long lda, const float *restrict b, long ldb, float *restrict c,
                             long ldc, float alpha, float beta);

// The bodies are written once with the tile size as constant arguments: `mr` rows and `nv`
// vectors of columns computed, read `lda` floats per k from A and `ldb` from B (packed slivers,
// or the operands themselves where packing does not pay). Each
// instantiation below inlines them, unrolls the loops over the tile and keeps the accumulators
// in registers. Every element is one FMA chain over k from 0, whatever the tile size, so all
// kernels (and both instruction sets) give the same bits.

/// Stores a register tile: C = α·acc (β = 0), or fma(α, acc, β·C). Shared by the Float32 and bf16
/// micro-kernels, so both end a tile with the same operations.
TARGET_AVX512 INLINE void store_tile512(const int mr, const int nv, __m512 acc[12][2], float *restrict c, long ldc, float alpha,
                                        float beta) {
    // α = 1 and β = 1 skip their multiplications: the results are the same bits (1·x = x exactly).
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    UNROLL
    for (int i = 0; i < mr; i++) {
        UNROLL
        for (int j = 0; j < nv; j++) {
            float *t = c + i * ldc + 16 * j;
            __m512 r;
            if (beta == 0) r = alpha == 1 ? acc[i][j] : _mm512_mul_ps(va, acc[i][j]);  // C is not read: NaN there must not leak in.
            else if (beta == 1) r = alpha == 1 ? _mm512_add_ps(acc[i][j], _mm512_loadu_ps(t)) : _mm512_fmadd_ps(va, acc[i][j], _mm512_loadu_ps(t));
            else r = _mm512_fmadd_ps(va, acc[i][j], _mm512_mul_ps(vb, _mm512_loadu_ps(t)));
            _mm512_storeu_ps(t, r);
        }
    }
}

/// Writes the first rows × cols of a scratch tile (row stride nr, computed with α = 1, β = 0) into C
/// with the vector store's α/β step: the edges of C that no kernel covers exactly.
static inline void store_partial(const float *tile, long nr, long rows, long cols, float *crow, long ldc, float alpha, float beta) {
    for (long i = 0; i < rows; i++) {
        float *t = crow + i * ldc;
        for (long j = 0; j < cols; j++) {
            float v = tile[i * nr + j];
            t[j] = beta == 0 ? alpha * v : __builtin_fmaf(alpha, v, beta * t[j]);
        }
    }
}

TARGET_AVX512 INLINE void micro512(const int mr, const int nv, long kc, const float *restrict a, long lda,
                                   const float *restrict b, long ldb, float *restrict c, long ldc,
                                   float alpha, float beta) {
    __m512 acc[12][2];
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int j = 0; j < nv; j++) acc[i][j] = _mm512_setzero_ps();
    UNROLL
    for (int i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    for (long p = 0; p < kc; p++) {
        __m512 bv[2];
        UNROLL
        for (int j = 0; j < nv; j++) bv[j] = _mm512_loadu_ps(b + 16 * j);
        UNROLL
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            UNROLL
            for (int j = 0; j < nv; j++) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
        }
        a += lda;
        b += ldb;
    }
    store_tile512(mr, nv, acc, c, ldc, alpha, beta);
}

TARGET_AVX2 INLINE void micro256(const int mr, const int nv, long kc, const float *restrict a, long lda,
                                 const float *restrict b, long ldb, float *restrict c, long ldc,
                                 float alpha, float beta) {
    __m256 acc[6][2];
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int j = 0; j < nv; j++) acc[i][j] = _mm256_setzero_ps();
    UNROLL
    for (int i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    for (long p = 0; p < kc; p++) {
        __m256 bv[2];
        UNROLL
        for (int j = 0; j < nv; j++) bv[j] = _mm256_loadu_ps(b + 8 * j);
        UNROLL
        for (int i = 0; i < mr; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            UNROLL
            for (int j = 0; j < nv; j++) acc[i][j] = _mm256_fmadd_ps(ai, bv[j], acc[i][j]);
        }
        a += lda;
        b += ldb;
    }
    // α = 1 and β = 1 skip their multiplications: the results are the same bits (1·x = x exactly).
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    UNROLL
    for (int i = 0; i < mr; i++) {
        UNROLL
        for (int j = 0; j < nv; j++) {
            float *t = c + i * ldc + 8 * j;
            __m256 r;
            if (beta == 0) r = alpha == 1 ? acc[i][j] : _mm256_mul_ps(va, acc[i][j]);  // C is not read: NaN there must not leak in.
            else if (beta == 1) r = alpha == 1 ? _mm256_add_ps(acc[i][j], _mm256_loadu_ps(t)) : _mm256_fmadd_ps(va, acc[i][j], _mm256_loadu_ps(t));
            else r = _mm256_fmadd_ps(va, acc[i][j], _mm256_mul_ps(vb, _mm256_loadu_ps(t)));
            _mm256_storeu_ps(t, r);
        }
    }
}

// Tiles: AVX-512 12 × 32 (24 accumulators of the 32 zmm registers), AVX2 6 × 16 (12 of 16 ymm).
// On Zen 4 the two reach the same speed (its 512-bit FMAs take both 256-bit pipes); CPUs with two
// 512-bit FMA units run the AVX-512 kernel up to twice as fast.
enum { MR512 = 12, NR512 = 32, MR256 = 6, NR256 = 16 };

// Blocks, for Zen 4's 32 KB L1, 1 MB L2 and shared L3: an A sliver KC × MR (18 KB) stays in L1, a
// B block KC × NC (768 KB) in L2, an A block KC × MC (1.5 MB) in L3. KC 256 or 512 and NC 256 or
// 1024 measured within 2 % of these, mostly below. KC also fixes the order of the sums, so it is
// one constant for both instruction sets.
enum { KC = 384, NC = 512, MC = 1008 };

/// Kernels by rows (a third, two thirds or all of MR) and columns (half or all of NR).
typedef micro_kernel kernel_table[3][2];

#define MICRO(isa, body, rows, vectors)                                                                                     \
    isa static void micro_##body##_##rows##x##vectors(long kc, const float *restrict a, long lda, const float *restrict b,    \
                                                      long ldb, float *restrict c, long ldc, float alpha, float beta) {     \
        body(rows, vectors, kc, a, lda, b, ldb, c, ldc, alpha, beta);                                                        \
    }
MICRO(TARGET_AVX512, micro512, 4, 1)
MICRO(TARGET_AVX512, micro512, 4, 2)
MICRO(TARGET_AVX512, micro512, 8, 1)
MICRO(TARGET_AVX512, micro512, 8, 2)
MICRO(TARGET_AVX512, micro512, 12, 1)
MICRO(TARGET_AVX512, micro512, 12, 2)
MICRO(TARGET_AVX2, micro256, 2, 1)
MICRO(TARGET_AVX2, micro256, 2, 2)
MICRO(TARGET_AVX2, micro256, 4, 1)
MICRO(TARGET_AVX2, micro256, 4, 2)
MICRO(TARGET_AVX2, micro256, 6, 1)
MICRO(TARGET_AVX2, micro256, 6, 2)

static const kernel_table kernels512 = {
    {micro_micro512_4x1, micro_micro512_4x2}, {micro_micro512_8x1, micro_micro512_8x2}, {micro_micro512_12x1, micro_micro512_12x2}};
static const kernel_table kernels256 = {
    {micro_micro256_2x1, micro_micro256_2x2}, {micro_micro256_4x1, micro_micro256_4x2}, {micro_micro256_6x1, micro_micro256_6x2}};

// MARK: Driver

/// The loops around the micro-kernels, with the tile and block sizes as constants.
TARGET_AVX2 INLINE void gemm_blocked(const int mr, const int nr, const kernel_table *kernels, int transA, int transB, long m, long n,
                                     long k, float alpha, const float *a, long lda, const float *b, long ldb, float beta, float *c,
                                     long ldc) {
    const long kcmax = KC, mcmax = MC / mr * mr, ncmax = NC / nr * nr;
    long mcap = min_long(mcmax, (m + mr - 1) / mr * mr), ncap = min_long(ncmax, (n + nr - 1) / nr * nr);
    long kcap = min_long(kcmax, k);
    long asize = (mcap * kcap + 15) / 16 * 16;
    float *abuf = workspace_get((size_t)(asize + ncap * kcap)), *bbuf = abuf + asize;
    _Alignas(64) float tile[MR512 * NR512];
    // With few rows (up to 8 slivers), the kernels read op(B) = B in place (its rows are
    // contiguous along n) instead of copying it first: measured as fast or faster up to 96 rows,
    // and up to twice as fast for a handful. Partial column tiles are still packed, with zeros.
    int directB = !transB && m <= 8 * mr;
    // Likewise A when it is stored transposed (its k-rows are contiguous along m) and C has few
    // columns, so each A sliver serves only a few B slivers.
    int directA = transA && n <= 4 * nr;
    for (long ic = 0; ic < m; ic += mcmax) {
        long mc = min_long(mcmax, m - ic);
        for (long pc = 0; pc < k; pc += kcmax) {
            long kc = min_long(kcmax, k - pc);
            // β applies once, on the first block along k; later blocks add onto C.
            float betaNow = pc == 0 ? beta : 1.0f;
            const float *ablock = transA ? a + pc * lda + ic : a + ic * lda + pc;
            if (!directA) pack_a(transA, ablock, lda, mc, kc, mr, abuf);
            else if (mc % mr) pack_a(1, ablock + mc / mr * mr, lda, mc % mr, kc, mr, abuf + mc / mr * mr * kc);
            for (long jc = 0; jc < n; jc += ncmax) {
                long nc = min_long(ncmax, n - jc);
                const float *bblock = transB ? b + jc * ldb + pc : b + pc * ldb + jc;
                if (!directB) pack_b(transB, bblock, ldb, kc, nc, nr, bbuf);
                else if (nc % nr) pack_b(0, bblock + nc / nr * nr, ldb, kc, nc % nr, nr, bbuf + nc / nr * nr * kc);
                for (long ir = 0; ir < mc; ir += mr) {
                    long rows = min_long(mr, mc - ir);
                    // The smallest kernel that covers the rows left (a third of MR at a time).
                    long rowClass = (rows * 3 + mr - 1) / mr - 1, rowsDone = (rowClass + 1) * mr / 3;
                    const float *as = directA && rows == mr ? ablock + ir : abuf + ir * kc;
                    long astride = directA && rows == mr ? lda : mr;
                    float *crow = c + (ic + ir) * ldc + jc;
                    for (long jr = 0; jr < nc; jr += nr) {
                        long cols = min_long(nr, nc - jr);
                        long colClass = cols * 2 > nr, colsDone = (colClass + 1) * nr / 2;
                        micro_kernel micro = (*kernels)[rowClass][colClass];
                        const float *bs = directB && cols == nr ? bblock + jr : bbuf + jr * kc;
                        long bstride = directB && cols == nr ? ldb : nr;
                        if (rows == rowsDone && cols == colsDone) {
                            micro(kc, as, astride, bs, bstride, crow + jr, ldc, alpha, betaNow);
                        } else {
                            // tile = 1·Σ exactly, then the same α/β step as the vector store.
                            micro(kc, as, astride, bs, bstride, tile, nr, 1.0f, 0.0f);
                            store_partial(tile, nr, rows, cols, crow + jr, ldc, alpha, betaNow);
                        }
                    }
                }
            }
        }
    }
}

TARGET_AVX512 static void gemm_avx512(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                                      const float *b, long ldb, float beta, float *c, long ldc) {
    gemm_blocked(MR512, NR512, &kernels512, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

TARGET_AVX2 static void gemm_avx2(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                                  const float *b, long ldb, float beta, float *c, long ldc) {
    gemm_blocked(MR256, NR256, &kernels256, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int nudge_sgemm_best_kernel(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return NUDGE_SGEMM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NUDGE_SGEMM_AVX2;
    return NUDGE_SGEMM_NONE;
}

int nudge_sgemm_tile_rows(int kernel) {
    return kernel == NUDGE_SGEMM_AVX512 ? MR512 : kernel == NUDGE_SGEMM_AVX2 ? MR256 : 1;
}

int nudge_sgemm_tile_columns(int kernel) {
    return kernel == NUDGE_SGEMM_AVX512 ? NR512 : kernel == NUDGE_SGEMM_AVX2 ? NR256 : 1;
}

void nudge_sgemm(int kernel, int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        // Nothing to multiply: C = β·C (β = 0 clears C, NaN included).
        for (long i = 0; i < m; i++) {
            float *row = c + i * ldc;
            if (beta == 0) memset(row, 0, (size_t)n * sizeof(float));
            else if (beta != 1) for (long j = 0; j < n; j++) row[j] *= beta;
        }
        return;
    }
    if (kernel == NUDGE_SGEMM_AVX512) gemm_avx512(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if (kernel == NUDGE_SGEMM_AVX2) gemm_avx2(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// MARK: bf16 products (mixed precision)
//
// C = α·op(A)·op(B) + β·C with op(A) and op(B) rounded to bf16 (to nearest, ties to even) as they
// are packed, and products summed in Float32 by `vdpbf16ps` (AVX512_BF16): 32 products per
// instruction against 16 FMAs, which is what makes bf16 training twice as fast where the CPU has
// it. The loops are the Float32 kernel's (same MR × NR tile, so callers split C alike), with k
// walked in pairs: a packed sliver holds, for each pair of k, one 32-bit word per row (or column)
// with the two bf16 values, which is the operand layout `vdpbf16ps` multiplies. An odd k is
// padded with a zero. Every element of C is one sequence of operations whatever the split.

#define TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))
// k values per block: 384 pairs, so a packed A sliver (12 rows) and B block fill L1 and L2 as the
// Float32 kernel's KC = 384 floats do.
enum { KC16 = 768 };

/// Transposes a 16 × 16 block of 32-bit words in registers: r[i][c] becomes r[c][i].
TARGET_BF16 INLINE void transpose16x16(__m512i r[16]) {
    __m512i t[16], u[16];
    // Within each 128-bit lane: pairs of rows interleaved, then groups of four rows.
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {
        u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    // u[4g + j]'s lane L holds column 4L + j of rows 4g … 4g + 3: gather the four groups' lanes.
    for (int j = 0; j < 4; j++) {
        __m512i x0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44), x1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44);
        __m512i x2 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xEE), x3 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xEE);
        r[j] = _mm512_shuffle_i32x4(x0, x1, 0x88);
        r[4 + j] = _mm512_shuffle_i32x4(x0, x1, 0xDD);
        r[8 + j] = _mm512_shuffle_i32x4(x2, x3, 0x88);
        r[12 + j] = _mm512_shuffle_i32x4(x2, x3, 0xDD);
    }
}

/// Packs lanes [0, count) × k [0, kc) of a matrix into slivers of `width` lanes (12 for A, 32
/// for B): sliver s holds, for each pair q of k, `width` 32-bit words (bf16 of k = 2q low, 2q + 1
/// high), zero past `count` and past kc. Element (lane, p) is src[lane·ld + p] when `kContiguous`,
/// else src[p·ld + lane]. Every value goes through `vcvtneps2bf16`, so the rounding is one
/// instruction's whatever the path.
TARGET_BF16 INLINE void pack_pairs(const float *restrict src, long ld, int kContiguous, long count, long kc, const int width,
                                   unsigned *restrict dst) {
    long kq = (kc + 1) / 2;
    for (long s0 = 0; s0 < count; s0 += width) {
        long lanes = min_long(width, count - s0);
        unsigned *d = dst + s0 * kq;
        if (kContiguous) {
            // A lane's pairs are adjacent: 32 values of each of 16 lanes convert to a 16 × 16 block
            // of words (lane × pair), transposed in registers to pair × lane and stored a pair at a time.
            for (long l0 = 0; l0 < width; l0 += 16) {
                long group = min_long(16, lanes - l0), span = min_long(16, width - l0);
                __mmask16 store = (__mmask16)((1u << span) - 1);
                for (long p = 0; p < kc; p += 32) {
                    long left = kc - p;
                    __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
                    __mmask16 m1 = left >= 32 ? 0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
                    __m512i r[16];
                    for (long l = 0; l < 16; l++) {
                        if (l < group) {
                            const float *row = src + (s0 + l0 + l) * ld + p;
                            r[l] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, row + 16), _mm512_maskz_loadu_ps(m0, row));
                        } else {
                            r[l] = _mm512_setzero_si512();
                        }
                    }
                    transpose16x16(r);
                    long pairs = min_long(16, kq - p / 2);
                    for (long c = 0; c < pairs; c++) _mm512_mask_storeu_epi32(d + (p / 2 + c) * width + l0, store, r[c]);
                }
            }
        } else {
            // Rows 2q and 2q + 1 are each contiguous along the lanes: convert 16 lanes of each and
            // interleave their 16-bit halves into 16 words.
            const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                        23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
            for (long q = 0; q < kq; q++) {
                const float *r0 = src + 2 * q * ld + s0, *r1 = r0 + ld;
                int second = 2 * q + 1 < kc;
                for (int l0 = 0; l0 < width; l0 += 16) {
                    long n = min_long(16, lanes - l0);
                    __mmask16 m = n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
                    __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + l0), x1 = second ? _mm512_maskz_loadu_ps(m, r1 + l0) : _mm512_setzero_ps();
                    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(x0)),
                                                      (__m256i)_mm512_cvtneps_pbh(x1), 1);
                    __m512i words = _mm512_permutexvar_epi16(interleave, both);
                    int stored = width - l0 < 16 ? width - l0 : 16;
                    _mm512_mask_storeu_epi32(d + q * width + l0, (__mmask16)((1u << stored) - 1), words);
                }
            }
        }
    }
}

/// A register tile of C from a packed A sliver (12 words per pair) and B sliver (32 words per
/// pair): the Float32 micro-kernel with `vdpbf16ps` in place of the FMA.
TARGET_BF16 INLINE void microdot(const int mr, const int nv, long kq, const unsigned *restrict a, const unsigned *restrict b,
                                 float *restrict c, long ldc, float alpha, float beta) {
    __m512 acc[12][2];
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int j = 0; j < nv; j++) acc[i][j] = _mm512_setzero_ps();
    UNROLL
    for (int i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    for (long q = 0; q < kq; q++) {
        __m512bh bv[2];
        UNROLL
        for (int j = 0; j < nv; j++) bv[j] = (__m512bh)_mm512_loadu_si512(b + 16 * j);
        UNROLL
        for (int i = 0; i < mr; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            UNROLL
            for (int j = 0; j < nv; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], ai, bv[j]);
        }
        a += MR512;
        b += NR512;
    }
    store_tile512(mr, nv, acc, c, ldc, alpha, beta);
}

typedef void (*dot_kernel)(long kq, const unsigned *restrict a, const unsigned *restrict b, float *restrict c, long ldc, float alpha,
                           float beta);
#define MICRODOT(rows, vectors)                                                                                             \
    TARGET_BF16 static void microdot_##rows##x##vectors(long kq, const unsigned *restrict a, const unsigned *restrict b,       \
                                                        float *restrict c, long ldc, float alpha, float beta) {             \
        microdot(rows, vectors, kq, a, b, c, ldc, alpha, beta);                                                               \
    }
MICRODOT(4, 1)
MICRODOT(4, 2)
MICRODOT(8, 1)
MICRODOT(8, 2)
MICRODOT(12, 1)
MICRODOT(12, 2)
static const dot_kernel dot_kernels[3][2] = {{microdot_4x1, microdot_4x2}, {microdot_8x1, microdot_8x2}, {microdot_12x1, microdot_12x2}};

TARGET_BF16 static void gemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
                                  long ldb, float beta, float *c, long ldc) {
    const int mr = MR512, nr = NR512;
    const long mcmax = MC / mr * mr, ncmax = NC / nr * nr;
    long mcap = min_long(mcmax, (m + mr - 1) / mr * mr), ncap = min_long(ncmax, (n + nr - 1) / nr * nr);
    long kqcap = (min_long(KC16, k) + 1) / 2;
    long asize = (mcap * kqcap + 15) / 16 * 16;
    unsigned *abuf = (unsigned *)workspace_get((size_t)(asize + ncap * kqcap)), *bbuf = abuf + asize;
    _Alignas(64) float tile[MR512 * NR512];
    for (long ic = 0; ic < m; ic += mcmax) {
        long mc = min_long(mcmax, m - ic);
        for (long pc = 0; pc < k; pc += KC16) {
            long kc = min_long(KC16, k - pc), kq = (kc + 1) / 2;
            float betaNow = pc == 0 ? beta : 1.0f;
            pack_pairs(transA ? a + pc * lda + ic : a + ic * lda + pc, lda, !transA, mc, kc, mr, abuf);
            for (long jc = 0; jc < n; jc += ncmax) {
                long nc = min_long(ncmax, n - jc);
                pack_pairs(transB ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, transB, nc, kc, nr, bbuf);
                for (long ir = 0; ir < mc; ir += mr) {
                    long rows = min_long(mr, mc - ir);
                    long rowClass = (rows * 3 + mr - 1) / mr - 1, rowsDone = (rowClass + 1) * mr / 3;
                    float *crow = c + (ic + ir) * ldc + jc;
                    for (long jr = 0; jr < nc; jr += nr) {
                        long cols = min_long(nr, nc - jr);
                        long colClass = cols * 2 > nr, colsDone = (colClass + 1) * nr / 2;
                        dot_kernel micro = dot_kernels[rowClass][colClass];
                        if (rows == rowsDone && cols == colsDone) {
                            micro(kq, abuf + ir * kq, bbuf + jr * kq, crow + jr, ldc, alpha, betaNow);
                        } else {
                            micro(kq, abuf + ir * kq, bbuf + jr * kq, tile, nr, 1.0f, 0.0f);
                            store_partial(tile, nr, rows, cols, crow + jr, ldc, alpha, betaNow);
                        }
                    }
                }
            }
        }
    }
}

int nudge_bf16_gemm_supported(void) { return nudge_bf16_best_kernel() == NUDGE_BF16_DOT; }

void nudge_bf16_gemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                     float beta, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        nudge_sgemm(NUDGE_SGEMM_AVX512, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    gemm_bf16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#else

int nudge_sgemm_best_kernel(void) { return NUDGE_SGEMM_NONE; }
int nudge_sgemm_tile_rows(int kernel) { (void)kernel; return 1; }
int nudge_sgemm_tile_columns(int kernel) { (void)kernel; return 1; }
void nudge_sgemm(int kernel, int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc) {
    (void)kernel; (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc;
}
int nudge_bf16_gemm_supported(void) { return 0; }
void nudge_bf16_gemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                     float beta, float *c, long ldc) {
    (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc;
}

#endif

const char *nudge_sgemm_kernel_name(int kernel) {
    switch (kernel) {
    case NUDGE_SGEMM_AVX512: return "AVX-512";
    case NUDGE_SGEMM_AVX2: return "AVX2+FMA";
    default: return "none";
    }
}
