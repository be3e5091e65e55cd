/* Short causal depthwise conv1d with an explicit state, the token mixer in
 * front of q, k and v of the delta-rule family (DeltaNet, Yang et al. 2024;
 * H3 / Mamba's "short convolution").
 *
 *   y[b, t, c] = bias[c] + sum_{j<K} w[c, j] xx[b, t + j, c],
 *   xx[b] = [s0[b] ; x[b]]   (K-1 earlier rows, then the T new ones)
 *
 * so w[c, K-1] weighs the current token (PyTorch's Conv1d with groups = C,
 * padding K-1, cut to the first T outputs, when s0 is zero). The final
 * state s_final is the last K-1 rows of xx: a sequence split into calls of
 * any length, even shorter than K-1, gives the same outputs as one call. */
#ifndef SL_OPS_SHORTCONV_H
#define SL_OPS_SHORTCONV_H

#include "core/core.h"

/* x: [B, T, C], w: [C, K], bias: [C] or NULL, s0: [N, K-1, C] or NULL
 * (zeros) -> y: [B, T, C]. s_final: [N, K-1, C] floats or NULL; it may be
 * s0->data (updated in place). Backward gives dx, dw, dbias, ds0.
 *
 * seqs NULL: the N = B rows are the sequences. Else x is a packed batch
 * [1, T, C] of N = seqs->n sequences (see sl_seqs), each convolved as if
 * alone: its first K-1 taps read its own s0 row (or zeros), never the
 * previous sequence's tokens, and its s_final row is the last K-1 rows of
 * its own [s0_i ; x_i] (a sequence shorter than K-1, or empty, keeps part
 * or all of its initial state). Bad bounds stop the program (sl_require),
 * as a bad shape does. */
sl_tensor *sl_shortconv(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *bias, sl_tensor *s0,
                        float *s_final, const sl_seqs *seqs);

/* One call's sizes and packing (seqs: NULL, or valid bounds over T with
 * B = 1; the op checks them). */
typedef struct sl_shortconv_desc {
    int64_t B, T, C, K;
    const sl_seqs *seqs;
    const float *ds_final; /* [N, K-1, C], the gradient w.r.t. s_final, or NULL */
} sl_shortconv_desc;

/* The op's kernels, same layouts, threaded over tokens (forward) and over
 * the rows of each sequence's [s0_i ; x_i] (backward). Backward: dy -> dx,
 * dw: [C, K], dbias: [C], ds0: [N, K-1, C], each added to and NULL when not
 * wanted (dw and dbias summed per thread, then over threads in order).
 * Each takes scratch: its _scratch(d) floats. */
void sl_shortconv_fwd(const sl_shortconv_desc *d, const float *x, const float *w, const float *bias,
                      const float *s0, float *y, float *s_final, float *scratch);
void sl_shortconv_bwd(const sl_shortconv_desc *d, const float *x, const float *w, const float *s0,
                      const float *dy, float *dx, float *dw, float *dbias, float *ds0,
                      float *scratch);
int64_t sl_shortconv_fwd_scratch(const sl_shortconv_desc *d);
int64_t sl_shortconv_bwd_scratch(const sl_shortconv_desc *d);

/* The obvious loop over the concatenated rows, in double. Same layouts and
 * seqs (NULL, or valid bounds over T with B = 1); s0 and s_final may be
 * NULL. */
void sl_shortconv_ref(const float *x, const float *w, const float *bias, const float *s0, int64_t B,
                      int64_t T, int64_t C, int64_t K, float *y, float *s_final,
                      const sl_seqs *seqs);
/* One token, state in place. state: [K-1, C] (shifted by one row), x: [C]
 * -> y: [C]: the forward's sum, tap by tap in the same order. */
void sl_shortconv_step(float *state, const float *x, const float *w, const float *bias, int64_t C,
                       int64_t K, float *y);

#endif
