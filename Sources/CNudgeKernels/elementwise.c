// Bulk elementwise kernels for x86-64 (AVX2 and AVX-512F), chosen at run time like nudge_sgemm:
// same-shape binary ops, tensor-scalar ops, exp / tanh / sigmoid / SiLU / tanh-GELU and their
// backward rules, and softmax / log-softmax over contiguous rows with their backward rules.
//
// Same bits everywhere: every kernel is a fixed sequence of IEEE additions, multiplications and
// divisions, with no FMA (the file turns contraction off), so the AVX2 and AVX-512 kernels agree
// bit for bit, and the unary maps agree with NudgeTensor's SIMD8 vexp / vtanh / vsigmoid (compiled
// for SSE, where there is no FMA) operation for operation. The row kernels sum each row in blocks
// of 16 lanes (AVX2: two vectors of 8; AVX-512: one of 16), then add lane j and j + 8, then j and
// j + 4, j and j + 2, and the last two: the same order on both sets. Each row and each element is
// computed the same way however the caller splits the work, so results do not depend on threads.
//
// The instruction-set-specific code is written once in elementwise_body.h and included twice.

#include "CNudgeKernels.h"
#include <math.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define TARGET_EW_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_EW_AVX512 __attribute__((target("avx512f,avx2,fma")))

/// s8[0] + … + s8[7] as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
TARGET_EW_AVX2 static inline float sum8(__m256 s8) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

TARGET_EW_AVX2 static inline float max8(__m256 s8) {
    __m128 s4 = _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_max_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// ---- AVX2 ----

TARGET_EW_AVX2 static inline __m256i ew_lanes_below(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
TARGET_EW_AVX2 static inline __m256 avx2_zero_lt(__m256 v, __m256 x, __m256 c) {
    return _mm256_andnot_ps(_mm256_cmp_ps(x, c, _CMP_LT_OQ), v);
}
TARGET_EW_AVX2 static inline __m256 avx2_exp2i(__m256 t) {
    __m256i e = _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000)), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}

#define TARGET TARGET_EW_AVX2
#define SFX(name) name##_avx2
#define W 8
#define vf __m256
#define vld(p) _mm256_loadu_ps(p)
#define vst(p, v) _mm256_storeu_ps(p, v)
#define vldn(p, n) _mm256_maskload_ps(p, ew_lanes_below(n))
#define vstn(p, v, n) _mm256_maskstore_ps(p, ew_lanes_below(n), v)
#define vzeron(v, n) _mm256_and_ps(v, _mm256_castsi256_ps(ew_lanes_below(n)))
#define vset(x) _mm256_set1_ps(x)
#define vadd _mm256_add_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vdiv _mm256_div_ps
#define vmin _mm256_min_ps
#define vmax _mm256_max_ps
#define vneg(v) _mm256_xor_ps(v, _mm256_set1_ps(-0.0f))
#define vzero_lt avx2_zero_lt
#define vexp2i avx2_exp2i
#define vsum16(acc) sum8(_mm256_add_ps((acc)[0], (acc)[1]))
#define vmax16(acc) max8(_mm256_max_ps((acc)[0], (acc)[1]))
#include "elementwise_body.h"
#include "elementwise_undef.h"

// ---- AVX-512F ----

TARGET_EW_AVX512 static inline __mmask16 ew_mask16(long n) { return (__mmask16)((1u << n) - 1u); }
TARGET_EW_AVX512 static inline __m512 avx512_zero_lt(__m512 v, __m512 x, __m512 c) {
    return _mm512_maskz_mov_ps((__mmask16)~_mm512_cmp_ps_mask(x, c, _CMP_LT_OQ), v);
}
TARGET_EW_AVX512 static inline __m512 avx512_exp2i(__m512 t) {
    __m512i e = _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000)), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
TARGET_EW_AVX512 static inline __m512 avx512_neg(__m512 v) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)));
}
TARGET_EW_AVX512 static inline __m256 high256(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

#define TARGET TARGET_EW_AVX512
#define SFX(name) name##_avx512
#define W 16
#define vf __m512
#define vld(p) _mm512_loadu_ps(p)
#define vst(p, v) _mm512_storeu_ps(p, v)
#define vldn(p, n) _mm512_maskz_loadu_ps(ew_mask16(n), p)
#define vstn(p, v, n) _mm512_mask_storeu_ps(p, ew_mask16(n), v)
#define vzeron(v, n) _mm512_maskz_mov_ps(ew_mask16(n), v)
#define vset(x) _mm512_set1_ps(x)
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vdiv _mm512_div_ps
#define vmin _mm512_min_ps
#define vmax _mm512_max_ps
#define vneg avx512_neg
#define vzero_lt avx512_zero_lt
#define vexp2i avx512_exp2i
#define vsum16(acc) sum8(_mm256_add_ps(_mm512_castps512_ps256((acc)[0]), high256((acc)[0])))
#define vmax16(acc) max8(_mm256_max_ps(_mm512_castps512_ps256((acc)[0]), high256((acc)[0])))
#include "elementwise_body.h"
#include "elementwise_undef.h"

// ---- entry points ----

#define DISPATCH(name, ...) \
    do { \
        if (kernel == NUDGE_SGEMM_AVX512) name##_avx512(__VA_ARGS__); \
        else if (kernel == NUDGE_SGEMM_AVX2) name##_avx2(__VA_ARGS__); \
    } while (0)

void nudge_ew_binary(int kernel, int op, const float *a, const float *b, float *y, long n) {
    DISPATCH(binary, op, a, b, y, n);
}
void nudge_ew_scalar(int kernel, int op, const float *a, float s, float *y, long n) {
    DISPATCH(scalar, op, a, s, y, n);
}
void nudge_ew_unary(int kernel, int op, const float *x, float *y, long n) {
    DISPATCH(unary, op, x, y, n);
}
void nudge_ew_unary_backward(int kernel, int op, const float *g, const float *x, const float *y, float *dx, long n) {
    DISPATCH(unary_backward, op, g, x, y, dx, n);
}
void nudge_softmax_rows(int kernel, const float *x, float *y, long rows, long n) {
    DISPATCH(softmax_rows, x, y, rows, n);
}
float nudge_max_exp_sum(int kernel, const float *x, float *e, long n, float *max) {
    if (kernel == NUDGE_SGEMM_AVX512) return max_exp_sum_avx512(x, e, n, max);
    if (kernel == NUDGE_SGEMM_AVX2) return max_exp_sum_avx2(x, e, n, max);
    return 0.0f;
}
void nudge_log_softmax_rows(int kernel, const float *x, float *y, long rows, long n) {
    DISPATCH(log_softmax_rows, x, y, rows, n);
}
void nudge_softmax_backward_rows(int kernel, const float *g, const float *y, float *dx, long rows, long n) {
    DISPATCH(softmax_backward_rows, g, y, dx, rows, n);
}
void nudge_log_softmax_backward_rows(int kernel, const float *g, const float *y, float *dx, long rows, long n) {
    DISPATCH(log_softmax_backward_rows, g, y, dx, rows, n);
}

#else

// No kernels off x86-64: nudge_sgemm_best_kernel() is NUDGE_SGEMM_NONE there, so these are never called.
void nudge_ew_binary(int kernel, int op, const float *a, const float *b, float *y, long n) {
    (void)kernel; (void)op; (void)a; (void)b; (void)y; (void)n;
}
void nudge_ew_scalar(int kernel, int op, const float *a, float s, float *y, long n) {
    (void)kernel; (void)op; (void)a; (void)s; (void)y; (void)n;
}
void nudge_ew_unary(int kernel, int op, const float *x, float *y, long n) { (void)kernel; (void)op; (void)x; (void)y; (void)n; }
void nudge_ew_unary_backward(int kernel, int op, const float *g, const float *x, const float *y, float *dx, long n) {
    (void)kernel; (void)op; (void)g; (void)x; (void)y; (void)dx; (void)n;
}
void nudge_softmax_rows(int kernel, const float *x, float *y, long rows, long n) { (void)kernel; (void)x; (void)y; (void)rows; (void)n; }
float nudge_max_exp_sum(int kernel, const float *x, float *e, long n, float *max) {
    (void)kernel; (void)x; (void)e; (void)n; *max = 0.0f;
    return 0.0f;
}
void nudge_log_softmax_rows(int kernel, const float *x, float *y, long rows, long n) { (void)kernel; (void)x; (void)y; (void)rows; (void)n; }
void nudge_softmax_backward_rows(int kernel, const float *g, const float *y, float *dx, long rows, long n) {
    (void)kernel; (void)g; (void)y; (void)dx; (void)rows; (void)n;
}
void nudge_log_softmax_backward_rows(int kernel, const float *g, const float *y, float *dx, long rows, long n) {
    (void)kernel; (void)g; (void)y; (void)dx; (void)rows; (void)n;
}

#endif
