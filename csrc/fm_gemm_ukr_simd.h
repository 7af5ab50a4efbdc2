/*
 * fm_gemm_ukr_simd.h - the register-blocked GEMM micro-kernel on SIMD vectors: one template
 * for every vector instruction set and dtype.
 *
 * Included by fm_{s,d}gemm_ukr_<isa>_<MR>x<NR>.c after that file has enabled its instruction
 * set, with defined: REAL; L (lanes per vector); MR (6 or 12) and NR = 2 * L; the vector
 * macros VEC, MASK, V_ZERO(), V_SET1(x), V_LOAD(p), V_STORE(p, v), V_MASK(n) (first n lanes,
 * 0 <= n <= L), V_LOADM(p, m), V_STOREM(p, m, v), V_FMA(a, b, c) (a * b + c), V_MUL, V_ADD;
 * TRANSPOSE_PACK (fm_transpose_pack_ps or _pd); the block sizes MC, KC, NC, SUP_M, SUP_MNK,
 * PAR_MNK; KTYPE and KERNEL, the type and name of the kernel table it defines (fm_internal.h).
 *
 * Contract: the MR x NR tile of C lives in MR x 2 vector accumulators; each k step loads two
 * vectors of B and broadcasts MR elements of A, so every element of C sums its k products in
 * index order. Edge tiles are handled here: masked loads and stores on the partial vector of
 * C (and of unpacked B), and row counts below MR either skip their stores (packed panels are
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

/* One row of the tile's final update: C := alpha * acc + beta * C (+ bias), on NVv vectors,
 * under masks m0, m1 unless the row is full. */
FM_INLINE void PFX(store_row)(REAL *c, VEC x0, VEC x1, const int NVv, int full, MASK m0,
                              MASK m1, VEC va, VEC vb, REAL beta, const REAL *bias) {
    /* c (1 x nr) := va * [x0 x1] + vb * c (+ bias) */
    x0 = V_MUL(x0, va);
    x1 = V_MUL(x1, va);
    if (full) {
        if (beta != 0) x0 = V_FMA(vb, V_LOAD(c), x0);
        if (bias != NULL) x0 = V_ADD(x0, V_LOAD(bias));
        V_STORE(c, x0);
        if (NVv > 1) {
            if (beta != 0) x1 = V_FMA(vb, V_LOAD(c + L), x1);
            if (bias != NULL) x1 = V_ADD(x1, V_LOAD(bias + L));
            V_STORE(c + L, x1);
        }
    } else {
        if (beta != 0) x0 = V_FMA(vb, V_LOADM(c, m0), x0);
        if (bias != NULL) x0 = V_ADD(x0, V_LOADM(bias, m0));
        V_STOREM(c, m0, x0);
        if (NVv > 1) {
            if (beta != 0) x1 = V_FMA(vb, V_LOADM(c + L, m1), x1);
            if (bias != NULL) x1 = V_ADD(x1, V_LOADM(bias + L, m1));
            V_STOREM(c + L, m1, x1);
        }
    }
}

/* Accumulators of row r, named so that they never live in memory. */
#define ACC_DECL(r) VEC c##r##0 = V_ZERO(), c##r##1 = V_ZERO();
#define ACC_ROW(r)                                                                           \
    if (M > r) {                                                                             \
        const VEC a = V_SET1(A[r * rsa]);                                                    \
        c##r##0 = V_FMA(a, b0, c##r##0);                                                     \
        if (NVv > 1) c##r##1 = V_FMA(a, b1, c##r##1);                                        \
    }
#define ACC_STORE(r)                                                                         \
    if (M > r && r < mr)                                                                     \
        PFX(store_row)(C + r * rsc, c##r##0, c##r##1, NVv, full, m0, m1, va, vb, beta, bias);
#define ACC_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* One tile: M rows of A (strides rsa, csa) times NVv vectors of B columns (row stride rsb)
 * into C (row stride rsc, unit column stride). packed: B is a zero-padded panel, so whole
 * vectors are loaded; else the last vector of B is loaded under the mask of nr columns. */
FM_INLINE void PFX(tile)(const int M, const int NVv, const int packed, int64_t k, REAL alpha,
                         const REAL *A, int64_t rsa, int64_t csa, const REAL *B, int64_t rsb,
                         REAL beta, REAL *C, int64_t rsc, int64_t mr, int64_t nr,
                         const REAL *bias) {
    /* C (mr x nr) := alpha * A (M x k) @ B (k x nr) + beta * C (+ bias), mr <= M <= 12 */
    ACC_ALL(ACC_DECL)
    if (packed) /* C's rows arrive while the k loop runs */
        for (int r = 0; r < M && r < mr; r++) {
            _mm_prefetch((const char *)(C + r * rsc), _MM_HINT_T0);
            _mm_prefetch((const char *)(C + r * rsc + NVv * L - 1), _MM_HINT_T0);
        }
    const MASK m0 = V_MASK(nr < L ? nr : L), m1 = V_MASK(nr < L ? 0 : (nr < 2 * L ? nr - L : L));
    const MASK bm = NVv > 1 ? m1 : m0;
#pragma GCC unroll 4
    for (int64_t p = 0; p < k; p++) {
        const VEC b0 = (packed || NVv > 1) ? V_LOAD(B) : V_LOADM(B, bm);
        const VEC b1 = NVv < 2 ? V_ZERO() : (packed ? V_LOAD(B + L) : V_LOADM(B + L, bm));
        ACC_ALL(ACC_ROW)
        A += csa;
        B += rsb;
    }
    const VEC va = V_SET1(alpha), vb = V_SET1(beta);
    const int full = nr == NVv * L;
    ACC_ALL(ACC_STORE)
}

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
    WITH_C_TILE(PFX(tile)(MR, 2, 1, k, alpha, Ap, 1, MR, Bp, NR, beta, c, rs, mr, nr, bias))
}

#define SUP_CASE(M_, NV_)                                                                    \
    case M_:                                                                                 \
        PFX(tile)(M_, NV_, 0, k, alpha, A, rsa, csa, B, rsb, beta, c, rs, M_, nr, bias);     \
        break;
#define SUP_SWITCH(NV_)                                                                      \
    switch (mr) {                                                                            \
        SUP_CASE(1, NV_) SUP_CASE(2, NV_) SUP_CASE(3, NV_) SUP_CASE(4, NV_)                  \
        SUP_CASE(5, NV_) SUP_CASES_6_UP(NV_)                                                 \
    default:                                                                                 \
        PFX(tile)(MR, NV_, 0, k, alpha, A, rsa, csa, B, rsb, beta, c, rs, MR, nr, bias);     \
    }
#if MR == 6
#define SUP_CASES_6_UP(NV_)
#elif MR == 12
#define SUP_CASES_6_UP(NV_)                                                                  \
    SUP_CASE(6, NV_) SUP_CASE(7, NV_) SUP_CASE(8, NV_) SUP_CASE(9, NV_) SUP_CASE(10, NV_)    \
    SUP_CASE(11, NV_)
#else
#error "fm_gemm_ukr_simd.h: MR must be 6 or 12"
#endif

static void PFX(sup)(int64_t k, REAL alpha, const REAL *A, int64_t rsa, int64_t csa,
                     const REAL *B, int64_t rsb, REAL beta, REAL *C, int64_t rsc, int64_t csc,
                     int64_t mr, int64_t nr, const REAL *bias) {
    /* C (mr x nr) := alpha * A (mr x k) @ B (k x nr) + beta * C (+ bias), A and B unpacked */
    if (nr > L) {
        WITH_C_TILE(SUP_SWITCH(2))
    } else {
        WITH_C_TILE(SUP_SWITCH(1))
    }
}

const KTYPE KERNEL = {MR,       NR,       MC,        KC,        NC,           SUP_M,
                      SUP_MNK,  PAR_MNK,  PFX(ukr),  PFX(sup),  PFX(pack_a_simd), PFX(pack_b_simd)};

#undef ACC_DECL
#undef ACC_ROW
#undef ACC_STORE
#undef ACC_ALL
#undef WITH_C_TILE
#undef SUP_CASE
#undef SUP_SWITCH
#undef SUP_CASES_6_UP
#undef FM_INLINE
