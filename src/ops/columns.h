/* A block of columns of the last dim, differentiable: splits one packed
 * projection (q | k | v | ...) into the separate tensors that ops such as
 * sl_recurrence take. */
#ifndef SL_OPS_COLUMNS_H
#define SL_OPS_COLUMNS_H

#include "core/core.h"

/* x: [..., W] -> x[..., off : off + w]: [..., w]. */
sl_tensor *sl_columns(sl_ctx *ctx, sl_tensor *x, int64_t off, int64_t w);

#endif
