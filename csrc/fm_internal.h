/*
 * fm_internal.h - declarations shared by the engine's translation units; not installed.
 *
 * Contract: the only mutable global is the kernel table chosen once by fm_arch_init(). The
 * typed templates (fm_*_impl.h) are included once per dtype with REAL and FN() defined.
 */
#ifndef FM_INTERNAL_H
#define FM_INTERNAL_H

#include "fastmlp.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Products below this many multiply-adds run on one thread: forking costs more than it saves. */
#define FM_GEMM_PARALLEL_MIN_WORK ((int64_t)1 << 18)
/* Element-wise passes below this many elements run on one thread. */
#define FM_ELEMWISE_PARALLEL_MIN ((int64_t)1 << 16)

/* Strided GEMM body for one ISA, one thread: C = alpha A B + beta C with checked arguments
 * and k >= 1 (beta == 0 overwrites C). */
typedef void (*fm_sgemm_fn)(int64_t m, int64_t n, int64_t k, float alpha, const float *A,
                            int64_t rsa, int64_t csa, const float *B, int64_t rsb, int64_t csb,
                            float beta, float *C, int64_t rsc, int64_t csc);
typedef void (*fm_dgemm_fn)(int64_t m, int64_t n, int64_t k, double alpha, const double *A,
                            int64_t rsa, int64_t csa, const double *B, int64_t rsb, int64_t csb,
                            double beta, double *C, int64_t rsc, int64_t csc);

typedef struct {
    int arch;
    fm_sgemm_fn sgemm;
    fm_dgemm_fn dgemm;
} fm_kernels;

/* The table in use (generic until fm_arch_init() picks another). */
const fm_kernels *fm_kernels_get(void);

void fm_sgemm_generic(int64_t, int64_t, int64_t, float, const float *, int64_t, int64_t,
                          const float *, int64_t, int64_t, float, float *, int64_t, int64_t);
void fm_dgemm_generic(int64_t, int64_t, int64_t, double, const double *, int64_t, int64_t,
                          const double *, int64_t, int64_t, double, double *, int64_t,
                     int64_t);
#if defined(__x86_64__) || defined(_M_X64)
#define FM_X86 1
void fm_sgemm_avx2(int64_t, int64_t, int64_t, float, const float *, int64_t, int64_t,
                       const float *, int64_t, int64_t, float, float *, int64_t, int64_t);
void fm_dgemm_avx2(int64_t, int64_t, int64_t, double, const double *, int64_t, int64_t,
                       const double *, int64_t, int64_t, double, double *, int64_t,
                     int64_t);
void fm_sgemm_avx512(int64_t, int64_t, int64_t, float, const float *, int64_t, int64_t,
                         const float *, int64_t, int64_t, float, float *, int64_t, int64_t);
void fm_dgemm_avx512(int64_t, int64_t, int64_t, double, const double *, int64_t, int64_t,
                         const double *, int64_t, int64_t, double, double *, int64_t,
                     int64_t);
#endif

/* Counter-based uniform in [0, 1): the same (key, index) always gives the same number. */
double fm_hash_uniform(uint64_t key, uint64_t index);

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
