/* Non-causal ("same") depthwise conv1d, Hydra's short convolution (Hwang
 * et al. 2024; PyTorch's Conv1d(C, C, K, groups = C, padding = K/2)):
 *
 *   y[t, c] = bias[c] + sum_{j<K} w[c, j] x[t + j - K/2, c],   K odd,
 *
 * a tap outside t's sequence reading zero, so in a packed batch no tap
 * reaches a neighbouring sequence. Backward:
 *   dx[u, c] = sum_j w[c, j] dy[u - j + K/2, c],
 *   dw[c, j] = sum_t dy[t, c] x[t + j - K/2, c],   dbias[c] = sum_t dy[t, c]. */
#ifndef SL_OPS_DWCONV_H
#define SL_OPS_DWCONV_H

#include "core/core.h"

/* One call's sizes (seqs: NULL, or valid bounds over T with B = 1). */
typedef struct sl_dwconv_desc {
    int64_t B, T, C, K;
    const sl_seqs *seqs;
} sl_dwconv_desc;

/* x: [B, T, C], w: [C, K], bias: [C] or NULL -> y: [B, T, C]. */
sl_tensor *sl_dwconv(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *bias,
                     const sl_seqs *seqs);

/* The kernels, threaded over blocks of channels (each walks every
 * sequence, so dw and dbias sum in one order whatever the thread count).
 * bwd adds to dx, dw and dbias, each NULL when not wanted. */
void sl_dwconv_fwd(const sl_dwconv_desc *d, const float *x, const float *w, const float *bias,
                   float *y);
void sl_dwconv_bwd(const sl_dwconv_desc *d, const float *x, const float *w, const float *dy,
                   float *dx, float *dw, float *dbias);

/* The definition in double. */
void sl_dwconv_ref(const sl_dwconv_desc *d, const float *x, const float *w, const float *bias,
                   double *y);

#endif
