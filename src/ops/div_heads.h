/* Per-head normalisation by a scalar: linear attention's denominator
 * (Katharopoulos et al. 2020), o_t / (phi(q_t) . sum_{j<=t} phi(k_j) + eps),
 * where the denominator comes from the same recurrence run with v = 1. */
#ifndef SL_OPS_DIV_HEADS_H
#define SL_OPS_DIV_HEADS_H

#include "core/core.h"

/* o: [B, T, H*dv], den: [B, T, H] -> [B, T, H*dv], head h of row r divided
 * by den[r, h] + eps. */
sl_tensor *sl_div_heads(sl_ctx *ctx, sl_tensor *o, sl_tensor *den, float eps);
/* One row, for step(): o: [H*dv], den: [H] -> y: [H*dv]. */
void sl_div_heads_row(const float *o, const float *den, int64_t H, int64_t dv, float eps,
                      float *y);

#endif
