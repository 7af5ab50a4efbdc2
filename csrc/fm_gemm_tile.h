/*
 * fm_gemm_tile.h - the register tile of the GEMM micro-kernels (fm_gemm_ukr_simd.h) on
 * vectors of one width: included by that template once per width, after it has defined
 * TPFX(name) (the functions' names), TL (lanes per vector), TVEC and TMASK (the vector and
 * mask types) and T_ZERO, T_SET1, T_LOAD, T_STORE, T_MASK, T_LOADM, T_STOREM, T_FMA, T_MUL,
 * T_ADD, T_MAX (as its V_ macros), which it undefines at its end. Defines TPFX(store_row)
 * and TPFX(tile); FM_INLINE, REAL and <immintrin.h> (for _mm_prefetch) come from the
 * includer.
 */

/* One row of the tile's final update: C := alpha * acc + beta * C (+ bias), then max(C, 0)
 * if relu, on NVv vectors, under masks m0, m1 unless the row is full. The max returns its
 * second operand, 0, for NaN and for -0, as the element-wise relu's x > 0 ? x : 0 does. */
FM_INLINE void TPFX(store_row)(REAL *c, TVEC x0, TVEC x1, const int NVv, int full, TMASK m0,
                               TMASK m1, TVEC va, TVEC vb, REAL beta, const REAL *bias,
                               int relu) {
    /* c (1 x nr) := va * [x0 x1] + vb * c (+ bias) (relu) */
    x0 = T_MUL(x0, va);
    x1 = T_MUL(x1, va);
    if (full) {
        if (beta != 0) x0 = T_FMA(vb, T_LOAD(c), x0);
        if (bias != NULL) x0 = T_ADD(x0, T_LOAD(bias));
        if (relu) x0 = T_MAX(x0, T_ZERO());
        T_STORE(c, x0);
        if (NVv > 1) {
            if (beta != 0) x1 = T_FMA(vb, T_LOAD(c + TL), x1);
            if (bias != NULL) x1 = T_ADD(x1, T_LOAD(bias + TL));
            if (relu) x1 = T_MAX(x1, T_ZERO());
            T_STORE(c + TL, x1);
        }
    } else {
        if (beta != 0) x0 = T_FMA(vb, T_LOADM(c, m0), x0);
        if (bias != NULL) x0 = T_ADD(x0, T_LOADM(bias, m0));
        if (relu) x0 = T_MAX(x0, T_ZERO());
        T_STOREM(c, m0, x0);
        if (NVv > 1) {
            if (beta != 0) x1 = T_FMA(vb, T_LOADM(c + TL, m1), x1);
            if (bias != NULL) x1 = T_ADD(x1, T_LOADM(bias + TL, m1));
            if (relu) x1 = T_MAX(x1, T_ZERO());
            T_STOREM(c + TL, m1, x1);
        }
    }
}

/* Accumulators of row r, named so that they never live in memory. */
#define ACC_DECL(r) TVEC c##r##0 = T_ZERO(), c##r##1 = T_ZERO();
#define ACC_ROW(r)                                                                           \
    if (M > r) {                                                                             \
        const TVEC a = T_SET1(A[r * rsa]);                                                   \
        c##r##0 = T_FMA(a, b0, c##r##0);                                                     \
        if (NVv > 1) c##r##1 = T_FMA(a, b1, c##r##1);                                        \
    }
#define ACC_STORE(r)                                                                         \
    if (M > r && r < mr)                                                                     \
        TPFX(store_row)(C + r * rsc, c##r##0, c##r##1, NVv, full, m0, m1, va, vb, beta,      \
                        bias, relu);
#define ACC_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* One tile: M rows of A (strides rsa, csa) times NVv vectors of B columns (row stride rsb)
 * into C (row stride rsc, unit column stride). packed: B is a zero-padded panel, so whole
 * vectors are loaded; else the last vector of B is loaded under the mask of nr columns. */
FM_INLINE void TPFX(tile)(const int M, const int NVv, const int packed, int64_t k, REAL alpha,
                         const REAL *A, int64_t rsa, int64_t csa, const REAL *B, int64_t rsb,
                         REAL beta, REAL *C, int64_t rsc, int64_t mr, int64_t nr,
                         const REAL *bias, int relu) {
    /* C (mr x nr) := alpha * A (M x k) @ B (k x nr) + beta * C (+ bias) (relu), mr <= M <= 12 */
    ACC_ALL(ACC_DECL)
    if (packed) /* C's rows arrive while the k loop runs */
        for (int r = 0; r < M && r < mr; r++) {
            _mm_prefetch((const char *)(C + r * rsc), _MM_HINT_T0);
            _mm_prefetch((const char *)(C + r * rsc + NVv * TL - 1), _MM_HINT_T0);
        }
    const TMASK m0 = T_MASK(nr < TL ? nr : TL);
    const TMASK m1 = T_MASK(nr < TL ? 0 : (nr < 2 * TL ? nr - TL : TL));
    const TMASK bm = NVv > 1 ? m1 : m0;
#pragma GCC unroll 4
    for (int64_t p = 0; p < k; p++) {
        const TVEC b0 = (packed || NVv > 1) ? T_LOAD(B) : T_LOADM(B, bm);
        const TVEC b1 = NVv < 2 ? T_ZERO() : (packed ? T_LOAD(B + TL) : T_LOADM(B + TL, bm));
        ACC_ALL(ACC_ROW)
        A += csa;
        B += rsb;
    }
    const TVEC va = T_SET1(alpha), vb = T_SET1(beta);
    const int full = nr == NVv * TL;
    ACC_ALL(ACC_STORE)
}

#undef ACC_DECL
#undef ACC_ROW
#undef ACC_STORE
#undef ACC_ALL
#undef TPFX
#undef TL
#undef TVEC
#undef TMASK
#undef T_ZERO
#undef T_SET1
#undef T_LOAD
#undef T_STORE
#undef T_MASK
#undef T_LOADM
#undef T_STOREM
#undef T_FMA
#undef T_MUL
#undef T_ADD
#undef T_MAX
