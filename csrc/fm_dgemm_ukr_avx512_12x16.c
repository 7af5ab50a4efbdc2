/*
 * fm_dgemm_ukr_avx512_12x16.c - float64 GEMM micro-kernel for AVX-512F: 12 x 16 tiles.
 *
 * Contract: AVX-512 instructions appear only in this translation unit (enabled by a target
 * pragma, not by a global flag), and its kernel table is used only after fm_arch_init()
 * found AVX-512F, VL and DQ on the running CPU. Edge tiles use AVX-512 mask registers. On
 * other architectures the file compiles to nothing.
 */
#include "fm_internal.h"
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))), \
                             apply_to = function)
#else
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#endif
#include <immintrin.h>

#define REAL double
#define L 8
#define MR 12
#define NR 16
#define MC 120  /* A block MC x KC: 480 KiB, L2-resident */
#define KC 512  /* B micro-panel KC x NR: 64 KiB, streamed from L2; deep panels halve the C
                 * updates (2048^3: 3-5% faster than KC 256, measured against 192..768) */
#define NC 2048 /* B block KC x NC: 8 MiB, L3-resident */
#define SUP_M 48   /* m <= 4 MR: packing B would cost more than it saves */
#define SUP_MNK ((int64_t)1 << 26) /* unpacked up to ~406^3; above, each strip of C re-reads a
                                   * B that has left L2 (256x784 @ 784x1024: packed 1.7x) */
#define PAR_MNK ((int64_t)1 << 20) /* threads pay from ~10 us of work each */
#define VEC __m512d
#define MASK __mmask8
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(x) _mm512_set1_pd(x)
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_STORE(p, v) _mm512_storeu_pd(p, v)
#define V_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#define V_LOADM(p, m) _mm512_maskz_loadu_pd(m, p)
#define V_STOREM(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
#define V_ADD(a, b) _mm512_add_pd(a, b)
#define V_MAX(a, b) _mm512_max_pd(a, b)
/* half-width vectors for products of at most L / 2 columns (AVX-512VL masks) */
#define HVEC __m256d
#define HMASK __mmask8
#define HV_ZERO() _mm256_setzero_pd()
#define HV_SET1(x) _mm256_set1_pd(x)
#define HV_LOAD(p) _mm256_loadu_pd(p)
#define HV_STORE(p, v) _mm256_storeu_pd(p, v)
#define HV_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#define HV_LOADM(p, m) _mm256_maskz_loadu_pd(m, p)
#define HV_STOREM(p, m, v) _mm256_mask_storeu_pd(p, m, v)
#define HV_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define HV_MUL(a, b) _mm256_mul_pd(a, b)
#define HV_ADD(a, b) _mm256_add_pd(a, b)
#define HV_MAX(a, b) _mm256_max_pd(a, b)
#define TRANSPOSE_PACK fm_transpose_pack_pd
#define KTYPE fm_dgemm_kernel
#define KERNEL fm_dgemm_avx512
#include "fm_gemm_ukr_simd.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fm_dgemm_ukr_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
