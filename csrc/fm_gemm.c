/*
 * fm_gemm.c - the one GEMM entry point every product in the engine goes through.
 *
 * Contract: fm_sgemm/fm_dgemm (and the _ex forms with a fused bias + activation epilogue)
 * check their arguments, then run the five BLIS loops around the micro-kernel of the kernel
 * set chosen by fm_arch_init(); only the micro-kernels and the packing routines are
 * ISA-specific, this file is baseline C. Small products skip packing. Threads split the rows
 * or the column micro-panels of C, never K; each runs the whole path on its own block of C
 * with its own buffers. The path and the k-panels are chosen from the whole problem, so every
 * element of C sums its products in the same order for any thread count. Packing buffers live
 * on the running thread's stack when small, else are allocated per call (FM_ERR_NOMEM on
 * failure); no state is shared between calls, so concurrent calls are safe. fm_{s,d}gemm_ref
 * are the naive oracle.
 */
#include "fm_internal.h"

#include <stdlib.h>


#define FM_GEMM_STACK_BYTES (32 * 1024) /* packing buffers up to this size live on the stack */
/* A transposed B (W^T in backprop) up to this size is packed whole for the small path, in an
 * allocated buffer beyond the stack's: dZ @ W^T of a 64 x 128 float64 layer stays unpacked
 * in A rather than taking the packed path (for its few rows, 1.25x slower). With its
 * alignment slack, below glibc's first mmap threshold (128 KiB): the buffer comes from the
 * heap, not from a fresh mapping per call. */
#define FM_GEMM_SUP_B_BYTES (120 * 1024)
#define FM_GEMM_ALIGN 64                /* bytes: packed panels start on cache lines */
#if defined(__GNUC__)
#define FM_ALIGNED __attribute__((aligned(FM_GEMM_ALIGN)))
#define FM_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER) /* the stack buffers' frames stay out of their callers' */
#define FM_ALIGNED
#define FM_NOINLINE __declspec(noinline)
#else
#define FM_ALIGNED
#define FM_NOINLINE
#endif
static int64_t fm_gemm_round(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }

/* The block size for len split into as few blocks of at most max as possible, all of about
 * equal size in whole units: no thin last block (k = 784 with KC = 256 runs 4 x 196). */
static int64_t fm_gemm_even(int64_t len, int64_t max, int64_t unit) {
    if (len >= 1 && len <= max) { /* one block (every small product): no division */
        const int64_t b = fm_gemm_round(len, unit);
        return b < max ? b : max;
    }
    const int64_t blocks = (len + max - 1) / max;
    if (blocks < 1) return max;
    const int64_t b = fm_gemm_round((len + blocks - 1) / blocks, unit);
    return b < max ? b : max;
}

/* Products of at most FM_GEMM_ROW_M rows and at least FM_GEMM_ROW_N columns, B unpacked,
 * stream B a row at a time (gemv_row) instead of walking the micro-kernels' column panels. */
#define FM_GEMM_ROW_M 2
#define FM_GEMM_ROW_N 64
static int fm_gemm_row_path(int64_t m, int64_t n, int64_t csb, int64_t csc) {
    return m <= FM_GEMM_ROW_M && n >= FM_GEMM_ROW_N && csb == 1 && csc == 1;
}
/* Such products stream B from L2, L3 or memory, so threads (each its columns) pay off from a
 * smaller B than the micro-kernels' products need: FM_GEMM_ROW_PAR_MNK (fm_internal.h). */

/* A buffer of `bytes` starting on a cache line: the caller's (aligned) stack buffer where it
 * fits, else allocated into *heap, which the caller frees; NULL when that fails. */
static void *fm_gemm_buffer(void *stack, size_t stack_bytes, size_t bytes, void **heap) {
    *heap = NULL;
    if (bytes <= stack_bytes) return stack;
    *heap = malloc(bytes + FM_GEMM_ALIGN);
    if (*heap == NULL) return NULL;
    return (void *)(((uintptr_t)*heap + FM_GEMM_ALIGN - 1) & ~(uintptr_t)(FM_GEMM_ALIGN - 1));
}

/* Thread t's share [lo, hi) of [0, len), in whole units (the last unit may be partial). */
static void fm_gemm_share(int64_t len, int64_t unit, int t, int nt, int64_t *lo, int64_t *hi) {
    const int64_t units = (len + unit - 1) / unit, per = units / nt, extra = units % nt;
    const int64_t u0 = t * per + (t < extra ? t : extra), u1 = u0 + per + (t < extra);
    *lo = u0 * unit < len ? u0 * unit : len;
    *hi = u1 * unit < len ? u1 * unit : len;
}

/* Activations that need whole rows (softmax) run once C is complete, not per tile. */
static int fm_act_rowwise(int act) { return act == FM_ACT_SOFTMAX; }

#define REAL float
#define FN(name) FM_CAT(fm_s, name)
#define KSET fm_sgemm_kernel
#define KSEL(table) ((table)->s)
#define EWSEL(table) ((table)->se)
#define EWSET fm_sew_kernel
#define ACT fm_act_forward_s
#include "fm_gemm_driver.h"
#undef REAL
#undef FN
#undef KSET
#undef KSEL
#undef EWSEL
#undef EWSET
#undef ACT

#define REAL double
#define FN(name) FM_CAT(fm_d, name)
#define KSET fm_dgemm_kernel
#define KSEL(table) ((table)->d)
#define EWSEL(table) ((table)->de)
#define EWSET fm_dew_kernel
#define ACT fm_act_forward_d
#include "fm_gemm_driver.h"
#undef REAL
#undef FN
#undef KSET
#undef KSEL
#undef EWSEL
#undef EWSET
#undef ACT

int fm_gemm_blocking(int arch, int dtype, int64_t out[8]) {
    /* out = {MR, NR, MC, KC, NC, sup_m, sup_mnk, par_mnk} of one kernel set and dtype */
    const fm_kernels *t = fm_kernels_of(arch);
    if (t == NULL || out == NULL || (dtype != FM_FLOAT32 && dtype != FM_FLOAT64))
        return FM_ERR_BADARG;
#define FM_BLOCKING(K)                                                                       \
    do {                                                                                     \
        out[0] = (K)->mr, out[1] = (K)->nr, out[2] = (K)->mc, out[3] = (K)->kc;              \
        out[4] = (K)->nc, out[5] = (K)->sup_m, out[6] = (K)->sup_mnk, out[7] = (K)->par_mnk; \
    } while (0)
    if (dtype == FM_FLOAT32)
        FM_BLOCKING(t->s);
    else
        FM_BLOCKING(t->d);
#undef FM_BLOCKING
    return FM_OK;
}
