/* Global attention pooling, PoNet's global aggregation (Tan et al. 2021):
 * per sequence and head h (P = W/H channels each),
 *
 *   g = mean_t q_t,   a_t = softmax_t(g . k_t / sqrt(P)),   v = sum_t a_t k_t
 *
 * one vector v per sequence and head, given to every token of the sequence
 * (y_t = v). The keys are also the values, as in PoNet's code. Backward,
 * with dv = sum_t dy_t and e_t = dv . k_t:
 *   dk_t = a_t dv + a_t (e_t - sum_u a_u e_u) g / sqrt(P),
 *   dq_t = (1/L) sum_u a_u (e_u - sum a e) k_u / sqrt(P).
 * Nothing is stored: the backward recomputes g, the softmax and v. */
#ifndef SL_OPS_ATTN_POOL_H
#define SL_OPS_ATTN_POOL_H

#include "core/core.h"

/* One call's sizes (seqs: NULL, or valid bounds over T with B = 1). */
typedef struct sl_attn_pool_desc {
    int64_t B, T, H, P;
    const sl_seqs *seqs;
} sl_attn_pool_desc;

/* q, k: [B, T, H*P] -> y: [B, T, H*P]; each row or packed sequence pools
 * its own tokens (an empty one gives nothing). */
sl_tensor *sl_attn_pool(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, int64_t H, const sl_seqs *seqs);

/* The kernels, threaded over (sequence, head), softmax max-subtracted in
 * float; each takes scratch of sl_attn_pool_scratch_floats(d) floats. fwd
 * leaves the rows of empty sequences alone; bwd adds to dq and dk (either
 * may be NULL). */
void sl_attn_pool_fwd(const sl_attn_pool_desc *d, const float *q, const float *k, float *y,
                      float *scratch);
void sl_attn_pool_bwd(const sl_attn_pool_desc *d, const float *q, const float *k, const float *dy,
                      float *dq, float *dk, float *scratch);
int64_t sl_attn_pool_scratch_floats(const sl_attn_pool_desc *d);

/* The definition in double (P <= 1024): y as the forward's. */
void sl_attn_pool_ref(const sl_attn_pool_desc *d, const float *q, const float *k, double *y);

#endif
