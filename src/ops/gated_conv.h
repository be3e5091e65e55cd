/* The gated long-convolution chain of Hyena (Poli et al. 2023), order N,
 * with its short convolution, as one op that keeps only its inputs:
 *
 *   x_g = shortconv(p_g)       g = 0 .. N, each [B, T, D] (p's column block g)
 *   v_0 = x_N
 *   u_o = v_o . x_{N-1-o},  v_{o+1} = h_o * u_o + s_o . u_o     o = 0 .. N-2
 *   z = v_{N-1} . x_0
 *
 * (h_o * u: the causal long convolution of ops/fftconv.h, per sequence;
 * shortconv: ops/shortconv.h from a zero state.) Every channel d of D is
 * independent of the others, so the kernels walk blocks of channels: the
 * forward keeps nothing, and the backward recomputes one block's x_g and
 * v_o at a time. Its memory is the op's inputs and output plus O(T)
 * scratch per channel of one block, instead of ~4N tensors of [B, T, D].
 *
 * Backward (per channel, per sequence):
 *   dv_{N-1} = dz . x_0,  dx_0 = dz . v_{N-1}
 *   o = N-2 .. 0:  du = h_o (*)^T dv + s_o dv,  dh_o += u_o (*)^T dv,
 *                  ds_o += sum dv u_o,  dx_{N-1-o} = du . v_o,  dv_o = du . x_{N-1-o}
 *   dx_N = dv_0,   then the short convolution's backward to dp, dw, dbias. */
#ifndef SL_OPS_GATED_CONV_H
#define SL_OPS_GATED_CONV_H

#include "core/core.h"

/* Sizes and packing: p [B, T, (N+1)D], K short-conv taps; seqs NULL or a
 * packed batch (B = 1), each sequence convolved alone. */
typedef struct sl_gated_conv_desc {
    int64_t B, T, D, N, K;
    const sl_seqs *seqs;
} sl_gated_conv_desc;

/* p: [B, T, (N+1)D], w: [(N+1)D, K], bias: [(N+1)D] or NULL, h: [(N-1)D, T]
 * (filter o's taps by lag in rows o*D ..), s: [(N-1)D] -> z: [B, T, D].
 * Gradients to all five. */
sl_tensor *sl_gated_conv(sl_ctx *ctx, sl_tensor *p, sl_tensor *w, sl_tensor *bias, sl_tensor *h,
                         sl_tensor *s, int64_t N, const sl_seqs *seqs);

/* The kernels, same layouts. Each holds O(T) floats per channel of one
 * block in scratch of its own (malloc), never a [B, T, D] buffer.
 * Backward: dz -> dp, dw, dbias, dh, ds, each added to and NULL when not
 * wanted. */
void sl_gated_conv_fwd(const sl_gated_conv_desc *d, const float *p, const float *w,
                       const float *bias, const float *h, const float *s, float *z);
void sl_gated_conv_bwd(const sl_gated_conv_desc *d, const float *p, const float *w,
                       const float *bias, const float *h, const float *s, const float *dz,
                       float *dp, float *dw, float *dbias, float *dh, float *ds);

/* The obvious loops in double (direct sums, token by token). z: [B, T, D]. */
void sl_gated_conv_ref(const sl_gated_conv_desc *d, const float *p, const float *w,
                       const float *bias, const float *h, const float *s, double *z);

#endif
