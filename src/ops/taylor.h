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

/* One row: x: [H*d] -> out: [H*F]; the op uses it too. */
void sl_taylor_apply(const float *x, int64_t H, int64_t d, float *out);

#endif
