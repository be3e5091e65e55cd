/* L2 normalisation per group (per head), as DeltaNet applies to q and k so
 * that the delta rule's (I - beta k k^T) stays a contraction (Yang et al.
 * 2024, "Parallelizing Linear Transformers with the Delta Rule over Sequence
 * Length"):
 *
 *   y = x / sqrt(sum_group x^2 + 1e-6)
 *
 * over consecutive groups of `group` floats of the last dim. */
#ifndef SL_OPS_L2NORM_H
#define SL_OPS_L2NORM_H

#include "core/core.h"

/* x: [..., G*group] -> y: same shape; each group of `group` floats scaled to
 * unit norm. Saves 1/norm per group. */
sl_tensor *sl_l2norm(sl_ctx *ctx, sl_tensor *x, int64_t group);
/* The op's kernels on ng groups of `group` floats: x: [ng, group] -> y:
 * [ng, group], rn: [ng] the 1 / norms (or NULL); and dy -> dx (added to).
 * Threaded over groups. */
void sl_l2norm_fwd(int64_t ng, int64_t group, const float *x, float *y, float *rn);
void sl_l2norm_bwd(int64_t ng, int64_t group, const float *x, const float *rn, const float *dy,
                   float *dx);
/* One group, for step(): x: [n] -> y: [n] (may be x); returns 1 / norm. */
float sl_l2norm_row(const float *x, float *y, int64_t n);
/* Reference in double on n floats (n a multiple of group). */
void sl_l2norm_ref(const float *x, int64_t n, int64_t group, float *y);

#endif
