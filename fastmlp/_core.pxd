# cython: language_level=3
"""Declarations of the C engine (csrc/fastmlp.h) for the Cython layer."""
from libc.stdint cimport int32_t, int64_t, uint64_t


cdef extern from "fastmlp.h" nogil:
    enum:
        FM_OK
        FM_ERR_BADARG
        FM_ERR_NOMEM
        FM_ERR_NONFINITE
        FM_ERR_ARCH
        FM_FLOAT32
        FM_FLOAT64
        FM_MAX_METRICS
        FM_OPT_STATE_SLOTS
        FM_ACT_COUNT
        FM_LOSS_COUNT
        FM_METRIC_COUNT
        FM_OPT_COUNT
        FM_LOSS_SSE
        FM_LOSS_SPARSE_CCE
        FM_NORM_ROWS
        FM_NORM_WEIGHTS
        FM_ARCH_GENERIC
        FM_ARCH_AVX2
        FM_ARCH_AVX512

    const char *fm_strerror(int status)

    int fm_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa,
                 int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                 int64_t rsc, int64_t csc, int n_threads)
    int fm_dgemm(int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t rsa,
                 int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta, double *C,
                 int64_t rsc, int64_t csc, int n_threads)
    int fm_sgemm_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa,
                     int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                     int64_t rsc, int64_t csc)
    int fm_dgemm_ref(int64_t m, int64_t n, int64_t k, double alpha, const double *A,
                     int64_t rsa, int64_t csa, const double *B, int64_t rsb, int64_t csb,
                     double beta, double *C, int64_t rsc, int64_t csc)

    int fm_arch_init()
    int fm_arch_set(int arch)
    int fm_arch_selected()
    const char *fm_arch_name(int arch)
    int fm_cpu_supports(int arch)
    int fm_arch_built(int arch)
    int fm_has_openmp()
    int fm_default_num_threads()
    double fm_seconds()

    int fm_act_forward_s(float *Y, const float *X, int64_t m, int64_t n, int act, double alpha)
    int fm_act_forward_d(double *Y, const double *X, int64_t m, int64_t n, int act, double alpha)
    int fm_act_backward_s(float *dX, const float *dY, const float *Y, int64_t m, int64_t n,
                          int act, double alpha)
    int fm_act_backward_d(double *dX, const double *dY, const double *Y, int64_t m, int64_t n,
                          int act, double alpha)

    int fm_dense_forward_s(float *Y, float *Z, const float *X, int64_t rsx, int64_t csx,
                           const float *W, const float *b, int64_t m, int64_t n_in,
                           int64_t n_out, int act, double alpha, int n_threads)
    int fm_dense_forward_d(double *Y, double *Z, const double *X, int64_t rsx, int64_t csx,
                           const double *W, const double *b, int64_t m, int64_t n_in,
                           int64_t n_out, int act, double alpha, int n_threads)
    int fm_dense_backward_s(float *dX, float *dW, float *db, const float *dZ, const float *X,
                            int64_t rsx, int64_t csx, const float *W, int64_t m, int64_t n_in,
                            int64_t n_out, int n_threads)
    int fm_dense_backward_d(double *dX, double *dW, double *db, const double *dZ,
                            const double *X, int64_t rsx, int64_t csx, const double *W,
                            int64_t m, int64_t n_in, int64_t n_out, int n_threads)

    int fm_loss_s(double *loss_sum, float *dZ, const float *Z, const float *Y, const float *T,
                  const int64_t *labels, const float *w, int64_t m, int64_t n, int loss,
                  int out_act, double out_alpha, double grad_scale)
    int fm_loss_d(double *loss_sum, double *dZ, const double *Z, const double *Y,
                  const double *T, const int64_t *labels, const double *w, int64_t m, int64_t n,
                  int loss, int out_act, double out_alpha, double grad_scale)
    int fm_metric_s(double *num, double *den, const float *Y, const float *T,
                    const int64_t *labels, const float *w, int64_t m, int64_t n, int metric)
    int fm_metric_d(double *num, double *den, const double *Y, const double *T,
                    const int64_t *labels, const double *w, int64_t m, int64_t n, int metric)

    ctypedef struct fm_optim:
        int32_t kind
        int32_t nesterov, amsgrad, centered
        double learning_rate, momentum, beta_1, beta_2, epsilon, rho
        double decay, clipnorm, clipvalue, global_clipnorm
    int fm_optim_check(const fm_optim *opt)
    int fm_optim_step_s(float *P, float *G, float *state, int64_t n, const int64_t *offsets,
                        int64_t n_tensors, const fm_optim *opt, int64_t iteration, int n_threads)
    int fm_optim_step_d(double *P, double *G, double *state, int64_t n, const int64_t *offsets,
                        int64_t n_tensors, const fm_optim *opt, int64_t iteration, int n_threads)

    void fm_rng_seed(uint64_t *state, uint64_t seed)
    int fm_shuffle(int64_t *order, int64_t n, uint64_t *state)

    ctypedef struct fm_net:
        int32_t dtype
        int64_t n_layers
        const int64_t *units
        const int32_t *act
        const double *act_alpha
        const int32_t *use_bias
        const double *dropout
        const double *l1
        const double *l2
        const double *bias_l1
        const double *bias_l2
        int32_t loss
        int64_t n_metrics
        const int32_t *metrics
        int32_t norm
        int32_t output_mean
    int fm_net_check(const fm_net *net)
    int64_t fm_net_param_count(const fm_net *net)
    int fm_net_layout(const fm_net *net, int64_t *w_off, int64_t *b_off)
    int64_t fm_net_workspace_bytes(const fm_net *net, int64_t batch)

    ctypedef struct fm_data:
        const void *X
        int64_t x_rs, x_cs
        const void *T
        int64_t t_rs, t_cs
        const int64_t *labels
        const void *sw
        int64_t n
    ctypedef struct fm_stats:
        double loss_sum
        int64_t n_seen
        int64_t bad_batch
        double metric_num[8]
        double metric_den[8]
        int64_t team_waited

    int fm_train(const fm_net *net, const fm_optim *opt, void *params, void *grads,
                 void *opt_state, int64_t *iterations, void *work, int64_t batch_size,
                 const fm_data *data, const int64_t *order, int64_t first_batch,
                 int64_t n_batches, uint64_t seed, fm_stats *stats, int n_threads)
    int fm_train_team_size(const fm_net *net, const fm_optim *opt, int64_t batch_size,
                           int n_threads)
    double fm_set_team_wait_share(double share)
    int fm_evaluate(const fm_net *net, const void *params, void *work, int64_t batch_size,
                    const fm_data *data, fm_stats *stats, int n_threads)
    int fm_predict(const fm_net *net, const void *params, void *work, int64_t batch_size,
                   const void *X, int64_t x_rs, int64_t x_cs, int64_t n, void *out,
                   int n_threads)
    int fm_loss_and_grad(const fm_net *net, const void *params, void *grads, void *work,
                         const fm_data *data, double *loss, int n_threads)


# ---- GEMM configuration ----------------------------------------------------------------
cdef extern from "fastmlp.h" nogil:
    enum:
        FM_CPU_SSE2
        FM_CPU_AVX
        FM_CPU_FMA
        FM_CPU_AVX2
        FM_CPU_AVX512F
        FM_CPU_AVX512DQ
        FM_CPU_AVX512VL
        FM_CPU_AVX512BW
        FM_ACT_LINEAR

    int fm_sgemm_ex(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t rsa,
                    int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                    int64_t rsc, int64_t csc, const float *bias, int act, double act_alpha,
                    float *Y, int64_t rsy, int n_threads)
    int fm_dgemm_ex(int64_t m, int64_t n, int64_t k, double alpha, const double *A,
                    int64_t rsa, int64_t csa, const double *B, int64_t rsb, int64_t csb,
                    double beta, double *C, int64_t rsc, int64_t csc, const double *bias,
                    int act, double act_alpha, double *Y, int64_t rsy, int n_threads)
    int fm_cpu_features()
    int fm_gemm_blocking(int arch, int dtype, int64_t *out)


cdef extern from "fm_internal.h" nogil:
    int64_t FM_GEMM_SMALL_MNK
    int64_t FM_GEMM_ROW_PAR_MNK
    int fm_sgemm_small(int64_t m, int64_t n, int64_t k, const float *A, int64_t rsa,
                       int64_t csa, const float *B, int64_t rsb, int64_t csb, float *C,
                       const float *bias, int act, double act_alpha, float *Y)
    int fm_dgemm_small(int64_t m, int64_t n, int64_t k, const double *A, int64_t rsa,
                       int64_t csa, const double *B, int64_t rsb, int64_t csb, double *C,
                       const double *bias, int act, double act_alpha, double *Y)
