/* The mean over each sequence's tokens, per channel: PoNet's average
 * pooling to a global query, taken before the query projection (a mean of
 * projections is the projection of the mean). */
#ifndef SL_OPS_SEQ_MEAN_H
#define SL_OPS_SEQ_MEAN_H

#include "core/core.h"

/* x: [B, T, C] -> m: [N, C], N = sl_seq_count(seqs, B) (seqs: NULL, or
 * valid bounds over T with B = 1); an empty sequence's mean is 0. The
 * backward adds dm_n / L to every token of sequence n. */
sl_tensor *sl_seq_mean(sl_ctx *ctx, sl_tensor *x, const sl_seqs *seqs);

#endif
