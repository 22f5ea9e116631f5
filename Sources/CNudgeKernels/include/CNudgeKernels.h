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

/// The kernel `nudge_sgemm_nt_small` runs on this CPU: 2 AVX-512 (4×4 blocks of 16 lanes),
/// 1 AVX2+FMA (4×2 blocks of 8 lanes), 0 none. The two sum in different orders.
int nudge_small_product_kernel(void);

/// `nudge_sgemm_nt_small` on a chosen kernel (1 or 2, at most `nudge_small_product_kernel()`), for tests.
void nudge_sgemm_nt_small_kernel(int kernel, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc);

/// Decoding attention for one query head: scores p_j = alpha·(q·k_j) + mask_j over `count` keys
/// (rows `stride` floats apart, d values each; `mask` may be NULL), p ← softmax(p) (written to
/// `p`), and out = Σ_j p_j·v_j (d values). Needs `nudge_has_avx2_fma()`.
void nudge_attend_one_query(const float *q, const float *keys, const float *values, int stride, int count, int d, float alpha,
                            const float *mask, float *p, float *out);

/// The instruction sets `nudge_sgemm` has micro-kernels for.
enum {
    /// No kernel for this CPU: use the portable Swift kernel.
    NUDGE_SGEMM_NONE = 0,
    /// 6×16 tiles on 256-bit vectors (AVX2 and FMA).
    NUDGE_SGEMM_AVX2 = 1,
    /// 12×32 tiles on 512-bit vectors (AVX-512F).
    NUDGE_SGEMM_AVX512 = 2,
};

/// The fastest `nudge_sgemm` kernel this CPU runs (`NUDGE_SGEMM_NONE` on other architectures).
int nudge_sgemm_best_kernel(void);

/// A short name for a kernel: "AVX-512", "AVX2+FMA" or "none".
const char *nudge_sgemm_kernel_name(int kernel);

/// Rows (MR) and columns (NR) of a kernel's register tile. Splitting C on multiples of these
/// keeps results bit-identical to a single call.
int nudge_sgemm_tile_rows(int kernel);
int nudge_sgemm_tile_columns(int kernel);

/// C = alpha·op(A)·op(B) + beta·C on row-major matrices (op(X) = Xᵀ when its flag is nonzero;
/// C is m×n, op(A) m×k, op(B) k×n; lda, ldb, ldc are row strides). Packed and cache-blocked, on
/// one thread. beta = 0 overwrites C without reading it. Each element of C is computed in the same
/// order however C is split into calls on tile boundaries, so concurrent calls on disjoint column
/// (or row) ranges give the same bits as one call. `kernel` must be one this CPU runs
/// (at most `nudge_sgemm_best_kernel()`, not `NUDGE_SGEMM_NONE`).
void nudge_sgemm(int kernel, int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc);

/// Whether `nudge_bf16_gemm` runs on this CPU (it needs AVX512_BF16).
int nudge_bf16_gemm_supported(void);

/// `nudge_sgemm` (AVX-512 tiles, the same split rules) with op(A) and op(B) rounded to bf16 (to
/// nearest, ties to even) and the products summed in Float32 by `vdpbf16ps`: mixed-precision
/// training's products. Needs `nudge_bf16_gemm_supported()`.
void nudge_bf16_gemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                     float beta, float *c, long ldc);

/// Q8_0 products over a frozen weight W (n×k) stored as int8 values in rows of `kp` = k rounded up
/// to 32 (zero-padded) with one float scale per block of 32 (`kp/32` per row): W[o][c] =
/// d[o·kp/32 + c/32]·q[o·kp + c]. Weights are dequantized in registers, never written out.

/// y[r·ldy + o] = Σ_c x[r·ldx + c]·W[o][c] for r < m, o < n. Each value of y is one dot product in
/// a fixed order, so splitting over o (offsetting q, d and y) gives the same bits.
/// Needs `nudge_has_avx2_fma()`.
void nudge_q8_linear(int m, int n, int k, const float *x, long ldx, const signed char *q, const float *d, float *y, long ldy);

/// dx[r·lddx + c] = Σ_o g[r·ldg + o]·W[o][c] for r < m and c in [32·b0, min(32·b1, k)): the columns
/// of blocks b0..<b1, summed over o in order, so splitting over blocks gives the same bits.
/// Needs `nudge_has_avx2_fma()`.
void nudge_q8_linear_backward(int m, int n, int k, int b0, int b1, const float *g, long ldg, const signed char *q, const float *d,
                              float *dx, long lddx);

/// y (m × n, row stride ldy) = x (m × k, row stride ldx) · Wᵀ for W (n × k) in Q4_1: per row k/32
/// blocks of 16 bytes `q` (value j in byte j's low nibble, j + 16 in its high one), scales `d` and
/// minimums `mins` (one per block); weight = q·d + m. k is a multiple of 32. Needs `nudge_has_avx2_fma()`.
void nudge_q4_1_linear(int m, int n, int k, const float *x, long ldx, const unsigned char *q, const float *d, const float *mins,
                       float *y, long ldy);

/// Bulk elementwise kernels (elementwise.c). `kernel` is an `nudge_sgemm` kernel id this CPU runs
/// (`NUDGE_SGEMM_AVX2` or `NUDGE_SGEMM_AVX512`, at most `nudge_sgemm_best_kernel()`); both give
/// the same bits. n counts floats; outputs may alias an input of the same offset.
enum {
    NUDGE_EW_ADD = 0,
    NUDGE_EW_SUB = 1,
    NUDGE_EW_MUL = 2,
    NUDGE_EW_DIV = 3,
};

/// y = a + s, a·s, s − a, s / a or a / s (NUDGE_EW_SCALAR_*).
enum {
    NUDGE_EW_SCALAR_ADD = 0,
    NUDGE_EW_SCALAR_MUL = 1,
    NUDGE_EW_SCALAR_RSUB = 2,
    NUDGE_EW_SCALAR_RDIV = 3,
    NUDGE_EW_SCALAR_DIV = 4,
};

/// Unary maps: eˣ, tanh, σ, x·σ(x), the tanh GELU ½x(1 + tanh(√(2/π)(x + 0.044715x³))) and −x.
/// exp, tanh, σ and SiLU give NudgeTensor's vexp / vtanh / vsigmoid bits.
enum {
    NUDGE_EW_EXP = 0,
    NUDGE_EW_TANH = 1,
    NUDGE_EW_SIGMOID = 2,
    NUDGE_EW_SILU = 3,
    NUDGE_EW_GELU_TANH = 4,
    NUDGE_EW_NEG = 5,
};

/// y[i] = a[i] op b[i] (NUDGE_EW_ADD … NUDGE_EW_DIV).
void nudge_ew_binary(int kernel, int op, const float *a, const float *b, float *y, long n);
/// y[i] = a[i] op s (NUDGE_EW_SCALAR_*).
void nudge_ew_scalar(int kernel, int op, const float *a, float s, float *y, long n);
/// y[i] = f(x[i]) (NUDGE_EW_EXP … NUDGE_EW_NEG).
void nudge_ew_unary(int kernel, int op, const float *x, float *y, long n);
/// dx[i] = g[i]·f′ from the saved input x and output y: exp g·y, tanh g·(1 − y²), σ g·y·(1 − y),
/// SiLU and GELU from x, neg −g. Pointers the rule does not read may be NULL.
void nudge_ew_unary_backward(int kernel, int op, const float *g, const float *x, const float *y, float *dx, long n);
/// softmax of each of `rows` contiguous rows of n floats.
void nudge_softmax_rows(int kernel, const float *x, float *y, long rows, long n);
/// One row's maximum m (written to *max) and Σ exp(x − m), writing exp(x − m) to e unless e is
/// NULL; a row of −∞ gives m = −∞ and 0. The sum's order is the softmax rows' (16 lanes).
float nudge_max_exp_sum(int kernel, const float *x, float *e, long n, float *max);
/// log-softmax of each row: x − (m + log Σ exp(x − m)), m the row's maximum.
void nudge_log_softmax_rows(int kernel, const float *x, float *y, long rows, long n);
/// softmax backward per row from the output y: dx = g⊙y − y·Σ(g⊙y).
void nudge_softmax_backward_rows(int kernel, const float *g, const float *y, float *dx, long rows, long n);
/// log-softmax backward per row from the output y: dx = g − exp(y)·Σg.
void nudge_log_softmax_backward_rows(int kernel, const float *g, const float *y, float *dx, long rows, long n);

/// bf16 products over a frozen weight W (n×k) held as the top 16 bits of each Float32 value
/// (bfloat16, as torch, GGUF and safetensors store it), rows `ldw` values apart and padded with
/// zeros to a multiple of 32 values (ldw ≥ k rounded up to 32).
enum {
    /// No kernel for this CPU: use the portable Swift code.
    NUDGE_BF16_NONE = 0,
    /// Weights widened to Float32 by a 16-bit shift, 8 lanes with FMA.
    NUDGE_BF16_AVX2 = 1,
    /// The same on 16 lanes (AVX-512F/BW/VL).
    NUDGE_BF16_AVX512 = 2,
    /// `vdpbf16ps` (AVX512_BF16) on x rounded to bf16 too: twice the products per instruction.
    NUDGE_BF16_DOT = 3,
};

/// The most capable bf16 kernel this CPU runs; every lower id runs too.
int nudge_bf16_best_kernel(void);

/// A short name for a bf16 kernel: "AVX512_BF16", "AVX-512", "AVX2+FMA" or "none".
const char *nudge_bf16_kernel_name(int kernel);

/// Rounds `count` floats to bf16, to nearest with ties to even (torch's conversion; NaN stays NaN).
void nudge_f32_to_bf16(long count, const float *x, unsigned short *out);

/// y[r·ldy + o] = Σ_c x[r·ldx + c]·W[o][c] for r < m, o < n on `kernel` (one this CPU runs, not
/// NUDGE_BF16_NONE). NUDGE_BF16_DOT reads x as bf16 from `xb` (rows `ldxb` apart, each rounded from
/// x and zero-padded to a multiple of 32); the others read `x` and ignore `xb`. Each value of y is
/// one sum in a fixed order, so splitting over o (offsetting w and y) gives the same bits.
void nudge_bf16_linear(int kernel, int m, int n, int k, const float *x, long ldx, const unsigned short *xb, long ldxb,
                       const unsigned short *w, long ldw, float *y, long ldy);

/// dx[r·lddx + c] = Σ_o g[r·ldg + o]·W[o][c] for r < m and c in [32·b0, min(32·b1, k)), summed over o
/// in order (NUDGE_BF16_DOT runs the AVX-512 code: g stays Float32), so splitting over blocks gives
/// the same bits.
void nudge_bf16_linear_backward(int kernel, int m, int n, int k, int b0, int b1, const float *g, long ldg, const unsigned short *w,
                                long ldw, float *dx, long lddx);

/// Runs fn(ctx, i) for every i in 0..<pieces on the calling thread and up to `threads` − 1 helper
/// threads (team.c), and returns 1 when all have run. Returns 0 without running anything when the
/// team is busy (a nested or concurrent call), `threads` < 2 or `pieces` is outside 1…65535: the
/// caller then runs the pieces itself. Idle helpers spin for `NUDGE_SPIN_US` µs (default 200),
/// then sleep.
int nudge_team_run(long pieces, int threads, void (*fn)(void *ctx, long piece), void *ctx);

/// Asks spinning helpers to sleep now (before work that threads itself, such as a BLAS call).
void nudge_team_rest(void);

#ifdef __cplusplus
}
#endif

#endif
