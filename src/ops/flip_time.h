/* Time reversal of each sequence: the anti-causal half of a bidirectional
 * recurrence is the causal recurrence run on reversed sequences (Hydra,
 * Hwang et al. 2024, builds its non-causal mixer the same way). */
#ifndef SL_OPS_FLIP_TIME_H
#define SL_OPS_FLIP_TIME_H

#include "core/core.h"

/* x: [B, T, W] -> y: [B, T, W] with y[b, t] = x[b, T-1-t]; with seqs (a
 * packed batch, B = 1) each sequence is reversed in place of itself. */
sl_tensor *sl_flip_time(sl_ctx *ctx, sl_tensor *x, const sl_seqs *seqs);

#endif
