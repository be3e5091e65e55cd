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

/* One call's sizes: R rows of G heads of gs channels; z's rows are zs
 * floats apart (its pointer at the first gate column). */
typedef struct sl_gated_norm_desc {
    int64_t R, G, gs, zs;
    float eps;
} sl_gated_norm_desc;

/* The op's kernels. o: [R, G*gs], z: [R, zs], w: [gs] -> y: [R, G*gs], rs:
 * [R, G] each head's 1 / rms (kept for the backward). dy -> dO: [R, G*gs],
 * dz: [R, zs] (same columns as z), dw: [gs], each added to and NULL when not
 * wanted; scratch: sl_gated_rmsnorm_bwd_scratch(d) floats when dw is (per-
 * thread sums, added in thread order). */
void sl_gated_rmsnorm_fwd(const sl_gated_norm_desc *d, const float *o, const float *z,
                          const float *w, float *y, float *rs);
void sl_gated_rmsnorm_bwd(const sl_gated_norm_desc *d, const float *o, const float *z,
                          const float *w, const float *rs, const float *dy, float *dO, float *dz,
                          float *dw, float *scratch);
int64_t sl_gated_rmsnorm_bwd_scratch(const sl_gated_norm_desc *d);

/* One row (one token, for step()): o, z: [G*gs], w: [gs] -> y: [G*gs]; rs:
 * [G] or NULL receives each head's 1 / rms. */
void sl_gated_rmsnorm_row(const float *o, const float *z, const float *w, int64_t G, int64_t gs,
                          float eps, float *y, float *rs);

/* The naive oracle of the forward, in double: the layouts of
 * sl_gated_rmsnorm_fwd -> y: [R, G*gs]. */
void sl_gated_rmsnorm_ref(const sl_gated_norm_desc *d, const float *o, const float *z,
                          const float *w, double *y);

#endif
