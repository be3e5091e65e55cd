/* The layer around the delta rule that the two delta-rule mixers share
 * (src/mixers/deltanet.c, gated_deltanet.c); each adds its own gates.
 *
 *   q, k, v = silu(shortconv(x W^T))  per projection, conv kernel K (none when K = 0)
 *   q, k   <- q / ||q||, k / ||k||     per head (dk = D/H; ops/l2norm.h)
 *   beta_t  = sigmoid(x_t W_beta^T)    per head
 *   o       = RMSNorm_head(delta_rule(q, k, v, beta, g))   g: the mixer's log decay, or none
 *
 * Parameters, declared in this order (the checkpoint's): q.weight, k.weight,
 * v.weight [D, D], q_conv.weight, k_conv.weight, v_conv.weight [D, K] (absent
 * when K = 0), beta.weight [H, D], out_norm.weight [dk], out.weight [D, D]
 * (the mixer's last projection, applied by the mixer). State per sequence:
 * [conv q | conv k | conv v] (K-1 rows of D each), then S [H, dk, dk].
 *
 * A packed batch (sl_seqs) goes to the two ops that mix over time, the short
 * convs and the delta rule, which keep the sequences apart; every other op
 * works token by token. */
#ifndef SL_OPS_DELTA_LAYER_H
#define SL_OPS_DELTA_LAYER_H

#include "core/core.h"

typedef struct sl_delta_layer {
    sl_tensor *wq, *wk, *wv; /* [D, D] projections */
    sl_tensor *cq, *ck, *cv; /* [D, K] short conv weights, NULL when K = 0 */
    sl_tensor *wbeta;        /* [H, D] */
    sl_tensor *norm;         /* [dk] output RMSNorm weight */
    sl_tensor *wout;         /* [D, D] */
    int64_t D, H, dk, K, C;  /* C: the delta rule's chunk length */
    float eps;               /* the RMSNorm's */
} sl_delta_layer;

/* Declares the parameters above; D, H, dk and K must be set. std: the
 * projections' init, out_std: out.weight's. */
void sl_delta_layer_params(sl_delta_layer *n, sl_params *p, float std, float out_std);
/* Floats of one sequence's state, and of sl_delta_layer_step's scratch. */
int64_t sl_delta_layer_state_floats(const sl_delta_layer *n);
int64_t sl_delta_layer_scratch_floats(const sl_delta_layer *n);

/* The delta rule's inputs, and the state carried in. */
typedef struct sl_delta_in {
    sl_tensor *q, *k, *v; /* [B, T, D] */
    sl_tensor *beta;      /* [B, T, H] */
    int64_t pos;          /* tokens the caller's state holds */
} sl_delta_in;

/* The forward in two halves, so that a mixer records its own gate between
 * them in the order its tape always had. x: [B, T, D]; state: [N,
 * state_floats] or NULL, N = B, or seqs->n for a packed x [1, T, D], holding
 * `pos` tokens already seen; each half writes its part of the final state
 * back into it. */
sl_delta_in sl_delta_layer_in(sl_ctx *ctx, const sl_delta_layer *n, sl_tensor *x, float *state,
                              int64_t pos, const sl_seqs *seqs);
/* g: [B, T, H] or NULL -> o: [B, T, D], normalised per head. */
sl_tensor *sl_delta_layer_mix(sl_ctx *ctx, const sl_delta_layer *n, const sl_delta_in *in,
                              sl_tensor *g, float *state, const sl_seqs *seqs);

/* One token, the same arithmetic: x_t: [D], g: [H] or NULL -> o: [D];
 * state: [state_floats], zeroed at pos 0. */
void sl_delta_layer_step(const sl_delta_layer *n, float *state, const float *x_t, const float *g,
                         int64_t pos, float *o, float *scratch);

#endif
