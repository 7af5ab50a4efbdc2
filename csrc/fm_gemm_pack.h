/*
 * fm_gemm_pack.h - packing of GEMM operands into the micro-kernels' panel layout.
 *
 * Included by each fm_{s,d}gemm_ukr_*.c with REAL, MR, NR and PFX() defined, so the copies
 * are compiled for that file's instruction set. Packing absorbs every stride and transpose:
 * afterwards the micro-kernel reads both panels contiguously. Panels are zero-padded to MR
 * rows and NR columns, so edge tiles compute on zeros and only their stores are masked.
 */

/* A (mc x kc, strides rsa, csa) -> ceil(mc / MR) panels of MR x kc: element (i, p) of panel q
 * lands at Ap[q * MR * kc + p * MR + i - q * MR]. */
static void PFX(pack_a)(int64_t mc, int64_t kc, const REAL *A, int64_t rsa, int64_t csa,
                        REAL *Ap) {
    /* Ap (ceil(mc / MR) * MR x kc, panel-major) := A (mc x kc) */
    for (int64_t i = 0; i < mc; i += MR, Ap += MR * kc) {
        const int64_t mr = mc - i < MR ? mc - i : MR;
        const REAL *a = A + i * rsa;
        if (mr == MR && rsa == 1) { /* columns of A are contiguous: MR-element copies */
            for (int64_t p = 0; p < kc; p++)
                for (int r = 0; r < MR; r++) Ap[p * MR + r] = a[p * csa + r];
        } else if (mr == MR) {
            for (int64_t p = 0; p < kc; p++)
                for (int r = 0; r < MR; r++) Ap[p * MR + r] = a[r * rsa + p * csa];
        } else {
            for (int64_t p = 0; p < kc; p++)
                for (int r = 0; r < MR; r++)
                    Ap[p * MR + r] = r < mr ? a[r * rsa + p * csa] : (REAL)0;
        }
    }
}

/* B (kc x nc, strides rsb, csb) -> ceil(nc / NR) panels of kc x NR: element (p, j) of panel q
 * lands at Bp[q * NR * kc + p * NR + j - q * NR]. */
static void PFX(pack_b)(int64_t kc, int64_t nc, const REAL *B, int64_t rsb, int64_t csb,
                        REAL *Bp) {
    /* Bp (kc x ceil(nc / NR) * NR, panel-major) := B (kc x nc) */
    for (int64_t j = 0; j < nc; j += NR, Bp += NR * kc) {
        const int64_t nr = nc - j < NR ? nc - j : NR;
        const REAL *b = B + j * csb;
        if (nr == NR && csb == 1) { /* rows of B are contiguous: NR-element copies */
            for (int64_t p = 0; p < kc; p++)
                for (int c = 0; c < NR; c++) Bp[p * NR + c] = b[p * rsb + c];
        } else if (nr == NR) {
            for (int64_t p = 0; p < kc; p++)
                for (int c = 0; c < NR; c++) Bp[p * NR + c] = b[p * rsb + c * csb];
        } else {
            for (int64_t p = 0; p < kc; p++)
                for (int c = 0; c < NR; c++)
                    Bp[p * NR + c] = c < nr ? b[p * rsb + c * csb] : (REAL)0;
        }
    }
}
