/*
 * fm_gemm.c - the one GEMM entry point every product in the engine goes through.
 *
 * Contract: fm_sgemm/fm_dgemm check their arguments, split C into blocks of rows
 * (or of columns when C is short and wide) across threads and hand each block to the kernel
 * set chosen by fm_arch_init(). K is never split, so every element of C sums its products in
 * the same order for any thread count. fm_{s,d}gemm_ref are the naive oracle.
 */
#include "fm_internal.h"

#define FM_CAT2(a, b) a##b
#define FM_CAT(a, b) FM_CAT2(a, b)

#define REAL float
#define FN(name) FM_CAT(fm_s, name)
#define KERNEL(table) ((table)->sgemm)
#include "fm_gemm_api.h"
#undef REAL
#undef FN
#undef KERNEL

#define REAL double
#define FN(name) FM_CAT(fm_d, name)
#define KERNEL(table) ((table)->dgemm)
#include "fm_gemm_api.h"
#undef REAL
#undef FN
#undef KERNEL
