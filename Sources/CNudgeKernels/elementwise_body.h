// The elementwise kernels for one instruction set, included by elementwise.c once per set with
// these macros defined: TARGET (the function attribute), SFX(name) (name with the set's suffix),
// W (lanes), vf (the vector type), vld/vst (unaligned load/store), vldn/vstn (the first n < W
// lanes; vldn reads zeros into the others), vzeron (zero the lanes from n on), vset, vadd, vsub,
// vmul, vdiv, vmin, vmax (the SSE semantics: vmin(a, b) = a < b ? a : b), vneg (sign flip),
// vzero_lt(v, x, c) (v with the lanes where x < c set to 0), vexp2i(t) (2^(bits(t) − bits(magic))
// from the rounding trick), vsum16/vmax16 (an array of 16 / W accumulators reduced in the fixed
// order described in elementwise.c). Every function is a sequence of IEEE operations without FMA,
// so both sets give the same bits (and the same as NudgeTensor's SIMD8 code where it says so).

// MARK: vector math, operation for operation NudgeTensor's vexp / vtanh / vsigmoid

TARGET static inline vf SFX(exp)(vf x0) {
    const vf hi = vset(88.3762626647949f), lo = vset(-87.3365447504019f), magic = vset(12582912.0f);
    vf x = vmin(hi, x0);   // x0 > hi ? hi : x0 (NaN passes through)
    x = vmax(lo, x);       // x < lo ? lo : x
    vf t = vadd(vmul(x, vset(1.44269504088896341f)), magic);
    vf n = vsub(t, magic);
    vf r = vsub(x, vmul(n, vset(0.693359375f)));
    r = vsub(r, vmul(n, vset(-2.12194440e-4f)));
    vf p = vset(1.9875691500e-4f);
    p = vadd(vmul(p, r), vset(1.3981999507e-3f));
    p = vadd(vmul(p, r), vset(8.3334519073e-3f));
    p = vadd(vmul(p, r), vset(4.1665795894e-2f));
    p = vadd(vmul(p, r), vset(1.6666665459e-1f));
    p = vadd(vmul(p, r), vset(5.0000001201e-1f));
    p = vadd(vadd(vmul(p, vmul(r, r)), r), vset(1.0f));
    return vzero_lt(vmul(p, vexp2i(t)), x0, lo);
}

TARGET static inline vf SFX(tanh)(vf x1) {
    const vf limit = vset(7.90531110763549805f);
    vf x0 = vmul(x1, vset(0.5f));
    vf x = vmin(limit, x0);
    x = vmax(vneg(limit), x);
    vf x2 = vmul(x, x);
    vf p = vset(-2.76076847742355e-16f);
    p = vadd(vmul(p, x2), vset(2.00018790482477e-13f));
    p = vsub(vmul(p, x2), vset(8.60467152213735e-11f));
    p = vadd(vmul(p, x2), vset(5.12229709037114e-08f));
    p = vadd(vmul(p, x2), vset(1.48572235717979e-05f));
    p = vadd(vmul(p, x2), vset(6.37261928875436e-04f));
    p = vadd(vmul(p, x2), vset(4.89352455891786e-03f));
    p = vmul(p, x);
    vf q = vset(1.19825839466702e-06f);
    q = vadd(vmul(q, x2), vset(1.18534705686654e-04f));
    q = vadd(vmul(q, x2), vset(2.26843463243900e-03f));
    q = vadd(vmul(q, x2), vset(4.89352518554385e-03f));
    vf t = vdiv(p, q);
    return vdiv(vadd(t, t), vadd(vset(1.0f), vmul(t, t)));
}

TARGET static inline vf SFX(sigmoid)(vf x) { return vdiv(vset(1.0f), vadd(vset(1.0f), SFX(exp)(vneg(x)))); }

/// The inner tanh of the tanh GELU: √(2/π)·(x + 0.044715·x³), as NudgeTensor's GeluTanhFunction.
TARGET static inline vf SFX(gelu_inner)(vf x) {
    vf cube = vmul(vmul(vmul(vset(0.044715f), x), x), x);
    return SFX(tanh)(vmul(vset(0.7978845608028654f), vadd(x, cube)));
}

TARGET static inline vf SFX(unary_one)(int op, vf x) {
    switch (op) {
    case NUDGE_EW_EXP: return SFX(exp)(x);
    case NUDGE_EW_TANH: return SFX(tanh)(x);
    case NUDGE_EW_SIGMOID: return SFX(sigmoid)(x);
    case NUDGE_EW_SILU: return vmul(x, SFX(sigmoid)(x));
    case NUDGE_EW_GELU_TANH: return vmul(vmul(vset(0.5f), x), vadd(vset(1.0f), SFX(gelu_inner)(x)));
    default: return vneg(x);
    }
}

TARGET static inline vf SFX(backward_one)(int op, vf g, vf x, vf y) {
    const vf one = vset(1.0f);
    switch (op) {
    case NUDGE_EW_EXP: return vmul(g, y);
    case NUDGE_EW_TANH: return vmul(g, vsub(one, vmul(y, y)));
    case NUDGE_EW_SIGMOID: return vmul(vmul(g, y), vsub(one, y));
    case NUDGE_EW_SILU: {
        vf s = SFX(sigmoid)(x);
        return vmul(vmul(g, s), vadd(one, vmul(x, vsub(one, s))));
    }
    case NUDGE_EW_GELU_TANH: {
        vf t = SFX(gelu_inner)(x), half = vset(0.5f);
        vf slope = vadd(one, vmul(vmul(vset(3.0f * 0.044715f), x), x));
        vf b = vmul(vmul(vmul(vmul(half, x), vsub(one, vmul(t, t))), vset(0.7978845608028654f)), slope);
        return vmul(g, vadd(vmul(half, vadd(one, t)), b));
    }
    default: return vneg(g);
    }
}

// MARK: maps

/// Runs STEP(i) on every full vector and TAIL(i, rest) on the last partial one.
#define MAP_LOOP(STEP, TAIL) \
    long i = 0; \
    for (; i + 2 * W <= n; i += 2 * W) { STEP(i); STEP(i + W); } \
    if (i + W <= n) { STEP(i); i += W; } \
    if (i < n) { long rest = n - i; TAIL(i, rest); }

TARGET static void SFX(binary)(int op, const float *a, const float *b, float *y, long n) {
#define STEP_ADD(i) vst(y + (i), vadd(vld(a + (i)), vld(b + (i))))
#define TAIL_ADD(i, r) vstn(y + (i), vadd(vldn(a + (i), r), vldn(b + (i), r)), r)
#define STEP_SUB(i) vst(y + (i), vsub(vld(a + (i)), vld(b + (i))))
#define TAIL_SUB(i, r) vstn(y + (i), vsub(vldn(a + (i), r), vldn(b + (i), r)), r)
#define STEP_MUL(i) vst(y + (i), vmul(vld(a + (i)), vld(b + (i))))
#define TAIL_MUL(i, r) vstn(y + (i), vmul(vldn(a + (i), r), vldn(b + (i), r)), r)
#define STEP_DIV(i) vst(y + (i), vdiv(vld(a + (i)), vld(b + (i))))
#define TAIL_DIV(i, r) vstn(y + (i), vdiv(vldn(a + (i), r), vldn(b + (i), r)), r)
    switch (op) {
    case NUDGE_EW_ADD: { MAP_LOOP(STEP_ADD, TAIL_ADD) break; }
    case NUDGE_EW_SUB: { MAP_LOOP(STEP_SUB, TAIL_SUB) break; }
    case NUDGE_EW_MUL: { MAP_LOOP(STEP_MUL, TAIL_MUL) break; }
    default: { MAP_LOOP(STEP_DIV, TAIL_DIV) break; }
    }
#undef STEP_ADD
#undef TAIL_ADD
#undef STEP_SUB
#undef TAIL_SUB
#undef STEP_MUL
#undef TAIL_MUL
#undef STEP_DIV
#undef TAIL_DIV
}

TARGET static void SFX(scalar)(int op, const float *a, float s0, float *y, long n) {
    const vf s = vset(s0);
#define STEP_ADD(i) vst(y + (i), vadd(vld(a + (i)), s))
#define TAIL_ADD(i, r) vstn(y + (i), vadd(vldn(a + (i), r), s), r)
#define STEP_MUL(i) vst(y + (i), vmul(vld(a + (i)), s))
#define TAIL_MUL(i, r) vstn(y + (i), vmul(vldn(a + (i), r), s), r)
#define STEP_RSUB(i) vst(y + (i), vsub(s, vld(a + (i))))
#define TAIL_RSUB(i, r) vstn(y + (i), vsub(s, vldn(a + (i), r)), r)
#define STEP_RDIV(i) vst(y + (i), vdiv(s, vld(a + (i))))
#define TAIL_RDIV(i, r) vstn(y + (i), vdiv(s, vldn(a + (i), r)), r)
#define STEP_DIV(i) vst(y + (i), vdiv(vld(a + (i)), s))
#define TAIL_DIV(i, r) vstn(y + (i), vdiv(vldn(a + (i), r), s), r)
    switch (op) {
    case NUDGE_EW_SCALAR_ADD: { MAP_LOOP(STEP_ADD, TAIL_ADD) break; }
    case NUDGE_EW_SCALAR_MUL: { MAP_LOOP(STEP_MUL, TAIL_MUL) break; }
    case NUDGE_EW_SCALAR_RSUB: { MAP_LOOP(STEP_RSUB, TAIL_RSUB) break; }
    case NUDGE_EW_SCALAR_RDIV: { MAP_LOOP(STEP_RDIV, TAIL_RDIV) break; }
    default: { MAP_LOOP(STEP_DIV, TAIL_DIV) break; }
    }
#undef STEP_ADD
#undef TAIL_ADD
#undef STEP_MUL
#undef TAIL_MUL
#undef STEP_RSUB
#undef TAIL_RSUB
#undef STEP_RDIV
#undef TAIL_RDIV
#undef STEP_DIV
#undef TAIL_DIV
}

TARGET static void SFX(unary)(int op, const float *x, float *y, long n) {
    // One loop per op, so the switch is not inside the loop.
#define UNARY_CASE(OP) \
    case OP: { \
        long i = 0; \
        for (; i + W <= n; i += W) vst(y + i, SFX(unary_one)(OP, vld(x + i))); \
        if (i < n) vstn(y + i, SFX(unary_one)(OP, vldn(x + i, n - i)), n - i); \
        break; \
    }
    switch (op) {
    UNARY_CASE(NUDGE_EW_EXP)
    UNARY_CASE(NUDGE_EW_TANH)
    UNARY_CASE(NUDGE_EW_SIGMOID)
    UNARY_CASE(NUDGE_EW_SILU)
    UNARY_CASE(NUDGE_EW_GELU_TANH)
    UNARY_CASE(NUDGE_EW_NEG)
    default: break;
    }
#undef UNARY_CASE
}

TARGET static void SFX(unary_backward)(int op, const float *g, const float *x, const float *y, float *dx, long n) {
    // x or y may be NULL when the rule does not read it; a zero vector stands in.
#define BACKWARD_CASE(OP) \
    case OP: { \
        long i = 0; \
        for (; i + W <= n; i += W) \
            vst(dx + i, SFX(backward_one)(OP, vld(g + i), x ? vld(x + i) : vset(0.0f), y ? vld(y + i) : vset(0.0f))); \
        if (i < n) { \
            long r = n - i; \
            vstn(dx + i, SFX(backward_one)(OP, vldn(g + i, r), x ? vldn(x + i, r) : vset(0.0f), y ? vldn(y + i, r) : vset(0.0f)), r); \
        } \
        break; \
    }
    switch (op) {
    BACKWARD_CASE(NUDGE_EW_EXP)
    BACKWARD_CASE(NUDGE_EW_TANH)
    BACKWARD_CASE(NUDGE_EW_SIGMOID)
    BACKWARD_CASE(NUDGE_EW_SILU)
    BACKWARD_CASE(NUDGE_EW_GELU_TANH)
    BACKWARD_CASE(NUDGE_EW_NEG)
    default: break;
    }
#undef BACKWARD_CASE
}

// MARK: rows (softmax family)
//
// A row is read in blocks of 16 values; block lane j goes to accumulator lane j (16 / W
// accumulators of W lanes), the last block is zero-padded, and the 16 lanes are added in the fixed
// order of vsum16. So every row sum is the same sequence of additions on both instruction sets.

#define ACCS (16 / W)

TARGET static inline float SFX(row_max)(const float *x, long n) {
    vf acc[ACCS];
    for (int u = 0; u < ACCS; u++) acc[u] = vset(-INFINITY);
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int u = 0; u < ACCS; u++) acc[u] = vmax(acc[u], vld(x + i + u * W));
    float m = vmax16(acc);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/// Σ exp(x − m) over the row, writing the exponentials to e when it is not NULL.
TARGET static inline float SFX(row_exp_sum)(const float *x, float m, float *e, long n) {
    const vf shift = vset(m);
    vf acc[ACCS];
    for (int u = 0; u < ACCS; u++) acc[u] = vset(0.0f);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int u = 0; u < ACCS; u++) {
            vf v = SFX(exp)(vsub(vld(x + i + u * W), shift));
            if (e) vst(e + i + u * W, v);
            acc[u] = vadd(acc[u], v);
        }
    }
    for (int u = 0; u < ACCS && i + u * W < n; u++) {
        long r = n - i - u * W;
        if (r > W) r = W;
        vf v = vzeron(SFX(exp)(vsub(vldn(x + i + u * W, r), shift)), r);
        if (e) vstn(e + i + u * W, v, r);
        acc[u] = vadd(acc[u], v);
    }
    return vsum16(acc);
}

/// Σ a·b (b NULL: Σ a) over the row in the fixed order.
TARGET static inline float SFX(row_dot)(const float *a, const float *b, long n) {
    vf acc[ACCS];
    for (int u = 0; u < ACCS; u++) acc[u] = vset(0.0f);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int u = 0; u < ACCS; u++) {
            vf v = vld(a + i + u * W);
            acc[u] = vadd(acc[u], b ? vmul(v, vld(b + i + u * W)) : v);
        }
    }
    for (int u = 0; u < ACCS && i + u * W < n; u++) {
        long r = n - i - u * W;
        if (r > W) r = W;
        vf v = vldn(a + i + u * W, r);
        acc[u] = vadd(acc[u], b ? vmul(v, vldn(b + i + u * W, r)) : v);
    }
    return vsum16(acc);
}

TARGET static float SFX(max_exp_sum)(const float *x, float *e, long n, float *max) {
    float m = SFX(row_max)(x, n);
    *max = m;
    return m == -INFINITY ? 0.0f : SFX(row_exp_sum)(x, m, e, n);
}

TARGET static void SFX(softmax_rows)(const float *x0, float *y0, long rows, long n) {
    for (long row = 0; row < rows; row++) {
        const float *x = x0 + row * n;
        float *y = y0 + row * n;
        float total = SFX(row_exp_sum)(x, SFX(row_max)(x, n), y, n);
        const vf inv = vset(1.0f / total);
        long i = 0;
        for (; i + W <= n; i += W) vst(y + i, vmul(vld(y + i), inv));
        if (i < n) vstn(y + i, vmul(vldn(y + i, n - i), inv), n - i);
    }
}

TARGET static void SFX(log_softmax_rows)(const float *x0, float *y0, long rows, long n) {
    for (long row = 0; row < rows; row++) {
        const float *x = x0 + row * n;
        float *y = y0 + row * n;
        float m = SFX(row_max)(x, n);
        // A row of −∞ keeps −∞ as its normalizer (as Tensor.logSumExp).
        float l = m == -INFINITY ? m : m + logf(SFX(row_exp_sum)(x, m, NULL, n));
        const vf shift = vset(l);
        long i = 0;
        for (; i + W <= n; i += W) vst(y + i, vsub(vld(x + i), shift));
        if (i < n) vstn(y + i, vsub(vldn(x + i, n - i), shift), n - i);
    }
}

TARGET static void SFX(softmax_backward_rows)(const float *g0, const float *y0, float *dx0, long rows, long n) {
    // dx = g⊙y − y·Σ g⊙y
    for (long row = 0; row < rows; row++) {
        const float *g = g0 + row * n, *y = y0 + row * n;
        float *dx = dx0 + row * n;
        const vf dot = vset(SFX(row_dot)(g, y, n));
        long i = 0;
        for (; i + W <= n; i += W) {
            vf yv = vld(y + i);
            vst(dx + i, vsub(vmul(vld(g + i), yv), vmul(yv, dot)));
        }
        if (i < n) {
            long r = n - i;
            vf yv = vldn(y + i, r);
            vstn(dx + i, vsub(vmul(vldn(g + i, r), yv), vmul(yv, dot)), r);
        }
    }
}

TARGET static void SFX(log_softmax_backward_rows)(const float *g0, const float *y0, float *dx0, long rows, long n) {
    // dx = g − exp(y)·Σ g
    for (long row = 0; row < rows; row++) {
        const float *g = g0 + row * n, *y = y0 + row * n;
        float *dx = dx0 + row * n;
        const vf total = vset(SFX(row_dot)(g, NULL, n));
        long i = 0;
        for (; i + W <= n; i += W) vst(dx + i, vsub(vld(g + i), vmul(SFX(exp)(vld(y + i)), total)));
        if (i < n) {
            long r = n - i;
            vstn(dx + i, vsub(vldn(g + i, r), vmul(SFX(exp)(vldn(y + i, r)), total)), r);
        }
    }
}

#undef ACCS
#undef MAP_LOOP
