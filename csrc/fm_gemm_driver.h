/* fm_gemm_driver.h - typed body of fm_gemm.c (REAL, FN, KSET, KSEL, EWSET, EWSEL, ACT set by the
 * includer). */

/* The epilogue of a product, applied to each tile of C once its last k-panel is added. */
typedef struct {
    const REAL *bias; /* (n) added to every row inside the micro-kernel, or NULL */
    int act;          /* activation (fm_act) and its parameter */
    double act_alpha;
    int tile_act;     /* whether act runs per tile (element-wise act, or a copy into Y) */
    REAL *Y;          /* act's output, row stride rsy, unit column stride; NULL: C itself */
    int64_t rsy;
} FN(gemm_epi);

static const FN(gemm_epi) FN(gemm_no_epi) = {NULL, FM_ACT_LINEAR, 0.0, 0, NULL, 0};

static int FN(gemm_check)(int64_t m, int64_t n, int64_t k, const REAL *A, const REAL *B,
                          const REAL *C) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C needs A, B, C where read */
    if (m < 0 || n < 0 || k < 0) return FM_ERR_BADARG;
    if (m > 0 && n > 0 && (C == NULL || (k > 0 && (A == NULL || B == NULL))))
        return FM_ERR_BADARG;
    return FM_OK;
}

/* Y := act(C) on the finished block of C at rows i0.., columns j0.. (unit column stride). */
static void FN(gemm_epi_act)(const FN(gemm_epi) *e, REAL *C, int64_t rsc, int64_t i0,
                             int64_t j0, int64_t mr, int64_t nr) {
    /* Y[i0:i0+mr, j0:j0+nr] = act(C[i0:i0+mr, j0:j0+nr]) */
    REAL *c = C + i0 * rsc + j0;
    REAL *y = e->Y != NULL ? e->Y + i0 * e->rsy + j0 : c;
    const int64_t rsy = e->Y != NULL ? e->rsy : rsc;
    if ((rsc == nr && rsy == nr) || mr == 1) {
        (void)ACT(y, c, mr, nr, e->act, e->act_alpha);
        return;
    }
    for (int64_t r = 0; r < mr; r++)
        (void)ACT(y + r * rsy, c + r * rsc, 1, nr, e->act, e->act_alpha);
}

/* No products (k == 0 or alpha == 0): C := beta * C + bias, then the per-tile act. */
static void FN(gemm_scale)(int64_t m, int64_t n, REAL beta, REAL *C, int64_t rsc, int64_t csc,
                           const FN(gemm_epi) *e) {
    /* C (m x n) := beta * C (+ bias); beta == 0 overwrites, so NaN in C does not survive */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            REAL *c = &C[i * rsc + j * csc];
            REAL x = beta == 0 ? (REAL)0 : beta * *c;
            if (e->bias != NULL) x += e->bias[j];
            *c = x;
        }
    if (e->tile_act) FN(gemm_epi_act)(e, C, rsc, 0, 0, m, n);
}

/* Small products: A is never packed (the micro-kernel broadcasts from it in place); B is
 * read in place when its rows are contiguous, else packed once into buf (k x n rounded up
 * to NR). Strips of MR rows outermost, so each finished strip is activated while hot. k is
 * cut into the packed path's k-panels (beta on the first, bias after the last), so a row of
 * C has the same bits whichever path computed it: the path follows the batch size. */
static void FN(gemm_sup)(const KSET *K, int64_t m, int64_t n, int64_t k, REAL alpha,
                         const REAL *A, int64_t rsa, int64_t csa, const REAL *B, int64_t rsb,
                         int64_t csb, REAL beta, REAL *C, int64_t rsc, int64_t csc,
                         const FN(gemm_epi) *e, REAL *buf) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C (+ epilogue) */
    const int64_t MR = K->mr, NR = K->nr, KC = fm_gemm_even(k, K->kc, 1);
    const int packed = csb != 1;
    const int relu = e->tile_act && e->act == FM_ACT_RELU && e->Y == NULL; /* in the kernel */
    if (packed) K->pack_b(k, n, B, rsb, csb, buf);
    for (int64_t i = 0; i < m; i += MR) {
        const int64_t mr = m - i < MR ? m - i : MR;
        for (int64_t j = 0; j < n; j += NR) {
            const int64_t nr = n - j < NR ? n - j : NR;
            for (int64_t pc = 0; pc < k; pc += KC) {
                const int64_t kc = k - pc < KC ? k - pc : KC;
                const int last = pc + kc == k;
                K->sup(kc, alpha, A + i * rsa + pc * csa, rsa, csa,
                       packed ? buf + j * k + pc * NR : B + pc * rsb + j, packed ? NR : rsb,
                       pc == 0 ? beta : (REAL)1, C + i * rsc + j * csc, rsc, csc, mr, nr,
                       last && e->bias != NULL ? e->bias + j : NULL, last && relu);
            }
        }
        if (e->tile_act && !relu) FN(gemm_epi_act)(e, C, rsc, i, 0, mr, n);
    }
}

/* The small path with B packed: into a buffer on this thread's stack, or allocated for this
 * call where B is larger (gemm_run sends B of up to FM_GEMM_SUP_B_BYTES here). */
static FM_NOINLINE int FN(gemm_sup_packed_b)(const KSET *K, int64_t m, int64_t n,
                                             int64_t k, REAL alpha, const REAL *A, int64_t rsa,
                                             int64_t csa, const REAL *B, int64_t rsb,
                                             int64_t csb, REAL beta, REAL *C, int64_t rsc,
                                             int64_t csc, const FN(gemm_epi) *e) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C */
    FM_ALIGNED REAL stack[FM_GEMM_STACK_BYTES / sizeof(REAL)];
    void *heap;
    REAL *buf = (REAL *)fm_gemm_buffer(
        stack, sizeof(stack), (size_t)k * (size_t)fm_gemm_round(n, K->nr) * sizeof(REAL), &heap);
    if (buf == NULL) return FM_ERR_NOMEM;
    FN(gemm_sup)(K, m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, e, buf);
    free(heap);
    return FM_OK;
}

/* The five loops around the micro-kernel (BLIS): jc over NC-column blocks of B, pc over
 * KC-deep panels (beta on the first, bias and act after the last), ic over MC-row blocks of
 * A, jr over NR-column micro-panels, ir over MR-row micro-panels; B blocks are packed into
 * Bbuf, A blocks into Abuf. KC is balanced over k alone, so the sums do not depend on the
 * block of C a thread was given. */
static void FN(gemm_packed)(const KSET *K, int64_t m, int64_t n, int64_t k, REAL alpha,
                            const REAL *A, int64_t rsa, int64_t csa, const REAL *B, int64_t rsb,
                            int64_t csb, REAL beta, REAL *C, int64_t rsc, int64_t csc,
                            const FN(gemm_epi) *e, REAL *Bbuf, REAL *Abuf) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C (+ epilogue) */
    const int64_t MR = K->mr, NR = K->nr, NC = K->nc, KC = fm_gemm_even(k, K->kc, 1);
    const int64_t MC = fm_gemm_even(m, K->mc, MR);
    for (int64_t jc = 0; jc < n; jc += NC) {
        const int64_t nc = n - jc < NC ? n - jc : NC;
        for (int64_t pc = 0; pc < k; pc += KC) {
            const int64_t kc = k - pc < KC ? k - pc : KC;
            const int last = pc + kc == k;
            const REAL beta_p = pc == 0 ? beta : (REAL)1;
            K->pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, Bbuf);
            for (int64_t ic = 0; ic < m; ic += MC) {
                const int64_t mc = m - ic < MC ? m - ic : MC;
                K->pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, Abuf);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t nr = nc - jr < NR ? nc - jr : NR;
                    const REAL *bias = last && e->bias != NULL ? e->bias + jc + jr : NULL;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = mc - ir < MR ? mc - ir : MR;
                        K->ukr(kc, alpha, Abuf + ir * kc, Bbuf + jr * kc, beta_p,
                               C + (ic + ir) * rsc + (jc + jr) * csc, rsc, csc, mr, nr, bias);
                        if (last && e->tile_act)
                            FN(gemm_epi_act)(e, C, rsc, ic + ir, jc + jr, mr, nr);
                    }
                }
            }
        }
    }
}

/* The packed path on C (m x n) with its buffers: on the stack when small, else allocated
 * for this call. */
static int FN(gemm_packed_run)(const KSET *K, int64_t m, int64_t n, int64_t k, REAL alpha,
                               const REAL *A, int64_t rsa, int64_t csa, const REAL *B,
                               int64_t rsb, int64_t csb, REAL beta, REAL *C, int64_t rsc,
                               int64_t csc, const FN(gemm_epi) *e) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C (+ epilogue), k >= 1 */
    const int64_t MR = K->mr, NR = K->nr, pad = FM_GEMM_ALIGN / sizeof(REAL);
    const int64_t kc = k < K->kc ? k : K->kc;
    const int64_t mc = fm_gemm_round(m < K->mc ? m : K->mc, MR);
    const int64_t nc = fm_gemm_round(n < K->nc ? n : K->nc, NR);
    const int64_t b_len = fm_gemm_round(kc * nc, pad), a_len = kc * mc;
    FM_ALIGNED REAL stack[FM_GEMM_STACK_BYTES / sizeof(REAL)];
    void *heap;
    REAL *buf = (REAL *)fm_gemm_buffer(stack, sizeof(stack),
                                       (size_t)(b_len + a_len) * sizeof(REAL), &heap);
    if (buf == NULL) return FM_ERR_NOMEM;
    FN(gemm_packed)(K, m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, e, buf,
                    buf + b_len);
    free(heap);
    return FM_OK;
}

/* One thread's block of rows [i0, i1) and columns [j0, j1) of C, on either path. */
static int FN(gemm_block)(const KSET *K, int packed, int64_t i0, int64_t i1, int64_t j0,
                          int64_t j1, int64_t k, REAL alpha, const REAL *A, int64_t rsa,
                          int64_t csa, const REAL *B, int64_t rsb, int64_t csb, REAL beta,
                          REAL *C, int64_t rsc, int64_t csc, const FN(gemm_epi) *e) {
    /* C[i0:i1, j0:j1] := alpha * A[i0:i1, :] @ B[:, j0:j1] + beta * C[i0:i1, j0:j1] */
    FN(gemm_epi) eb = *e;
    if (eb.bias != NULL) eb.bias += j0;
    if (eb.Y != NULL) eb.Y += i0 * eb.rsy + j0;
    const REAL *a = A + i0 * rsa, *b = B + j0 * csb;
    REAL *c = C + i0 * rsc + j0 * csc;
    if (packed)
        return FN(gemm_packed_run)(K, i1 - i0, j1 - j0, k, alpha, a, rsa, csa, b, rsb, csb,
                                   beta, c, rsc, csc, &eb);
    if (fm_gemm_row_path(i1 - i0, j1 - j0, csb, csc)) {
        /* a row or two of A: B streamed row by row (fm_ew_impl.h, gemv_row) */
        const EWSET *ew = EWSEL(fm_kernels_get());
        const int64_t KC = fm_gemm_even(k, K->kc, 1); /* the k-panels of the other paths */
        for (int64_t r = 0; r < i1 - i0; r++) {
            for (int64_t pc = 0; pc < k; pc += KC) {
                const int64_t kc = k - pc < KC ? k - pc : KC;
                ew->gemv_row(j1 - j0, kc, alpha, a + r * rsa + pc * csa, csa, b + pc * rsb, rsb,
                             pc == 0 ? beta : (REAL)1, c + r * rsc,
                             pc + kc == k ? eb.bias : NULL);
            }
            if (eb.tile_act) FN(gemm_epi_act)(&eb, c, rsc, r, 0, 1, j1 - j0);
        }
        return FM_OK;
    }
    if (csb == 1)
        FN(gemm_sup)(K, i1 - i0, j1 - j0, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                     &eb, NULL);
    else
        return FN(gemm_sup_packed_b)(K, i1 - i0, j1 - j0, k, alpha, a, rsa, csa, b, rsb, csb,
                                     beta, c, rsc, csc, &eb);
    return FM_OK;
}

/* Splits C among nt threads into blocks of whole MR-row strips or NR-column panels (along
 * the dimension with more of them); each block runs the whole path on its own, with its own
 * buffers: no barriers, no shared writes. */
static int FN(gemm_split)(const KSET *K, int packed, int64_t m, int64_t n, int64_t k,
                          REAL alpha, const REAL *A, int64_t rsa, int64_t csa, const REAL *B,
                          int64_t rsb, int64_t csb, REAL beta, REAL *C, int64_t rsc, int64_t csc,
                          const FN(gemm_epi) *e, int nt) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C (+ epilogue), k >= 1 */
    if (nt == 1)
        return FN(gemm_block)(K, packed, 0, m, 0, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C,
                              rsc, csc, e);
    int status = FM_OK;
#ifdef _OPENMP
    const int by_rows = (m + K->mr - 1) / K->mr >= (n + K->nr - 1) / K->nr;
    const unsigned fp_mode = fm_fp_mode();
#pragma omp parallel num_threads(nt) reduction(min : status)
    {
        const unsigned own_mode = fm_fp_mode();
        fm_fp_set_mode(fp_mode);
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t i0 = 0, i1 = m, j0 = 0, j1 = n;
        if (by_rows)
            fm_gemm_share(m, K->mr, t, T, &i0, &i1);
        else
            fm_gemm_share(n, K->nr, t, T, &j0, &j1);
        if (i1 > i0 && j1 > j0)
            status = FN(gemm_block)(K, packed, i0, i1, j0, j1, k, alpha, A, rsa, csa, B, rsb,
                                    csb, beta, C, rsc, csc, e);
        fm_fp_set_mode(own_mode);
    }
#endif
    return status;
}

/* Chooses the path and the thread count from the whole problem, so every element of C sums
 * its products in the same order for any n_threads. */
static int FN(gemm_run)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A, int64_t rsa,
                        int64_t csa, const REAL *B, int64_t rsb, int64_t csb, REAL beta, REAL *C,
                        int64_t rsc, int64_t csc, const FN(gemm_epi) *e, int n_threads) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C (+ epilogue), m, n >= 1 */
    if (k == 0 || alpha == 0) {
        FN(gemm_scale)(m, n, beta, C, rsc, csc, e);
        return FM_OK;
    }
    if (csc != 1 && rsc == 1 && e == &FN(gemm_no_epi)) /* C^T = B^T A^T has unit csc */
        return FN(gemm_run)(n, m, k, alpha, B, csb, rsb, A, csa, rsa, beta, C, csc, rsc, e,
                            n_threads);
    const KSET *K = KSEL(fm_kernels_get());
    const int64_t work = m * n * k;
    /* A row or two (gemv_row): threads from FM_GEMM_ROW_PAR_MNK, each given at least
     * FM_GEMM_ROW_N + NR columns, so that its NR-rounded share stays on that path */
    const int rows = fm_gemm_row_path(m, n, csb, csc);
    int nt = fm_threads_for(n_threads, work,
                            rows && FM_GEMM_ROW_PAR_MNK < K->par_mnk ? FM_GEMM_ROW_PAR_MNK
                                                                    : K->par_mnk);
    const int64_t row_threads = n / (FM_GEMM_ROW_N + K->nr);
    if (rows && nt > row_threads) nt = row_threads > 1 ? (int)row_threads : 1;
    /* Rows of A a multiple of 4 KiB apart share one L1 set: the MR rows the unpacked kernel
     * reads at once would evict each other, so such products are packed. */
    const int aliased = csa == 1 && (rsa * (int64_t)sizeof(REAL)) % 4096 == 0 &&
                        work > ((int64_t)1 << 21);
    const int sup = (m <= K->sup_m || work <= K->sup_mnk) && !aliased &&
                    (csb == 1 || (uint64_t)k * (uint64_t)fm_gemm_round(n, K->nr) <=
                                     FM_GEMM_SUP_B_BYTES / sizeof(REAL));
    return FN(gemm_split)(K, !sup, m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc,
                          e, nt);
}

int FN(gemm)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A, int64_t rsa,
             int64_t csa, const REAL *B, int64_t rsb, int64_t csb, REAL beta, REAL *C,
             int64_t rsc, int64_t csc, int n_threads) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C */
    const int status = FN(gemm_check)(m, n, k, A, B, C);
    if (status != FM_OK || m == 0 || n == 0) return status;
    return FN(gemm_run)(m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc,
                        &FN(gemm_no_epi), n_threads);
}

int FN(gemm_ex)(int64_t m, int64_t n, int64_t k, REAL alpha, const REAL *A, int64_t rsa,
                int64_t csa, const REAL *B, int64_t rsb, int64_t csb, REAL beta, REAL *C,
                int64_t rsc, int64_t csc, const REAL *bias, int act, double act_alpha, REAL *Y,
                int64_t rsy, int n_threads) {
    /* C (m x n) := alpha * A (m x k) @ B (k x n) + beta * C + 1 bias^T, Y (m x n) := act(C) */
    int status = FN(gemm_check)(m, n, k, A, B, C);
    if (status != FM_OK) return status;
    if (act < 0 || act >= FM_ACT_COUNT) return FM_ERR_BADARG;
    if (Y == C) Y = NULL;
    const int has_epi = bias != NULL || act != FM_ACT_LINEAR || Y != NULL;
    if (has_epi && m > 0 && n > 0 && (csc != 1 || (Y != NULL && m > 1 && rsy < n)))
        return FM_ERR_BADARG;
    if (m == 0 || n == 0) return FM_OK;
    if (!has_epi)
        return FN(gemm_run)(m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc,
                            &FN(gemm_no_epi), n_threads);
    const int rowwise = fm_act_rowwise(act);
    const FN(gemm_epi) e = {bias, act, act_alpha, !rowwise, Y, rsy};
    status = FN(gemm_run)(m, n, k, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, &e,
                          n_threads);
    if (status == FM_OK && rowwise) /* needs whole rows: one pass once C is complete */
        for (int64_t i = 0; i < m; i++)
            (void)ACT(Y != NULL ? Y + i * rsy : C + i * rsc, C + i * rsc, 1, n, act, act_alpha);
    return status;
}

/* Small products of one column panel (n <= NR) and one k-panel (k <= KC): the micro-kernel
 * on each strip of MR rows, as gemm_sup calls it, without its loops. */
static void FN(gemm_strips)(const KSET *K, int64_t m, int64_t n, int64_t k, const REAL *A,
                            int64_t rsa, int64_t csa, const REAL *B, int64_t rsb, REAL *C,
                            const REAL *bias, int relu) {
    /* C (m x n, contiguous) := A (m x k) @ B (k x n) + 1 bias^T (relu) */
    const int64_t MR = K->mr;
    for (int64_t i = 0; i < m; i += MR)
        K->sup(k, 1, A + i * rsa, rsa, csa, B, rsb, 0, C + i * n, n, 1, m - i < MR ? m - i : MR,
               n, bias, relu);
}

/* The same with B packed first into one panel on the stack (k x NR elements, at most
 * FM_GEMM_STACK_BYTES: gemm_small checks). */
static FM_NOINLINE void FN(gemm_strips_packed_b)(const KSET *K, int64_t m, int64_t n, int64_t k,
                                                 const REAL *A, int64_t rsa, int64_t csa,
                                                 const REAL *B, int64_t rsb, int64_t csb,
                                                 REAL *C, const REAL *bias, int relu) {
    /* C (m x n, contiguous) := A (m x k) @ B (k x n) + 1 bias^T (relu) */
    FM_ALIGNED REAL buf[FM_GEMM_STACK_BYTES / sizeof(REAL)];
    K->pack_b(k, n, B, rsb, csb, buf);
    FN(gemm_strips)(K, m, n, k, A, rsa, csa, buf, K->nr, C, bias, relu);
}

int FN(gemm_small)(int64_t m, int64_t n, int64_t k, const REAL *A, int64_t rsa, int64_t csa,
                   const REAL *B, int64_t rsb, int64_t csb, REAL *C, const REAL *bias, int act,
                   double act_alpha, REAL *Y) {
    /* C (m x n, contiguous) := A (m x k) @ B (k x n) + 1 bias^T, Y (m x n, contiguous) :=
     * act(C); Y may be C. The small path of gemm_run, which these products take for any
     * thread count (m * n * k <= FM_GEMM_SMALL_MNK is below every kernel set's par_mnk),
     * without the checks and dispatch around it: the same arithmetic, so the same bits. */
    if (m < 1 || n < 1 || k < 1 || m > FM_GEMM_SMALL_MNK || n > FM_GEMM_SMALL_MNK ||
        k > FM_GEMM_SMALL_MNK || m * n * k > FM_GEMM_SMALL_MNK || A == NULL || B == NULL ||
        C == NULL || Y == NULL || act < 0 || act >= FM_ACT_COUNT)
        return FM_ERR_BADARG;
    const KSET *K = KSEL(fm_kernels_get());
    if (csb != 1 && (uint64_t)k * (uint64_t)fm_gemm_round(n, K->nr) >
                        FM_GEMM_STACK_BYTES / sizeof(REAL)) /* B too wide to pack on the stack */
        return FN(gemm_ex)(m, n, k, 1, A, rsa, csa, B, rsb, csb, 0, C, n, 1, bias, act,
                           act_alpha, Y, n, 1);
    if (n <= K->nr && k <= K->kc) { /* one column panel and one k-panel: gemm_sup's calls */
        const int relu = act == FM_ACT_RELU && Y == C; /* in the kernel, as gemm_sup does */
        if (csb == 1)
            FN(gemm_strips)(K, m, n, k, A, rsa, csa, B, rsb, C, bias, relu);
        else
            FN(gemm_strips_packed_b)(K, m, n, k, A, rsa, csa, B, rsb, csb, C, bias, relu);
        if (!relu && (act != FM_ACT_LINEAR || Y != C)) (void)ACT(Y, C, m, n, act, act_alpha);
        return FM_OK;
    }
    const FN(gemm_epi) e = {bias, FM_ACT_LINEAR, 0.0, 0, NULL, 0};
    if (csb == 1)
        FN(gemm_sup)(K, m, n, k, 1, A, rsa, csa, B, rsb, 1, 0, C, n, 1, &e, NULL);
    else { /* B fits the stack (checked above): nothing to allocate, nothing can fail */
        const int status = FN(gemm_sup_packed_b)(K, m, n, k, 1, A, rsa, csa, B, rsb, csb, 0,
                                                 C, n, 1, &e);
        if (status != FM_OK) return status;
    }
    if (act != FM_ACT_LINEAR || Y != C) (void)ACT(Y, C, m, n, act, act_alpha);
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
