#include "CNudgeKernels.h"
#include "prefetch.h"

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

/// A block of up to 4 rows × 3 columns: twelve accumulators, the three rows of B in registers
/// and each row of A loaded once per eight k (seven loads for twelve FMAs; a 4 × 2 block needs
/// six for eight and ran at 58 % of the FMA peak on Zen 3). Each sum runs over k in the same lanes
/// and reduces in the same order whatever the block, so the shape does not change the bits.
NUDGE_AVX2 static void block4x3(int rows, int cols, int k, const float *a, int lda, const float *b, int ldb,
                                float *c, int ldc, __m256i tail, const char *const *next, int prefetches) {
    // Missing rows and columns read row 0 or column 0 again; their sums are not stored.
    const float *a0 = a, *a1 = a + (rows > 1 ? lda : 0), *a2 = a + (rows > 2 ? 2 * lda : 0), *a3 = a + (rows > 3 ? 3 * lda : 0);
    const float *b0 = b, *b1 = b + (cols > 1 ? ldb : 0), *b2 = b + (cols > 2 ? 2 * ldb : 0);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
#define NUDGE_BLOCK4X3_STEP(LOAD)                                                                                    \
    {                                                                                                                \
        __m256 x0 = LOAD(b0 + p), x1 = LOAD(b1 + p), x2 = LOAD(b2 + p);                                            \
        __m256 r = LOAD(a0 + p);                                                                                     \
        c00 = _mm256_fmadd_ps(r, x0, c00); c01 = _mm256_fmadd_ps(r, x1, c01); c02 = _mm256_fmadd_ps(r, x2, c02);    \
        r = LOAD(a1 + p);                                                                                            \
        c10 = _mm256_fmadd_ps(r, x0, c10); c11 = _mm256_fmadd_ps(r, x1, c11); c12 = _mm256_fmadd_ps(r, x2, c12);    \
        r = LOAD(a2 + p);                                                                                            \
        c20 = _mm256_fmadd_ps(r, x0, c20); c21 = _mm256_fmadd_ps(r, x1, c21); c22 = _mm256_fmadd_ps(r, x2, c22);    \
        r = LOAD(a3 + p);                                                                                            \
        c30 = _mm256_fmadd_ps(r, x0, c30); c31 = _mm256_fmadd_ps(r, x1, c31); c32 = _mm256_fmadd_ps(r, x2, c32);    \
    }
#define NUDGE_LOAD_FULL(ptr) _mm256_loadu_ps(ptr)
#define NUDGE_LOAD_TAIL(ptr) _mm256_maskload_ps(ptr, tail)
    int p = 0;
    for (; p + 8 <= k; p += 8) {
        // One prefetch per 64-byte line of each row to fetch.
        if (!(p & 15))
            for (int j = 0; j < prefetches; j++) _mm_prefetch(next[j] + 4 * p, _MM_HINT_T1);
        NUDGE_BLOCK4X3_STEP(NUDGE_LOAD_FULL)
    }
    // The last k mod 8 values: masked loads read zeros past the end.
    if (p < k) NUDGE_BLOCK4X3_STEP(NUDGE_LOAD_TAIL)
#undef NUDGE_LOAD_FULL
#undef NUDGE_LOAD_TAIL
#undef NUDGE_BLOCK4X3_STEP
    float s[12];
    // s = [c00, c01, c02, c10 | c11, c12, c20, c21 | c22, c30, c31, c32]
    _mm_storeu_ps(s, sum4(c00, c01, c02, c10));
    _mm_storeu_ps(s + 4, sum4(c11, c12, c20, c21));
    _mm_storeu_ps(s + 8, sum4(c22, c30, c31, c32));
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) c[i * ldc + j] = s[3 * i + j];
    }
}

#define NUDGE_AVX512 __attribute__((target("avx512f,avx2,fma")))

/// A block of up to 4 rows × 4 columns in sixteen 16-lane accumulators: the four rows of B and
/// each row of A loaded once per sixteen k, so FMAs, not loads, bound the loop.
NUDGE_AVX512 static void block4x4_512(int rows, int cols, int k, const float *a, int lda, const float *b, int ldb,
                                      float *c, int ldc, __mmask16 tail, const char *const *next, int prefetches) {
    // Missing rows and columns read row 0 or column 0 again; their sums are not stored.
    const float *a0 = a, *a1 = a + (rows > 1 ? lda : 0), *a2 = a + (rows > 2 ? 2 * lda : 0), *a3 = a + (rows > 3 ? 3 * lda : 0);
    const float *b0 = b, *b1 = b + (cols > 1 ? ldb : 0), *b2 = b + (cols > 2 ? 2 * ldb : 0), *b3 = b + (cols > 3 ? 3 * ldb : 0);
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    int p = 0;
    for (; p < k; p += 16) {
        __mmask16 m = p + 16 <= k ? (__mmask16)0xFFFF : tail;
        for (int j = 0; j < prefetches; j++) _mm_prefetch(next[j] + 4 * p, _MM_HINT_T1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, b0 + p), x1 = _mm512_maskz_loadu_ps(m, b1 + p);
        __m512 x2 = _mm512_maskz_loadu_ps(m, b2 + p), x3 = _mm512_maskz_loadu_ps(m, b3 + p);
        __m512 r = _mm512_maskz_loadu_ps(m, a0 + p);
        c00 = _mm512_fmadd_ps(r, x0, c00); c01 = _mm512_fmadd_ps(r, x1, c01); c02 = _mm512_fmadd_ps(r, x2, c02); c03 = _mm512_fmadd_ps(r, x3, c03);
        r = _mm512_maskz_loadu_ps(m, a1 + p);
        c10 = _mm512_fmadd_ps(r, x0, c10); c11 = _mm512_fmadd_ps(r, x1, c11); c12 = _mm512_fmadd_ps(r, x2, c12); c13 = _mm512_fmadd_ps(r, x3, c13);
        r = _mm512_maskz_loadu_ps(m, a2 + p);
        c20 = _mm512_fmadd_ps(r, x0, c20); c21 = _mm512_fmadd_ps(r, x1, c21); c22 = _mm512_fmadd_ps(r, x2, c22); c23 = _mm512_fmadd_ps(r, x3, c23);
        r = _mm512_maskz_loadu_ps(m, a3 + p);
        c30 = _mm512_fmadd_ps(r, x0, c30); c31 = _mm512_fmadd_ps(r, x1, c31); c32 = _mm512_fmadd_ps(r, x2, c32); c33 = _mm512_fmadd_ps(r, x3, c33);
    }
    __m512 acc[16] = {c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33};
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) c[(long)i * ldc + j] = _mm512_reduce_add_ps(acc[4 * i + j]);
    }
}

NUDGE_AVX512 static void sgemm_nt_small_512(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1u);
    // Weight rows outermost: each block of four rows of W is read from memory once and stays in
    // L1 while every block of four rows of A (a few rows, in L2) meets it. The block two ahead is
    // prefetched into L2 meanwhile, spread over the row blocks: the hardware prefetcher alone
    // leaves the core waiting on DRAM between blocks (SmolLM2's 1536 × 576 MLP weight on one
    // core: 304 µs a product without, 177 µs with for one row; 423 and 217 µs for eight).
    for (int j = 0; j < n; j += 4) {
        for (int i = 0; i < m; i += 4) {
            const char *pf[4];
            int prefetches = rows_to_prefetch(m, n, j, i, 4, 8, b, 4L * ldb, pf);
            block4x4_512(m - i < 4 ? m - i : 4, n - j < 4 ? n - j : 4, k, a + (long)i * lda, lda, b + (long)j * ldb, ldb,
                         c + (long)i * ldc + j, ldc, tail, pf, prefetches);
        }
    }
}

NUDGE_AVX2 static void sgemm_nt_small_avx2(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    int rem = k & 7;
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), lanes);
    // Weight rows outermost: each three of W's rows are read from memory once and stay in L1
    // while every block of four rows of A meets them (A, a few rows, stays in L2). As in the
    // AVX-512 kernel, the rows GROUPS_AHEAD groups ahead are prefetched into L2, spread over the
    // row blocks (SmolLM2's 576 × 1536 weight, 8 rows, one Zen 3 core: 503 µs from memory
    // without, 301 µs with; 2 and 4 groups ahead measured within noise of 3, 6 slower).
    enum { GROUPS_AHEAD = 3 };
    for (int j = 0; j < n; j += 3) {
        for (int i = 0; i < m; i += 4) {
            const char *pf[3];
            int prefetches = rows_to_prefetch(m, n, j, i, 3, 3 * GROUPS_AHEAD, b, 4L * ldb, pf);
            int rows = m - i < 4 ? m - i : 4;
            block4x3(rows, n - j < 3 ? n - j : 3, k, a + (long)i * lda, lda, b + (long)j * ldb, ldb, c + (long)i * ldc + j, ldc, tail,
                     pf, prefetches);
        }
    }
}

int nudge_small_product_kernel(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
    return nudge_has_avx2_fma() ? 1 : 0;
}

void nudge_sgemm_nt_small_kernel(int kernel, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    if (kernel == 2) sgemm_nt_small_512(m, n, k, a, lda, b, ldb, c, ldc);
    else sgemm_nt_small_avx2(m, n, k, a, lda, b, ldb, c, ldc);
}

void nudge_sgemm_nt_small(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    static int best = -1;
    if (best < 0) best = nudge_small_product_kernel();
    nudge_sgemm_nt_small_kernel(best, m, n, k, a, lda, b, ldb, c, ldc);
}

/// eˣ on eight lanes: the same range reduction and polynomial as NudgeTensor's `vexp` (relative
/// error about 2e-7; 0 below −87.3).
NUDGE_AVX2 static inline __m256 exp8(__m256 x0) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365447504019f);
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 x = _mm256_max_ps(_mm256_min_ps(x0, hi), lo);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 poly = _mm256_set1_ps(1.9875691500e-4f);
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.3981999507e-3f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(8.3334519073e-3f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(4.1665795894e-2f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.6666665459e-1f));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(5.0000001201e-1f));
    poly = _mm256_add_ps(_mm256_fmadd_ps(poly, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic)), _mm256_set1_epi32(127));
    __m256 result = _mm256_mul_ps(poly, _mm256_castsi256_ps(_mm256_slli_epi32(exponent, 23)));
    return _mm256_andnot_ps(_mm256_cmp_ps(x0, lo, _CMP_LT_OQ), result);
}

/// Lanes i < n set (a mask for the last partial vector).
NUDGE_AVX2 static inline __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// q·k over d values, eight lanes at a time.
NUDGE_AVX2 static inline __m256 dot_lanes(const float *q, const float *k, int d, __m256i tail) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= d; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), acc);
    if (i < d) acc = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, tail), _mm256_maskload_ps(k + i, tail), acc);
    return acc;
}

NUDGE_AVX2 void nudge_attend_one_query(const float *q, const float *keys, const float *values, int stride, int count, int d, float alpha,
                                       const float *mask, float *p, float *out) {
    __m256i tail = lanes_below(d & 7);
    // Scores, four keys at a time.
    int j = 0;
    for (; j + 4 <= count; j += 4) {
        const float *k = keys + (long)j * stride;
        __m128 s = sum4(dot_lanes(q, k, d, tail), dot_lanes(q, k + stride, d, tail), dot_lanes(q, k + 2 * stride, d, tail),
                        dot_lanes(q, k + 3 * (long)stride, d, tail));
        s = _mm_mul_ps(s, _mm_set1_ps(alpha));
        if (mask) s = _mm_add_ps(s, _mm_loadu_ps(mask + j));
        _mm_storeu_ps(p + j, s);
    }
    for (; j < count; j++) {
        const float *k = keys + (long)j * stride;
        __m128 s = sum4(dot_lanes(q, k, d, tail), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
        p[j] = alpha * _mm_cvtss_f32(s) + (mask ? mask[j] : 0.0f);
    }
    // Softmax over the scores.
    float m = p[0];
    for (j = 1; j < count; j++) m = p[j] > m ? p[j] : m;
    __m256 shift = _mm256_set1_ps(m), total8 = _mm256_setzero_ps();
    for (j = 0; j + 8 <= count; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j), shift));
        _mm256_storeu_ps(p + j, e);
        total8 = _mm256_add_ps(total8, e);
    }
    if (j < count) {
        __m256i rest = lanes_below(count - j);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(p + j, rest), shift)), _mm256_castsi256_ps(rest));
        _mm256_maskstore_ps(p + j, rest, e);
        total8 = _mm256_add_ps(total8, e);
    }
    float total = _mm_cvtss_f32(sum4(total8, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()));
    __m256 inverse = _mm256_set1_ps(1.0f / total);
    for (j = 0; j + 8 <= count; j += 8) _mm256_storeu_ps(p + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), inverse));
    for (; j < count; j++) p[j] *= 1.0f / total;
    // out = Σ p_j·v_j, up to 32 values of d per pass over the keys.
    for (int i0 = 0; i0 < d; i0 += 32) {
        int width = d - i0 < 32 ? d - i0 : 32;
        int full = width / 8;
        __m256i last = lanes_below(width & 7);
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (j = 0; j < count; j++) {
            const float *v = values + (long)j * stride + i0;
            __m256 w = _mm256_set1_ps(p[j]);
            if (full == 4) {
                o0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), o0);
                o1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), o1);
                o2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 16), o2);
                o3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 24), o3);
            } else {
                __m256 *o[4] = {&o0, &o1, &o2, &o3};
                for (int b = 0; b < full; b++) *o[b] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8 * b), *o[b]);
                if (width & 7) *o[full] = _mm256_fmadd_ps(w, _mm256_maskload_ps(v + 8 * full, last), *o[full]);
            }
        }
        __m256 o[4] = {o0, o1, o2, o3};
        for (int b = 0; b < full; b++) _mm256_storeu_ps(out + i0 + 8 * b, o[b]);
        if (width & 7) _mm256_maskstore_ps(out + i0 + 8 * full, last, o[full]);
    }
}

#else

int nudge_has_avx2_fma(void) { return 0; }

void nudge_attend_one_query(const float *q, const float *keys, const float *values, int stride, int count, int d, float alpha,
                            const float *mask, float *p, float *out) {
    (void)q; (void)keys; (void)values; (void)stride; (void)count; (void)d; (void)alpha; (void)mask; (void)p; (void)out;
}

int nudge_small_product_kernel(void) { return 0; }

void nudge_sgemm_nt_small_kernel(int kernel, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    (void)kernel; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
}

void nudge_sgemm_nt_small(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
}

#endif
