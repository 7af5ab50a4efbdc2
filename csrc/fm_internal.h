/*
 * fm_internal.h - declarations shared by the engine's translation units; not installed.
 *
 * Contract: the only mutable global is the kernel table chosen once by fm_arch_init(). The
 * typed templates (fm_*_impl.h) are included once per dtype with REAL and FN() defined.
 */
#ifndef FM_INTERNAL_H
#define FM_INTERNAL_H

#include "fastmlp.h"

#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define FM_CAT2(a, b) a##b
#define FM_CAT(a, b) FM_CAT2(a, b)

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946

/* Before a loop whose iterations are independent: vectorise it (OpenMP's simd construct;
 * the build passes -fopenmp-simd, which needs no OpenMP runtime). */
#if defined(__GNUC__) || defined(__clang__)
#define FM_SIMD _Pragma("omp simd")
#else
#define FM_SIMD
#endif

/* What an optimizer's update needs of one step, computed once per step (fm_step_of): the
 * learning rate and, for Adam, the bias-corrected step size. */
typedef struct {
    double lr, adam_a;
} fm_step;

/* Element-wise passes below this many elements run on one thread. */
#define FM_ELEMWISE_PARALLEL_MIN ((int64_t)1 << 16)

/* ---- GEMM kernel table -----------------------------------------------------------------
 * One set per instruction set and dtype, defined in its fm_{s,d}gemm_ukr_<isa>_<MR>x<NR>.c
 * (the only files holding ISA-specific code) and driven by fm_gemm.c's five loops.
 *  ukr:    C (mr x nr) := alpha * Ap @ Bp + beta * C (+ bias), Ap an MR x k panel stored
 *          column after column, Bp a k x NR panel stored row after row, both zero-padded;
 *          mr <= MR, nr <= NR; C any strides; beta == 0 overwrites C; bias (nr) or NULL.
 *  sup:    the same on unpacked operands: A strided (rsa, csa), B with unit column stride
 *          and row stride rsb; reads nothing outside the mr x k and k x nr blocks; relu: C
 *          := max(C, 0) after the bias (0 for NaN, as the relu activation).
 *  pack_a: A (mc x kc, strided) into ceil(mc / MR) panels of MR x kc, zero-padded.
 *  pack_b: B (kc x nc, strided) into ceil(nc / NR) panels of kc x NR, zero-padded.
 * Block sizes (elements): mc rows of A and kc of k per L2-resident packed A block, nc
 * columns per L3-resident packed B block. Products with m * n * k <= sup_mnk, or with
 * m <= sup_m, skip packing (sup); two threads share work above par_mnk multiply-adds. */
#define FM_GEMM_KERNEL_TYPE(R, P)                                                            \
    typedef struct {                                                                         \
        int64_t mr, nr, mc, kc, nc, sup_m, sup_mnk, par_mnk;                                 \
        void (*ukr)(int64_t k, R alpha, const R *Ap, const R *Bp, R beta, R *C,            \
                    int64_t rsc, int64_t csc, int64_t mr, int64_t nr, const R *bias);      \
        void (*sup)(int64_t k, R alpha, const R *A, int64_t rsa, int64_t csa, const R *B,  \
                    int64_t rsb, R beta, R *C, int64_t rsc, int64_t csc, int64_t mr,       \
                    int64_t nr, const R *bias, int relu);                                  \
        void (*pack_a)(int64_t mc, int64_t kc, const R *A, int64_t rsa, int64_t csa,       \
                       R *Ap);                                                             \
        void (*pack_b)(int64_t kc, int64_t nc, const R *B, int64_t rsb, int64_t csb,       \
                       R *Bp);                                                             \
    } fm_##P##gemm_kernel;
FM_GEMM_KERNEL_TYPE(float, s)
FM_GEMM_KERNEL_TYPE(double, d)
#undef FM_GEMM_KERNEL_TYPE

/* ---- element-wise kernel table --------------------------------------------------------
 * One per instruction set and dtype (fm_ew_<isa>.c, all from fm_ew_impl.h), bitwise equal.
 *  act_forward:  Y = act(X) (m x n); Y may be X.
 *  act_backward: dX = dY * act'(X) from Y = act(X) (m x n); dX may be dY.
 *  colsum:       db (n) = column sums of dZ (m x n, row stride ld).
 *  bce_logits:   the fused sigmoid + binary cross-entropy loss and its gradient (fm_loss),
 *                from Y = sigmoid(Z); with Y_out, Y is computed here instead (the sigmoid's
 *                bits, from the loss's own e^-|z|) and written to Y_out.
 *  penalty_grad: dV += a sign(V) + b V;  penalty_sum: l1 sum |V| + l2 sum V^2 over V (m x n,
 *                row stride ld).
 *  gemv_row:     one row of a GEMM with the micro-kernels' arithmetic (fm_gemm.c's path for
 *                products of one row).
 *  update:       the optimizer's update of P, state S (3n) from G, on `rows` runs of len
 *                elements, the first at lo, the next ld further each, with the step's
 *                coefficients c (fm_step_of). */
#define FM_EW_KERNEL_TYPE(R, P)                                                              \
    typedef struct {                                                                         \
        void (*act_forward)(R *Y, const R *X, int64_t m, int64_t n, int act, double alpha);  \
        void (*act_backward)(R *dX, const R *dY, const R *Y, int64_t m, int64_t n, int act, \
                             double alpha);                                                  \
        void (*colsum)(R *db, const R *dZ, int64_t m, int64_t n, int64_t ld);               \
        void (*bce_logits)(double *loss_sum, R *dZ, const R *Z, const R *Y, const R *T,      \
                           const R *w, int64_t m, int64_t n, double grad_scale, R *Y_out);   \
        void (*penalty_grad)(R *dV, const R *V, int64_t len, R a, R b);                     \
        double (*penalty_sum)(const R *V, int64_t m, int64_t n, int64_t ld, double l1,      \
                              double l2);                                                    \
        void (*gemv_row)(int64_t n, int64_t k, R alpha, const R *a, int64_t inc, const R *B, \
                         int64_t rsb, R beta, R *c, const R *bias);                          \
        void (*update)(R *P, const R *G, R *S, int64_t n, int64_t lo, int64_t len,          \
                       int64_t rows, int64_t ld, const fm_optim *o, const fm_step *c);      \
    } fm_##P##ew_kernel;
FM_EW_KERNEL_TYPE(float, s)
FM_EW_KERNEL_TYPE(double, d)
#undef FM_EW_KERNEL_TYPE

typedef struct {
    int arch;
    const fm_sgemm_kernel *s;
    const fm_dgemm_kernel *d;
    const fm_sew_kernel *se;
    const fm_dew_kernel *de;
} fm_kernels;

/* The table in use (generic until fm_arch_init() picks another). */
const fm_kernels *fm_kernels_get(void);
/* The table of one kernel set, whether or not the CPU runs it (NULL if not built). */
const fm_kernels *fm_kernels_of(int arch);

extern const fm_sgemm_kernel fm_sgemm_generic;
extern const fm_dgemm_kernel fm_dgemm_generic;
extern const fm_sew_kernel fm_sew_generic;
extern const fm_dew_kernel fm_dew_generic;
#if defined(__x86_64__) || defined(_M_X64)
#define FM_X86 1
/* The build leaves out a kernel set whose intrinsics its compiler lacks (or on request) and
 * then defines FM_NO_<SET>; dispatch offers only the sets that were built. */
#ifndef FM_NO_AVX2
#define FM_HAVE_AVX2 1
extern const fm_sgemm_kernel fm_sgemm_avx2;
extern const fm_dgemm_kernel fm_dgemm_avx2;
extern const fm_sew_kernel fm_sew_avx2;
extern const fm_dew_kernel fm_dew_avx2;
#endif
#ifndef FM_NO_AVX512
#define FM_HAVE_AVX512 1
extern const fm_sgemm_kernel fm_sgemm_avx512;
extern const fm_dgemm_kernel fm_dgemm_avx512;
extern const fm_sew_kernel fm_sew_avx512;
extern const fm_dew_kernel fm_dew_avx512;
#endif
#endif

/* Products of a row or two (B streamed row by row) use threads from this many multiply-adds
 * (a B of 1 MiB in float32), below the kernel sets' par_mnk: they are bound by the bandwidth
 * of the cache or memory B comes from, which another core adds to (two threads: 1.3-2.5x on
 * a 2-core machine). */
#define FM_GEMM_ROW_PAR_MNK ((int64_t)1 << 18)

/* ---- small products ---------------------------------------------------------------------
 * The dense layer's products of at most FM_GEMM_SMALL_MNK multiply-adds (a few hundred
 * nanoseconds of work, where the entry point's checks and dispatch would cost as much as the
 * arithmetic) go straight to the unpacked path: C (m x n, contiguous) := A @ B + 1 bias^T,
 * then Y := act(C) (Y may be C), with the bits fm_{s,d}gemm_ex gives. FM_ERR_BADARG when the
 * product is larger or an argument is invalid. */
#define FM_GEMM_SMALL_MNK ((int64_t)1 << 15)
int fm_sgemm_small(int64_t m, int64_t n, int64_t k, const float *A, int64_t rsa, int64_t csa,
                   const float *B, int64_t rsb, int64_t csb, float *C, const float *bias, int act,
                   double act_alpha, float *Y);
int fm_dgemm_small(int64_t m, int64_t n, int64_t k, const double *A, int64_t rsa, int64_t csa,
                   const double *B, int64_t rsb, int64_t csb, double *C, const double *bias,
                   int act, double act_alpha, double *Y);

/* ---- floating-point mode --------------------------------------------------------------
 * Training runs with subnormal numbers flushed to zero (x86's FTZ and DAZ bits, as
 * TensorFlow trains): Adam's second moments of idle weights decay into the subnormal range,
 * where every operation on them costs a microcode assist. fm_train sets the mode and
 * restores the caller's; each parallel region copies the mode of the thread that opens it
 * into its workers (and restores theirs), so results stay independent of the thread count.
 * Elsewhere (the ops, predict, evaluate) the caller's mode holds. */
#ifdef FM_X86
#include <xmmintrin.h>
#define FM_FP_FLUSH 0x8040u /* MXCSR: FTZ (bit 15) and DAZ (bit 6) */
static inline unsigned fm_fp_mode(void) { return _mm_getcsr(); }
static inline void fm_fp_set_mode(unsigned mode) { _mm_setcsr(mode); }
#else
#define FM_FP_FLUSH 0u
static inline unsigned fm_fp_mode(void) { return 0; }
static inline void fm_fp_set_mode(unsigned mode) { (void)mode; }
#endif

/* Counter-based uniform in [0, 1): the same (key, index) always gives the same number. */
double fm_hash_uniform(uint64_t key, uint64_t index);

/* The learning rate of the step after `iteration` steps (Keras-1's time-based decay). */
static inline double fm_optim_lr(const fm_optim *o, int64_t iteration) {
    return o->learning_rate / (1 + o->decay * (double)iteration);
}

/* 1 - beta^t, Adam's bias correction. For 0 <= beta <= 0.9 and t >= 400, beta^t <= 0.9^400
 * < 5e-19, under half the spacing of the doubles below 1 (2^-54), so the difference rounds
 * to 1 exactly (to nearest, the default rounding; a caller's directed rounding would give
 * 1 - 2^-53): pow is skipped there, which changes no bit (and from t ~ 6700, where 0.9^t
 * is subnormal, glibc's pow takes a slow path: 29 ns a call against 17). */
static inline double fm_one_minus_pow(double beta, int64_t t) {
    if (beta >= 0 && beta <= 0.9 && t >= 400) return 1.0;
    return 1 - pow(beta, (double)t);
}

/* The coefficients of the step after `iteration` steps. */
static inline fm_step fm_step_of(const fm_optim *o, int64_t iteration) {
    fm_step c;
    c.lr = fm_optim_lr(o, iteration);
    c.adam_a = 0;
    if (o->kind == FM_OPT_ADAM || o->kind == FM_OPT_ADAM_SKLEARN) {
        const int64_t t = iteration + 1;
        c.adam_a = c.lr * sqrt(fm_one_minus_pow(o->beta_2, t)) / fm_one_minus_pow(o->beta_1, t);
    }
    return c;
}

static inline int fm_threads_for(int n_threads, int64_t work, int64_t min_work) {
#ifdef _OPENMP
    if (n_threads > 1 && work >= min_work) return n_threads;
#else
    (void)work;
    (void)min_work;
#endif
    (void)n_threads;
    return 1;
}

#endif /* FM_INTERNAL_H */
