/*
 * fm_net.c - the network: parameter layout, workspace plan, and the training loop.
 *
 * Contract: one call trains a run of mini-batches entirely in C: it gathers each batch from
 * the caller's data through the epoch ordering (the data set is never copied), runs forward,
 * loss, backward and the optimizer update, and accumulates loss and metrics. It allocates
 * nothing: every buffer lives in the caller's workspace, planned by fm_net_workspace_bytes()
 * and allocated once per fit. Thread-count independent (see fastmlp.h).
 */
#include "fm_internal.h"

#include <math.h>
#include <string.h>

#define FM_ALIGN 64

int fm_net_check(const fm_net *net) {
    if (net == NULL || (net->dtype != FM_FLOAT32 && net->dtype != FM_FLOAT64)) return FM_ERR_BADARG;
    if (net->n_layers < 1 || net->units == NULL || net->act == NULL || net->act_alpha == NULL ||
        net->use_bias == NULL || net->dropout == NULL || net->l1 == NULL || net->l2 == NULL ||
        net->bias_l1 == NULL || net->bias_l2 == NULL)
        return FM_ERR_BADARG;
    for (int64_t l = 0; l <= net->n_layers; l++)
        if (net->units[l] < 1) return FM_ERR_BADARG;
    for (int64_t l = 0; l < net->n_layers; l++) {
        if (net->act[l] < 0 || net->act[l] >= FM_ACT_COUNT) return FM_ERR_BADARG;
        if (!(net->dropout[l] >= 0 && net->dropout[l] < 1)) return FM_ERR_BADARG;
        if (!(net->l1[l] >= 0) || !(net->l2[l] >= 0) || !(net->bias_l1[l] >= 0) ||
            !(net->bias_l2[l] >= 0))
            return FM_ERR_BADARG;
    }
    if (net->loss < 0 || net->loss >= FM_LOSS_COUNT) return FM_ERR_BADARG;
    if ((net->norm != FM_NORM_ROWS && net->norm != FM_NORM_WEIGHTS) ||
        (net->output_mean != 0 && net->output_mean != 1))
        return FM_ERR_BADARG;
    if (net->n_metrics < 0 || net->n_metrics > FM_MAX_METRICS ||
        (net->n_metrics > 0 && net->metrics == NULL))
        return FM_ERR_BADARG;
    const int sparse = net->loss == FM_LOSS_SPARSE_CCE;
    for (int64_t i = 0; i < net->n_metrics; i++) {
        const int32_t m = net->metrics[i];
        if (m < 0 || m >= FM_METRIC_COUNT) return FM_ERR_BADARG;
        /* sparse losses carry labels, the others targets: a metric must read what is there */
        if ((m == FM_METRIC_SPARSE_CATEGORICAL_ACC) != sparse) return FM_ERR_BADARG;
    }
    return FM_OK;
}

int64_t fm_net_param_count(const fm_net *net) {
    if (fm_net_check(net) != FM_OK) return -1;
    int64_t count = 0;
    for (int64_t l = 0; l < net->n_layers; l++)
        count += net->units[l] * net->units[l + 1] + (net->use_bias[l] ? net->units[l + 1] : 0);
    return count;
}

int fm_net_layout(const fm_net *net, int64_t *w_off, int64_t *b_off) {
    if (fm_net_check(net) != FM_OK || w_off == NULL || b_off == NULL) return FM_ERR_BADARG;
    int64_t off = 0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        w_off[l] = off;
        off += net->units[l] * net->units[l + 1];
        b_off[l] = net->use_bias[l] ? off : -1;
        off += net->use_bias[l] ? net->units[l + 1] : 0;
    }
    return FM_OK;
}

/* ---- workspace plan ---------------------------------------------------------------------
 * header: offsets of A[l], D[l] (2 L int64), tensor bounds (2 L + 1) and their count, offsets
 * of G[l] (L), then the regions below, each 64-byte aligned. A[l]: output of layer l; D[l]:
 * layer l's dropped input; G[l]: dZ of layer l < L - 1 as a team keeps it for dW (-1 when the
 * network cannot train as a team); zl: logits of the last layer; d0/d1: gradient ping-pong;
 * xb/tb/wb/lb: the gathered batch; pp: a team's penalty terms, one cache line each. The
 * caller's buffer may start anywhere: the regions are placed from its first 64-byte boundary. */
typedef struct {
    int64_t header, lb, xb, tb, wb, zl, d0, d1, pp, total;
} fm_plan;

/* The penalty is summed over blocks of FM_PEN_ROWS kernel rows, then the bias, layer after
 * layer; a team's threads own whole blocks (fm_team_impl.h). */
#define FM_PEN_ROWS 8
/* A team of threads (fm_team_impl.h) trains steps of at least FM_TEAM_MIN_MNK multiply-adds
 * (forward and backward) whose products are each at most FM_TEAM_MAX_MNK (from about there,
 * the GEMM's own threads do better), each thread taking at least FM_TEAM_MIN_ROWS rows of
 * the batch. Measured on 2 cores: 64-128-64-10 steps pay from a batch of 32 (whole fits:
 * 1.1x float32, 1.3x float64), and lose below. */
#define FM_TEAM_MIN_MNK ((int64_t)1 << 20)
#define FM_TEAM_MAX_MNK ((int64_t)1 << 20)
#define FM_TEAM_MIN_ROWS 16

/* The widest layer output: the row stride of the gradient buffers d0 and d1. */
static int64_t max_width(const fm_net *net) {
    int64_t maxw = 1;
    for (int64_t l = 1; l <= net->n_layers; l++) maxw = net->units[l] > maxw ? net->units[l] : maxw;
    return maxw;
}

/* Whether layer l has any kernel or bias penalty. */
static int penalized(const fm_net *net, int64_t l) {
    return net->l1[l] != 0 || net->l2[l] != 0 || net->bias_l1[l] != 0 || net->bias_l2[l] != 0;
}

static int64_t pen_blocks(int64_t rows) { return (rows + FM_PEN_ROWS - 1) / FM_PEN_ROWS; }

/* Penalty terms of the network: each layer's kernel blocks, then its bias. */
static int64_t pen_terms(const fm_net *net) {
    int64_t terms = 0;
    for (int64_t l = 0; l < net->n_layers; l++) terms += pen_blocks(net->units[l]) + 1;
    return terms;
}

/* Thread t of nt's share [r0, r1) of a layer's `rows` kernel rows: whole penalty blocks (the
 * last thread's share ends with the last row; it owns the bias). */
static void team_rows(int64_t rows, int t, int nt, int64_t *r0, int64_t *r1) {
    const int64_t nb = pen_blocks(rows), b0 = nb * t / nt, b1 = nb * (t + 1) / nt;
    *r0 = b0 * FM_PEN_ROWS < rows ? b0 * FM_PEN_ROWS : rows;
    *r1 = b1 * FM_PEN_ROWS < rows ? b1 * FM_PEN_ROWS : rows;
}

static int64_t align_up(int64_t x) { return (x + FM_ALIGN - 1) / FM_ALIGN * FM_ALIGN; }

/* Whether a team of threads may train this network with batches of B rows (fm_team_impl.h),
 * as far as its shape decides: every product at most FM_TEAM_MAX_MNK multiply-adds (larger
 * ones the GEMM threads itself) and the step at least FM_TEAM_MIN_MNK. The same for every
 * kernel set, so that the workspace plan does not depend on the one in use. */
static int team_shape(const fm_net *net, int64_t B) {
    int64_t step = 0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t nin = net->units[l], nout = net->units[l + 1];
        if (nin > FM_TEAM_MAX_MNK / nout || nin * nout > FM_TEAM_MAX_MNK / B) return 0;
        step += (l > 0 ? 3 : 2) * B * nin * nout; /* below 3 L FM_TEAM_MAX_MNK */
    }
    return step >= FM_TEAM_MIN_MNK;
}

/* Rows of the dZ buffers a team keeps: B when a team may train batches of B rows; else, so
 * that the workspace never shrinks as B grows (a buffer planned for B rows serves every
 * smaller batch), those of the largest batch below B that a team may train, or 0. */
static int64_t kept_rows(const fm_net *net, int64_t B) {
    int64_t most = B; /* the largest batch whose products all stay within FM_TEAM_MAX_MNK */
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t nin = net->units[l], nout = net->units[l + 1];
        const int64_t cap = nin > FM_TEAM_MAX_MNK / nout ? 0 : FM_TEAM_MAX_MNK / (nin * nout);
        most = cap < most ? cap : most;
    }
    return most >= 1 && team_shape(net, most) ? most : 0;
}

/* Fills plan; when hdr is given, also writes the per-layer offsets into it. */
static int64_t plan_workspace(const fm_net *net, int64_t B, fm_plan *p, int64_t *hdr) {
    const int64_t L = net->n_layers, es = net->dtype == FM_FLOAT32 ? 4 : 8;
    const int64_t n_out = net->units[L];
    const int64_t maxw = max_width(net);
    int64_t off = 0;
    p->header = off;
    off = align_up(off + (5 * L + 2) * 8);
    p->lb = off;
    off = align_up(off + B * 8);
    p->xb = off;
    off = align_up(off + B * net->units[0] * es);
    p->tb = off;
    off = align_up(off + B * n_out * es);
    p->wb = off;
    off = align_up(off + B * es);
    p->zl = off;
    off = align_up(off + B * n_out * es);
    p->d0 = off;
    off = align_up(off + B * maxw * es);
    p->d1 = off;
    off = align_up(off + B * maxw * es);
    p->pp = off;
    off = align_up(off + pen_terms(net) * FM_ALIGN);
    for (int64_t l = 0; l < L; l++) {
        if (hdr != NULL) hdr[l] = off;
        off = align_up(off + B * net->units[l + 1] * es);
    }
    for (int64_t l = 0; l < L; l++) {
        const int dropped = l > 0 && net->dropout[l] > 0;
        if (hdr != NULL) hdr[L + l] = dropped ? off : -1;
        if (dropped) off = align_up(off + B * net->units[l] * es);
    }
    const int64_t kept = kept_rows(net, B);
    for (int64_t l = 0; l < L; l++) {
        if (hdr != NULL) hdr[4 * L + 2 + l] = kept > 0 && l < L - 1 ? off : -1;
        if (kept > 0 && l < L - 1) off = align_up(off + kept * net->units[l + 1] * es);
    }
    if (hdr != NULL) { /* tensor bounds for per-tensor gradient clipping */
        int64_t *bounds = hdr + 2 * L, nt = 0, pos = 0;
        bounds[0] = 0;
        for (int64_t l = 0; l < L; l++) {
            pos += net->units[l] * net->units[l + 1];
            bounds[++nt] = pos;
            if (net->use_bias[l]) bounds[++nt] = (pos += net->units[l + 1]);
        }
        hdr[4 * L + 1] = nt;
    }
    p->total = off;
    return off + FM_ALIGN; /* room to move the regions to a 64-byte boundary */
}

int64_t fm_net_workspace_bytes(const fm_net *net, int64_t batch) {
    if (fm_net_check(net) != FM_OK || batch < 1) return -1;
    fm_plan p;
    return plan_workspace(net, batch, &p, NULL);
}

/* The share of a window of steps above which a team's thread is taken to be waiting for
 * cores taken by other work (fm_team_impl.h); fm_set_team_wait_share changes it. */
static double team_wait_share = 0.25;

double fm_set_team_wait_share(double share) {
    if (!(share > 0 && share < 1)) return -1;
    const double previous = team_wait_share;
    team_wait_share = share;
    return previous;
}

/* Key of layer l's dropout mask at a step: the mask of element e is fm_hash_uniform(key, e). */
static uint64_t dropout_key(uint64_t seed, int64_t iteration, int64_t layer) {
    return seed ^ ((uint64_t)iteration * 0x9E3779B97F4A7C15ULL) ^
           ((uint64_t)(layer + 1) * 0xC2B2AE3D27D4EB4FULL);
}

static int check_data(const fm_net *net, const fm_data *d) {
    if (d == NULL || d->n < 0 || (d->n > 0 && d->X == NULL)) return FM_ERR_BADARG;
    if (d->n > 0 && (net->loss == FM_LOSS_SPARSE_CCE ? d->labels == NULL : d->T == NULL))
        return FM_ERR_BADARG;
    return FM_OK;
}

#define REAL float
#define FN(name) FM_CAT(name, _s)
#define FMFN(name) FM_CAT(FM_CAT(fm_, name), _s)
#define EWK (fm_kernels_get()->se)
#define GK (fm_kernels_get()->s)
#define GEMM fm_sgemm
#define GEMM_EX fm_sgemm_ex
#include "fm_net_impl.h"
#undef REAL
#undef FN
#undef FMFN
#undef EWK
#undef GK
#undef GEMM
#undef GEMM_EX

#define REAL double
#define FN(name) FM_CAT(name, _d)
#define FMFN(name) FM_CAT(FM_CAT(fm_, name), _d)
#define EWK (fm_kernels_get()->de)
#define GK (fm_kernels_get()->d)
#define GEMM fm_dgemm
#define GEMM_EX fm_dgemm_ex
#include "fm_net_impl.h"
#undef REAL
#undef FN
#undef FMFN
#undef EWK
#undef GK
#undef GEMM
#undef GEMM_EX

int fm_train(const fm_net *net, const fm_optim *opt, void *params, void *grads, void *opt_state,
             int64_t *iterations, void *work, int64_t batch_size, const fm_data *data,
             const int64_t *order, int64_t first_batch, int64_t n_batches, uint64_t seed,
             fm_stats *stats, int n_threads) {
    int status = fm_net_check(net);
    if (status != FM_OK) return status;
    if (fm_optim_check(opt) != FM_OK || check_data(net, data) != FM_OK) return FM_ERR_BADARG;
    if (params == NULL || grads == NULL || opt_state == NULL || iterations == NULL ||
        *iterations < 0 || work == NULL || stats == NULL || batch_size < 1 || first_batch < 0 ||
        n_batches < 0 || (n_batches > 0 && order == NULL))
        return FM_ERR_BADARG;
    if (n_batches > 0) {
        /* batches in an epoch, and the run's rows, computed so that nothing can overflow */
        const int64_t epoch = data->n / batch_size + (data->n % batch_size != 0);
        if (first_batch >= epoch || n_batches > epoch - first_batch) return FM_ERR_BADARG;
        const int64_t lo = first_batch * batch_size;
        const int64_t hi = n_batches == epoch - first_batch
                               ? data->n
                               : (first_batch + n_batches) * batch_size;
        /* the ordering indexes the caller's rows: every row the run gathers must exist */
        for (int64_t i = lo; i < hi; i++)
            if (order[i] < 0 || order[i] >= data->n) return FM_ERR_BADARG;
    }
    const unsigned fp_mode = fm_fp_mode(); /* subnormals flushed: see fm_internal.h */
#ifdef _OPENMP
    /* A thread starts with its creator's mode: start the team's threads (if this is their
     * first region) before flushing, so that they keep the caller's mode afterwards. */
    if (n_threads > 1) {
#pragma omp parallel num_threads(n_threads)
        (void)0;
    }
#endif
    fm_fp_set_mode(fp_mode | FM_FP_FLUSH);
    status = net->dtype == FM_FLOAT32
               ? train_s(net, opt, params, grads, opt_state, iterations, work, batch_size, data,
                         order, first_batch, n_batches, seed, stats, n_threads)
               : train_d(net, opt, params, grads, opt_state, iterations, work, batch_size, data,
                         order, first_batch, n_batches, seed, stats, n_threads);
    fm_fp_set_mode(fp_mode);
    return status;
}

int fm_train_team_size(const fm_net *net, const fm_optim *opt, int64_t batch_size,
                       int n_threads) {
    if (fm_net_check(net) != FM_OK || fm_optim_check(opt) != FM_OK || batch_size < 1 ||
        n_threads < 1)
        return -1;
#ifdef _OPENMP
    return net->dtype == FM_FLOAT32 ? team_size_s(net, opt, batch_size, n_threads)
                                    : team_size_d(net, opt, batch_size, n_threads);
#else
    return 1;
#endif
}

int fm_evaluate(const fm_net *net, const void *params, void *work, int64_t batch_size,
                const fm_data *data, fm_stats *stats, int n_threads) {
    int status = fm_net_check(net);
    if (status != FM_OK) return status;
    if (check_data(net, data) != FM_OK || params == NULL || work == NULL || stats == NULL ||
        batch_size < 1)
        return FM_ERR_BADARG;
    return net->dtype == FM_FLOAT32 ? evaluate_s(net, params, work, batch_size, data, stats, n_threads)
                                    : evaluate_d(net, params, work, batch_size, data, stats, n_threads);
}

int fm_predict(const fm_net *net, const void *params, void *work, int64_t batch_size,
               const void *X, int64_t x_rs, int64_t x_cs, int64_t n, void *out, int n_threads) {
    int status = fm_net_check(net);
    if (status != FM_OK) return status;
    if (params == NULL || work == NULL || batch_size < 1 || n < 0 ||
        (n > 0 && (X == NULL || out == NULL)))
        return FM_ERR_BADARG;
    return net->dtype == FM_FLOAT32
               ? predict_s(net, params, work, batch_size, X, x_rs, x_cs, n, out, n_threads)
               : predict_d(net, params, work, batch_size, X, x_rs, x_cs, n, out, n_threads);
}

int fm_loss_and_grad(const fm_net *net, const void *params, void *grads, void *work,
                     const fm_data *data, double *loss, int n_threads) {
    int status = fm_net_check(net);
    if (status != FM_OK) return status;
    if (check_data(net, data) != FM_OK || data->n < 1 || params == NULL || grads == NULL ||
        work == NULL || loss == NULL)
        return FM_ERR_BADARG;
    return net->dtype == FM_FLOAT32 ? loss_and_grad_s(net, params, grads, work, data, loss, n_threads)
                                    : loss_and_grad_d(net, params, grads, work, data, loss, n_threads);
}
