// Nudge's packed single-precision GEMM for x86-64: C = α·op(A)·op(B) + β·C, row-major.
//
// The structure is Goto's (K. Goto, R. van de Geijn, "Anatomy of high-performance matrix
// multiplication", 2008) as BLIS lays it out, written for row-major C, where a row of C is the
// vector dimension:
//
//   for each block of MC rows of C:                        (op(A) block, KC × MC, packed: L3)
//     for each block of KC along k:
//       pack op(A)[rows, k-block] into MR-row slivers (k-major: MR values per k)
//       for each block of NC columns:                      (op(B) block, KC × NC, packed: L2)
//         pack op(B)[k-block, columns] into NR-column slivers (NR values per k)
//         for each MR-row sliver of A:                     (KC × MR: stays in L1)
//           for each NR-column sliver of B:                (streamed from L2)
//             micro-kernel: an MR × NR tile of C in registers, one FMA chain per element over k
//
// Both operands are packed once per call (B once per block of MC rows, which is all of M for the
// shapes Nudge trains), so the micro-kernel reads only contiguous, aligned memory. Partial tiles
// are packed with zeros, computed in full into a scratch tile and only the valid part is written.
//
// Determinism: every element of C is the same sequence of operations whatever the tile or thread
// layout: per KC block an FMA chain over k in order starting from 0, then C = α·acc (β = 0) or
// C = fma(α, acc, β·C) on the first block and C = fma(α, acc, C) on later ones. Callers may split
// C into column or row ranges on tile boundaries and run the pieces concurrently; the result is
// bit-identical to one call.
//
// The instruction set is chosen at run time (`__builtin_cpu_supports`) and each kernel carries its
// own `target` attribute, because a Swift package may not pass `-march`. Packing buffers are
// allocated per call; there is no global mutable state.

#include "CNudgeKernels.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
// Loops over the register tile must unroll completely so the accumulators live in registers.
#define UNROLL _Pragma("clang loop unroll(full)")

static long min_long(long x, long y) { return x < y ? x : y; }

// MARK: Packing (generic C, inlined into each kernel's driver so it is compiled for its target)

/// Packs rows [0, mc) × k [0, kc) of op(A) into MR-row slivers: sliver s holds, for each p, the MR
/// values op(A)[s·MR + 0 ..< MR][p], zero past row mc. op(A)[i][p] = trans ? a[p·lda + i] : a[i·lda + p].
INLINE void pack_a(int trans, const float *restrict a, long lda, long mc, long kc, const int mr, float *restrict dst) {
    for (long i0 = 0; i0 < mc; i0 += mr) {
        long rows = min_long(mr, mc - i0);
        float *d = dst + i0 * kc;
        if (trans) {
            for (long p = 0; p < kc; p++) {
                const float *s = a + p * lda + i0;
                for (long i = 0; i < rows; i++) d[p * mr + i] = s[i];
                for (long i = rows; i < mr; i++) d[p * mr + i] = 0;
            }
        } else if (rows == mr) {
            // A transpose: blocks of 8 values along k from each of the MR rows, so reads stay
            // sequential per row and writes fill whole k-rows of the sliver.
            long p = 0;
            for (; p + 8 <= kc; p += 8) {
                for (int i = 0; i < mr; i++) {
                    const float *s = a + (i0 + i) * lda + p;
                    for (int q = 0; q < 8; q++) d[(p + q) * mr + i] = s[q];
                }
            }
            for (; p < kc; p++) {
                for (int i = 0; i < mr; i++) d[p * mr + i] = a[(i0 + i) * lda + p];
            }
        } else {
            for (long p = 0; p < kc; p++) {
                for (long i = 0; i < rows; i++) d[p * mr + i] = a[(i0 + i) * lda + p];
                for (long i = rows; i < mr; i++) d[p * mr + i] = 0;
            }
        }
    }
}

/// Packs k [0, kc) × columns [0, nc) of op(B) into NR-column slivers: sliver s holds, for each p,
/// the NR values op(B)[p][s·NR + 0 ..< NR], zero past column nc. op(B)[p][j] = trans ? b[j·ldb + p] : b[p·ldb + j].
INLINE void pack_b(int trans, const float *restrict b, long ldb, long kc, long nc, const int nr, float *restrict dst) {
    for (long j0 = 0; j0 < nc; j0 += nr) {
        long cols = min_long(nr, nc - j0);
        float *d = dst + j0 * kc;
        if (!trans) {
            for (long p = 0; p < kc; p++) {
                const float *s = b + p * ldb + j0;
                if (cols == nr) {
                    for (int j = 0; j < nr; j++) d[p * nr + j] = s[j];
                } else {
                    for (long j = 0; j < cols; j++) d[p * nr + j] = s[j];
                    for (long j = cols; j < nr; j++) d[p * nr + j] = 0;
                }
            }
        } else if (cols == nr) {
            long p = 0;
            for (; p + 8 <= kc; p += 8) {
                for (int j = 0; j < nr; j++) {
                    const float *s = b + (j0 + j) * ldb + p;
                    for (int q = 0; q < 8; q++) d[(p + q) * nr + j] = s[q];
                }
            }
            for (; p < kc; p++) {
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

// MARK: Micro-kernels

/// The MR × NR tile c (row stride ldc) = α·Σ_p a_p ⊗ b_p (β = 0) or fma(α, Σ, β·c), from an
/// A sliver (MR values per p) and a B sliver (NR values per p, 64-byte aligned).
typedef void (*micro_kernel)(long kc, const float *restrict a, const float *restrict b, float *restrict c, long ldc,
                             float alpha, float beta);

// The bodies are written once with the tile size as constant arguments; each instantiation below
// inlines them, unrolls the loops over the tile and keeps the accumulators in registers.

TARGET_AVX512 INLINE void micro512(const int mr, const int nv, long kc, const float *restrict a, const float *restrict b,
                                   float *restrict c, long ldc, float alpha, float beta) {
    __m512 acc[16][4];
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int j = 0; j < nv; j++) acc[i][j] = _mm512_setzero_ps();
    UNROLL
    for (int i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    for (long p = 0; p < kc; p++) {
        __m512 bv[4];
        UNROLL
        for (int j = 0; j < nv; j++) bv[j] = _mm512_load_ps(b + 16 * j);
        UNROLL
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            UNROLL
            for (int j = 0; j < nv; j++) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
        }
        a += mr;
        b += 16 * nv;
    }
    __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0) {
        // β = 0 overwrites C without reading it (NaN or garbage there must not leak in).
        UNROLL
        for (int i = 0; i < mr; i++)
            UNROLL
            for (int j = 0; j < nv; j++) _mm512_storeu_ps(c + i * ldc + 16 * j, _mm512_mul_ps(va, acc[i][j]));
    } else {
        __m512 vb = _mm512_set1_ps(beta);
        UNROLL
        for (int i = 0; i < mr; i++)
            UNROLL
            for (int j = 0; j < nv; j++) {
                float *t = c + i * ldc + 16 * j;
                _mm512_storeu_ps(t, _mm512_fmadd_ps(va, acc[i][j], _mm512_mul_ps(vb, _mm512_loadu_ps(t))));
            }
    }
}

TARGET_AVX2 INLINE void micro256(const int mr, const int nv, long kc, const float *restrict a, const float *restrict b,
                                 float *restrict c, long ldc, float alpha, float beta) {
    __m256 acc[8][2];
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int j = 0; j < nv; j++) acc[i][j] = _mm256_setzero_ps();
    UNROLL
    for (int i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    for (long p = 0; p < kc; p++) {
        __m256 bv[2];
        UNROLL
        for (int j = 0; j < nv; j++) bv[j] = _mm256_load_ps(b + 8 * j);
        UNROLL
        for (int i = 0; i < mr; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            UNROLL
            for (int j = 0; j < nv; j++) acc[i][j] = _mm256_fmadd_ps(ai, bv[j], acc[i][j]);
        }
        a += mr;
        b += 8 * nv;
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (beta == 0) {
        UNROLL
        for (int i = 0; i < mr; i++)
            UNROLL
            for (int j = 0; j < nv; j++) _mm256_storeu_ps(c + i * ldc + 8 * j, _mm256_mul_ps(va, acc[i][j]));
    } else {
        __m256 vb = _mm256_set1_ps(beta);
        UNROLL
        for (int i = 0; i < mr; i++)
            UNROLL
            for (int j = 0; j < nv; j++) {
                float *t = c + i * ldc + 8 * j;
                _mm256_storeu_ps(t, _mm256_fmadd_ps(va, acc[i][j], _mm256_mul_ps(vb, _mm256_loadu_ps(t))));
            }
    }
}

#ifndef NUDGE_GEMM_MR512
#define NUDGE_GEMM_MR512 14
#endif
#ifndef NUDGE_GEMM_NV512
#define NUDGE_GEMM_NV512 2
#endif
#ifndef NUDGE_GEMM_KC512
#define NUDGE_GEMM_KC512 384
#endif
#ifndef NUDGE_GEMM_NC512
#define NUDGE_GEMM_NC512 512
#endif
#ifndef NUDGE_GEMM_MC512
#define NUDGE_GEMM_MC512 2016
#endif
#ifndef NUDGE_GEMM_KC256
#define NUDGE_GEMM_KC256 384
#endif
#ifndef NUDGE_GEMM_NC256
#define NUDGE_GEMM_NC256 512
#endif
#ifndef NUDGE_GEMM_MC256
#define NUDGE_GEMM_MC256 2016
#endif

enum { MR512 = NUDGE_GEMM_MR512, NR512 = 16 * NUDGE_GEMM_NV512, MR256 = 6, NR256 = 16 };

TARGET_AVX512 static void micro_avx512(long kc, const float *restrict a, const float *restrict b, float *restrict c, long ldc,
                                       float alpha, float beta) {
    micro512(MR512, NR512 / 16, kc, a, b, c, ldc, alpha, beta);
}

TARGET_AVX2 static void micro_avx2(long kc, const float *restrict a, const float *restrict b, float *restrict c, long ldc,
                                   float alpha, float beta) {
    micro256(MR256, NR256 / 8, kc, a, b, c, ldc, alpha, beta);
}

// MARK: Driver

/// The loops around the micro-kernel, with the tile and block sizes as constants.
INLINE void gemm_blocked(const int mr, const int nr, const long kcmax, const long mcmax, const long ncmax, micro_kernel micro,
                         int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                         const float *b, long ldb, float beta, float *c, long ldc) {
    long mcap = min_long(mcmax, (m + mr - 1) / mr * mr), ncap = min_long(ncmax, (n + nr - 1) / nr * nr);
    long kcap = min_long(kcmax, k);
    float *abuf = aligned_alloc(64, (size_t)(mcap * kcap * sizeof(float) + 63) / 64 * 64);
    float *bbuf = aligned_alloc(64, (size_t)(ncap * kcap * sizeof(float) + 63) / 64 * 64);
    _Alignas(64) float tile[16 * 64];
    for (long ic = 0; ic < m; ic += mcmax) {
        long mc = min_long(mcmax, m - ic);
        for (long pc = 0; pc < k; pc += kcmax) {
            long kc = min_long(kcmax, k - pc);
            // β applies once, on the first block along k; later blocks add onto C.
            float betaNow = pc == 0 ? beta : 1.0f;
            pack_a(transA, transA ? a + pc * lda + ic : a + ic * lda + pc, lda, mc, kc, mr, abuf);
            for (long jc = 0; jc < n; jc += ncmax) {
                long nc = min_long(ncmax, n - jc);
                pack_b(transB, transB ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, kc, nc, nr, bbuf);
                for (long ir = 0; ir < mc; ir += mr) {
                    long rows = min_long(mr, mc - ir);
                    const float *as = abuf + ir * kc;
                    float *crow = c + (ic + ir) * ldc + jc;
                    for (long jr = 0; jr < nc; jr += nr) {
                        long cols = min_long(nr, nc - jr);
                        const float *bs = bbuf + jr * kc;
                        if (rows == mr && cols == nr) {
                            micro(kc, as, bs, crow + jr, ldc, alpha, betaNow);
                        } else {
                            // tile = 1·Σ exactly, then the same α/β step as the vector store.
                            micro(kc, as, bs, tile, nr, 1.0f, 0.0f);
                            for (long i = 0; i < rows; i++) {
                                float *t = crow + i * ldc + jr;
                                for (long j = 0; j < cols; j++) {
                                    float s = tile[i * nr + j];
                                    t[j] = betaNow == 0 ? alpha * s : __builtin_fmaf(alpha, s, betaNow * t[j]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    free(abuf);
    free(bbuf);
}

TARGET_AVX512 static void gemm_avx512(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                                      const float *b, long ldb, float beta, float *c, long ldc) {
    gemm_blocked(MR512, NR512, NUDGE_GEMM_KC512, NUDGE_GEMM_MC512, NUDGE_GEMM_NC512, micro_avx512, transA, transB, m, n, k,
                 alpha, a, lda, b, ldb, beta, c, ldc);
}

TARGET_AVX2 static void gemm_avx2(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                                  const float *b, long ldb, float beta, float *c, long ldc) {
    gemm_blocked(MR256, NR256, NUDGE_GEMM_KC256, NUDGE_GEMM_MC256, NUDGE_GEMM_NC256, micro_avx2, transA, transB, m, n, k,
                 alpha, a, lda, b, ldb, beta, c, ldc);
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

#else

int nudge_sgemm_best_kernel(void) { return NUDGE_SGEMM_NONE; }
int nudge_sgemm_tile_rows(int kernel) { (void)kernel; return 1; }
int nudge_sgemm_tile_columns(int kernel) { (void)kernel; return 1; }
void nudge_sgemm(int kernel, int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc) {
    (void)kernel; (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
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
