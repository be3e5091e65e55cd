/* Time reversal and shift of each sequence: the anti-causal half of a
 * bidirectional recurrence is the causal recurrence run on reversed
 * sequences (Hydra, Hwang et al. 2024, builds its non-causal mixer the same
 * way, and shifts each half one token so that the diagonal is its own
 * term's). */
#ifndef SL_OPS_FLIP_TIME_H
#define SL_OPS_FLIP_TIME_H

#include "core/core.h"

/* x: [B, T, W] -> y: [B, T, W] with y[b, t] = x[b, T-1-t]; with seqs (a
 * packed batch, B = 1) each sequence is reversed in place of itself. */
sl_tensor *sl_flip_time(sl_ctx *ctx, sl_tensor *x, const sl_seqs *seqs);

/* x: [B, T, W] -> y: [B, T, W] with y[b, t] = x[b, t-1] and y[b, 0] = 0;
 * with seqs each sequence is shifted within itself (its first row zero,
 * its last row dropped). The backward is the shift the other way. */
sl_tensor *sl_shift_time(sl_ctx *ctx, sl_tensor *x, const sl_seqs *seqs);

#endif
