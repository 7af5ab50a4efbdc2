/*
 * fm_ew_generic.c - the element-wise kernels (activation backward, column sums, optimizer
 * updates) in baseline instructions: built everywhere, used where no other set is.
 */
#include "fm_internal.h"

#define FM_EW_ISA generic
#include "fm_ew_inst.h"
