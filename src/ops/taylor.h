/* The second-order Taylor feature map of Based (Arora et al. 2024, "Simple
 * linear attention language models balance the recall-throughput
 * tradeoff"), per head of width d:
 *     phi(x) = [1, u, vec(u u^T) / sqrt(2)],   u = x / d^(1/4)
 * so that phi(q) . phi(k) = 1 + s + s^2 / 2 with s = q . k / sqrt(d): the
 * Taylor expansion of exp(s), which is >= 1/2 for every s, so a linear
 * attention normaliser built from it never divides by zero. F = 1 + d + d^2
 * features per head. */
#ifndef SL_OPS_TAYLOR_H
#define SL_OPS_TAYLOR_H

#include "core/core.h"

/* Features per head of width d. */
static inline int64_t sl_taylor_width(int64_t d) { return 1 + d + d * d; }

/* x: [..., H*d] -> [..., H*F], F = sl_taylor_width(d). */
sl_tensor *sl_taylor_features(sl_ctx *ctx, sl_tensor *x, int64_t H);

/* The op's kernels on R rows: x: [R, H*d] -> y: [R, H*F], and dy -> dx
 * (added to). */
void sl_taylor_fwd(int64_t R, int64_t H, int64_t d, const float *x, float *y);
void sl_taylor_bwd(int64_t R, int64_t H, int64_t d, const float *x, const float *dy, float *dx);
/* One row, for step(): x: [H*d] -> out: [H*F]; the forward kernel calls it. */
void sl_taylor_row(const float *x, int64_t H, int64_t d, float *out);

#endif
