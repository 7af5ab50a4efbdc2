/*
 * fm_gemm_generic.c - the GEMM body compiled for the generic instruction set.
 *
 * Contract: baseline code for any CPU the compiler targets; always built, the fallback
 * and the kernel every other set is tested against.
 */
#include "fm_internal.h"
#define FM_ISA generic
#include "fm_gemm_impl.h"
