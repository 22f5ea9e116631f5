// C kernels that need instruction sets the Swift targets cannot ask for: a Swift package may not
// pass `-march` (unsafe flags), but a C function may carry its own `target` attribute and be chosen
// at run time after checking the CPU.

#ifndef CNUDGEKERNELS_H
#define CNUDGEKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU runs the AVX2/FMA kernels below, else 0 (other architectures: always 0).
int nudge_has_avx2_fma(void);

/// C = A·Bᵀ for row-major A (m×k, row stride lda), B (n×k, row stride ldb), C (m×n, row stride
/// ldc), by dot products over k read in place (nothing is packed): the shape of a linear layer
/// applied to a few rows, where a BLAS spends more time packing the weight than multiplying.
/// Needs `nudge_has_avx2_fma()`.
void nudge_sgemm_nt_small(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc);

/// Decoding attention for one query head: scores p_j = alpha·(q·k_j) + mask_j over `count` keys
/// (rows `stride` floats apart, d values each; `mask` may be NULL), p ← softmax(p) (written to
/// `p`), and out = Σ_j p_j·v_j (d values). Needs `nudge_has_avx2_fma()`.
void nudge_attend_one_query(const float *q, const float *keys, const float *values, int stride, int count, int d, float alpha,
                            const float *mask, float *p, float *out);

#ifdef __cplusplus
}
#endif

#endif
