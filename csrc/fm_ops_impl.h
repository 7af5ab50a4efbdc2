/* fm_ops_impl.h - typed body of fm_ops.c (REAL, FN and the math macros set by the includer). */

/* ---- activations ---------------------------------------------------------------------- */

int FN(fm_act_forward)(REAL *Y, const REAL *X, int64_t m, int64_t n, int act, double alpha) {
    /* forward: Y = act(X), element-wise (softmax: per row, max subtracted) */
    if (m < 0 || n < 0 || fm_act_check(act) != FM_OK) return FM_ERR_BADARG;
    const int64_t len = m * n;
    if (len == 0) return FM_OK;
    if (Y == NULL || X == NULL) return FM_ERR_BADARG;
    EWK->act_forward(Y, X, m, n, act, alpha);
    return FM_OK;
}

int FN(fm_act_backward)(REAL *dX, const REAL *dY, const REAL *Y, int64_t m, int64_t n, int act,
                        double alpha) {
    /* forward: Y = act(X)  =>  dX = dY * act'(X), written in terms of Y */
    if (m < 0 || n < 0 || fm_act_check(act) != FM_OK) return FM_ERR_BADARG;
    const int64_t len = m * n;
    if (len == 0) return FM_OK;
    if (dX == NULL || dY == NULL || Y == NULL) return FM_ERR_BADARG;
    EWK->act_backward(dX, dY, Y, m, n, act, alpha);
    return FM_OK;
}

/* ---- dense layer ---------------------------------------------------------------------- */

int FN(fm_dense_forward)(REAL *Y, REAL *Z, const REAL *X, int64_t rsx, int64_t csx,
                         const REAL *W, const REAL *b, int64_t m, int64_t n_in, int64_t n_out,
                         int act, double alpha, int n_threads) {
    /* X (m x n_in), W (n_in x n_out), b (n_out) -> Z = X @ W + b, Y = act(Z) (m x n_out) */
    if (m < 0 || n_in < 0 || n_out < 0 || fm_act_check(act) != FM_OK) return FM_ERR_BADARG;
    if (m == 0 || n_out == 0) return FM_OK;
    if (Y == NULL || (n_in > 0 && (X == NULL || W == NULL))) return FM_ERR_BADARG;
    /* one pass: bias and act are applied to each tile of Z while it is hot (fm_sgemm_ex) */
    REAL *out = Z != NULL ? Z : Y;
    if (n_in > 0 && m * n_in * n_out <= FM_GEMM_SMALL_MNK) /* the same bits, less dispatch */
        return FM_CAT(GEMM, _small)(m, n_out, n_in, X, rsx, csx, W, n_out, 1, out, b, act, alpha,
                                    Y);
    return FM_CAT(GEMM, _ex)(m, n_out, n_in, 1, X, rsx, csx, W, n_out, 1, 0, out, n_out, 1, b,
                             act, alpha, Y, n_out, n_threads);
}

int FN(fm_dense_backward)(REAL *dX, REAL *dW, REAL *db, const REAL *dZ, const REAL *X,
                          int64_t rsx, int64_t csx, const REAL *W, int64_t m, int64_t n_in,
                          int64_t n_out, int n_threads) {
    /* forward: Z = X @ W + b  =>  dW = X^T @ dZ, db = colsum(dZ), dX = dZ @ W^T */
    if (m < 0 || n_in < 0 || n_out < 0 || dW == NULL) return FM_ERR_BADARG;
    if (m > 0 && (dZ == NULL || X == NULL)) return FM_ERR_BADARG;
    if (dX != NULL && W == NULL) return FM_ERR_BADARG;
    const int small = m > 0 && n_in > 0 && n_out > 0 && m * n_in * n_out <= FM_GEMM_SMALL_MNK;
    int status = small ? FM_CAT(GEMM, _small)(n_in, n_out, m, X, csx, rsx, dZ, n_out, 1, dW,
                                              NULL, FM_ACT_LINEAR, 0, dW)
                       : GEMM(n_in, n_out, m, 1, X, csx, rsx, dZ, n_out, 1, 0, dW, n_out, 1,
                              n_threads);
    if (status != FM_OK) return status;
    if (db != NULL) EWK->colsum(db, dZ, m, n_out, n_out);
    if (dX != NULL)
        status = small ? FM_CAT(GEMM, _small)(m, n_in, n_out, dZ, n_out, 1, W, 1, n_out, dX,
                                              NULL, FM_ACT_LINEAR, 0, dX)
                       : GEMM(m, n_in, n_out, 1, dZ, n_out, 1, W, 1, n_out, 0, dX, n_in, 1,
                              n_threads);
    return status;
}

/* ---- losses --------------------------------------------------------------------------- */

int FN(fm_loss)(double *loss_sum, REAL *dZ, const REAL *Z, const REAL *Y, const REAL *T,
                const int64_t *labels, const REAL *w, int64_t m, int64_t n, int loss,
                int out_act, double out_alpha, double grad_scale) {
    /* l_i per fastmlp.h; dZ = grad_scale * w_i * dl_i/dZ through the output activation */
    if (loss_sum == NULL || m < 0 || n < 1 || loss < 0 || loss >= FM_LOSS_COUNT ||
        fm_act_check(out_act) != FM_OK)
        return FM_ERR_BADARG;
    const int sparse = loss == FM_LOSS_SPARSE_CCE;
    if (m > 0 && (dZ == NULL || Z == NULL || Y == NULL || (sparse ? labels == NULL : T == NULL)))
        return FM_ERR_BADARG;
    if (sparse)
        for (int64_t i = 0; i < m; i++)
            if (labels[i] < 0 || labels[i] >= n) return FM_ERR_BADARG;
    const int binary_log = loss == FM_LOSS_LOG && out_act == FM_ACT_SIGMOID;
    if (loss == FM_LOSS_LOG && !binary_log && out_act != FM_ACT_SOFTMAX) return FM_ERR_BADARG;
    const int fused = (loss == FM_LOSS_BCE && out_act == FM_ACT_SIGMOID) ||
                      ((loss == FM_LOSS_CCE || sparse) && out_act == FM_ACT_SOFTMAX) ||
                      loss == FM_LOSS_LOG ||
                      (loss == FM_LOSS_POISSON && out_act == FM_ACT_EXPONENTIAL);
    const REAL mach_eps = (REAL)MACH_EPS; /* scikit-learn clips at the dtype's epsilon */
    const REAL eps = (REAL)FM_PROB_EPS;
    const REAL inv_n = (REAL)1 / (REAL)n;
    if (loss == FM_LOSS_BCE && fused) { /* sigmoid + binary cross-entropy from the logits */
        EWK->bce_logits(loss_sum, dZ, Z, Y, T, w, m, n, grad_scale, NULL);
        return FM_OK;
    }
    double total = 0;
    for (int64_t i = 0; i < m; i++) {
        const REAL *z = Z + i * n, *y = Y + i * n, *t = sparse ? NULL : T + i * n;
        REAL *d = dZ + i * n; /* dl/dZ when fused, dl/dY otherwise */
        const double wi = w != NULL ? (double)w[i] : 1.0;
        double l = 0;
#define TARGET(j) (sparse ? (REAL)((j) == labels[i]) : t[j])
        switch (loss) {
        case FM_LOSS_MSE:
        case FM_LOSS_SSE: {
            const REAL s = loss == FM_LOSS_MSE ? inv_n : (REAL)1;
            for (int64_t j = 0; j < n; j++) {
                const REAL e = y[j] - t[j];
                l += (double)e * e;
                d[j] = 2 * s * e;
            }
            if (loss == FM_LOSS_MSE) l /= (double)n;
            break;
        }
        case FM_LOSS_MAE:
            for (int64_t j = 0; j < n; j++) {
                const REAL e = y[j] - t[j];
                l += FABS(e);
                d[j] = e > 0 ? inv_n : (e < 0 ? -inv_n : (REAL)0);
            }
            l /= (double)n;
            break;
        case FM_LOSS_BCE: /* on the probabilities (the fused case returned above) */
            for (int64_t j = 0; j < n; j++) {
                const int clipped = !(y[j] > eps && y[j] < 1 - eps);
                const REAL p = y[j] < eps ? eps : (y[j] > 1 - eps ? 1 - eps : y[j]);
                l -= t[j] * LOG(p) + (1 - t[j]) * LOG(1 - p);
                d[j] = clipped ? (REAL)0 : (-t[j] / p + (1 - t[j]) / (1 - p)) * inv_n;
            }
            l /= (double)n;
            break;
        case FM_LOSS_CCE:
        case FM_LOSS_SPARSE_CCE:
            if (fused) { /* sum_j t_j (logsumexp(z) - z_j), gradient y * sum(t) - t */
                REAL mx = z[0];
                for (int64_t j = 1; j < n; j++) mx = z[j] > mx ? z[j] : mx;
                double se = 0, tsum = 0;
                for (int64_t j = 0; j < n; j++) se += EXP(z[j] - mx);
                const double lse = mx + log(se);
                for (int64_t j = 0; j < n; j++) {
                    const REAL tj = TARGET(j);
                    l += tj * (lse - z[j]);
                    tsum += tj;
                }
                for (int64_t j = 0; j < n; j++) d[j] = y[j] * (REAL)tsum - TARGET(j);
            } else { /* Keras: q = clip(y / sum(y)); l = -sum t log q */
                double s = 0;
                for (int64_t j = 0; j < n; j++) s += y[j];
                double gq = 0; /* sum_j g_j q_j with g_j = dl/dq_j */
                for (int64_t j = 0; j < n; j++) {
                    const REAL q = (REAL)(y[j] / s), tj = TARGET(j);
                    const int clipped = !(q > eps && q < 1 - eps);
                    const REAL qc = q < eps ? eps : (q > 1 - eps ? 1 - eps : q);
                    l -= tj * LOG(qc);
                    d[j] = clipped ? (REAL)0 : -tj / q;
                    gq += (double)d[j] * q;
                }
                for (int64_t j = 0; j < n; j++) d[j] = (REAL)((d[j] - gq) / s);
            }
            break;
        case FM_LOSS_HALF_SQUARED: { /* scikit-learn's squared_error, per output */
            double s = 0;
            for (int64_t j = 0; j < n; j++) {
                const REAL e = y[j] - t[j];
                s += (double)e * e;
                d[j] = e;
            }
            l = 0.5 * s;
            break;
        }
        case FM_LOSS_POISSON: /* xlogy(t, t / y) - t + y, as scikit-learn's poisson_loss */
            for (int64_t j = 0; j < n; j++) {
                l += (t[j] != 0 ? (double)t[j] * log((double)t[j] / (double)y[j]) : 0.0) -
                     (double)t[j] + (double)y[j];
                d[j] = fused ? y[j] - t[j] : (REAL)1 - t[j] / y[j];
            }
            break;
        case FM_LOSS_LOG: /* scikit-learn's (binary_)log_loss: probabilities clipped for the
                           * value only; its gradient is y - t, unclipped */
            for (int64_t j = 0; j < n; j++) {
                const REAL p = y[j] < mach_eps ? mach_eps
                                               : (y[j] > 1 - mach_eps ? 1 - mach_eps : y[j]);
                if (t[j] != 0) l -= (double)t[j] * log((double)p);
                if (binary_log && t[j] != 1) l -= (double)(1 - t[j]) * log((double)(1 - p));
                d[j] = y[j] - t[j];
            }
            break;
        }
#undef TARGET
        total += wi * l;
        const REAL scale = (REAL)(wi * grad_scale);
        for (int64_t j = 0; j < n; j++) d[j] *= scale;
    }
    *loss_sum = total;
    if (!fused) return FN(fm_act_backward)(dZ, dZ, Y, m, n, out_act, out_alpha);
    return FM_OK;
}

/* ---- metrics -------------------------------------------------------------------------- */

static int64_t FN(argmax)(const REAL *v, int64_t n) {
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

int FN(fm_metric)(double *num, double *den, const REAL *Y, const REAL *T, const int64_t *labels,
                  const REAL *w, int64_t m, int64_t n, int metric) {
    /* num += sum_i w_i metric_i, den += sum_i w_i */
    if (num == NULL || den == NULL || m < 0 || n < 1 || metric < 0 || metric >= FM_METRIC_COUNT)
        return FM_ERR_BADARG;
    const int sparse = metric == FM_METRIC_SPARSE_CATEGORICAL_ACC;
    if (m > 0 && (Y == NULL || (sparse ? labels == NULL : T == NULL))) return FM_ERR_BADARG;
    if (metric == FM_METRIC_BINARY_ACC && n == 1 && w == NULL) { /* one output: a count */
        int64_t hits = 0;
        for (int64_t i = 0; i < m; i++) hits += (Y[i] > (REAL)0.5) == (T[i] > (REAL)0.5);
        *num += (double)hits;
        *den += (double)m;
        return FM_OK;
    }
    double s = 0, ws = 0;
    for (int64_t i = 0; i < m; i++) {
        const REAL *y = Y + i * n, *t = sparse ? NULL : T + i * n;
        const double wi = w != NULL ? (double)w[i] : 1.0;
        double v = 0;
        switch (metric) {
        case FM_METRIC_BINARY_ACC:
            for (int64_t j = 0; j < n; j++) v += (y[j] > (REAL)0.5) == (t[j] > (REAL)0.5);
            v /= (double)n;
            break;
        case FM_METRIC_CATEGORICAL_ACC: v = FN(argmax)(y, n) == FN(argmax)(t, n); break;
        case FM_METRIC_SPARSE_CATEGORICAL_ACC: v = FN(argmax)(y, n) == labels[i]; break;
        case FM_METRIC_MSE:
            for (int64_t j = 0; j < n; j++) v += ((double)y[j] - t[j]) * ((double)y[j] - t[j]);
            v /= (double)n;
            break;
        case FM_METRIC_MAE:
            for (int64_t j = 0; j < n; j++) v += fabs((double)y[j] - t[j]);
            v /= (double)n;
            break;
        }
        s += wi * v;
        ws += wi;
    }
    *num += s;
    *den += ws;
    return FM_OK;
}

/* ---- optimizers ----------------------------------------------------------------------- */

static double FN(sumsq)(const REAL *g, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

static void FN(scale)(REAL *g, int64_t n, REAL s) {
    for (int64_t i = 0; i < n; i++) g[i] *= s;
}

/* Keras 3's clipping, applied to G in place before the update. */
static void FN(clip)(REAL *G, int64_t n, const int64_t *offsets, int64_t n_tensors,
                     const fm_optim *o) {
    if (o->clipnorm > 0) {
        const int64_t nt = offsets != NULL ? n_tensors : 1;
        for (int64_t t = 0; t < nt; t++) {
            const int64_t lo = offsets != NULL ? offsets[t] : 0;
            const int64_t hi = offsets != NULL ? offsets[t + 1] : n;
            const double norm = sqrt(FN(sumsq)(G + lo, hi - lo));
            if (norm > o->clipnorm) FN(scale)(G + lo, hi - lo, (REAL)(o->clipnorm / norm));
        }
    } else if (o->global_clipnorm > 0) {
        const double norm = sqrt(FN(sumsq)(G, n));
        if (norm > o->global_clipnorm) FN(scale)(G, n, (REAL)(o->global_clipnorm / norm));
    } else if (o->clipvalue > 0) {
        const REAL c = (REAL)o->clipvalue;
        for (int64_t i = 0; i < n; i++) G[i] = G[i] > c ? c : (G[i] < -c ? -c : G[i]);
    }
}

int FN(fm_optim_step)(REAL *P, REAL *G, REAL *S, int64_t n, const int64_t *offsets,
                      int64_t n_tensors, const fm_optim *opt, int64_t iteration, int n_threads) {
    /* P (n) -= update(G (n), state S (3n)); G clipped in place first */
    if (n < 0 || iteration < 0 || fm_optim_check(opt) != FM_OK) return FM_ERR_BADARG;
    if (offsets != NULL && (n_tensors < 1 || offsets[0] != 0 || offsets[n_tensors] != n))
        return FM_ERR_BADARG;
    if (n == 0) return FM_OK;
    if (P == NULL || G == NULL || S == NULL) return FM_ERR_BADARG;
    FN(clip)(G, n, offsets, n_tensors, opt);
    const fm_step c = fm_step_of(opt, iteration);
    const int nt = fm_threads_for(n_threads, n, FM_ELEMWISE_PARALLEL_MIN);
    if (nt == 1) {
        EWK->update(P, G, S, n, 0, n, 1, n, opt, &c);
        return FM_OK;
    }
#ifdef _OPENMP
    const unsigned fp_mode = fm_fp_mode();
#pragma omp parallel num_threads(nt)
    {
        const unsigned own_mode = fm_fp_mode();
        fm_fp_set_mode(fp_mode);
        const int64_t T = omp_get_num_threads(), id = omp_get_thread_num();
        const int64_t chunk = (n + T - 1) / T;
        const int64_t lo = id * chunk < n ? id * chunk : n, hi = lo + chunk < n ? lo + chunk : n;
        EWK->update(P, G, S, n, lo, hi - lo, 1, hi - lo, opt, &c);
        fm_fp_set_mode(own_mode);
    }
#endif
    return FM_OK;
}
