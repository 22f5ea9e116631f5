#include "CNudgeKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

int nudge_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define NUDGE_AVX2 __attribute__((target("avx2,fma")))

/// Sums of four 8-lane accumulators, [Σx, Σy, Σz, Σw], each in a fixed order.
NUDGE_AVX2 static inline __m128 sum4(__m256 x, __m256 y, __m256 z, __m256 w) {
    __m256 xy = _mm256_hadd_ps(x, y), zw = _mm256_hadd_ps(z, w);
    __m256 s = _mm256_hadd_ps(xy, zw);
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/// A block of up to 4 rows × 2 columns: eight accumulators, the four rows of A in registers and
/// the two rows of B loaded once per eight k.
NUDGE_AVX2 static void block4x2(int rows, int cols, int k, const float *a, int lda, const float *b, int ldb,
                                float *c, int ldc, __m256i tail) {
    // Missing rows and columns read row 0 or column 0 again; their sums are not stored.
    const float *a0 = a, *a1 = a + (rows > 1 ? lda : 0), *a2 = a + (rows > 2 ? 2 * lda : 0), *a3 = a + (rows > 3 ? 3 * lda : 0);
    const float *b0 = b, *b1 = b + (cols > 1 ? ldb : 0);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    int p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 x0 = _mm256_loadu_ps(b0 + p), x1 = _mm256_loadu_ps(b1 + p);
        __m256 r = _mm256_loadu_ps(a0 + p);
        c00 = _mm256_fmadd_ps(r, x0, c00); c01 = _mm256_fmadd_ps(r, x1, c01);
        r = _mm256_loadu_ps(a1 + p);
        c10 = _mm256_fmadd_ps(r, x0, c10); c11 = _mm256_fmadd_ps(r, x1, c11);
        r = _mm256_loadu_ps(a2 + p);
        c20 = _mm256_fmadd_ps(r, x0, c20); c21 = _mm256_fmadd_ps(r, x1, c21);
        r = _mm256_loadu_ps(a3 + p);
        c30 = _mm256_fmadd_ps(r, x0, c30); c31 = _mm256_fmadd_ps(r, x1, c31);
    }
    if (p < k) {
        // The last k mod 8 values: masked loads read zeros past the end.
        __m256 x0 = _mm256_maskload_ps(b0 + p, tail), x1 = _mm256_maskload_ps(b1 + p, tail);
        __m256 r = _mm256_maskload_ps(a0 + p, tail);
        c00 = _mm256_fmadd_ps(r, x0, c00); c01 = _mm256_fmadd_ps(r, x1, c01);
        r = _mm256_maskload_ps(a1 + p, tail);
        c10 = _mm256_fmadd_ps(r, x0, c10); c11 = _mm256_fmadd_ps(r, x1, c11);
        r = _mm256_maskload_ps(a2 + p, tail);
        c20 = _mm256_fmadd_ps(r, x0, c20); c21 = _mm256_fmadd_ps(r, x1, c21);
        r = _mm256_maskload_ps(a3 + p, tail);
        c30 = _mm256_fmadd_ps(r, x0, c30); c31 = _mm256_fmadd_ps(r, x1, c31);
    }
    float s[8];
    // s = [c00, c01, c10, c11 | c20, c21, c30, c31]
    _mm_storeu_ps(s, sum4(c00, c01, c10, c11));
    _mm_storeu_ps(s + 4, sum4(c20, c21, c30, c31));
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) c[i * ldc + j] = s[2 * i + j];
    }
}

NUDGE_AVX2 void nudge_sgemm_nt_small(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    int rem = k & 7;
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), lanes);
    for (int i = 0; i < m; i += 4) {
        int rows = m - i < 4 ? m - i : 4;
        for (int j = 0; j < n; j += 2) {
            block4x2(rows, n - j < 2 ? n - j : 2, k, a + (long)i * lda, lda, b + (long)j * ldb, ldb, c + (long)i * ldc + j, ldc, tail);
        }
    }
}

#else

int nudge_has_avx2_fma(void) { return 0; }

void nudge_sgemm_nt_small(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
}

#endif
