/* fm_gemm_api.h - typed body of fm_gemm.c (REAL, FN, KERNEL defined by the includer). */

static int FN(gemm_check)(int64_t m, int64_t n, int64_t k, const REAL *A, const REAL *B,
                          const REAL *C) {
    if (m < 0 || n < 0 || k < 0) return FM_ERR_BADARG;
    if (m > 0 && n > 0 && (C == NULL || (k > 0 && (A == NULL || B == NULL))))
        return FM_ERR_BADARG;
    return FM_OK;
}

/* C := beta * C; beta == 0 overwrites, so NaN in C does not survive. */
static void FN(gemm_scale)(int64_t i0, int64_t i1, int64_t j0, int64_t j1, REAL beta, REAL *C,
                           int64_t rsc, int64_t csc) {
    if (beta == (REAL)1) return;
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++)
            C[i * rsc + j * csc] = beta == (REAL)0 ? (REAL)0 : beta * C[i * rsc + j * csc];
}

int FN(gemm)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A, int64_t rsa,
             int64_t csa, const REAL *B, int64_t rsb, int64_t csb, REAL beta, REAL *C,
             int64_t rsc, int64_t csc, int n_threads) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C */
    int status = FN(gemm_check)(m, n, k, A, B, C);
    if (status != FM_OK || m == 0 || n == 0) return status;
    const fm_kernels *kern = fm_kernels_get();
    const int nt = fm_threads_for(n_threads, m * n * k, FM_GEMM_PARALLEL_MIN_WORK);
    if (k == 0 || alpha == (REAL)0) { /* no products: C = beta * C */
        FN(gemm_scale)(0, m, 0, n, beta, C, rsc, csc);
        return FM_OK;
    }
    if (nt == 1) {
        KERNEL(kern)(m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
        return FM_OK;
    }
#ifdef _OPENMP
    /* Blocks of rows, multiples of 4 so the kernel groups rows as it does on one thread;
     * columns instead when there are too few rows to go round. */
    const int by_rows = m >= 4 * (int64_t)nt || m >= n;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const int64_t len = by_rows ? m : n;
        int64_t chunk = (len + T - 1) / T;
        chunk = (chunk + 3) / 4 * 4;
        const int64_t lo = (int64_t)t * chunk < len ? (int64_t)t * chunk : len;
        const int64_t hi = lo + chunk < len ? lo + chunk : len;
        if (hi > lo) {
            if (by_rows)
                KERNEL(kern)(hi - lo, n, k, alpha, A + lo * rsa, rsa, csa, B, rsb, csb, beta,
                             C + lo * rsc, rsc, csc);
            else
                KERNEL(kern)(m, hi - lo, k, alpha, A, rsa, csa, B + lo * csb, rsb, csb, beta,
                             C + lo * csc, rsc, csc);
        }
    }
#endif
    return FM_OK;
}

int FN(gemm_ref)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A, int64_t rsa,
                 int64_t csa, const REAL *B, int64_t rsb, int64_t csb, REAL beta, REAL *C,
                 int64_t rsc, int64_t csc) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C, one dot product per element */
    int status = FN(gemm_check)(m, n, k, A, B, C);
    if (status != FM_OK) return status;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            REAL s = 0;
            for (int64_t p = 0; p < k; p++) s += A[i * rsa + p * csa] * B[p * rsb + j * csb];
            REAL *c = &C[i * rsc + j * csc];
            *c = alpha * s + (beta == (REAL)0 ? (REAL)0 : beta * *c);
        }
    return FM_OK;
}
