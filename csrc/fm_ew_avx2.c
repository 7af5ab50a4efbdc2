/*
 * fm_ew_avx2.c - the element-wise kernels compiled for AVX2 + FMA (a target pragma, not a
 * global flag); used only after fm_arch_init() found both on the running CPU. The build
 * turns FMA contraction off, so they give the generic kernels' bits. On other architectures
 * the file compiles to nothing.
 */
#include "fm_internal.h"
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define FM_EW_HAS_FMA 1
#define FM_EW_ISA avx2
#include "fm_ew_inst.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fm_ew_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
