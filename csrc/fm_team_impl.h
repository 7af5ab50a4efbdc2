/* fm_team_impl.h - typed body of fm_net.c's team training (REAL, FN, FMFN, EWK, GEMM and
 * GEMM_EX defined by the includer, inside fm_net_impl.h).
 *
 * A network whose products are each too small for the GEMM's own threads (a parallel region
 * per product would cost as much as the product) but whose step holds enough work to share
 * trains in one parallel region per run, its threads splitting each step two ways:
 *  - the batch's rows: each thread gathers its rows, runs them forward through every layer
 *    and, after the loss, back through every dX, with no barrier between layers (a row of
 *    each activation and gradient depends only on the same row before it);
 *  - the parameters' rows: each thread owns whole blocks of FM_PEN_ROWS kernel rows of every
 *    layer (the last thread also the biases) and computes their dW, adds their penalty
 *    gradient, updates them and their optimizer state, and sums their penalty for the next
 *    loss. What a thread writes is contiguous, so the threads never write the same cache
 *    lines but at the edges of their shares.
 * Barriers: the forward complete (the loss needs every row), the loss and dZ of the last
 * layer written (thread 0), every dZ complete (dW needs every row), the update complete.
 *
 * A team needs its threads running: where the cores are taken (another library's threads
 * still spinning after its last call, as OpenBLAS's do for about 0.1 s, or other processes),
 * a thread waits at each barrier for one the system has not scheduled. Each thread times its
 * waits at the two barriers that end evenly shared work (the forward and the dX chain; at the
 * others some threads wait by design); when one spent over team_wait_share (fm_net.c: 0.25
 * unless fm_set_team_wait_share changed it) of two windows of TEAM_WINDOW steps in a row
 * there, the run goes on in FN(train)'s loop (the same bits either way) and says so
 * (fm_stats.team_waited).
 *
 * Every element gets the operations FN(train) gives it, in the same order: the GEMM gives an
 * element of C the same bits whichever rows or columns are computed with it, the other passes
 * are element-wise or per row or column, the loss and metrics run on thread 0, and the
 * penalty is the same terms added in the same order. So the weights are those of one thread,
 * bit for bit. */

#define PP_STRIDE (FM_ALIGN / (int64_t)sizeof(double))
#define TEAM_WINDOW 4


/* How many threads train this network as a team (1: FN(train)'s loop, the GEMM threading its
 * own products): not with gradient clipping (norms over whole tensors). */
static int FN(team_size)(const fm_net *net, const fm_optim *opt, int64_t B, int n_threads) {
    if (n_threads < 2 || opt->clipnorm > 0 || opt->clipvalue > 0 || opt->global_clipnorm > 0 ||
        !team_shape(net, B)) /* team_shape(): the workspace keeps every dZ */
        return 1;
    const int64_t most = B / FM_TEAM_MIN_ROWS;
    return most < n_threads ? (int)most : n_threads;
}

#ifdef _OPENMP
/* A barrier of the team (orphaned: called inside its parallel region), its wait added to
 * *waited. */
static inline void FN(team_barrier)(double *waited) {
    const double arrived = omp_get_wtime();
#pragma omp barrier
    *waited += omp_get_wtime() - arrived;
}

/* Takes the cache lines of p[0, len) into this thread's cache, ready for writing. The other
 * threads read every parameter in the forward and dX stages, so the lines a thread is about
 * to update are shared, and each store to a shared line waits for the other copies to be
 * invalidated. Inside the update's loop those waits fill the store queue and stall its
 * arithmetic (float64 Adam in a team of 2: 2.4 ns per parameter, against 0.9 on one thread
 * alone). A loop that rewrites one byte of each line, and does nothing else, has many of
 * them in flight at once (this loop and the update together: 1.6 ns per parameter; the
 * 64-128-64-10 float64 fit 15% faster). A software write-prefetch (prefetchw) measured no
 * faster than no claim at all. The bytes are rewritten unchanged, and they are this
 * thread's own parameters, which no other thread reads or writes in this stage. */
static void FN(own_lines)(REAL *p, int64_t len) {
    if (len <= 0) return;
    volatile unsigned char *const first = (volatile unsigned char *)p;
    const int64_t bytes = len * (int64_t)sizeof(REAL);
    for (int64_t b = 0; b < bytes; b += 64) first[b] = first[b];
    first[bytes - 1] = first[bytes - 1]; /* the last line, where p is not aligned */
}

/* Thread t's penalty terms (kernel blocks it owns; the biases for the last thread) of the
 * parameters P into w->pp. */
static void FN(team_penalty)(const fm_net *net, const REAL *P, const FN(ws) * w, int t,
                             int tn) {
    int64_t off = 0, term = 0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t nin = net->units[l], nout = net->units[l + 1], nb = pen_blocks(nin);
        int64_t r0, r1; /* the rows it owns: whole blocks */
        team_rows(nin, t, tn, &r0, &r1);
        for (int64_t i = r0 / FM_PEN_ROWS; r1 > r0 && i < pen_blocks(r1); i++)
            w->pp[(term + i) * PP_STRIDE] = FN(penalty_term)(net, l, P + off, i);
        if (t == tn - 1) w->pp[(term + nb) * PP_STRIDE] = FN(penalty_term)(net, l, P + off, nb);
        term += nb + 1;
        off += nin * nout + (net->use_bias[l] ? nout : 0);
    }
}

/* Trains the run as a team of nt threads; *done receives the batches trained (fewer than
 * n_batches when the team gave up on waiting, or on an error). */
static int FN(team_train)(const fm_net *net, const fm_optim *opt, REAL *P, REAL *G, REAL *S,
                          int64_t *iterations, const FN(ws) * w, int64_t B, const fm_data *data,
                          const int64_t *order, int64_t first_batch, int64_t n_batches,
                          uint64_t seed, fm_stats *stats, int nt, int64_t *done) {
    const int64_t L = net->n_layers, n = data->n, n_in = net->units[0], n_out = net->units[L];
    const int64_t n_params = fm_net_param_count(net), it0 = *iterations, terms = pen_terms(net);
    const int64_t maxw = max_width(net); /* d1's rows (fm_net.c's plan) */
    const REAL *X = (const REAL *)data->X, *T = (const REAL *)data->T, *SW = (const REAL *)data->sw;
    const REAL *tb = T != NULL ? w->tb : NULL, *wb = SW != NULL ? w->wb : NULL;
    const int64_t *lb = data->labels != NULL ? w->lb : NULL;
    int has_pen = 0;
    for (int64_t l = 0; l < L; l++) has_pen |= penalized(net, l);
    const unsigned fp_mode = fm_fp_mode();
    /* written by thread 0 in the loss stage, read by all after the barrier that follows it */
    int step_status = FM_OK;
    /* a product's failure (any thread, any stage); thread 0 reads it in the loss stage, when
     * no thread writes it, and ends the run there (fit restores the weights it raises on) */
    int failed = FM_OK;
    double pen_scale = 1;
    int64_t steps = 0;
    /* the largest share of a window any thread spent waiting, by window parity: the threads
     * fill one slot at a window's end while thread 0 clears the other */
    double worst[2] = {0, 0};
    const double wait_share = team_wait_share; /* read once, before the threads start */
    int status = FM_OK;
#pragma omp parallel num_threads(nt) reduction(min : status)
    {
        const unsigned own_mode = fm_fp_mode();
        fm_fp_set_mode(fp_mode);
        const int t = omp_get_thread_num(), tn = omp_get_num_threads();
        double waited = 0, window_start = omp_get_wtime(); /* this thread's waits */
        int bad_windows = 0; /* the same in every thread: each reads the same slots */
        if (has_pen) FN(team_penalty)(net, P, w, t, tn);
        for (int64_t bi = first_batch; bi < first_batch + n_batches; bi++) {
            const int64_t start = bi * B, cnt = n - start < B ? n - start : B;
            const int64_t iteration = it0 + (bi - first_batch);
            const int64_t i0 = cnt * t / tn, i1 = cnt * (t + 1) / tn, m = i1 - i0;
            /* this thread's rows of the batch (fm_train has checked every row index) */
            const int64_t *rows = order + start + i0;
            FN(gather)(w->xb + i0 * n_in, X, data->x_rs, data->x_cs, n_in, rows, 0, m);
            if (T != NULL)
                FN(gather)(w->tb + i0 * n_out, T, data->t_rs, data->t_cs, n_out, rows, 0, m);
            if (lb != NULL)
                for (int64_t r = 0; r < m; r++) w->lb[i0 + r] = data->labels[rows[r]];
            if (SW != NULL)
                for (int64_t r = 0; r < m; r++) w->wb[i0 + r] = SW[rows[r]];
            if (net->dropout[0] > 0)
                FN(dropout_apply)(w->xb, w->xb, i0 * n_in, i1 * n_in, net->dropout[0],
                                  dropout_key(seed, iteration, 0));
            /* forward: these rows through every layer */
            int64_t off = 0;
            for (int64_t l = 0; l < L && m > 0; l++) {
                const int64_t nin = net->units[l], nout = net->units[l + 1];
                const REAL *W = P + off, *b = net->use_bias[l] ? W + nin * nout : NULL;
                off += nin * nout + (b != NULL ? nout : 0);
                int64_t rs, cs;
                const REAL *in = FN(layer_input)(net, w, l, 1, w->xb, &rs, &cs, n_in, 1);
                const int last = l == L - 1;
                REAL *Y = ACT_OUT(w, l) + i0 * nout, *C = last ? w->zl + i0 * nout : Y;
                int st = GEMM_EX(m, nout, nin, 1, in + i0 * rs, rs, cs, W, nout, 1, 0, C, nout, 1,
                                 b, net->act[l], net->act_alpha[l], Y, nout, 1);
                if (st != FM_OK) {
                    status = st < status ? st : status;
#pragma omp atomic write
                    failed = st;
                }
                if (!last && net->dropout[l + 1] > 0)
                    FN(dropout_apply)(DROPPED(w, l + 1), ACT_OUT(w, l), i0 * nout, i1 * nout,
                                      net->dropout[l + 1], dropout_key(seed, iteration, l + 1));
            }
            FN(team_barrier)(&waited); /* every row forward: the threads' shares are even */
            if (t == 0) { /* loss, metrics and dZ of the last layer (in d0), as FN(train) */
                const REAL *Y = ACT_OUT(w, L - 1);
                double pen = 0, loss; /* the terms in FN(penalty)'s order */
                if (has_pen)
                    for (int64_t i = 0; i < terms; i++) pen += w->pp[i * PP_STRIDE];
                int st;
#pragma omp atomic read
                st = failed;
                if (st == FM_OK)
                    st = FN(batch_loss)(net, w, cnt, Y, tb, lb, wb, pen, &loss, &pen_scale, NULL);
                if (st == FM_OK && !isfinite(loss)) {
                    stats->bad_batch = bi;
                    st = FM_ERR_NONFINITE;
                }
                if (st == FM_OK) st = FN(add_metrics)(net, stats, cnt, Y, tb, lb, wb);
                if (st == FM_OK) {
                    stats->loss_sum += loss * (double)cnt;
                    stats->n_seen += cnt;
                }
                step_status = st;
            }
#pragma omp barrier /* the loss (thread 0 alone: its wait is by design, not timed) */
            if (step_status != FM_OK) break; /* every thread read it after the same barrier */
            /* backward through the dX of every layer for these rows: dZ of layer l is kept
             * (d0 for the last) for dW; a layer's dX goes to raw before the activation's
             * derivative: this thread's rows of d1 (row stride maxw), so that threads on
             * layers of different widths never share its elements */
            REAL *const raw = w->d1 + i0 * maxw;
            off = n_params;
            for (int64_t l = L - 1; l > 0 && m > 0; l--) {
                const int64_t nin = net->units[l], nout = net->units[l + 1];
                off -= nin * nout + (net->use_bias[l] ? nout : 0);
                const REAL *dZ = l == L - 1 ? w->d0 : KEPT_DZ(w, l);
                int st = GEMM(m, nin, nout, 1, dZ + i0 * nout, nout, 1, P + off, 1, nout, 0, raw,
                              nin, 1, 1);
                if (st != FM_OK) {
                    status = st < status ? st : status;
#pragma omp atomic write
                    failed = st;
                }
                if (net->dropout[l] > 0) /* the masks of the batch's elements i0 nin on */
                    FN(dropout_apply)(raw - i0 * nin, raw - i0 * nin, i0 * nin, i1 * nin,
                                      net->dropout[l], dropout_key(seed, iteration, l));
                EWK->act_backward(KEPT_DZ(w, l - 1) + i0 * nin, raw, ACT_OUT(w, l - 1) + i0 * nin,
                                  m, nin, net->act[l - 1], net->act_alpha[l - 1]);
            }
            FN(team_barrier)(&waited); /* every row of every dZ is written: even shares */
            /* dW, db, their penalty gradients and the update of this thread's parameter rows;
             * then their penalty for the next step's loss */
            const fm_step c = fm_step_of(opt, iteration);
            off = 0;
            for (int64_t l = 0; l < L; l++) {
                const int64_t nin = net->units[l], nout = net->units[l + 1];
                const REAL *W = P + off, *dZ = l == L - 1 ? w->d0 : KEPT_DZ(w, l);
                REAL *dW = G + off;
                int64_t r0, r1, rs, cs;
                team_rows(nin, t, tn, &r0, &r1);
                const REAL *in = FN(layer_input)(net, w, l, 1, w->xb, &rs, &cs, n_in, 1);
                if (r1 > r0) {
                    int st = GEMM(r1 - r0, nout, cnt, 1, in + r0 * cs, cs, rs, dZ, nout, 1, 0,
                                  dW + r0 * nout, nout, 1, 1);
                    if (st != FM_OK) {
                        status = st < status ? st : status;
#pragma omp atomic write
                        failed = st;
                    }
                    FN(add_penalty_grad)(dW + r0 * nout, W + r0 * nout, (r1 - r0) * nout,
                                         net->l1[l], net->l2[l], pen_scale);
                    FN(own_lines)(P + off + r0 * nout, (r1 - r0) * nout);
                    EWK->update(P, G, S, n_params, off + r0 * nout, (r1 - r0) * nout, 1, 0, opt,
                                &c);
                }
                if (net->use_bias[l] && t == tn - 1) {
                    REAL *db = dW + nin * nout;
                    EWK->colsum(db, dZ, cnt, nout, nout);
                    FN(add_penalty_grad)(db, W + nin * nout, nout, net->bias_l1[l],
                                         net->bias_l2[l], pen_scale);
                    FN(own_lines)(P + off + nin * nout, nout);
                    EWK->update(P, G, S, n_params, off + nin * nout, nout, 1, 0, opt, &c);
                }
                off += nin * nout + (net->use_bias[l] ? nout : 0);
            }
            if (has_pen) FN(team_penalty)(net, P, w, t, tn);
            if (t == 0) steps++;
#pragma omp barrier /* every parameter is updated before the next forward reads it (the
                    * shares of parameter rows may be uneven: not timed) */
            const int64_t k = bi - first_batch + 1; /* steps done */
            if (k % TEAM_WINDOW == 0) { /* did a thread spend most of the window waiting? */
                const double now = omp_get_wtime(), share = waited / (now - window_start);
                double *const slot = &worst[(k / TEAM_WINDOW) % 2];
#pragma omp critical(fm_team_worst)
                *slot = share > *slot ? share : *slot;
                waited = 0;
                window_start = now;
#pragma omp barrier
                /* two windows in a row: not a passing interruption */
                bad_windows = *slot > wait_share ? bad_windows + 1 : 0;
                if (t == 0) worst[(k / TEAM_WINDOW + 1) % 2] = 0;
                if (bad_windows == 2) break;
            }
        }
        fm_fp_set_mode(own_mode);
    }
    *iterations = it0 + steps;
    *done = steps;
    return status != FM_OK ? status : step_status;
}
#endif
#undef PP_STRIDE
#undef TEAM_WINDOW
