/* fm_ew_inst.h - instantiates the element-wise kernels (fm_ew_impl.h) for float32 and float64
 * as the tables fm_sew_<FM_EW_ISA> and fm_dew_<FM_EW_ISA>; FM_EW_ISA is set by the includer,
 * and FM_EW_HAS_FMA to 1 where its instruction set has fused multiply-add. */
#ifndef FM_EW_HAS_FMA
#define FM_EW_HAS_FMA 0
#endif
#include <math.h>
#include <string.h>

#define REAL float
#define EW(name) FM_CAT(FM_CAT(fm_ew_s_, name), FM_CAT(_, FM_EW_ISA))
#define KTYPE fm_sew_kernel
#define KERNEL FM_CAT(fm_sew_, FM_EW_ISA)
#define FM_EW_FLOAT 1
#define EXP expf
#define FMA fmaf
#define EXPM1 expm1f
#define LOG1P log1pf
#define TANH tanhf
#define SQRT sqrtf
#define FABS fabsf
#include "fm_ew_impl.h"
#undef REAL
#undef EW
#undef KTYPE
#undef KERNEL
#undef FM_EW_FLOAT
#undef EXP
#undef FMA
#undef EXPM1
#undef LOG1P
#undef TANH
#undef SQRT
#undef FABS

#define REAL double
#define EW(name) FM_CAT(FM_CAT(fm_ew_d_, name), FM_CAT(_, FM_EW_ISA))
#define KTYPE fm_dew_kernel
#define KERNEL FM_CAT(fm_dew_, FM_EW_ISA)
#define FM_EW_FLOAT 0
#define EXP exp
#define FMA fma
#define EXPM1 expm1
#define LOG1P log1p
#define TANH tanh
#define SQRT sqrt
#define FABS fabs
#include "fm_ew_impl.h"
#undef REAL
#undef EW
#undef KTYPE
#undef KERNEL
#undef FM_EW_FLOAT
#undef EXP
#undef FMA
#undef EXPM1
#undef LOG1P
#undef TANH
#undef SQRT
#undef FABS
