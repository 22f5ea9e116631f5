// bf16 weight products over a frozen weight W (n×k) held as the top 16 bits of its Float32 values
// (see the header). Three x86 kernels, chosen at run time:
//  - AVX2+FMA: 8 weights widened to Float32 by a 16-bit shift, multiplied into Float32 x;
//  - AVX-512: the same on 16 lanes (masked loads for x's last columns);
//  - AVX512_BF16: `vdpbf16ps` on x rounded to bf16 too (32 products per instruction, each pair of
//    exact bf16 products summed into a Float32 accumulator), for callers that accept x's rounding.
// Each value of y (or dx) is one sum in a fixed order, so splitting the work over outputs (or
// column blocks) gives the same bits whatever the thread count.

#include "CNudgeKernels.h"
#include "prefetch.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <cpuid.h>
#include <immintrin.h>

#define BF16_AVX2 __attribute__((target("avx2,fma")))
#define BF16_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define BF16_DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

int nudge_bf16_best_kernel(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        // AVX512_BF16 is CPUID leaf 7, sub-leaf 1, EAX bit 5 (the OS support for the 512-bit state
        // was checked by `avx512f` above).
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5))) return NUDGE_BF16_DOT;
        return NUDGE_BF16_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NUDGE_BF16_AVX2;
    return NUDGE_BF16_NONE;
}

/// Eight bf16 weights as floats (the bits shifted into the top half of each lane).
BF16_AVX2 static inline __m256 widen8(const unsigned short *w) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)w)), 16));
}

/// Sixteen bf16 weights as floats.
BF16_AVX512 static inline __m512 widen16(const unsigned short *w) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)w)), 16));
}

/// The sum of a vector's eight lanes in a fixed order.
BF16_AVX2 static inline float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// The sum of a vector's sixteen lanes in a fixed order.
BF16_AVX512 static inline float sum16(__m512 v) {
    // (the upper half through a double cast: `extractf32x8` would need AVX512DQ)
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The forward drivers below prefetch weight rows ahead (prefetch.h): SmolLM2's MLP at 16 rows,
// AVX512_BF16 on one core: 331 µs a product without, 184 µs with, 154 µs from cache.

// Forward tiles: up to 4 rows of x × 2 or 4 outputs (rows of W), each weight vector widened once
// for every row and each x vector loaded once for every output. The tile is compiled once per
// row count (1–4, a constant after inlining), so a single decoding row does no work for absent
// rows; missing outputs repeat the first one and their sums are not stored.

#define INLINE __attribute__((always_inline)) inline

BF16_AVX2 static INLINE void tile_avx2(const int rows, int k, const float *const *xr, const unsigned short *const *wo,
                                       const char *const *next, int prefetches, float out[4][3]) {
    const int k8 = k / 8 * 8;
    __m256 a[4][3];
    for (int i = 0; i < rows; i++) a[i][0] = a[i][1] = a[i][2] = _mm256_setzero_ps();
    for (int c = 0; c < k8; c += 8) {
        // One prefetch per 64-byte line (32 weights) of each row to fetch.
        if ((c & 31) == 0) for (int j = 0; j < prefetches; j++) _mm_prefetch(next[j] + 2 * c, _MM_HINT_T1);
        const __m256 v0 = widen8(wo[0] + c), v1 = widen8(wo[1] + c), v2 = widen8(wo[2] + c);
        for (int i = 0; i < rows; i++) {
            const __m256 xv = _mm256_loadu_ps(xr[i] + c);
            a[i][0] = _mm256_fmadd_ps(xv, v0, a[i][0]);
            a[i][1] = _mm256_fmadd_ps(xv, v1, a[i][1]);
            a[i][2] = _mm256_fmadd_ps(xv, v2, a[i][2]);
        }
    }
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < 3; j++) {
            float s = sum8(a[i][j]);
            // The last k mod 8 columns one at a time: x has no padding to read.
            for (int c = k8; c < k; c++) {
                unsigned int bits = (unsigned int)wo[j][c] << 16;
                float wf;
                __builtin_memcpy(&wf, &bits, 4);
                s += xr[i][c] * wf;
            }
            out[i][j] = s;
        }
    }
}

BF16_AVX2 static void linear_avx2(int m, int n, int k, const float *x, long ldx, const unsigned short *w, long ldw, float *y,
                                  long ldy) {
    // Three outputs per pass: up to 4 rows × 3 outputs = 12 independent accumulators. The weight
    // rows are the outer loop, so each is read from memory once and from cache for the later rows
    // of x; the three rows three groups ahead are prefetched meanwhile (SmolLM2's MLP weight,
    // 8 rows, one Zen 3 core: see `NudgeBench --only decodekernels`).
    for (int o0 = 0; o0 < n; o0 += 3) {
        const int outs = n - o0 < 3 ? n - o0 : 3;
        const unsigned short *wo[3];
        for (int j = 0; j < 3; j++) wo[j] = w + (long)(o0 + (j < outs ? j : 0)) * ldw;
        for (int r0 = 0; r0 < m; r0 += 4) {
            const int rows = m - r0 < 4 ? m - r0 : 4;
            const float *xr[4];
            for (int i = 0; i < 4; i++) xr[i] = x + (long)(r0 + (i < rows ? i : 0)) * ldx;
            const char *pf[4];
            const int prefetches = rows_to_prefetch(m, n, o0, r0, 3, 9, w, 2 * ldw, pf);
            float out[4][3];
            switch (rows) {
            case 1: tile_avx2(1, k, xr, wo, pf, prefetches, out); break;
            case 2: tile_avx2(2, k, xr, wo, pf, prefetches, out); break;
            case 3: tile_avx2(3, k, xr, wo, pf, prefetches, out); break;
            default: tile_avx2(4, k, xr, wo, pf, prefetches, out); break;
            }
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < outs; j++) y[(long)(r0 + i) * ldy + o0 + j] = out[i][j];
        }
    }
}

BF16_AVX512 static INLINE void tile_avx512(const int rows, int k, const float *const *xr, const unsigned short *const *wo,
                                           const char *const *next, int prefetches, float out[4][4]) {
    const int k16 = k / 16 * 16;
    // x's last k mod 16 columns are read through a mask; W's rows are padded with zeros to a
    // multiple of 32, so the matching weight load stays inside the row.
    const __mmask16 tail = (__mmask16)((1u << (k - k16)) - 1);
    __m512 a[4][4];
    for (int i = 0; i < rows; i++) for (int j = 0; j < 4; j++) a[i][j] = _mm512_setzero_ps();
    for (int c = 0; c < k16; c += 16) {
        if ((c & 31) == 0) for (int j = 0; j < prefetches; j++) _mm_prefetch(next[j] + 2 * c, _MM_HINT_T1);
        __m512 v[4];
        for (int j = 0; j < 4; j++) v[j] = widen16(wo[j] + c);
        for (int i = 0; i < rows; i++) {
            const __m512 xv = _mm512_loadu_ps(xr[i] + c);
            for (int j = 0; j < 4; j++) a[i][j] = _mm512_fmadd_ps(xv, v[j], a[i][j]);
        }
    }
    if (k16 < k) {
        __m512 v[4];
        for (int j = 0; j < 4; j++) v[j] = widen16(wo[j] + k16);
        for (int i = 0; i < rows; i++) {
            const __m512 xv = _mm512_maskz_loadu_ps(tail, xr[i] + k16);
            for (int j = 0; j < 4; j++) a[i][j] = _mm512_fmadd_ps(xv, v[j], a[i][j]);
        }
    }
    for (int i = 0; i < rows; i++) for (int j = 0; j < 4; j++) out[i][j] = sum16(a[i][j]);
}

BF16_AVX512 static void linear_avx512(int m, int n, int k, const float *x, long ldx, const unsigned short *w, long ldw, float *y,
                                      long ldy) {
    // Weight rows outermost: each is read from memory once, from cache for the later rows of x.
    for (int o0 = 0; o0 < n; o0 += 4) {
        const int outs = n - o0 < 4 ? n - o0 : 4;
        const unsigned short *wo[4];
        for (int j = 0; j < 4; j++) wo[j] = w + (long)(o0 + (j < outs ? j : 0)) * ldw;
        for (int r0 = 0; r0 < m; r0 += 4) {
            const int rows = m - r0 < 4 ? m - r0 : 4;
            const char *pf[4];
            const int prefetches = rows_to_prefetch(m, n, o0, r0, 4, 8, w, 2 * ldw, pf);
            const float *xr[4];
            for (int i = 0; i < 4; i++) xr[i] = x + (long)(r0 + (i < rows ? i : 0)) * ldx;
            float out[4][4];
            switch (rows) {
            case 1: tile_avx512(1, k, xr, wo, pf, prefetches, out); break;
            case 2: tile_avx512(2, k, xr, wo, pf, prefetches, out); break;
            case 3: tile_avx512(3, k, xr, wo, pf, prefetches, out); break;
            default: tile_avx512(4, k, xr, wo, pf, prefetches, out); break;
            }
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < outs; j++) y[(long)(r0 + i) * ldy + o0 + j] = out[i][j];
        }
    }
}

BF16_DOT static INLINE void tile_dot(const int rows, int kp, const unsigned short *const *xr, const unsigned short *const *wo,
                                     const char *const *next, int prefetches, float out[4][4]) {
    __m512 a[4][4];
    for (int i = 0; i < rows; i++) for (int j = 0; j < 4; j++) a[i][j] = _mm512_setzero_ps();
    // Both operands are padded with zeros to a multiple of 32 values.
    for (int c = 0; c < kp; c += 32) {
        for (int j = 0; j < prefetches; j++) _mm_prefetch(next[j] + 2 * c, _MM_HINT_T1);
        __m512bh v[4];
        for (int j = 0; j < 4; j++) v[j] = (__m512bh)_mm512_loadu_si512((const void *)(wo[j] + c));
        for (int i = 0; i < rows; i++) {
            const __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(xr[i] + c));
            for (int j = 0; j < 4; j++) a[i][j] = _mm512_dpbf16_ps(a[i][j], xv, v[j]);
        }
    }
    for (int i = 0; i < rows; i++) for (int j = 0; j < 4; j++) out[i][j] = sum16(a[i][j]);
}

BF16_DOT static void linear_dot(int m, int n, int kp, const unsigned short *xb, long ldxb, const unsigned short *w, long ldw,
                                float *y, long ldy) {
    // Weight rows outermost: each is read from memory once, from cache for the later rows of x.
    for (int o0 = 0; o0 < n; o0 += 4) {
        const int outs = n - o0 < 4 ? n - o0 : 4;
        const unsigned short *wo[4];
        for (int j = 0; j < 4; j++) wo[j] = w + (long)(o0 + (j < outs ? j : 0)) * ldw;
        for (int r0 = 0; r0 < m; r0 += 4) {
            const int rows = m - r0 < 4 ? m - r0 : 4;
            const char *pf[4];
            const int prefetches = rows_to_prefetch(m, n, o0, r0, 4, 8, w, 2 * ldw, pf);
            const unsigned short *xr[4];
            for (int i = 0; i < 4; i++) xr[i] = xb + (long)(r0 + (i < rows ? i : 0)) * ldxb;
            float out[4][4];
            switch (rows) {
            case 1: tile_dot(1, kp, xr, wo, pf, prefetches, out); break;
            case 2: tile_dot(2, kp, xr, wo, pf, prefetches, out); break;
            case 3: tile_dot(3, kp, xr, wo, pf, prefetches, out); break;
            default: tile_dot(4, kp, xr, wo, pf, prefetches, out); break;
            }
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < outs; j++) y[(long)(r0 + i) * ldy + o0 + j] = out[i][j];
        }
    }
}

void nudge_bf16_linear(int kernel, int m, int n, int k, const float *x, long ldx, const unsigned short *xb, long ldxb,
                       const unsigned short *w, long ldw, float *y, long ldy) {
    if (m <= 0 || n <= 0) return;
    switch (kernel) {
    case NUDGE_BF16_DOT: linear_dot(m, n, (int)((k + 31) / 32 * 32), xb, ldxb, w, ldw, y, ldy); break;
    case NUDGE_BF16_AVX512: linear_avx512(m, n, k, x, ldx, w, ldw, y, ldy); break;
    case NUDGE_BF16_AVX2: linear_avx2(m, n, k, x, ldx, w, ldw, y, ldy); break;
    default: break;
    }
}

// Input gradients: blocks of 32 columns of dx, each summed over all n rows of W in order.

BF16_AVX2 static void backward_avx2(int m, int n, int k, int b0, int b1, const float *g, long ldg, const unsigned short *w,
                                    long ldw, float *dx, long lddx) {
    // Two rows of dx per pass: eight accumulators hold one block of each row.
    for (int r0 = 0; r0 < m; r0 += 2) {
        const int rows = m - r0 < 2 ? m - r0 : 2;
        const float *g0 = g + (long)r0 * ldg, *g1 = rows > 1 ? g0 + ldg : g0;
        for (int b = b0; b < b1; b++) {
            const long c = (long)b * 32;
            __m256 a[2][4];
            for (int i = 0; i < 2; i++) for (int j = 0; j < 4; j++) a[i][j] = _mm256_setzero_ps();
            for (int o = 0; o < n; o++) {
                const unsigned short *wb = w + (long)o * ldw + c;
                const __m256 s0 = _mm256_set1_ps(g0[o]), s1 = _mm256_set1_ps(g1[o]);
                for (int j = 0; j < 4; j++) {
                    const __m256 v = widen8(wb + 8 * j);
                    a[0][j] = _mm256_fmadd_ps(v, s0, a[0][j]);
                    a[1][j] = _mm256_fmadd_ps(v, s1, a[1][j]);
                }
            }
            const int width = k - c < 32 ? (int)(k - c) : 32;
            for (int i = 0; i < rows; i++) {
                float *out = dx + (long)(r0 + i) * lddx + c;
                if (width == 32) {
                    for (int j = 0; j < 4; j++) _mm256_storeu_ps(out + 8 * j, a[i][j]);
                } else {
                    // A partial last block: dx has no padding to write.
                    float t[32];
                    for (int j = 0; j < 4; j++) _mm256_storeu_ps(t + 8 * j, a[i][j]);
                    for (int j = 0; j < width; j++) out[j] = t[j];
                }
            }
        }
    }
}

BF16_AVX512 static void backward_avx512(int m, int n, int k, int b0, int b1, const float *g, long ldg, const unsigned short *w,
                                        long ldw, float *dx, long lddx) {
    // Four rows of dx per pass: eight accumulators hold one block (two vectors) of each row.
    for (int r0 = 0; r0 < m; r0 += 4) {
        const int rows = m - r0 < 4 ? m - r0 : 4;
        const float *gr[4];
        for (int i = 0; i < 4; i++) gr[i] = g + (long)(r0 + (i < rows ? i : 0)) * ldg;
        for (int b = b0; b < b1; b++) {
            const long c = (long)b * 32;
            __m512 a[4][2];
            for (int i = 0; i < 4; i++) a[i][0] = a[i][1] = _mm512_setzero_ps();
            for (int o = 0; o < n; o++) {
                const unsigned short *wb = w + (long)o * ldw + c;
                const __m512 v0 = widen16(wb), v1 = widen16(wb + 16);
                for (int i = 0; i < 4; i++) {
                    const __m512 s = _mm512_set1_ps(gr[i][o]);
                    a[i][0] = _mm512_fmadd_ps(v0, s, a[i][0]);
                    a[i][1] = _mm512_fmadd_ps(v1, s, a[i][1]);
                }
            }
            const int width = k - c < 32 ? (int)(k - c) : 32;
            const __mmask16 low = (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
            const __mmask16 high = (__mmask16)(width >= 32 ? 0xFFFF : width <= 16 ? 0 : (1u << (width - 16)) - 1);
            for (int i = 0; i < rows; i++) {
                float *out = dx + (long)(r0 + i) * lddx + c;
                _mm512_mask_storeu_ps(out, low, a[i][0]);
                _mm512_mask_storeu_ps(out + 16, high, a[i][1]);
            }
        }
    }
}

void nudge_bf16_linear_backward(int kernel, int m, int n, int k, int b0, int b1, const float *g, long ldg, const unsigned short *w,
                                long ldw, float *dx, long lddx) {
    if (m <= 0 || b1 <= b0) return;
    if (kernel >= NUDGE_BF16_AVX512) backward_avx512(m, n, k, b0, b1, g, ldg, w, ldw, dx, lddx);
    else if (kernel == NUDGE_BF16_AVX2) backward_avx2(m, n, k, b0, b1, g, ldg, w, ldw, dx, lddx);
}

#else

int nudge_bf16_best_kernel(void) { return NUDGE_BF16_NONE; }

void nudge_bf16_linear(int kernel, int m, int n, int k, const float *x, long ldx, const unsigned short *xb, long ldxb,
                       const unsigned short *w, long ldw, float *y, long ldy) {
    (void)kernel; (void)m; (void)n; (void)k; (void)x; (void)ldx; (void)xb; (void)ldxb; (void)w; (void)ldw; (void)y; (void)ldy;
}

void nudge_bf16_linear_backward(int kernel, int m, int n, int k, int b0, int b1, const float *g, long ldg, const unsigned short *w,
                                long ldw, float *dx, long lddx) {
    (void)kernel; (void)m; (void)n; (void)k; (void)b0; (void)b1; (void)g; (void)ldg; (void)w; (void)ldw; (void)dx; (void)lddx;
}

#endif

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
/// Sixteen values at a time, with the same integer rounding as the scalar loop below.
BF16_AVX512 static long to_bf16_avx512(long count, const float *x, unsigned short *out) {
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7FFF), abs = _mm512_set1_epi32(0x7FFFFFFF),
                  inf = _mm512_set1_epi32(0x7F800000), quiet = _mm512_set1_epi32(0x40);
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512i u = _mm512_loadu_si512((const void *)(x + i)), high = _mm512_srli_epi32(u, 16);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(half, _mm512_and_si512(high, one))), 16);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(high, quiet));
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtepi32_epi16(r));
    }
    return i;
}
#endif

void nudge_f32_to_bf16(long count, const float *x, unsigned short *out) {
    // Round to nearest, ties to even, as torch's `.to(torch.bfloat16)`; NaN stays a (quiet) NaN.
    long start = 0;
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    static int cached = -1;
    int kernel = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (kernel < 0) __atomic_store_n(&cached, kernel = nudge_bf16_best_kernel(), __ATOMIC_RELAXED);
    if (kernel >= NUDGE_BF16_AVX512) start = to_bf16_avx512(count, x, out);
#endif
    for (long i = start; i < count; i++) {
        unsigned int u;
        __builtin_memcpy(&u, x + i, 4);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
            out[i] = (unsigned short)((u >> 16) | 0x40);
        } else {
            out[i] = (unsigned short)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
        }
    }
}

const char *nudge_bf16_kernel_name(int kernel) {
    switch (kernel) {
    case NUDGE_BF16_DOT: return "AVX512_BF16";
    case NUDGE_BF16_AVX512: return "AVX-512";
    case NUDGE_BF16_AVX2: return "AVX2+FMA";
    default: return "none";
    }
}
