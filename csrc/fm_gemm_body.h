/* fm_gemm_body.h - typed body of fm_gemm_impl.h (REAL, FN defined by the includer). */

/* Row form, for B and C with unit column stride: C[i, :] = beta C[i, :] + sum_p (alpha A[i, p])
 * B[p, :]. beta is applied with the first product of the first k-panel, so C is read and
 * written once per panel; four rows of C share each row of B; the j loop is contiguous. */
static void FN(gemm_rows)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A,
                          int64_t rsa, int64_t csa, const REAL *B, int64_t rsb, REAL beta,
                          REAL *C, int64_t rsc) {
    /* forward: C (m x n) = alpha * A (m x k) @ B (k x n) + beta * C, k >= 1 */
    for (int64_t jc = 0; jc < n; jc += FM_NC) {
        const int64_t nb = n - jc < FM_NC ? n - jc : FM_NC;
        for (int64_t pc = 0; pc < k; pc += FM_KC) {
            const int64_t kb = k - pc < FM_KC ? k - pc : FM_KC;
            const int first = pc == 0;
            int64_t i = 0;
            for (; i + 4 <= m; i += 4) {
                REAL *restrict c0 = C + i * rsc + jc;
                REAL *restrict c1 = c0 + rsc;
                REAL *restrict c2 = c1 + rsc;
                REAL *restrict c3 = c2 + rsc;
                const REAL *a = A + i * rsa + pc * csa;
                for (int64_t p = 0; p < kb; p++) {
                    const REAL a0 = alpha * a[p * csa];
                    const REAL a1 = alpha * a[rsa + p * csa];
                    const REAL a2 = alpha * a[2 * rsa + p * csa];
                    const REAL a3 = alpha * a[3 * rsa + p * csa];
                    const REAL *restrict b = B + (pc + p) * rsb + jc;
                    if (first && p == 0 && beta == 0) {
                        for (int64_t j = 0; j < nb; j++) {
                            c0[j] = a0 * b[j];
                            c1[j] = a1 * b[j];
                            c2[j] = a2 * b[j];
                            c3[j] = a3 * b[j];
                        }
                    } else if (first && p == 0) {
                        for (int64_t j = 0; j < nb; j++) {
                            c0[j] = beta * c0[j] + a0 * b[j];
                            c1[j] = beta * c1[j] + a1 * b[j];
                            c2[j] = beta * c2[j] + a2 * b[j];
                            c3[j] = beta * c3[j] + a3 * b[j];
                        }
                    } else {
                        for (int64_t j = 0; j < nb; j++) {
                            const REAL bj = b[j];
                            c0[j] += a0 * bj;
                            c1[j] += a1 * bj;
                            c2[j] += a2 * bj;
                            c3[j] += a3 * bj;
                        }
                    }
                }
            }
            for (; i < m; i++) {
                REAL *restrict c0 = C + i * rsc + jc;
                const REAL *a = A + i * rsa + pc * csa;
                for (int64_t p = 0; p < kb; p++) {
                    const REAL a0 = alpha * a[p * csa];
                    const REAL *restrict b = B + (pc + p) * rsb + jc;
                    if (first && p == 0 && beta == 0)
                        for (int64_t j = 0; j < nb; j++) c0[j] = a0 * b[j];
                    else if (first && p == 0)
                        for (int64_t j = 0; j < nb; j++) c0[j] = beta * c0[j] + a0 * b[j];
                    else
                        for (int64_t j = 0; j < nb; j++) c0[j] += a0 * b[j];
                }
            }
        }
    }
}

/* Dot form, for A with unit column stride and B with unit row stride (B = W^T in backprop):
 * C[i, j] = alpha <A[i, :], B[:, j]> + beta C[i, j], eight partial sums in a fixed order. */
static void FN(gemm_dots)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A,
                          int64_t rsa, const REAL *B, int64_t csb, REAL beta, REAL *C,
                          int64_t rsc, int64_t csc) {
    /* forward: C (m x n) = alpha * A (m x k) @ B (k x n) + beta * C */
    for (int64_t i = 0; i < m; i++) {
        const REAL *restrict a = A + i * rsa;
        for (int64_t j = 0; j < n; j++) {
            const REAL *restrict b = B + j * csb;
            REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t p = 0;
            for (; p + 8 <= k; p += 8)
                for (int l = 0; l < 8; l++) acc[l] += a[p + l] * b[p + l];
            for (int l = 0; p < k; p++, l++) acc[l] += a[p] * b[p];
            const REAL s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                           ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            REAL *c = C + i * rsc + j * csc;
            *c = beta == 0 ? alpha * s : alpha * s + beta * *c;
        }
    }
}

/* Any strides: one dot product per element. */
static void FN(gemm_strided)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A,
                             int64_t rsa, int64_t csa, const REAL *B, int64_t rsb, int64_t csb,
                             REAL beta, REAL *C, int64_t rsc, int64_t csc) {
    /* forward: C (m x n) = alpha * A (m x k) @ B (k x n) + beta * C */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            REAL s = 0;
            for (int64_t p = 0; p < k; p++) s += A[i * rsa + p * csa] * B[p * rsb + j * csb];
            REAL *c = C + i * rsc + j * csc;
            *c = beta == 0 ? alpha * s : alpha * s + beta * *c;
        }
}

void FN(gemm)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A, int64_t rsa,
              int64_t csa, const REAL *B, int64_t rsb, int64_t csb, REAL beta, REAL *C,
              int64_t rsc, int64_t csc) {
    /* forward: C (m x n) = alpha * A (m x k) @ B (k x n) + beta * C, k >= 1 */
    if (csb == 1 && csc == 1)
        FN(gemm_rows)(m, n, k, alpha, A, rsa, csa, B, rsb, beta, C, rsc);
    else if (csa == 1 && rsb == 1)
        FN(gemm_dots)(m, n, k, alpha, A, rsa, B, csb, beta, C, rsc, csc);
    else if (rsc == 1 && rsa == 1)
        /* C^T = B^T A^T has unit column strides in the row form. */
        FN(gemm)(n, m, k, alpha, B, csb, rsb, A, csa, rsa, beta, C, csc, rsc);
    else
        FN(gemm_strided)(m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}
