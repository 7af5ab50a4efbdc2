/*
 * fm_ops.c - the engine's kernels other than GEMM: activations, the dense layer, losses,
 * metrics and optimizer updates, each as forward/backward free functions.
 *
 * Contract: float32 and float64 from one typed template (fm_ops_impl.h); arguments are
 * checked before anything is written; sums (losses, norms, metrics) accumulate in double in
 * row order on one thread, element-wise updates may be split across threads, so results do
 * not depend on the thread count. Baseline code: no instruction set beyond the build's; the
 * element-wise passes of training (activation backward, bias gradient, optimizer update) go
 * through the kernel table of the selected instruction set (fm_ew_impl.h).
 */
#include "fm_internal.h"

#include <float.h>
#include <math.h>

#define FM_PROB_EPS 1e-7 /* Keras's epsilon: probabilities are clipped to [eps, 1 - eps] */

static int fm_act_check(int act) { return act >= 0 && act < FM_ACT_COUNT ? FM_OK : FM_ERR_BADARG; }

int fm_optim_check(const fm_optim *o) {
    if (o == NULL || o->kind < 0 || o->kind >= FM_OPT_COUNT) return FM_ERR_BADARG;
    if (!(o->learning_rate >= 0) || !(o->decay >= 0) || !(o->epsilon >= 0)) return FM_ERR_BADARG;
    if (!(o->momentum >= 0 && o->momentum <= 1)) return FM_ERR_BADARG;
    if (!(o->beta_1 >= 0 && o->beta_1 < 1) || !(o->beta_2 >= 0 && o->beta_2 < 1))
        return FM_ERR_BADARG;
    if (!(o->rho >= 0 && o->rho < 1)) return FM_ERR_BADARG;
    return FM_OK;
}

#define REAL float
#define FN(name) FM_CAT(name, _s)
#define MACH_EPS FLT_EPSILON
#define GEMM fm_sgemm
#define EWK (fm_kernels_get()->se)
#define EXP expf
#define EXPM1 expm1f
#define LOG logf
#define LOG1P log1pf
#define TANH tanhf
#define SQRT sqrtf
#define FABS fabsf
#include "fm_ops_impl.h"
#undef REAL
#undef FN
#undef MACH_EPS
#undef GEMM
#undef EWK
#undef EXP
#undef EXPM1
#undef LOG
#undef LOG1P
#undef TANH
#undef SQRT
#undef FABS

#define REAL double
#define FN(name) FM_CAT(name, _d)
#define MACH_EPS DBL_EPSILON
#define GEMM fm_dgemm
#define EWK (fm_kernels_get()->de)
#define EXP exp
#define EXPM1 expm1
#define LOG log
#define LOG1P log1p
#define TANH tanh
#define SQRT sqrt
#define FABS fabs
#include "fm_ops_impl.h"
