/* Per-head scaling: each head's channels multiplied by one scalar, as
 * Mamba-2 scales x by its step size dt_t and adds the skip D_h x_t. */
#ifndef SL_OPS_MUL_HEADS_H
#define SL_OPS_MUL_HEADS_H

#include "core/core.h"

/* x: [..., H*P], s: [..., H] (one scalar per row and head) or [H] (the same
 * for every row) -> [..., H*P] with head h of row r times s[r, h]. */
sl_tensor *sl_mul_heads(sl_ctx *ctx, sl_tensor *x, sl_tensor *s);
/* One row, for step(): x: [H*P], s: [H] -> y: [H*P]. */
void sl_mul_heads_row(const float *x, const float *s, int64_t H, int64_t P, float *y);

#endif
