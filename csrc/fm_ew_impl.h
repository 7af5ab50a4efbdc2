/* fm_ew_impl.h - typed body of the element-wise kernels, included by fm_ew_inst.h once per
 * dtype (REAL, EW(), KTYPE, KERNEL and the math macros set), in a translation unit per
 * instruction set (fm_ew_<isa>.c).
 *
 * Every loop is written so that the compiler can vectorise it (no data-dependent branch,
 * every operand loaded unconditionally) and none reassociates a sum, and the build turns
 * FMA contraction off: each instruction set computes the same operations in the same order,
 * so the results are bitwise identical whichever set the CPU runs. */

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
    case FM_ACT_RELU:
        for (int64_t i = 0; i < len; i++) {
            const REAL g = dY[i];
            dX[i] = Y[i] > 0 ? g : (REAL)0;
        }
        break;
    case FM_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < len; i++) {
            const REAL g = dY[i];
            dX[i] = Y[i] > 0 ? g : a * g;
        }
        break;
    case FM_ACT_ELU: /* y = a (e^x - 1) for x <= 0, so dy/dx = y + a */
        for (int64_t i = 0; i < len; i++) {
            const REAL g = dY[i], y = Y[i];
            dX[i] = y > 0 ? g : g * (y + a);
        }
        break;
    case FM_ACT_SIGMOID:
        for (int64_t i = 0; i < len; i++) dX[i] = dY[i] * Y[i] * ((REAL)1 - Y[i]);
        break;
    case FM_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < len; i++) {
            const REAL g = dY[i] / (REAL)6, y = Y[i];
            dX[i] = (y > 0 && y < 1) ? g : (REAL)0;
        }
        break;
    case FM_ACT_TANH:
        for (int64_t i = 0; i < len; i++) dX[i] = dY[i] * ((REAL)1 - Y[i] * Y[i]);
        break;
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
        for (int64_t i = 0; i < len; i++) {
            const REAL g = dY[i], y = Y[i];
            dX[i] = y > 0 ? g * (REAL)SELU_SCALE : g * (y + (REAL)(SELU_SCALE * SELU_ALPHA));
        }
        break;
    case FM_ACT_SOFTSIGN: /* 1 / (1 + |x|)^2 = (1 - |y|)^2 */
        for (int64_t i = 0; i < len; i++) {
            const REAL t = (REAL)1 - FABS(Y[i]);
            dX[i] = dY[i] * t * t;
        }
        break;
    case FM_ACT_EXPONENTIAL:
        for (int64_t i = 0; i < len; i++) dX[i] = dY[i] * Y[i];
        break;
    }
}

/* db (n) = the column sums of dZ (m x n), each summed over the rows in order. */
static void EW(colsum)(REAL *db, const REAL *dZ, int64_t m, int64_t n) {
    for (int64_t j = 0; j < n; j++) db[j] = 0;
    for (int64_t i = 0; i < m; i++) {
        const REAL *z = dZ + i * n;
        for (int64_t j = 0; j < n; j++) db[j] += z[j];
    }
}

/* The optimizer's update on elements [lo, hi) of P (n), G (n) and the state S (3n);
 * element-wise, so any split gives the same bits. */
static void EW(update)(REAL *P, const REAL *G, REAL *S, int64_t n, int64_t lo, int64_t hi,
                       const fm_optim *o, double lr, int64_t t) {
    REAL *s0 = S, *s1 = S + n, *s2 = S + 2 * n;
    const REAL eps = (REAL)o->epsilon;
    switch (o->kind) {
    case FM_OPT_SGD: {
        const REAL mu = (REAL)o->momentum, a = (REAL)lr;
        if (o->momentum == 0)
            for (int64_t i = lo; i < hi; i++) P[i] -= a * G[i];
        else if (o->nesterov)
            for (int64_t i = lo; i < hi; i++) {
                const REAL v = mu * s0[i] - a * G[i];
                s0[i] = v;
                P[i] += mu * v - a * G[i];
            }
        else
            for (int64_t i = lo; i < hi; i++) {
                const REAL v = mu * s0[i] - a * G[i];
                s0[i] = v;
                P[i] += v;
            }
        break;
    }
    case FM_OPT_ADAM: {
        const REAL b1 = (REAL)(1 - o->beta_1), b2 = (REAL)(1 - o->beta_2);
        const REAL a = (REAL)(lr * sqrt(1 - pow(o->beta_2, (double)t)) /
                              (1 - pow(o->beta_1, (double)t)));
        if (o->amsgrad)
            for (int64_t i = lo; i < hi; i++) {
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
            for (int64_t i = lo; i < hi; i++) {
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
        for (int64_t i = lo; i < hi; i++) {
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
        for (int64_t i = lo; i < hi; i++) {
            const REAL acc = s0[i] + G[i] * G[i];
            s0[i] = acc;
            P[i] -= a * G[i] / SQRT(acc + eps);
        }
        break;
    }
    case FM_OPT_ADAM_SKLEARN: { /* scikit-learn's AdamOptimizer, operation for operation */
        const REAL b1 = (REAL)o->beta_1, c1 = (REAL)(1 - o->beta_1);
        const REAL b2 = (REAL)o->beta_2, c2 = (REAL)(1 - o->beta_2);
        const REAL a = (REAL)(lr * sqrt(1 - pow(o->beta_2, (double)t)) /
                              (1 - pow(o->beta_1, (double)t)));
        for (int64_t i = lo; i < hi; i++) {
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

const KTYPE KERNEL = {EW(act_backward), EW(colsum), EW(update)};
