/*
 * fm_sgemm_ukr_avx512_12x32.c - float32 GEMM micro-kernel for AVX-512F: 12 x 32 tiles.
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

#define REAL float
#define L 16
#define MR 12
#define NR 32
#define MC 144  /* A block MC x KC: 144 KiB, L2-resident */
#define KC 256  /* B micro-panel KC x NR: 32 KiB, streamed through L1 */
#define NC 1024 /* B block KC x NC: 4 MiB, L3-resident */
#define SUP_M 48   /* m <= 4 MR: packing B would cost more than it saves */
#define SUP_MNK ((int64_t)1 << 26) /* unpacked up to ~406^3; above, each strip of C re-reads a
                                   * B that has left L2 (256x784 @ 784x1024: packed 1.7x) */
#define PAR_MNK ((int64_t)1 << 20) /* threads pay from ~10 us of work each */
#define VEC __m512
#define MASK __mmask16
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define V_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define V_STOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
/* half-width vectors for products of at most L / 2 columns (AVX-512VL masks) */
#define HVEC __m256
#define HMASK __mmask8
#define HV_ZERO() _mm256_setzero_ps()
#define HV_SET1(x) _mm256_set1_ps(x)
#define HV_LOAD(p) _mm256_loadu_ps(p)
#define HV_STORE(p, v) _mm256_storeu_ps(p, v)
#define HV_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#define HV_LOADM(p, m) _mm256_maskz_loadu_ps(m, p)
#define HV_STOREM(p, m, v) _mm256_mask_storeu_ps(p, m, v)
#define HV_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define HV_MUL(a, b) _mm256_mul_ps(a, b)
#define HV_ADD(a, b) _mm256_add_ps(a, b)
#define HV_MAX(a, b) _mm256_max_ps(a, b)
#define TRANSPOSE_PACK fm_transpose_pack_ps
#define KTYPE fm_sgemm_kernel
#define KERNEL fm_sgemm_avx512
#include "fm_gemm_ukr_simd.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fm_sgemm_ukr_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
