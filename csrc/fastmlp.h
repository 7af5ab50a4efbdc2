/*
 * fastmlp.h - the C engine's public interface.
 *
 * Contract:
 *  - C99, no Python. Pure functions over caller-owned pointers and sizes; the engine never
 *    allocates memory that the caller will see, never prints, never exits or aborts.
 *  - Every exported function that can fail returns an int status: FM_OK (0) or a negative
 *    FM_ERR_* code; fm_strerror() gives its text. Arguments are checked before any write.
 *  - float32 ("_s") and float64 ("_d") for every kernel. Network-level entry points take the
 *    dtype from fm_net and untyped buffers of that dtype.
 *  - Matrices are (ptr, row_stride, col_stride) in elements; unless stated, buffers written by
 *    the engine are C-contiguous.
 *  - Threads: every entry point takes n_threads; work is split so that no two threads write the
 *    same output and no reduction order depends on the thread count, so results are bitwise
 *    identical for any n_threads. Without OpenMP everything runs on one thread.
 */
#ifndef FASTMLP_H
#define FASTMLP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---------------------------------------------------------------------- */
enum {
    FM_OK = 0,
    FM_ERR_BADARG = -1,    /* an argument is out of range or inconsistent */
    FM_ERR_NOMEM = -2,     /* an internal buffer could not be allocated */
    FM_ERR_NONFINITE = -3, /* a training loss became NaN or infinite */
    FM_ERR_ARCH = -4       /* the requested instruction set is not available */
};
const char *fm_strerror(int status);

typedef enum { FM_FLOAT32 = 0, FM_FLOAT64 = 1 } fm_dtype;

/* ---- identifiers ----------------------------------------------------------------------- */
typedef enum {
    FM_ACT_LINEAR = 0,
    FM_ACT_RELU = 1,
    FM_ACT_LEAKY_RELU = 2, /* alpha: negative slope */
    FM_ACT_ELU = 3,        /* alpha: saturation value */
    FM_ACT_SIGMOID = 4,
    FM_ACT_HARD_SIGMOID = 5, /* relu6(x + 3) / 6 */
    FM_ACT_TANH = 6,
    FM_ACT_SOFTPLUS = 7,
    FM_ACT_SOFTMAX = 8, /* row-wise */
    FM_ACT_SELU = 9,
    FM_ACT_SOFTSIGN = 10,
    FM_ACT_EXPONENTIAL = 11,
    FM_ACT_COUNT
} fm_act;

typedef enum {
    FM_LOSS_MSE = 0,
    FM_LOSS_SSE = 1,
    FM_LOSS_MAE = 2,
    FM_LOSS_BCE = 3,
    FM_LOSS_CCE = 4,
    FM_LOSS_SPARSE_CCE = 5,
    /* scikit-learn's losses (its MLP's definitions, summed over the outputs): */
    FM_LOSS_HALF_SQUARED = 6, /* l = 1/2 sum_j (y_j - t_j)^2 */
    FM_LOSS_POISSON = 7,      /* half Poisson deviance l = sum_j t log(t / y) - t + y, with
                               * 0 log 0 = 0; fused with an exponential output: dl/dz = y - t */
    FM_LOSS_LOG = 8,          /* log loss on y clipped to [eps, 1 - eps], eps the dtype's machine
                               * epsilon: binary terms per output after a sigmoid, -sum_j t_j log y_j
                               * after a softmax (no other output activation); dl/dz = y - t,
                               * the gradient when each row of t sums to 1 (one-hot) */
    FM_LOSS_COUNT
} fm_loss;

/* How a batch's loss and penalties are normalized (fm_net.norm). */
typedef enum {
    FM_NORM_ROWS = 0,   /* Keras: sum_i w_i l_i / rows (sum for FM_LOSS_SSE) + penalties */
    FM_NORM_WEIGHTS = 1 /* scikit-learn: (sum_i w_i l_i + penalties) / sum_i w_i (w = 1 when
                         * unweighted), so the L2 term shrinks with the batch's weight */
} fm_norm;

typedef enum {
    FM_METRIC_BINARY_ACC = 0,
    FM_METRIC_CATEGORICAL_ACC = 1,
    FM_METRIC_SPARSE_CATEGORICAL_ACC = 2,
    FM_METRIC_MSE = 3,
    FM_METRIC_MAE = 4,
    FM_METRIC_COUNT
} fm_metric;

typedef enum {
    FM_OPT_SGD = 0, /* also scikit-learn's SGD: its momentum/Nesterov rule is the same */
    FM_OPT_ADAM = 1,
    FM_OPT_RMSPROP = 2,
    FM_OPT_ADAGRAD = 3,
    FM_OPT_ADAM_SKLEARN = 4, /* scikit-learn's Adam: the same maths as FM_OPT_ADAM evaluated in
                              * its order, m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
                              * P += -lr_t m / (sqrt(v) + eps) */
    FM_OPT_COUNT
} fm_opt;

#define FM_MAX_METRICS 8
#define FM_OPT_STATE_SLOTS 3 /* optimizer state is FM_OPT_STATE_SLOTS * n_params elements */

/* ---- GEMM: C := alpha * A @ B + beta * C, A (m x k), B (k x n), C (m x n) ------------------
 * All operands strided; a transpose is a stride swap. beta == 0 ignores C's old contents
 * (NaN in C does not propagate). */
int fm_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa,
             int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
             int64_t rsc, int64_t csc, int n_threads);
int fm_dgemm(int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t rsa,
             int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta, double *C,
             int64_t rsc, int64_t csc, int n_threads);
/* GEMM with the dense layer's epilogue fused: C := alpha * A @ B + beta * C + 1 bias^T, then
 * Y := act(C) (activation id and parameter as in fm_act_forward), applied to each tile of C
 * as soon as its last product is added, while the tile is still in cache; a row-wise
 * activation (softmax) runs on each row once C is complete. bias (n) may be NULL. Y (m x n,
 * row stride rsy, unit column stride) may be NULL or C: act in place. With an epilogue
 * (bias, a non-linear act, or a separate Y) C must have unit column stride (csc == 1). */
int fm_sgemm_ex(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa,
                int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                int64_t rsc, int64_t csc, const float *bias, int act, double act_alpha,
                float *Y, int64_t rsy, int n_threads);
int fm_dgemm_ex(int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t rsa,
                int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta, double *C,
                int64_t rsc, int64_t csc, const double *bias, int act, double act_alpha,
                double *Y, int64_t rsy, int n_threads);
/* The naive triple loop, always built: the test oracle for the blocked kernels. */
int fm_sgemm_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa,
                 int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                 int64_t rsc, int64_t csc);
int fm_dgemm_ref(int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t rsa,
                 int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta, double *C,
                 int64_t rsc, int64_t csc);

/* ---- CPU dispatch ---------------------------------------------------------------------- */
typedef enum { FM_ARCH_GENERIC = 0, FM_ARCH_AVX2 = 1, FM_ARCH_AVX512 = 2 } fm_arch;
/* Picks the kernel set once: FASTMLP_ARCH=generic|avx2|avx512 if set, else the best the CPU
 * supports. Returns FM_ERR_ARCH if the variable names a set the CPU lacks, FM_ERR_BADARG if it
 * names no set; the generic set is then in use. */
int fm_arch_init(void);
/* Test hook: switch to a kernel set the CPU supports (FM_ERR_ARCH otherwise). */
int fm_arch_set(int arch);
int fm_arch_selected(void);
const char *fm_arch_name(int arch);
int fm_cpu_supports(int arch);
/* Whether this build holds the kernel set (a compiler without its intrinsics, or the
 * FASTMLP_NO_<SET> build switches, leave it out; the generic set is always built). */
int fm_arch_built(int arch);
/* CPU features found at run time: a mask of FM_CPU_* bits (0 off x86-64). */
enum {
    FM_CPU_SSE2 = 1 << 0,
    FM_CPU_AVX = 1 << 1,
    FM_CPU_FMA = 1 << 2,
    FM_CPU_AVX2 = 1 << 3,
    FM_CPU_AVX512F = 1 << 4,
    FM_CPU_AVX512DQ = 1 << 5,
    FM_CPU_AVX512VL = 1 << 6,
    FM_CPU_AVX512BW = 1 << 7
};
int fm_cpu_features(void);
/* Blocking of one kernel set (built, whether or not this CPU runs it) for dtype (fm_dtype):
 * out = {MR, NR, MC, KC, NC, sup_m, sup_mnk, par_mnk}: the micro-tile, the cache blocks, the
 * small-product limits (m <= sup_m or m * n * k <= sup_mnk skip packing) and the work (m * n
 * * k) from which threads are used. FM_ERR_BADARG for an unknown set or dtype. */
int fm_gemm_blocking(int arch, int dtype, int64_t out[8]);
int fm_has_openmp(void);
int fm_default_num_threads(void);
/* Seconds on a monotonic clock (for timing runs against each other). */
double fm_seconds(void);

/* ---- element-wise kernels (X, Y, dX, dY: m x n, C-contiguous; Y may alias X) ------------- */
int fm_act_forward_s(float *Y, const float *X, int64_t m, int64_t n, int act, double alpha);
int fm_act_forward_d(double *Y, const double *X, int64_t m, int64_t n, int act, double alpha);
/* dX = dY * act'(.) from the forward OUTPUT Y (dX may alias dY). */
int fm_act_backward_s(float *dX, const float *dY, const float *Y, int64_t m, int64_t n, int act,
                      double alpha);
int fm_act_backward_d(double *dX, const double *dY, const double *Y, int64_t m, int64_t n,
                      int act, double alpha);

/* ---- dense layer: Z = X @ W + b, Y = act(Z); W is (n_in x n_out) ---------------------------
 * X strided (rsx, csx); Z may be NULL (not kept) or equal to Y; b may be NULL. */
int fm_dense_forward_s(float *Y, float *Z, const float *X, int64_t rsx, int64_t csx,
                       const float *W, const float *b, int64_t m, int64_t n_in, int64_t n_out,
                       int act, double alpha, int n_threads);
int fm_dense_forward_d(double *Y, double *Z, const double *X, int64_t rsx, int64_t csx,
                       const double *W, const double *b, int64_t m, int64_t n_in, int64_t n_out,
                       int act, double alpha, int n_threads);
/* dW = X^T dZ, db = colsum(dZ), dX = dZ W^T; dX and db may be NULL. */
int fm_dense_backward_s(float *dX, float *dW, float *db, const float *dZ, const float *X,
                        int64_t rsx, int64_t csx, const float *W, int64_t m, int64_t n_in,
                        int64_t n_out, int n_threads);
int fm_dense_backward_d(double *dX, double *dW, double *db, const double *dZ, const double *X,
                        int64_t rsx, int64_t csx, const double *W, int64_t m, int64_t n_in,
                        int64_t n_out, int n_threads);

/* ---- losses: *loss_sum = sum_i w_i l_i; dZ = grad_scale * d(sum_i w_i l_i)/dZ -------------
 * Z: logits of the output layer, Y = out_act(Z). T (m x n) targets or NULL with labels (m)
 * for the sparse loss. w (m) sample weights or NULL. Fused and finite from the logits for
 * sigmoid + binary and softmax + categorical cross-entropy. */
int fm_loss_s(double *loss_sum, float *dZ, const float *Z, const float *Y, const float *T,
              const int64_t *labels, const float *w, int64_t m, int64_t n, int loss, int out_act,
              double out_alpha, double grad_scale);
int fm_loss_d(double *loss_sum, double *dZ, const double *Z, const double *Y, const double *T,
              const int64_t *labels, const double *w, int64_t m, int64_t n, int loss,
              int out_act, double out_alpha, double grad_scale);

/* ---- metrics: *num += sum_i w_i m_i, *den += sum_i w_i ------------------------------------ */
int fm_metric_s(double *num, double *den, const float *Y, const float *T, const int64_t *labels,
                const float *w, int64_t m, int64_t n, int metric);
int fm_metric_d(double *num, double *den, const double *Y, const double *T,
                const int64_t *labels, const double *w, int64_t m, int64_t n, int metric);

/* ---- optimizers (Keras 3 update rules) ---------------------------------------------------- */
typedef struct {
    int32_t kind; /* fm_opt */
    int32_t nesterov, amsgrad, centered;
    double learning_rate, momentum, beta_1, beta_2, epsilon, rho;
    double decay;           /* Keras-1 time decay: lr / (1 + decay * iteration); 0 = off */
    double clipnorm;        /* per tensor; <= 0 = off */
    double clipvalue;       /* <= 0 = off */
    double global_clipnorm; /* <= 0 = off */
} fm_optim;
int fm_optim_check(const fm_optim *opt);
/* One update of P (n) from G (n); G is clipped in place. offsets (n_tensors + 1) bound the
 * tensors for per-tensor clipnorm (NULL: one tensor). iteration = steps already taken. */
int fm_optim_step_s(float *P, float *G, float *state, int64_t n, const int64_t *offsets,
                    int64_t n_tensors, const fm_optim *opt, int64_t iteration, int n_threads);
int fm_optim_step_d(double *P, double *G, double *state, int64_t n, const int64_t *offsets,
                    int64_t n_tensors, const fm_optim *opt, int64_t iteration, int n_threads);

/* ---- random numbers (xoshiro256**; state of 4 words) -------------------------------------- */
void fm_rng_seed(uint64_t state[4], uint64_t seed);
uint64_t fm_rng_next(uint64_t state[4]);
/* Fisher-Yates shuffle of order[0..n). */
int fm_shuffle(int64_t *order, int64_t n, uint64_t state[4]);

/* ---- the network ------------------------------------------------------------------------- */
typedef struct {
    int32_t dtype;            /* fm_dtype */
    int64_t n_layers;         /* dense layers */
    const int64_t *units;     /* n_layers + 1; units[0] = input width */
    const int32_t *act;       /* n_layers */
    const double *act_alpha;  /* n_layers */
    const int32_t *use_bias;  /* n_layers */
    const double *dropout;    /* n_layers: inverted-dropout rate on layer l's input; 0 = none */
    const double *l1, *l2;    /* n_layers: kernel penalties l1*sum|W| + l2*sum W^2 */
    const double *bias_l1, *bias_l2; /* n_layers: the same for the biases */
    int32_t loss;             /* fm_loss */
    int64_t n_metrics;        /* <= FM_MAX_METRICS */
    const int32_t *metrics;   /* fm_metric */
    int32_t norm;             /* fm_norm */
    int32_t output_mean;      /* 1: the reported data loss is divided by the number of outputs
                               * while its gradient is not (scikit-learn's squared_error reports
                               * the mean over outputs and descends along their sum); else 0 */
} fm_net;

int fm_net_check(const fm_net *net);
/* Number of parameters; the flat buffer holds, per layer, W (n_in x n_out) then b (n_out). */
int64_t fm_net_param_count(const fm_net *net);
/* w_off/b_off (n_layers each) receive the offsets of W and b (-1 when the layer has no bias). */
int fm_net_layout(const fm_net *net, int64_t *w_off, int64_t *b_off);
/* Bytes of workspace needed for batches of up to `batch` rows (train, evaluate and predict). */
int64_t fm_net_workspace_bytes(const fm_net *net, int64_t batch);

/* A data set in the caller's memory: X (n x units[0]) and T (n x n_out) strided, of the net's
 * dtype; labels (n) for the sparse loss; sw (n) sample weights or NULL. */
typedef struct {
    const void *X;
    int64_t x_rs, x_cs;
    const void *T;
    int64_t t_rs, t_cs;
    const int64_t *labels;
    const void *sw;
    int64_t n;
} fm_data;

typedef struct {
    double loss_sum;  /* sum over batches of (batch loss + penalty) * batch rows, each batch
                       * normalized as fm_net.norm says */
    int64_t n_seen;   /* rows processed */
    int64_t bad_batch; /* with FM_ERR_NONFINITE: the batch whose loss was not finite */
    double metric_num[FM_MAX_METRICS];
    double metric_den[FM_MAX_METRICS];
    int64_t team_waited; /* fm_train: set to 1 when the threads sharing its steps spent most of
                          * their time waiting for each other (cores taken by other work) and
                          * it went on with one; the caller may pass n_threads = 1 for a while
                          * (the same bits either way) */
} fm_stats;

/* Trains batches [first_batch, first_batch + n_batches) of the epoch ordering `order` (a
 * permutation of 0..n-1; an entry outside [0, n) gives FM_ERR_BADARG before any work); the
 * last batch of an epoch may be partial. Each step gathers its
 * rows, runs forward, loss, backward and the optimizer update, and increments *iterations.
 * Statistics are added to *stats. On a non-finite batch loss it returns FM_ERR_NONFINITE
 * before updating, with stats->bad_batch set. `work` holds fm_net_workspace_bytes(batch_size)
 * bytes; opt_state FM_OPT_STATE_SLOTS * n_params elements. */
int fm_train(const fm_net *net, const fm_optim *opt, void *params, void *grads, void *opt_state,
             int64_t *iterations, void *work, int64_t batch_size, const fm_data *data,
             const int64_t *order, int64_t first_batch, int64_t n_batches, uint64_t seed,
             fm_stats *stats, int n_threads);
/* How many threads fm_train shares each step among (a team: each thread takes rows of the
 * batch forward and back, and owns rows of the parameters for dW and the update; see
 * fm_team_impl.h), given n_threads: 1 when the step runs on one thread, the GEMM threading
 * its larger products itself. Either way the results are the same, bit for bit. -1 for an
 * invalid argument. */
int fm_train_team_size(const fm_net *net, const fm_optim *opt, int64_t batch_size, int n_threads);
/* Sets the share of a window of steps a team's thread may spend waiting for the others at
 * the barriers that end evenly shared work before fm_train goes on with one thread (0.25 at
 * start; see fm_team_impl.h); returns the previous share, or -1 (changing nothing) unless
 * 0 < share < 1. Process-wide: set it while no training runs. */
double fm_set_team_wait_share(double share);
/* Loss (with penalties) and metrics over the whole data set in batches; no dropout. */
int fm_evaluate(const fm_net *net, const void *params, void *work, int64_t batch_size,
                const fm_data *data, fm_stats *stats, int n_threads);
/* out (n x n_out, C-contiguous) = the network's output for X. */
int fm_predict(const fm_net *net, const void *params, void *work, int64_t batch_size,
               const void *X, int64_t x_rs, int64_t x_cs, int64_t n, void *out, int n_threads);
/* One forward/backward over all n rows as one batch (no dropout, no update): *loss = batch
 * loss + penalty, grads = its gradient. work sized for batch n. */
int fm_loss_and_grad(const fm_net *net, const void *params, void *grads, void *work,
                     const fm_data *data, double *loss, int n_threads);

#ifdef __cplusplus
}
#endif
#endif /* FASTMLP_H */
