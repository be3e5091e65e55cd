/* Global attention pooling, PoNet's global aggregation (Tan et al. 2021):
 * per sequence and head h (P = W/H channels each), given the sequence's
 * pooled query g (PoNet's mean_t q_t, computed by the caller),
 *
 *   a_t = softmax_t(g . k_t / sqrt(P)),   v = sum_t a_t k_t
 *
 * one vector v per sequence and head. The keys are also the values, as in
 * PoNet's code. Backward, with e_t = dv . k_t and abar = sum_t a_t e_t:
 *   dk_t = a_t dv + a_t (e_t - abar) g / sqrt(P),
 *   dg = sum_t a_t (e_t - abar) k_t / sqrt(P).
 * Nothing is stored: the backward recomputes the softmax. */
#ifndef SL_OPS_ATTN_POOL_H
#define SL_OPS_ATTN_POOL_H

#include "core/core.h"

/* One call's sizes: ld = the floats between two tokens' keys (k is a block
 * of columns of a wider projection); seqs: NULL, or valid bounds over T
 * with B = 1. */
typedef struct sl_attn_pool_desc {
    int64_t B, T, H, P, ld;
    const sl_seqs *seqs;
} sl_attn_pool_desc;

/* g: [N, H*P], N = sl_seq_count(seqs, B); the keys k = x[..., off : off +
 * H*P] of x: [B, T, C], read in place -> v: [N, H*P]. Each row or packed
 * sequence pools its own tokens; an empty one gives v = 0. The backward
 * adds to the key columns of x's gradient. */
sl_tensor *sl_attn_pool(sl_ctx *ctx, sl_tensor *g, sl_tensor *x, int64_t off, int64_t H,
                        const sl_seqs *seqs);

/* The kernels, threaded over (sequence, head), softmax max-subtracted in
 * float; k points at the first key (rows ld apart); each takes scratch of
 * sl_attn_pool_scratch_floats(d) floats. bwd adds to dg and dk (either may
 * be NULL). */
void sl_attn_pool_fwd(const sl_attn_pool_desc *d, const float *g, const float *k, float *v,
                      float *scratch);
void sl_attn_pool_bwd(const sl_attn_pool_desc *d, const float *g, const float *k, const float *dv,
                      float *dg, float *dk, float *scratch);
int64_t sl_attn_pool_scratch_floats(const sl_attn_pool_desc *d);

/* The definition in double: v as the forward's. */
void sl_attn_pool_ref(const sl_attn_pool_desc *d, const float *g, const float *k, double *v);

#endif
