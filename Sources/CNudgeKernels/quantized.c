// Q8_0 weight products for QLoRA-style training over a frozen quantized base (see the header).
// Blocks of 32 int8 values with one float scale: 8 values at a time are widened (cvtepi8_epi32),
// converted (cvtepi32_ps) and scaled in registers, then multiplied into float accumulators.

#include "CNudgeKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define NUDGE_AVX2 __attribute__((target("avx2,fma")))

/// Eight int8 weights as floats.
NUDGE_AVX2 static inline __m256 widen8(const signed char *q) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
}

/// The sum of the eight lanes of each of four accumulators, in a fixed order.
NUDGE_AVX2 static inline __m128 sum4(__m256 x, __m256 y, __m256 z, __m256 w) {
    __m256 xy = _mm256_hadd_ps(x, y), zw = _mm256_hadd_ps(z, w);
    __m256 s = _mm256_hadd_ps(xy, zw);
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

NUDGE_AVX2 void nudge_q8_linear(int m, int n, int k, const float *x, long ldx, const signed char *q, const float *d, float *y, long ldy) {
    const long kp = (k + 31) / 32 * 32, nbp = kp / 32;
    const int full = k / 32;
    // Four rows of x per pass, so each block of W is widened once for four dot products.
    for (int r0 = 0; r0 < m; r0 += 4) {
        const int rows = m - r0 < 4 ? m - r0 : 4;
        // Missing rows read row 0 again; their sums are not stored.
        const float *x0 = x + (long)r0 * ldx;
        const float *x1 = rows > 1 ? x0 + ldx : x0, *x2 = rows > 2 ? x0 + 2 * ldx : x0, *x3 = rows > 3 ? x0 + 3 * ldx : x0;
        for (int o = 0; o < n; o++) {
            const signed char *qo = q + o * kp;
            const float *dq = d + o * nbp;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int b = 0; b < full; b++) {
                const __m256 scale = _mm256_set1_ps(dq[b]);
                const signed char *qb = qo + b * 32;
                const long c = (long)b * 32;
                for (int j = 0; j < 4; j++) {
                    __m256 w = _mm256_mul_ps(widen8(qb + 8 * j), scale);
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + c + 8 * j), w, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + c + 8 * j), w, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + c + 8 * j), w, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + c + 8 * j), w, a3);
                }
            }
            float s[4];
            _mm_storeu_ps(s, sum4(a0, a1, a2, a3));
            // The last k mod 32 columns (a partial block), one at a time: x has no padding to read.
            if (full * 32 < k) {
                const float scale = dq[full];
                for (int c = full * 32; c < k; c++) {
                    const float w = (float)qo[c] * scale;
                    s[0] += x0[c] * w; s[1] += x1[c] * w; s[2] += x2[c] * w; s[3] += x3[c] * w;
                }
            }
            for (int i = 0; i < rows; i++) y[(long)(r0 + i) * ldy + o] = s[i];
        }
    }
}

NUDGE_AVX2 void nudge_q8_linear_backward(int m, int n, int k, int b0, int b1, const float *g, long ldg, const signed char *q,
                                         const float *d, float *dx, long lddx) {
    const long kp = (k + 31) / 32 * 32, nbp = kp / 32;
    // Two rows of dx per pass: eight accumulators hold one block (32 columns) of each row while
    // the loop runs down the block's column of W.
    for (int r0 = 0; r0 < m; r0 += 2) {
        const int rows = m - r0 < 2 ? m - r0 : 2;
        const float *g0 = g + (long)r0 * ldg, *g1 = rows > 1 ? g0 + ldg : g0;
        for (int b = b0; b < b1; b++) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            for (int o = 0; o < n; o++) {
                const signed char *qb = q + o * kp + (long)b * 32;
                const float scale = d[o * nbp + b];
                const __m256 s0 = _mm256_set1_ps(g0[o] * scale), s1 = _mm256_set1_ps(g1[o] * scale);
                __m256 w = widen8(qb);
                a0 = _mm256_fmadd_ps(w, s0, a0); c0 = _mm256_fmadd_ps(w, s1, c0);
                w = widen8(qb + 8);
                a1 = _mm256_fmadd_ps(w, s0, a1); c1 = _mm256_fmadd_ps(w, s1, c1);
                w = widen8(qb + 16);
                a2 = _mm256_fmadd_ps(w, s0, a2); c2 = _mm256_fmadd_ps(w, s1, c2);
                w = widen8(qb + 24);
                a3 = _mm256_fmadd_ps(w, s0, a3); c3 = _mm256_fmadd_ps(w, s1, c3);
            }
            const long c = (long)b * 32;
            const int width = k - c < 32 ? (int)(k - c) : 32;
            float *out0 = dx + (long)r0 * lddx + c, *out1 = out0 + lddx;
            if (width == 32) {
                _mm256_storeu_ps(out0, a0); _mm256_storeu_ps(out0 + 8, a1);
                _mm256_storeu_ps(out0 + 16, a2); _mm256_storeu_ps(out0 + 24, a3);
                if (rows > 1) {
                    _mm256_storeu_ps(out1, c0); _mm256_storeu_ps(out1 + 8, c1);
                    _mm256_storeu_ps(out1 + 16, c2); _mm256_storeu_ps(out1 + 24, c3);
                }
            } else {
                // A partial last block: dx has no padding to write.
                float t[64];
                _mm256_storeu_ps(t, a0); _mm256_storeu_ps(t + 8, a1); _mm256_storeu_ps(t + 16, a2); _mm256_storeu_ps(t + 24, a3);
                _mm256_storeu_ps(t + 32, c0); _mm256_storeu_ps(t + 40, c1); _mm256_storeu_ps(t + 48, c2); _mm256_storeu_ps(t + 56, c3);
                for (int j = 0; j < width; j++) out0[j] = t[j];
                if (rows > 1) for (int j = 0; j < width; j++) out1[j] = t[32 + j];
            }
        }
    }
}

/// The 32 weights of one Q4_1 block, q·d + m, as four vectors of eight (values 0–7, 8–15, 16–23, 24–31).
NUDGE_AVX2 static inline void q4_1_block(const unsigned char *qb, __m256 scale, __m256 minimum, __m256 w[4]) {
    const __m128i bytes = _mm_loadu_si128((const __m128i *)qb), mask = _mm_set1_epi8(0x0F);
    const __m128i low = _mm_and_si128(bytes, mask), high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(low)), scale, minimum);
    w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(low, 8))), scale, minimum);
    w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(high)), scale, minimum);
    w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(high, 8))), scale, minimum);
}

NUDGE_AVX2 void nudge_q4_1_linear(int m, int n, int k, const float *x, long ldx, const unsigned char *q, const float *d, const float *mins,
                                  float *y, long ldy) {
    const int nb = k / 32;
    // Four rows of x per pass, so each block of W is unpacked once for four dot products.
    for (int r0 = 0; r0 < m; r0 += 4) {
        const int rows = m - r0 < 4 ? m - r0 : 4;
        const float *x0 = x + (long)r0 * ldx;
        const float *x1 = rows > 1 ? x0 + ldx : x0, *x2 = rows > 2 ? x0 + 2 * ldx : x0, *x3 = rows > 3 ? x0 + 3 * ldx : x0;
        for (int o = 0; o < n; o++) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int b = 0; b < nb; b++) {
                const long index = (long)o * nb + b, c = (long)b * 32;
                __m256 w[4];
                q4_1_block(q + index * 16, _mm256_set1_ps(d[index]), _mm256_set1_ps(mins[index]), w);
                for (int j = 0; j < 4; j++) {
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + c + 8 * j), w[j], a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + c + 8 * j), w[j], a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + c + 8 * j), w[j], a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + c + 8 * j), w[j], a3);
                }
            }
            float s[4];
            _mm_storeu_ps(s, sum4(a0, a1, a2, a3));
            for (int i = 0; i < rows; i++) y[(long)(r0 + i) * ldy + o] = s[i];
        }
    }
}

#else

void nudge_q4_1_linear(int m, int n, int k, const float *x, long ldx, const unsigned char *q, const float *d, const float *mins,
                       float *y, long ldy) {
    (void)m; (void)n; (void)k; (void)x; (void)ldx; (void)q; (void)d; (void)mins; (void)y; (void)ldy;
}

void nudge_q8_linear(int m, int n, int k, const float *x, long ldx, const signed char *q, const float *d, float *y, long ldy) {
    (void)m; (void)n; (void)k; (void)x; (void)ldx; (void)q; (void)d; (void)y; (void)ldy;
}

void nudge_q8_linear_backward(int m, int n, int k, int b0, int b1, const float *g, long ldg, const signed char *q,
                              const float *d, float *dx, long lddx) {
    (void)m; (void)n; (void)k; (void)b0; (void)b1; (void)g; (void)ldg; (void)q; (void)d; (void)dx; (void)lddx;
}

#endif
