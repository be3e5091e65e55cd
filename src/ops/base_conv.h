/* BaseConv's layer (Zoology, Arora et al. 2023) with a long kernel, as one
 * op that keeps only its inputs:
 *
 *   y = (h * x) . (x W^T + b) + x          x: [B, T, D]
 *
 * (h * x)[t, c] = sum_{s <= t} h[t - s, c] x[s, c], per sequence (a batch
 * row or one packed sequence), h lag-major ([S, D], row l = lag l, zero
 * past S), computed by ops/fftconv.h. Every channel c of (h * x) and of
 * the gate is independent of the others, so the kernels walk blocks of
 * channels: the forward keeps nothing, and the backward recomputes one
 * block's h * x and gate at a time. Its memory is the inputs and output
 * plus O(BT) scratch per channel of one block, instead of four [B, T, D]
 * tensors (h * x, the gate, their product) and their gradients.
 *
 * Backward, with g = x W^T + b, v = h * x:
 *   dg = dy . v,   dv = dy . g
 *   dx = dy + dg W + (h (*)^T dv),  dh[l] = sum_t dv[t] x[t - l] (per sequence)
 *   dW = dg^T x,   db = sum_t dg */
#ifndef SL_OPS_BASE_CONV_H
#define SL_OPS_BASE_CONV_H

#include "core/core.h"

/* Sizes and packing: S taps by lag; seqs NULL or a packed batch (B = 1),
 * each sequence convolved alone. cb: channels per block, 0 to size them
 * from B*T (a block's scratch stays a few MB, and short sequences take all
 * D at once); a channel's numbers do not depend on it. */
typedef struct sl_base_conv_desc {
    int64_t B, T, D, S, cb;
    const sl_seqs *seqs;
} sl_base_conv_desc;

/* x: [B, T, D], h: [S, D], w: [D, D], b: [D] or NULL -> y: [B, T, D].
 * Gradients to all four. */
sl_tensor *sl_base_conv(sl_ctx *ctx, sl_tensor *x, sl_tensor *h, sl_tensor *w, sl_tensor *b,
                        const sl_seqs *seqs);

/* The kernels, same layouts. Each holds O(BT) floats per channel of one
 * block in scratch of its own (malloc). Backward: dy -> dx, dh, dw, db,
 * each added to and NULL when not wanted. */
void sl_base_conv_fwd(const sl_base_conv_desc *d, const float *x, const float *h, const float *w,
                      const float *b, float *y);
void sl_base_conv_bwd(const sl_base_conv_desc *d, const float *x, const float *h, const float *w,
                      const float *b, const float *dy, float *dx, float *dh, float *dw, float *db);

/* The obvious loops in double (direct sums, token by token). y: [B, T, D]. */
void sl_base_conv_ref(const sl_base_conv_desc *d, const float *x, const float *h, const float *w,
                      const float *b, double *y);

#endif
