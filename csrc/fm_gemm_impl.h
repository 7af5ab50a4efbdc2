/*
 * fm_gemm_impl.h - the strided GEMM accumulate body, compiled once per instruction set.
 *
 * Included by fm_gemm_{generic,avx2,avx512}.c with FM_ISA set; defines
 * fm_{s,d}gemm_<FM_ISA>: C = alpha * A @ B + beta * C on one thread, for k >= 1.
 * Plain C loops shaped so the compiler vectorises them for the target the including file
 * enables; no intrinsics. Per element of C the k-sum runs in one fixed order whatever the
 * blocking, so a caller splitting rows or columns across threads gets identical bits.
 */
#define FM_CAT2(a, b) a##b
#define FM_CAT(a, b) FM_CAT2(a, b)

#define FM_KC 256 /* k-panel: a panel of B rows stays in L2 while rows of A stream past it */
#define FM_NC 512 /* columns of C and B per pass: a row of C stays in L1 */

/* ---- float ---- */
#define REAL float
#define FN(name) FM_CAT(FM_CAT(fm_s, name), FM_CAT(_, FM_ISA))
#include "fm_gemm_body.h"
#undef REAL
#undef FN

/* ---- double ---- */
#define REAL double
#define FN(name) FM_CAT(FM_CAT(fm_d, name), FM_CAT(_, FM_ISA))
#include "fm_gemm_body.h"
#undef REAL
#undef FN
