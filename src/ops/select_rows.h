/* Some rows of a tensor, differentiable: the positions a loss counts, so
 * that a head with a large output (logits over 8192 tokens) is computed
 * only where a target exists (MQAR labels one position in sixteen). */
#ifndef SL_OPS_SELECT_ROWS_H
#define SL_OPS_SELECT_ROWS_H

#include "core/core.h"

/* x: [..., D] with R rows, idx: [n] distinct rows in [0, R) -> [n, D];
 * idx must stay valid until the backward has run (the arena). */
sl_tensor *sl_select_rows(sl_ctx *ctx, sl_tensor *x, const int64_t *idx, int64_t n);

#endif
