/* Per-head inner products of two projections, q_t . k_t for each head: the
 * diagonal term a bidirectional recurrence counts twice. */
#ifndef SL_OPS_HEAD_DOT_H
#define SL_OPS_HEAD_DOT_H

#include "core/core.h"

/* a, b: [..., H*P] -> [..., H], y[r, h] = sum_p a[r, h*P+p] b[r, h*P+p]. */
sl_tensor *sl_head_dot(sl_ctx *ctx, sl_tensor *a, sl_tensor *b, int64_t H);

#endif
