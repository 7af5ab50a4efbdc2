/*
 * fm_gemm_ukr_simd.h - the register-blocked GEMM micro-kernel on SIMD vectors: one template
 * for every vector instruction set and dtype.
 *
 * Included by fm_{s,d}gemm_ukr_<isa>_<MR>x<NR>.c after that file has enabled its instruction
 * set, with defined: REAL; L (lanes per vector); MR (6 or 12) and NR = 2 * L; the vector
 * macros VEC, MASK, V_ZERO(), V_SET1(x), V_LOAD(p), V_STORE(p, v), V_MASK(n) (first n lanes,
 * 0 <= n <= L), V_LOADM(p, m), V_STOREM(p, m, v), V_FMA(a, b, c) (a * b + c), V_MUL, V_ADD,
 * V_MAX (max(a, b), b where either is NaN or both are zeros);
 * TRANSPOSE_PACK (fm_transpose_pack_ps or _pd); the block sizes MC, KC, NC, SUP_M, SUP_MNK,
 * PAR_MNK; KTYPE and KERNEL, the type and name of the kernel table it defines (fm_internal.h).
 * Optionally HVEC, HMASK and HV_ZERO() .. HV_MAX (as the V_ macros) on vectors of L / 2 lanes:
 * sup then computes products of at most L / 2 columns on them. Where a full-width FMA
 * occupies both halves of the FMA units (AMD Zen 4), two half-width FMAs issue per cycle
 * against one (10 x 16 @ 16 x 8 float32: 80 cycles of FMAs instead of 160); lanes never add
 * across each other, so the bits are the same.
 *
 * Contract: the MR x NR tile of C lives in MR x 2 vector accumulators (MR x 1 where the tile
 * is one vector wide, full or half width); each k step loads that many vectors of B and
 * broadcasts MR elements of A, so every element of C sums its k products in index order.
 * Edge tiles are handled here: masked loads and stores on the partial vector of C (and of
 * unpacked B), and row counts below MR either skip their stores (packed panels are
 * zero-padded) or select a kernel specialised for that many rows (unpacked A). beta == 0
 * never reads C. Nothing outside the tile's rows and columns is read or written. Packing
 * transposes in registers where a panel's elements are strided in memory.
 */
#define PFX(name) FM_CAT(KERNEL, FM_CAT(_, name))
#define FM_INLINE static inline __attribute__((always_inline))

#include "fm_gemm_pack.h"

#include "fm_gemm_transpose_avx.h"

/* pack_a for A with contiguous rows (the common layout): MR rows at a time are transposed
 * in registers; other layouts take the plain copy. */
static void PFX(pack_a_simd)(int64_t mc, int64_t kc, const REAL *A, int64_t rsa, int64_t csa,
                             REAL *Ap) {
    /* Ap (ceil(mc / MR) * MR x kc, panel-major) := A (mc x kc) */
    if (csa != 1) {
        PFX(pack_a)(mc, kc, A, rsa, csa, Ap);
        return;
    }
    for (int64_t i = 0; i < mc; i += MR, Ap += MR * kc)
        TRANSPOSE_PACK(A + i * rsa, rsa, mc - i < MR ? mc - i : MR, kc, Ap, MR);
}

/* pack_b for B with contiguous columns (B = W^T in backprop): NR columns at a time are
 * transposed in registers; contiguous rows are plain copies, as is any other layout. */
static void PFX(pack_b_simd)(int64_t kc, int64_t nc, const REAL *B, int64_t rsb, int64_t csb,
                             REAL *Bp) {
    /* Bp (kc x ceil(nc / NR) * NR, panel-major) := B (kc x nc) */
    if (rsb != 1 || csb == 1) {
        PFX(pack_b)(kc, nc, B, rsb, csb, Bp);
        return;
    }
    for (int64_t j = 0; j < nc; j += NR, Bp += NR * kc)
        TRANSPOSE_PACK(B + j * csb, csb, nc - j < NR ? nc - j : NR, kc, Bp, NR);
}

/* The tile on full-width vectors, and on half-width ones where the includer gives them
 * (fm_gemm_tile.h undefines the T names after each use). */
#define TPFX(name) PFX(name)
#define TL L
#define TVEC VEC
#define TMASK MASK
#define T_ZERO V_ZERO
#define T_SET1 V_SET1
#define T_LOAD V_LOAD
#define T_STORE V_STORE
#define T_MASK V_MASK
#define T_LOADM V_LOADM
#define T_STOREM V_STOREM
#define T_FMA V_FMA
#define T_MUL V_MUL
#define T_ADD V_ADD
#define T_MAX V_MAX
#include "fm_gemm_tile.h"
#ifdef HVEC
#define TPFX(name) PFX(FM_CAT(half_, name))
#define TL (L / 2)
#define TVEC HVEC
#define TMASK HMASK
#define T_ZERO HV_ZERO
#define T_SET1 HV_SET1
#define T_LOAD HV_LOAD
#define T_STORE HV_STORE
#define T_MASK HV_MASK
#define T_LOADM HV_LOADM
#define T_STOREM HV_STOREM
#define T_FMA HV_FMA
#define T_MUL HV_MUL
#define T_ADD HV_ADD
#define T_MAX HV_MAX
#include "fm_gemm_tile.h"
#endif

/* A C with non-unit column stride goes through a contiguous copy of its tile. */
#define WITH_C_TILE(CALL)                                                                    \
    if (csc == 1) {                                                                          \
        REAL *c = C;                                                                         \
        const int64_t rs = rsc;                                                              \
        CALL;                                                                                \
    } else {                                                                                 \
        REAL tmp[MR * NR];                                                                   \
        REAL *c = tmp;                                                                       \
        const int64_t rs = NR;                                                               \
        if (beta != 0)                                                                       \
            for (int64_t r = 0; r < mr; r++)                                                 \
                for (int64_t j = 0; j < nr; j++) tmp[r * NR + j] = C[r * rsc + j * csc];     \
        CALL;                                                                                \
        for (int64_t r = 0; r < mr; r++)                                                     \
            for (int64_t j = 0; j < nr; j++) C[r * rsc + j * csc] = tmp[r * NR + j];         \
    }

static void PFX(ukr)(int64_t k, REAL alpha, const REAL *Ap, const REAL *Bp, REAL beta, REAL *C,
                     int64_t rsc, int64_t csc, int64_t mr, int64_t nr, const REAL *bias) {
    /* C (mr x nr) := alpha * Ap (MR x k, packed) @ Bp (k x NR, packed) + beta * C (+ bias) */
    WITH_C_TILE(PFX(tile)(MR, 2, 1, k, alpha, Ap, 1, MR, Bp, NR, beta, c, rs, mr, nr, bias, 0))
}

#define SUP_CASE(TILE, M_, NV_)                                                              \
    case M_:                                                                                 \
        TILE(M_, NV_, 0, k, alpha, A, rsa, csa, B, rsb, beta, c, rs, M_, nr, bias, relu);    \
        break;
#define SUP_SWITCH(TILE, NV_)                                                                \
    switch (mr) {                                                                            \
        SUP_CASE(TILE, 1, NV_) SUP_CASE(TILE, 2, NV_) SUP_CASE(TILE, 3, NV_)                 \
        SUP_CASE(TILE, 4, NV_) SUP_CASE(TILE, 5, NV_) SUP_CASES_6_UP(TILE, NV_)              \
    default:                                                                                 \
        TILE(MR, NV_, 0, k, alpha, A, rsa, csa, B, rsb, beta, c, rs, MR, nr, bias, relu);    \
    }
#if MR == 6
#define SUP_CASES_6_UP(TILE, NV_)
#elif MR == 12
#define SUP_CASES_6_UP(TILE, NV_)                                                            \
    SUP_CASE(TILE, 6, NV_) SUP_CASE(TILE, 7, NV_) SUP_CASE(TILE, 8, NV_)                     \
    SUP_CASE(TILE, 9, NV_) SUP_CASE(TILE, 10, NV_) SUP_CASE(TILE, 11, NV_)
#else
#error "fm_gemm_ukr_simd.h: MR must be 6 or 12"
#endif

static void PFX(sup)(int64_t k, REAL alpha, const REAL *A, int64_t rsa, int64_t csa,
                     const REAL *B, int64_t rsb, REAL beta, REAL *C, int64_t rsc, int64_t csc,
                     int64_t mr, int64_t nr, const REAL *bias, int relu) {
    /* C (mr x nr) := alpha * A (mr x k) @ B (k x nr) + beta * C (+ bias) (relu), A, B unpacked */
    if (nr > L) {
        WITH_C_TILE(SUP_SWITCH(PFX(tile), 2))
#ifdef HVEC
    } else if (nr <= L / 2) { /* half a vector or less: FMAs of half the width (see above) */
        WITH_C_TILE(SUP_SWITCH(PFX(half_tile), 1))
#endif
    } else {
        WITH_C_TILE(SUP_SWITCH(PFX(tile), 1))
    }
}

const KTYPE KERNEL = {MR,       NR,       MC,        KC,        NC,           SUP_M,
                      SUP_MNK,  PAR_MNK,  PFX(ukr),  PFX(sup),  PFX(pack_a_simd), PFX(pack_b_simd)};

#undef WITH_C_TILE
#undef SUP_CASE
#undef SUP_SWITCH
#undef SUP_CASES_6_UP
#undef FM_INLINE
