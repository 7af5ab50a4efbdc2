/*
 * fm_dgemm_ukr_generic_4x4.c - float64 GEMM micro-kernel in portable C: 4 x 4 tiles.
 *
 * Contract: baseline code for any CPU the compiler targets; always built. It is the fallback
 * where no vector kernel applies (and the only kernel off x86-64), and the kernel set every
 * other one is tested against.
 */
#include "fm_internal.h"

#define REAL double
#define MR 4
#define NR 4
#define MC 128  /* A block MC x KC: 256 KiB, L2-resident */
#define KC 256  /* B micro-panel KC x NR: 8 KiB, L1-resident */
#define NC 4096 /* B block KC x NC: 8 MiB, L3-resident */
#define SUP_M 16   /* m <= 4 MR: packing B would cost more than it saves */
#define SUP_MNK ((int64_t)1 << 21) /* partial tiles are slow here: pack early */
#define PAR_MNK ((int64_t)1 << 18) /* threads pay from ~10 us of work each */
#define KTYPE fm_dgemm_kernel
#define KERNEL fm_dgemm_generic
#include "fm_gemm_ukr_c.h"
