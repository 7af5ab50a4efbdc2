/*
 * fm_dgemm_ukr_avx2_6x8.c - float64 GEMM micro-kernel for AVX2 + FMA: 6 x 8 tiles.
 *
 * Contract: AVX2 and FMA instructions appear only in this translation unit (enabled by a
 * target pragma, not by a global flag), and its kernel table is used only after
 * fm_arch_init() found AVX2 and FMA on the running CPU. Edge tiles use vmaskmov loads and
 * stores. On other architectures the file compiles to nothing.
 */
#include "fm_internal.h"
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>

#define REAL double
#define L 4
#define MR 6
#define NR 8
#define MC 144  /* A block MC x KC: 288 KiB, L2-resident */
#define KC 256  /* B micro-panel KC x NR: 16 KiB, L1-resident */
#define NC 4096 /* B block KC x NC: 8 MiB, L3-resident */
#define SUP_M 24   /* m <= 4 MR: packing B would cost more than it saves */
#define SUP_MNK ((int64_t)1 << 20) /* unpacked up to ~100^3: the 6-row strips re-read B
                                   * so often that packing pays from 128^3 (measured) */
#define PAR_MNK ((int64_t)1 << 20) /* threads pay from ~10 us of work each */
#define VEC __m256d
#define MASK __m256i
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(x) _mm256_set1_pd(x)
#define V_LOAD(p) _mm256_loadu_pd(p)
#define V_STORE(p, v) _mm256_storeu_pd(p, v)
#define V_MASK(n)                                                                            \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#define V_LOADM(p, m) _mm256_maskload_pd(p, m)
#define V_STOREM(p, m, v) _mm256_maskstore_pd(p, m, v)
#define V_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm256_mul_pd(a, b)
#define V_ADD(a, b) _mm256_add_pd(a, b)
#define V_MAX(a, b) _mm256_max_pd(a, b)
#define TRANSPOSE_PACK fm_transpose_pack_pd
#define KTYPE fm_dgemm_kernel
#define KERNEL fm_dgemm_avx2
#include "fm_gemm_ukr_simd.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fm_dgemm_ukr_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
