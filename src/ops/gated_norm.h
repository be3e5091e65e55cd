/* Gated RMSNorm per head, the output stage of RetNet (Sun et al. 2023: group
 * norm, then swish(W_g x)) and GLA (Yang et al. 2023):
 *     y = RMSNorm(o_h) w * silu(z)     over each head's group of gs channels
 * with one weight w: [gs] shared by the heads, as in both reference codes. */
#ifndef SL_OPS_GATED_NORM_H
#define SL_OPS_GATED_NORM_H

#include "core/core.h"

/* o: [B, T, G*gs], z: columns [z_off, z_off + G*gs) of a [B, T, W] tensor,
 * read in place (the gate's block of a packed projection; its gradient
 * lands in the same columns), w: [gs] -> [B, T, G*gs]. One fused op with
 * its own backward: one pass over o and z each way instead of the five of
 * rmsnorm, silu and mul. */
sl_tensor *sl_gated_rmsnorm(sl_ctx *ctx, sl_tensor *o, sl_tensor *z, int64_t z_off, sl_tensor *w,
                            int64_t G, float eps);

/* One token: o, z: [G*gs], w: [gs] -> y: [G*gs], the same arithmetic. */
void sl_gated_rmsnorm_apply(const float *o, const float *z, const float *w, int64_t G, int64_t gs,
                            float eps, float *y);

#endif
