/* fm_net_impl.h - typed body of fm_net.c (REAL, FN, FMFN defined by the includer). */

typedef struct {
    char *base;
    const int64_t *hdr; /* A offsets [0, L), D offsets [L, 2L), tensor bounds from 2L, G
                         * offsets from 4L + 2 */
    int64_t L;
    REAL *xb, *tb, *wb, *zl, *d0, *d1;
    int64_t *lb;
    double *pp; /* a team's penalty terms, FM_ALIGN bytes apart */
} FN(ws);

static FN(ws) FN(ws_open)(const fm_net *net, void *work, int64_t B) {
    fm_plan p;
    char *const base = (char *)(((uintptr_t)work + FM_ALIGN - 1) & ~(uintptr_t)(FM_ALIGN - 1));
    plan_workspace(net, B, &p, (int64_t *)base);
    FN(ws) w;
    w.base = base;
    w.hdr = (const int64_t *)base;
    w.L = net->n_layers;
    w.lb = (int64_t *)(w.base + p.lb);
    w.xb = (REAL *)(w.base + p.xb);
    w.tb = (REAL *)(w.base + p.tb);
    w.wb = (REAL *)(w.base + p.wb);
    w.zl = (REAL *)(w.base + p.zl);
    w.d0 = (REAL *)(w.base + p.d0);
    w.d1 = (REAL *)(w.base + p.d1);
    w.pp = (double *)(w.base + p.pp);
    return w;
}

#define ACT_OUT(w, l) ((REAL *)((w)->base + (w)->hdr[(l)]))
#define DROPPED(w, l) ((REAL *)((w)->base + (w)->hdr[(w)->L + (l)]))
#define KEPT_DZ(w, l) ((REAL *)((w)->base + (w)->hdr[4 * (w)->L + 2 + (l)]))

/* Rows of src (rs, cs) into dst (cnt x width, contiguous): rows[r] when rows is given,
 * else row0 + r. */
static void FN(gather)(REAL *dst, const REAL *src, int64_t rs, int64_t cs, int64_t width,
                       const int64_t *rows, int64_t row0, int64_t cnt) {
    if (width == 1) { /* one element per row (targets of a single output) */
        for (int64_t r = 0; r < cnt; r++) dst[r] = src[(rows != NULL ? rows[r] : row0 + r) * rs];
        return;
    }
    for (int64_t r = 0; r < cnt; r++) {
        const REAL *s = src + (rows != NULL ? rows[r] : row0 + r) * rs;
        REAL *d = dst + r * width;
        if (cs == 1 && width >= 64)
            memcpy(d, s, (size_t)width * sizeof(REAL));
        else if (cs == 1) { /* a few elements: fixed-size copies the compiler inlines */
            int64_t j = 0;
            for (; j + 8 <= width; j += 8) memcpy(d + j, s + j, 8 * sizeof(REAL));
            for (; j < width; j++) memcpy(d + j, s + j, sizeof(REAL));
        } else
            for (int64_t j = 0; j < width; j++) d[j] = s[j * cs];
    }
}

/* Inverted dropout on elements [lo, hi): dst = src * mask / (1 - rate), the mask of element e
 * drawn from (key, e) whichever range it is applied in; dst may be src. */
static void FN(dropout_apply)(REAL *dst, const REAL *src, int64_t lo, int64_t hi, double rate,
                              uint64_t key) {
    const REAL scale = (REAL)(1.0 / (1.0 - rate));
    for (int64_t e = lo; e < hi; e++)
        dst[e] = fm_hash_uniform(key, (uint64_t)e) >= rate ? src[e] * scale : (REAL)0;
}

/* Layer l's input: the data for l == 0, else the previous output (dropped in training). */
static const REAL *FN(layer_input)(const fm_net *net, const FN(ws) * w, int64_t l, int train,
                                   const REAL *X, int64_t *rs, int64_t *cs, int64_t rsx,
                                   int64_t csx) {
    if (l == 0) {
        *rs = rsx;
        *cs = csx;
        return X;
    }
    *rs = net->units[l];
    *cs = 1;
    return train && net->dropout[l] > 0 ? DROPPED(w, l) : ACT_OUT(w, l - 1);
}

/* Whether the loss computes the output activation itself (sigmoid + binary cross-entropy:
 * the loss's e^-|z| gives the sigmoid too), so that a training forward leaves it out. */
static int FN(loss_makes_output)(const fm_net *net) {
    return net->loss == FM_LOSS_BCE && net->act[net->n_layers - 1] == FM_ACT_SIGMOID;
}

/* Forward through every layer for nb rows of X; the output goes to y_last or A[L-1], or,
 * with z_only, only the last layer's Z (w->zl) is computed (FN(loss_makes_output)). */
static int FN(forward)(const fm_net *net, const REAL *P, const FN(ws) * w, int64_t nb,
                       const REAL *X, int64_t rsx, int64_t csx, int train, uint64_t seed,
                       int64_t iteration, REAL *y_last, int z_only, int n_threads) {
    /* A[l] = act_l(in_l @ W_l + b_l), in_0 = X, in_l = dropout(A[l-1]) */
    const int64_t L = net->n_layers;
    int64_t off = 0;
    for (int64_t l = 0; l < L; l++) {
        const int64_t nin = net->units[l], nout = net->units[l + 1];
        const REAL *W = P + off, *b = net->use_bias[l] ? W + nin * nout : NULL;
        off += nin * nout + (net->use_bias[l] ? nout : 0);
        int64_t rs, cs;
        const REAL *in = FN(layer_input)(net, w, l, train, X, &rs, &cs, rsx, csx);
        const int last = l == L - 1;
        REAL *Y = last && y_last != NULL ? y_last : ACT_OUT(w, l);
        int status = last && z_only
                         ? FMFN(dense_forward)(w->zl, NULL, in, rs, cs, W, b, nb, nin, nout,
                                               FM_ACT_LINEAR, 0, n_threads)
                         : FMFN(dense_forward)(Y, last ? w->zl : NULL, in, rs, cs, W, b, nb,
                                               nin, nout, net->act[l], net->act_alpha[l],
                                               n_threads);
        if (status != FM_OK) return status;
        if (!last && train && net->dropout[l + 1] > 0)
            FN(dropout_apply)(DROPPED(w, l + 1), Y, 0, nb * nout, net->dropout[l + 1],
                              dropout_key(seed, iteration, l + 1));
    }
    return FM_OK;
}

/* dV += pen_scale * d(l1 sum|V| + l2 sum V^2)/dV */
static void FN(add_penalty_grad)(REAL *dV, const REAL *V, int64_t len, double l1, double l2,
                                 double pen_scale) {
    if (l1 == 0 && l2 == 0) return;
    EWK->penalty_grad(dV, V, len, (REAL)(l1 * pen_scale), (REAL)(2 * l2 * pen_scale));
}

/* Layer l's penalty term i: kernel rows [r0, r1) of block i < pen_blocks(nin), the bias for
 * i == pen_blocks(nin); 0 where the layer has no such penalty. */
static double FN(penalty_term)(const fm_net *net, int64_t l, const REAL *W, int64_t i) {
    const int64_t nin = net->units[l], nout = net->units[l + 1], nb = pen_blocks(nin);
    if (i < nb) {
        if (net->l1[l] == 0 && net->l2[l] == 0) return 0;
        const int64_t r0 = i * FM_PEN_ROWS, r1 = r0 + FM_PEN_ROWS < nin ? r0 + FM_PEN_ROWS : nin;
        return EWK->penalty_sum(W + r0 * nout, r1 - r0, nout, nout, net->l1[l], net->l2[l]);
    }
    if (!net->use_bias[l] || (net->bias_l1[l] == 0 && net->bias_l2[l] == 0)) return 0;
    return EWK->penalty_sum(W + nin * nout, 1, nout, nout, net->bias_l1[l], net->bias_l2[l]);
}

/* The regularization term added to every batch loss: the layers' terms in order (the order
 * in which a team adds up its threads' terms). */
static double FN(penalty)(const fm_net *net, const REAL *P) {
    double pen = 0;
    int64_t off = 0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t nin = net->units[l], nout = net->units[l + 1];
        if (penalized(net, l))
            for (int64_t i = 0; i <= pen_blocks(nin); i++)
                pen += FN(penalty_term)(net, l, P + off, i);
        off += nin * nout + (net->use_bias[l] ? nout : 0);
    }
    return pen;
}

/* Backward from dZ of the last layer (in d0) to every parameter gradient in G. */
static int FN(backward)(const fm_net *net, const REAL *P, REAL *G, const FN(ws) * w, int64_t nb,
                        const REAL *X, int64_t rsx, int64_t csx, int train, uint64_t seed,
                        int64_t iteration, double pen_scale, int n_threads) {
    /* forward: Z_l = in_l @ W_l + b_l  =>  dW_l = in_l^T dZ_l, db_l = colsum(dZ_l),
     * d(in_l) = dZ_l W_l^T, dZ_{l-1} = act'(d(in_l) * mask_l) */
    const int64_t L = net->n_layers;
    int64_t off = 0;
    for (int64_t l = 0; l < L; l++)
        off += net->units[l] * net->units[l + 1] + (net->use_bias[l] ? net->units[l + 1] : 0);
    REAL *const dcur = w->d0, *const dnext = w->d1;
    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t nin = net->units[l], nout = net->units[l + 1];
        off -= nin * nout + (net->use_bias[l] ? nout : 0);
        const REAL *W = P + off;
        REAL *dW = G + off, *db = net->use_bias[l] ? dW + nin * nout : NULL;
        int64_t rs, cs;
        const REAL *in = FN(layer_input)(net, w, l, train, X, &rs, &cs, rsx, csx);
        int status = FMFN(dense_backward)(l > 0 ? dnext : NULL, dW, db, dcur, in, rs, cs, W, nb,
                                          nin, nout, n_threads);
        if (status != FM_OK) return status;
        FN(add_penalty_grad)(dW, W, nin * nout, net->l1[l], net->l2[l], pen_scale);
        if (db != NULL)
            FN(add_penalty_grad)(db, W + nin * nout, nout, net->bias_l1[l], net->bias_l2[l],
                                 pen_scale);
        if (l > 0) {
            if (train && net->dropout[l] > 0)
                FN(dropout_apply)(dnext, dnext, 0, nb * nin, net->dropout[l],
                                  dropout_key(seed, iteration, l));
            /* dZ_{l-1} goes to dcur, free now: distinct buffers keep the loop vectorised
             * (an in-place call would fail the compiler's overlap check) */
            status = FMFN(act_backward)(dcur, dnext, ACT_OUT(w, l - 1), nb, nin,
                                        net->act[l - 1], net->act_alpha[l - 1]);
            if (status != FM_OK) return status;
        }
    }
    return FM_OK;
}

/* Objective of a forwarded batch: its normalized loss plus the penalty `pen` (the raw sum of
 * the regularization terms), as fm_net.norm says; dZ of the last layer goes to d0 and
 * *pen_scale receives the factor the penalty (and so its gradient) carries. Y_out: the
 * forward computed only Z (FN(loss_makes_output)), and the output goes there. */
static int FN(batch_loss)(const fm_net *net, const FN(ws) * w, int64_t nb, const REAL *Y,
                          const REAL *T, const int64_t *labels, const REAL *sw, double pen,
                          double *loss, double *pen_scale, REAL *Y_out) {
    const int64_t L = net->n_layers, n_out = net->units[L];
    const int by_weight = net->norm == FM_NORM_WEIGHTS;
    double wsum = (double)nb; /* scikit-learn: loss and penalty over the batch's weight sum */
    if (by_weight && sw != NULL) {
        wsum = 0;
        for (int64_t i = 0; i < nb; i++) wsum += (double)sw[i];
    }
    const double scale = by_weight ? 1.0 / wsum
                                   : (net->loss == FM_LOSS_SSE ? 1.0 : 1.0 / (double)nb);
    *pen_scale = by_weight ? scale : 1.0;
    double total = 0;
    int status = FM_OK;
    if (Y_out != NULL) { /* what fm_loss runs for this pair, with the sigmoid computed there */
        if (T == NULL) return FM_ERR_BADARG;
        EWK->bce_logits(&total, w->d0, w->zl, Y_out, T, sw, nb, n_out, scale, Y_out);
    } else
        status = FMFN(loss)(&total, w->d0, w->zl, Y, T, labels, sw, nb, n_out, net->loss,
                            net->act[L - 1], net->act_alpha[L - 1], scale);
    double data = by_weight ? total / wsum : total * scale;
    if (net->output_mean) data /= (double)n_out; /* the value only: see fastmlp.h */
    *loss = data + (by_weight ? pen / wsum : pen);
    return status;
}

static int FN(add_metrics)(const fm_net *net, fm_stats *stats, int64_t nb, const REAL *Y,
                           const REAL *T, const int64_t *labels, const REAL *sw) {
    for (int64_t i = 0; i < net->n_metrics; i++) {
        int status = FMFN(metric)(&stats->metric_num[i], &stats->metric_den[i], Y, T, labels, sw,
                                  nb, net->units[net->n_layers], net->metrics[i]);
        if (status != FM_OK) return status;
    }
    return FM_OK;
}

#include "fm_team_impl.h"

static int FN(train)(const fm_net *net, const fm_optim *opt, void *params, void *grads,
                     void *opt_state, int64_t *iterations, void *work, int64_t B,
                     const fm_data *data, const int64_t *order, int64_t first_batch,
                     int64_t n_batches, uint64_t seed, fm_stats *stats, int n_threads) {
    REAL *P = (REAL *)params, *G = (REAL *)grads, *S = (REAL *)opt_state;
    const FN(ws) ws = FN(ws_open)(net, work, B), *w = &ws;
    const int64_t L = net->n_layers, n = data->n, n_in = net->units[0], n_out = net->units[L];
    const int64_t n_params = fm_net_param_count(net), n_tensors = w->hdr[4 * L + 1];
    const REAL *X = (const REAL *)data->X, *T = (const REAL *)data->T, *SW = (const REAL *)data->sw;
    const int z_only = FN(loss_makes_output)(net);
#ifdef _OPENMP
    const int team = FN(team_size)(net, opt, B, n_threads);
    if (team > 1) { /* a team, unless it gives up on waiting: then the rest here */
        int64_t done = 0;
        const int status = FN(team_train)(net, opt, P, G, S, iterations, w, B, data, order,
                                          first_batch, n_batches, seed, stats, team, &done);
        if (status != FM_OK || done == n_batches) return status;
        stats->team_waited = 1;
        first_batch += done;
        n_batches -= done;
    }
#endif
    for (int64_t bi = first_batch; bi < first_batch + n_batches; bi++) {
        const int64_t start = bi * B, cnt = n - start < B ? n - start : B;
        const int64_t *rows = order + start;
        for (int64_t r = 0; r < cnt; r++)
            if (rows[r] < 0 || rows[r] >= n) return FM_ERR_BADARG;
        FN(gather)(w->xb, X, data->x_rs, data->x_cs, n_in, rows, 0, cnt);
        if (T != NULL) FN(gather)(w->tb, T, data->t_rs, data->t_cs, n_out, rows, 0, cnt);
        if (data->labels != NULL)
            for (int64_t r = 0; r < cnt; r++) w->lb[r] = data->labels[rows[r]];
        if (SW != NULL)
            for (int64_t r = 0; r < cnt; r++) w->wb[r] = SW[rows[r]];
        const REAL *tb = T != NULL ? w->tb : NULL, *wb = SW != NULL ? w->wb : NULL;
        const int64_t *lb = data->labels != NULL ? w->lb : NULL;
        if (net->dropout[0] > 0)
            FN(dropout_apply)(w->xb, w->xb, 0, cnt * n_in, net->dropout[0],
                              dropout_key(seed, *iterations, 0));
        int status = FN(forward)(net, P, w, cnt, w->xb, n_in, 1, 1, seed, *iterations, NULL,
                                 z_only, n_threads);
        if (status != FM_OK) return status;
        REAL *const Y = ACT_OUT(w, L - 1);
        double loss, pen_scale;
        status = FN(batch_loss)(net, w, cnt, Y, tb, lb, wb, FN(penalty)(net, P), &loss,
                                &pen_scale, z_only ? Y : NULL);
        if (status != FM_OK) return status;
        if (!isfinite(loss)) {
            stats->bad_batch = bi;
            return FM_ERR_NONFINITE;
        }
        status = FN(add_metrics)(net, stats, cnt, Y, tb, lb, wb);
        if (status != FM_OK) return status;
        stats->loss_sum += loss * (double)cnt;
        stats->n_seen += cnt;
        status = FN(backward)(net, P, G, w, cnt, w->xb, n_in, 1, 1, seed, *iterations, pen_scale,
                              n_threads);
        if (status != FM_OK) return status;
        status = FMFN(optim_step)(P, G, S, n_params, w->hdr + 2 * L, n_tensors, opt, *iterations,
                                  n_threads);
        if (status != FM_OK) return status;
        (*iterations)++;
    }
    return FM_OK;
}

static int FN(evaluate)(const fm_net *net, const void *params, void *work, int64_t B,
                        const fm_data *data, fm_stats *stats, int n_threads) {
    const REAL *P = (const REAL *)params;
    const FN(ws) ws = FN(ws_open)(net, work, B), *w = &ws;
    const int64_t L = net->n_layers, n = data->n, n_out = net->units[L];
    const REAL *X = (const REAL *)data->X, *T = (const REAL *)data->T, *SW = (const REAL *)data->sw;
    const double pen = FN(penalty)(net, P);
    for (int64_t start = 0; start < n; start += B) {
        const int64_t cnt = n - start < B ? n - start : B;
        if (T != NULL) FN(gather)(w->tb, T, data->t_rs, data->t_cs, n_out, NULL, start, cnt);
        const REAL *tb = T != NULL ? w->tb : NULL, *wb = SW != NULL ? SW + start : NULL;
        const int64_t *lb = data->labels != NULL ? data->labels + start : NULL;
        int status = FN(forward)(net, P, w, cnt, X + start * data->x_rs, data->x_rs, data->x_cs,
                                 0, 0, 0, NULL, 0, n_threads);
        if (status != FM_OK) return status;
        const REAL *Y = ACT_OUT(w, L - 1);
        double loss, pen_scale;
        status = FN(batch_loss)(net, w, cnt, Y, tb, lb, wb, pen, &loss, &pen_scale, NULL);
        if (status == FM_OK) status = FN(add_metrics)(net, stats, cnt, Y, tb, lb, wb);
        if (status != FM_OK) return status;
        stats->loss_sum += loss * (double)cnt;
        stats->n_seen += cnt;
    }
    return FM_OK;
}

static int FN(predict)(const fm_net *net, const void *params, void *work, int64_t B,
                       const void *Xv, int64_t x_rs, int64_t x_cs, int64_t n, void *out,
                       int n_threads) {
    const REAL *P = (const REAL *)params, *X = (const REAL *)Xv;
    const FN(ws) ws = FN(ws_open)(net, work, B), *w = &ws;
    const int64_t n_out = net->units[net->n_layers];
    for (int64_t start = 0; start < n; start += B) {
        const int64_t cnt = n - start < B ? n - start : B;
        int status = FN(forward)(net, P, w, cnt, X + start * x_rs, x_rs, x_cs, 0, 0, 0,
                                 (REAL *)out + start * n_out, 0, n_threads);
        if (status != FM_OK) return status;
    }
    return FM_OK;
}

static int FN(loss_and_grad)(const fm_net *net, const void *params, void *grads, void *work,
                             const fm_data *data, double *loss, int n_threads) {
    const REAL *P = (const REAL *)params;
    const int64_t n = data->n, L = net->n_layers, n_out = net->units[L];
    const FN(ws) ws = FN(ws_open)(net, work, n), *w = &ws;
    const REAL *X = (const REAL *)data->X, *T = (const REAL *)data->T;
    if (T != NULL) FN(gather)(w->tb, T, data->t_rs, data->t_cs, n_out, NULL, 0, n);
    int status =
        FN(forward)(net, P, w, n, X, data->x_rs, data->x_cs, 0, 0, 0, NULL, 0, n_threads);
    if (status != FM_OK) return status;
    double pen_scale;
    status = FN(batch_loss)(net, w, n, ACT_OUT(w, L - 1), T != NULL ? w->tb : NULL, data->labels,
                            (const REAL *)data->sw, FN(penalty)(net, P), loss, &pen_scale, NULL);
    if (status != FM_OK) return status;
    return FN(backward)(net, P, (REAL *)grads, w, n, X, data->x_rs, data->x_cs, 0, 0, 0,
                        pen_scale, n_threads);
}

#undef ACT_OUT
#undef DROPPED
#undef KEPT_DZ
