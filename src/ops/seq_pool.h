/* One vector per sequence from its positions, for a sequence-level head:
 * the mean of its rows, its last row or its first. A causal model sees the
 * whole sequence only at its last position; a bidirectional one at every
 * position, so mean (or first, BERT's [CLS] slot) pools it. PoNet's global
 * query is the mean too, taken before the query projection (a mean of
 * projections is the projection of the mean). */
#ifndef SL_OPS_SEQ_POOL_H
#define SL_OPS_SEQ_POOL_H

#include "core/core.h"

typedef enum { SL_SEQ_MEAN, SL_SEQ_LAST, SL_SEQ_FIRST } sl_seq_pool_kind;

/* x: [B, T, D] -> [N, D], N = sl_seq_count(seqs, B): row n pools sequence
 * n (seqs: NULL, or a packed batch with B = 1); an empty sequence pools to
 * zeros. The backward spreads dy[n] over the pooled rows. */
sl_tensor *sl_seq_pool(sl_ctx *ctx, sl_tensor *x, sl_seq_pool_kind kind, const sl_seqs *seqs);

/* The definition in double: y [N, D]. */
void sl_seq_pool_ref(const float *x, int64_t B, int64_t T, int64_t D, sl_seq_pool_kind kind,
                     const sl_seqs *seqs, double *y);

#endif
