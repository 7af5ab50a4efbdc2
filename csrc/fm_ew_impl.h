/* fm_ew_impl.h - typed body of the element-wise kernels, included by fm_ew_inst.h once per
 * dtype (REAL, EW(), KTYPE, KERNEL and the math macros set), in a translation unit per
 * instruction set (fm_ew_<isa>.c).
 *
 * Every loop is written so that the compiler can vectorise it (no data-dependent branch,
 * every operand loaded unconditionally) and none reassociates a sum, and the build turns
 * FMA contraction off: each instruction set computes the same operations in the same order,
 * so the results are bitwise identical whichever set the CPU runs. */

/* ---- vectorisable e^x and log(1 + u) ---------------------------------------------------
 * float32 only (VEXP and VLOG1P_UNIT are libm's exp and log1p for float64): libm calls keep
 * a loop scalar, these are plain arithmetic that vectorises, with no branch, and the same
 * operations on every instruction set. Both are within 2 ulp of the exact values. */
#if FM_EW_FLOAT
/* e^x: x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes's polynomial, and 2^n applied as two
 * factors so that results in the subnormal range and overflow to inf come out right. */
static inline float EW(expf)(float x) {
    float xc = x > -104.0f ? x : -104.0f; /* NaN becomes -104 here, and passes through below */
    xc = xc < 89.0f ? xc : 89.0f;
    const float nf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x/ln2) */
    float r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    const float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    const int32_t n = (int32_t)nf, n1 = n / 2, n2 = n - n1; /* each in [-75, 64] */
    const uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    const float e = p * s1 * s2;
    return x == x ? e : x;
}

/* log(1 + u) for u in [0, 1]: log(s) of s = 1 + u (Cephes's polynomial on the mantissa in
 * [sqrt(1/2), sqrt(2)]) plus the rounding error of s, (u - (s - 1)) / s. */
static inline float EW(log1pf_unit)(float u) {
    const float s = 1.0f + u; /* in [1, 2], so s - 1 is exact */
    const int big = s > 1.41421356f;
    const float k = big ? 1.0f : 0.0f;
    const float x = (big ? s * 0.5f : s) - 1.0f; /* exact: the mantissa is in [0.7, 1.42] */
    const float z = x * x;
    float y = 7.0376836292e-2f;
    y = y * x - 1.1514610310e-1f;
    y = y * x + 1.1676998740e-1f;
    y = y * x - 1.2420140846e-1f;
    y = y * x + 1.4249322787e-1f;
    y = y * x - 1.6668057665e-1f;
    y = y * x + 2.0000714765e-1f;
    y = y * x - 2.4999993993e-1f;
    y = y * x + 3.3333331174e-1f;
    y = y * x * z;
    y = y + -2.12194440e-4f * k;
    y = y + -0.5f * z;
    const float lg = (x + y) + 0.693359375f * k;
    return lg + (u - (s - 1.0f)) / s;
}
#define VEXP EW(expf)
#define VLOG1P_UNIT EW(log1pf_unit)
#else
#define VEXP exp
#define VLOG1P_UNIT log1p
#endif

/* The logistic function, from e = e^-|x| so that nothing overflows: 1 / (1 + e) for x >= 0,
 * e / (1 + e) below (exact down to the subnormal range); both arms computed, then selected,
 * so the loop vectorises. */
static inline REAL EW(sigmoid)(REAL x) {
    const REAL e = VEXP(-FABS(x));
    const REAL d = (REAL)1 + e;
    const REAL pos = (REAL)1 / d, neg = e / d;
    return x >= 0 ? pos : neg;
}

static void EW(softmax_row)(REAL *y, const REAL *x, int64_t n) {
    REAL mx = x[0];
    for (int64_t j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < n; j++) y[j] = VEXP(x[j] - mx);
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += y[j];
    const REAL inv = (REAL)(1.0 / s);
    for (int64_t j = 0; j < n; j++) y[j] *= inv;
}

static inline REAL EW(hard_sigmoid)(REAL x) {
    const REAL v = x / (REAL)6 + (REAL)0.5;
    return v < 0 ? (REAL)0 : (v > 1 ? (REAL)1 : v);
}

/* Y[i] = EXPR for every i, EXPR in terms of x = X[i]: a loop on one pointer when Y is X (in
 * place: a loop on two would fail the compiler's overlap check and run scalar), else on two
 * (callers pass Y == X or disjoint arrays, which FM_SIMD asserts). */
#define EW_MAP(EXPR)                                                                         \
    if ((const REAL *)Y == X) {                                                              \
        FM_SIMD for (int64_t i = 0; i < len; i++) {                                          \
            const REAL x = Y[i];                                                             \
            Y[i] = (EXPR);                                                                   \
        }                                                                                    \
    } else {                                                                                 \
        FM_SIMD for (int64_t i = 0; i < len; i++) {                                          \
            const REAL x = X[i];                                                             \
            Y[i] = (EXPR);                                                                   \
        }                                                                                    \
    }

static void EW(act_forward)(REAL *Y, const REAL *X, int64_t m, int64_t n, int act,
                            double alpha) {
    /* forward: Y = act(X), element-wise (softmax: per row, max subtracted) */
    const int64_t len = m * n;
    const REAL a = (REAL)alpha;
    switch (act) {
    case FM_ACT_LINEAR:
        if (Y != X)
            for (int64_t i = 0; i < len; i++) Y[i] = X[i];
        break;
    case FM_ACT_RELU: EW_MAP(x > 0 ? x : (REAL)0) break;
    case FM_ACT_LEAKY_RELU: EW_MAP(x > 0 ? x : a * x) break;
    case FM_ACT_ELU:
        for (int64_t i = 0; i < len; i++) Y[i] = X[i] > 0 ? X[i] : a * EXPM1(X[i]);
        break;
#if FM_EW_FLOAT
    case FM_ACT_SIGMOID: EW_MAP(EW(sigmoid)(x)) break;
#else
    case FM_ACT_SIGMOID:
        for (int64_t i = 0; i < len; i++) Y[i] = EW(sigmoid)(X[i]);
        break;
#endif
    case FM_ACT_HARD_SIGMOID: EW_MAP(EW(hard_sigmoid)(x)) break;
    case FM_ACT_TANH:
        for (int64_t i = 0; i < len; i++) Y[i] = TANH(X[i]);
        break;
    case FM_ACT_SOFTPLUS:
        for (int64_t i = 0; i < len; i++)
            Y[i] = X[i] > 0 ? X[i] + LOG1P(EXP(-X[i])) : LOG1P(EXP(X[i]));
        break;
    case FM_ACT_SOFTMAX:
        for (int64_t r = 0; r < m; r++) EW(softmax_row)(Y + r * n, X + r * n, n);
        break;
    case FM_ACT_SELU:
        for (int64_t i = 0; i < len; i++)
            Y[i] = X[i] > 0 ? (REAL)SELU_SCALE * X[i]
                            : (REAL)(SELU_SCALE * SELU_ALPHA) * EXPM1(X[i]);
        break;
    case FM_ACT_SOFTSIGN: EW_MAP(x / ((REAL)1 + FABS(x))) break;
    case FM_ACT_EXPONENTIAL:
        for (int64_t i = 0; i < len; i++) Y[i] = EXP(X[i]);
        break;
    }
}
#undef EW_MAP

/* dX[i] = EXPR for every i, in terms of g = dY[i] and y = Y[i]: as EW_MAP, one pointer for
 * the gradient when dX is dY. */
#define EW_MAP2(EXPR)                                                                        \
    if ((const REAL *)dX == dY) {                                                            \
        FM_SIMD for (int64_t i = 0; i < len; i++) {                                          \
            const REAL g = dX[i], y = Y[i];                                                  \
            dX[i] = (EXPR);                                                                  \
        }                                                                                    \
    } else {                                                                                 \
        FM_SIMD for (int64_t i = 0; i < len; i++) {                                          \
            const REAL g = dY[i], y = Y[i];                                                  \
            dX[i] = (EXPR);                                                                  \
        }                                                                                    \
    }

static void EW(act_backward)(REAL *dX, const REAL *dY, const REAL *Y, int64_t m, int64_t n,
                             int act, double alpha) {
    /* forward: Y = act(X)  =>  dX = dY * act'(X), written in terms of Y */
    const int64_t len = m * n;
    const REAL a = (REAL)alpha;
    switch (act) {
    case FM_ACT_LINEAR:
        if (dX != dY)
            for (int64_t i = 0; i < len; i++) dX[i] = dY[i];
        break;
    case FM_ACT_RELU: EW_MAP2(y > 0 ? g : (REAL)0) break;
    case FM_ACT_LEAKY_RELU: EW_MAP2(y > 0 ? g : a * g) break;
    case FM_ACT_ELU: /* y = a (e^x - 1) for x <= 0, so dy/dx = y + a */
        EW_MAP2(y > 0 ? g : g * (y + a)) break;
    case FM_ACT_SIGMOID: EW_MAP2(g * y * ((REAL)1 - y)) break;
    case FM_ACT_HARD_SIGMOID: EW_MAP2((y > 0 && y < 1) ? g / (REAL)6 : (REAL)0) break;
    case FM_ACT_TANH: EW_MAP2(g * ((REAL)1 - y * y)) break;
    case FM_ACT_SOFTPLUS: /* sigmoid(x) = 1 - e^-y */
        for (int64_t i = 0; i < len; i++) dX[i] = -dY[i] * EXPM1(-Y[i]);
        break;
    case FM_ACT_SOFTMAX: /* dX = Y * (dY - <dY, Y>) per row */
        for (int64_t r = 0; r < m; r++) {
            const REAL *y = Y + r * n, *dy = dY + r * n;
            REAL *dx = dX + r * n;
            double dot = 0;
            for (int64_t j = 0; j < n; j++) dot += (double)dy[j] * y[j];
            const REAL d = (REAL)dot;
            for (int64_t j = 0; j < n; j++) dx[j] = y[j] * (dy[j] - d);
        }
        break;
    case FM_ACT_SELU:
        EW_MAP2(y > 0 ? g * (REAL)SELU_SCALE : g * (y + (REAL)(SELU_SCALE * SELU_ALPHA)))
        break;
    case FM_ACT_SOFTSIGN: /* 1 / (1 + |x|)^2 = (1 - |y|)^2 */
        EW_MAP2(g * ((REAL)1 - FABS(y)) * ((REAL)1 - FABS(y))) break;
    case FM_ACT_EXPONENTIAL: EW_MAP2(g * y) break;
    }
}
#undef EW_MAP2

/* Column sums of cb columns from j0 of dZ (m >= 1 rows, row stride ld) into db; with cb a
 * compile-time constant once inlined, the accumulator stays in registers. */
static inline void EW(colsum_block)(REAL *db, const REAL *dZ, int64_t m, int64_t ld, int64_t j0,
                                    int64_t cb) {
    REAL acc[16];
    for (int64_t j = 0; j < cb; j++) acc[j] = dZ[j0 + j];
    for (int64_t i = 1; i < m; i++) {
        const REAL *z = dZ + i * ld + j0;
        for (int64_t j = 0; j < cb; j++) acc[j] += z[j];
    }
    for (int64_t j = 0; j < cb; j++) db[j0 + j] = acc[j];
}

/* db (n) = the column sums of dZ (m x n, row stride ld), each summed over the rows in order
 * (so a column's sum does not depend on which columns are summed with it). */
static void EW(colsum)(REAL *db, const REAL *dZ, int64_t m, int64_t n, int64_t ld) {
    if (m <= 0) {
        for (int64_t j = 0; j < n; j++) db[j] = 0;
        return;
    }
    int64_t j0 = 0;
    for (; j0 + 16 <= n; j0 += 16) EW(colsum_block)(db, dZ, m, ld, j0, 16);
    if (j0 + 8 <= n) {
        EW(colsum_block)(db, dZ, m, ld, j0, 8);
        j0 += 8;
    }
    if (j0 + 4 <= n) {
        EW(colsum_block)(db, dZ, m, ld, j0, 4);
        j0 += 4;
    }
    for (; j0 < n; j0++) EW(colsum_block)(db, dZ, m, ld, j0, 1);
}

/* Sigmoid + binary cross-entropy from the logits Z (m x n; Y = sigmoid(Z)): per element
 * max(z, 0) - z t + log(1 + e^-|z|), averaged over the row, weighted by w (or 1) and summed
 * over the rows in order into *loss_sum; dZ = grad_scale * w_i * (y - t) / n. With Y_out,
 * Y is not read but computed here from the same e^-|z| (EW(sigmoid)'s operations, so its
 * bits) and written to Y_out. */
static void EW(bce_logits)(double *loss_sum, REAL *dZ, const REAL *Z, const REAL *Y,
                           const REAL *T, const REAL *w, int64_t m, int64_t n,
                           double grad_scale, REAL *Y_out) {
    enum { CHUNK = 64 };
    const int64_t len = m * n;
    const REAL inv_n = (REAL)1 / (REAL)n;
    REAL el[CHUNK];
    double total = 0, l = 0;
    int64_t row = 0, col = 0;
    for (int64_t e0 = 0; e0 < len; e0 += CHUNK) {
        const int64_t cnt = len - e0 < CHUNK ? len - e0 : CHUNK;
        /* blocks of 16 through padded copies: vector code even for a handful of outputs */
        for (int64_t k0 = 0; k0 < cnt; k0 += 16) {
            REAL zb[16], tb[16], yb[16];
            for (int64_t k = 0; k < 16; k++) {
                zb[k] = k0 + k < cnt ? Z[e0 + k0 + k] : (REAL)0;
                tb[k] = k0 + k < cnt ? T[e0 + k0 + k] : (REAL)0;
            }
            /* e^-|z| once, for the loss and (Y_out) for the sigmoid: EW(sigmoid)'s bits */
            FM_SIMD for (int64_t k = 0; k < 16; k++) {
                const REAL z = zb[k], t = tb[k], e = VEXP(-FABS(z)), d = (REAL)1 + e;
                el[k0 + k] = (z > 0 ? z : (REAL)0) - z * t + VLOG1P_UNIT(e);
                yb[k] = z >= 0 ? (REAL)1 / d : e / d;
            }
            if (Y_out != NULL) {
                const int64_t kn = cnt - k0 < 16 ? cnt - k0 : 16;
                for (int64_t k = 0; k < kn; k++) Y_out[e0 + k0 + k] = yb[k];
                if (w == NULL) /* dZ now, ahead of the loss's sums: the backward pass needs it */
                    for (int64_t k = 0; k < kn; k++)
                        dZ[e0 + k0 + k] = (yb[k] - tb[k]) * inv_n * (REAL)grad_scale;
            }
        }
        if (n == 1) { /* one output per row (the usual binary case): no row mean to take */
            for (int64_t k = 0; k < cnt; k++, row++)
                total += (w != NULL ? (double)w[row] : 1.0) * (double)el[k];
            continue;
        }
        for (int64_t k = 0; k < cnt; k++) {
            l += el[k];
            if (++col == n) {
                total += (w != NULL ? (double)w[row] : 1.0) * (l / (double)n);
                l = 0;
                col = 0;
                row++;
            }
        }
    }
    *loss_sum = total;
    if (Y_out != NULL) Y = Y_out;
    if (w == NULL) { /* one scale for every row: one loop over all elements */
        if (Y_out != NULL) return; /* written above */
        const REAL scale = (REAL)grad_scale;
        FM_SIMD for (int64_t e = 0; e < len; e++) dZ[e] = (Y[e] - T[e]) * inv_n * scale;
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        const REAL scale = (REAL)((double)w[i] * grad_scale);
        const REAL *y = Y + i * n, *t = T + i * n;
        REAL *d = dZ + i * n;
        for (int64_t j = 0; j < n; j++) d[j] = (y[j] - t[j]) * inv_n * scale;
    }
}

/* dV += a * sign(V) + b * V (the gradient of an L1 + L2 penalty), a == 0 skipping the
 * sign. */
static void EW(penalty_grad)(REAL *dV, const REAL *V, int64_t len, REAL a, REAL b) {
    if (a == 0)
        for (int64_t i = 0; i < len; i++) dV[i] += b * V[i];
    else
        for (int64_t i = 0; i < len; i++) {
            const REAL v = V[i];
            const REAL sign = v > 0 ? (REAL)1 : (v < 0 ? (REAL)-1 : (REAL)0);
            dV[i] += a * sign + b * v;
        }
}

/* l1 * sum |V| + l2 * sum V^2 in double over V (m x n, row stride ld), each sum over 8
 * interleaved partial sums (element j of a row goes to partial j mod 8, a row's last n mod 8
 * elements to partial 0), rows in order, the partials added in a fixed order at the end:
 * vector code, and the same bits on every instruction set. */
static double EW(penalty_sum)(const REAL *V, int64_t m, int64_t n, int64_t ld, double l1,
                              double l2) {
    double s1[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int64_t body = n / 8 * 8;
    for (int64_t r = 0; r < m; r++) {
        const REAL *v = V + r * ld;
        if (l1 != 0)
            for (int64_t i = 0; i < body; i += 8)
                for (int k = 0; k < 8; k++) s1[k] += fabs((double)v[i + k]);
        for (int64_t i = 0; i < body; i += 8)
            for (int k = 0; k < 8; k++) s2[k] += (double)v[i + k] * (double)v[i + k];
        for (int64_t i = body; i < n; i++) {
            s1[0] += l1 != 0 ? fabs((double)v[i]) : 0.0;
            s2[0] += (double)v[i] * (double)v[i];
        }
    }
    const double a = ((s1[0] + s1[1]) + (s1[2] + s1[3])) + ((s1[4] + s1[5]) + (s1[6] + s1[7]));
    const double b = ((s2[0] + s2[1]) + (s2[2] + s2[3])) + ((s2[4] + s2[5]) + (s2[6] + s2[7]));
    return (l1 != 0 ? l1 * a : 0.0) + l2 * b;
}

/* The GEMM kernels' multiply-add: fused where the instruction set has FMA, a product then a
 * sum where not, so a row computed here has the bits the micro-kernels give it. */
#if FM_EW_HAS_FMA
#define MADD(a, b, c) FMA(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* One row of a product: c (n) := alpha * a (k, stride inc) @ B (k x n, row stride rsb, unit
 * column stride) + beta * c (+ bias), every element summing its k products in index order
 * and finished as the micro-kernels finish a tile. B is streamed a row segment of up to
 * 8 KiB at a time into accumulators that stay in L1: for one row of A, the micro-kernels'
 * narrow column panels would walk B down its columns, a page per step, and shorter segments
 * leave the prefetchers a new page to find every few rows (a 784 x 1024 float32 B took
 * 1.25x longer with 2 KiB segments). */
static void EW(gemv_row)(int64_t n, int64_t k, REAL alpha, const REAL *a, int64_t inc,
                         const REAL *B, int64_t rsb, REAL beta, REAL *c, const REAL *bias) {
    enum { NB = 8192 / sizeof(REAL) };
    REAL acc[NB];
    for (int64_t j0 = 0; j0 < n; j0 += NB) {
        const int64_t nb = n - j0 < NB ? n - j0 : NB;
        for (int64_t j = 0; j < nb; j++) acc[j] = 0;
        int64_t p = 0;
        for (; p + 4 <= k; p += 4) {
            const REAL a0 = a[p * inc], a1 = a[(p + 1) * inc], a2 = a[(p + 2) * inc],
                       a3 = a[(p + 3) * inc];
            const REAL *b0 = B + p * rsb + j0, *b1 = b0 + rsb, *b2 = b1 + rsb, *b3 = b2 + rsb;
            for (int64_t j = 0; j < nb; j++) {
                REAL t = acc[j];
                t = MADD(a0, b0[j], t);
                t = MADD(a1, b1[j], t);
                t = MADD(a2, b2[j], t);
                t = MADD(a3, b3[j], t);
                acc[j] = t;
            }
        }
        for (; p < k; p++) {
            const REAL a0 = a[p * inc], *b0 = B + p * rsb + j0;
            for (int64_t j = 0; j < nb; j++) acc[j] = MADD(a0, b0[j], acc[j]);
        }
        REAL *cj = c + j0;
        for (int64_t j = 0; j < nb; j++) {
            REAL x = acc[j] * alpha;
            if (beta != 0) x = MADD(beta, cj[j], x);
            if (bias != NULL) x = x + bias[j0 + j];
            cj[j] = x;
        }
    }
}
#undef MADD

/* The optimizer's update on rows runs of len elements of P (n), G (n) and the state S (3n),
 * the first at lo, each ld after the previous (one run: rows 1); element-wise, so any split
 * gives the same bits. */
#define EACH_ELEMENT                                                                         \
    for (int64_t r = 0, r0 = lo; r < rows; r++, r0 += ld)                                    \
        for (int64_t i = r0; i < r0 + len; i++)
static void EW(update)(REAL *P, const REAL *G, REAL *S, int64_t n, int64_t lo, int64_t len,
                       int64_t rows, int64_t ld, const fm_optim *o, const fm_step *c) {
    REAL *s0 = S, *s1 = S + n, *s2 = S + 2 * n;
    const REAL eps = (REAL)o->epsilon;
    const double lr = c->lr;
    switch (o->kind) {
    case FM_OPT_SGD: {
        const REAL mu = (REAL)o->momentum, a = (REAL)lr;
        if (o->momentum == 0)
            EACH_ELEMENT P[i] -= a * G[i];
        else if (o->nesterov)
            EACH_ELEMENT {
                const REAL v = mu * s0[i] - a * G[i];
                s0[i] = v;
                P[i] += mu * v - a * G[i];
            }
        else
            EACH_ELEMENT {
                const REAL v = mu * s0[i] - a * G[i];
                s0[i] = v;
                P[i] += v;
            }
        break;
    }
    case FM_OPT_ADAM: {
        const REAL b1 = (REAL)(1 - o->beta_1), b2 = (REAL)(1 - o->beta_2);
        const REAL a = (REAL)c->adam_a;
        if (o->amsgrad)
            EACH_ELEMENT {
                const REAL g = G[i];
                const REAL m = s0[i] + (g - s0[i]) * b1;
                const REAL v = s1[i] + (g * g - s1[i]) * b2;
                const REAL vmax = s2[i] > v ? s2[i] : v;
                s0[i] = m;
                s1[i] = v;
                s2[i] = vmax;
                P[i] -= m * a / (SQRT(vmax) + eps);
            }
        else
            EACH_ELEMENT {
                const REAL g = G[i];
                const REAL m = s0[i] + (g - s0[i]) * b1;
                const REAL v = s1[i] + (g * g - s1[i]) * b2;
                s0[i] = m;
                s1[i] = v;
                P[i] -= m * a / (SQRT(v) + eps);
            }
        break;
    }
    case FM_OPT_RMSPROP: {
        const REAL rho = (REAL)o->rho, mu = (REAL)o->momentum, a = (REAL)lr;
        const int centered = o->centered, momentum = o->momentum > 0;
        EACH_ELEMENT {
            const REAL g = G[i];
            s0[i] = rho * s0[i] + (1 - rho) * g * g;
            REAL den = s0[i];
            if (centered) {
                s2[i] = rho * s2[i] + (1 - rho) * g;
                den -= s2[i] * s2[i];
            }
            const REAL inc = a * g / SQRT(den + eps);
            if (momentum) {
                s1[i] = mu * s1[i] + inc;
                P[i] -= s1[i];
            } else {
                P[i] -= inc;
            }
        }
        break;
    }
    case FM_OPT_ADAGRAD: {
        const REAL a = (REAL)lr;
        EACH_ELEMENT {
            const REAL acc = s0[i] + G[i] * G[i];
            s0[i] = acc;
            P[i] -= a * G[i] / SQRT(acc + eps);
        }
        break;
    }
    case FM_OPT_ADAM_SKLEARN: { /* scikit-learn's AdamOptimizer, operation for operation */
        const REAL b1 = (REAL)o->beta_1, c1 = (REAL)(1 - o->beta_1);
        const REAL b2 = (REAL)o->beta_2, c2 = (REAL)(1 - o->beta_2);
        const REAL a = (REAL)c->adam_a;
        EACH_ELEMENT {
            const REAL g = G[i];
            const REAL m = b1 * s0[i] + c1 * g;
            const REAL v = b2 * s1[i] + c2 * (g * g);
            s0[i] = m;
            s1[i] = v;
            P[i] += -a * m / (SQRT(v) + eps);
        }
        break;
    }
    }
}
#undef EACH_ELEMENT

const KTYPE KERNEL = {EW(act_forward), EW(act_backward), EW(colsum), EW(bce_logits),
                      EW(penalty_grad), EW(penalty_sum), EW(gemv_row),
                      EW(update)};

#undef VEXP
#undef VLOG1P_UNIT
