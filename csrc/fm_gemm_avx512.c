/*
 * fm_gemm_avx512.c - the GEMM body compiled for the avx512 instruction set.
 *
 * Contract: the instructions of this set appear only in this translation unit (enabled by
 * a target pragma, not by a global flag), and it is called only after fm_arch_init() found
 * the set on the running CPU. On other architectures the file compiles to nothing.
 */
#include "fm_internal.h"
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#endif
#define FM_ISA avx512
#include "fm_gemm_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fm_gemm_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
