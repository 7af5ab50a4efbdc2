/*
 * fm_gemm_ukr_c.h - the GEMM micro-kernel in portable C, for the generic kernel set.
 *
 * Included by fm_{s,d}gemm_ukr_generic_<MR>x<NR>.c with REAL, MR, NR, the block sizes MC,
 * KC, NC, SUP_M, SUP_MNK, PAR_MNK, and KTYPE and KERNEL (the kernel table it defines, see
 * fm_internal.h). No intrinsics: the MR x NR accumulator array is shaped so that compilers
 * keep it in vector registers of whatever the build targets (SSE2 on x86-64, NEON on
 * aarch64). Every element of C sums its k products in index order; beta == 0 never reads C;
 * nothing outside the tile is read or written.
 */
#define PFX(name) FM_CAT(KERNEL, FM_CAT(_, name))
#define FM_INLINE static inline __attribute__((always_inline))

#include "fm_gemm_pack.h"

/* One tile of M x N accumulators (compile-time constants for full tiles). */
FM_INLINE void PFX(tile)(const int64_t M, const int64_t N, int64_t k, REAL alpha, const REAL *A,
                         int64_t rsa, int64_t csa, const REAL *B, int64_t rsb, REAL beta,
                         REAL *C, int64_t rsc, int64_t csc, int64_t mr, int64_t nr,
                         const REAL *bias, int relu) {
    /* C (mr x nr) := alpha * A (M x k) @ B (k x N) + beta * C (+ bias) (relu), mr <= M, nr <= N */
    REAL acc[MR][NR];
    for (int64_t r = 0; r < M; r++)
        for (int64_t j = 0; j < N; j++) acc[r][j] = 0;
    for (int64_t p = 0; p < k; p++)
        for (int64_t r = 0; r < M; r++) {
            const REAL a = A[p * csa + r * rsa];
            for (int64_t j = 0; j < N; j++) acc[r][j] += a * B[p * rsb + j];
        }
    for (int64_t r = 0; r < mr; r++)
        for (int64_t j = 0; j < nr; j++) {
            REAL *c = &C[r * rsc + j * csc];
            REAL x = alpha * acc[r][j];
            if (beta != 0) x = beta * *c + x;
            if (bias != NULL) x += bias[j];
            *c = relu && !(x > 0) ? (REAL)0 : x;
        }
}

static void PFX(ukr)(int64_t k, REAL alpha, const REAL *Ap, const REAL *Bp, REAL beta, REAL *C,
                     int64_t rsc, int64_t csc, int64_t mr, int64_t nr, const REAL *bias) {
    /* C (mr x nr) := alpha * Ap (MR x k, packed) @ Bp (k x NR, packed) + beta * C (+ bias) */
    PFX(tile)(MR, NR, k, alpha, Ap, 1, MR, Bp, NR, beta, C, rsc, csc, mr, nr, bias, 0);
}

static void PFX(sup)(int64_t k, REAL alpha, const REAL *A, int64_t rsa, int64_t csa,
                     const REAL *B, int64_t rsb, REAL beta, REAL *C, int64_t rsc, int64_t csc,
                     int64_t mr, int64_t nr, const REAL *bias, int relu) {
    /* C (mr x nr) := alpha * A (mr x k) @ B (k x nr) + beta * C (+ bias) (relu), A, B unpacked */
    if (mr == MR && nr == NR)
        PFX(tile)(MR, NR, k, alpha, A, rsa, csa, B, rsb, beta, C, rsc, csc, MR, NR, bias, relu);
    else
        PFX(tile)(mr, nr, k, alpha, A, rsa, csa, B, rsb, beta, C, rsc, csc, mr, nr, bias, relu);
}

const KTYPE KERNEL = {MR,       NR,       MC,        KC,        NC,           SUP_M,
                      SUP_MNK,  PAR_MNK,  PFX(ukr),  PFX(sup),  PFX(pack_a), PFX(pack_b)};

#undef FM_INLINE
