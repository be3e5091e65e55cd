/* The LSTM cell's recurrence (Hochreiter & Schmidhuber 1997, with the forget
 * gate of Gers et al. 2000, in PyTorch's nn.LSTM gate order): per sequence,
 * with the input projection gx_t = x_t W_ih^T + b already done for every
 * token in one GEMM,
 *     z_t = gx_t + h_{t-1} W_hh^T                  [4D], blocks i | f | g | o
 *     i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
 *     c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
 * from (h_{-1}, c_{-1}) = s0 (zeros when absent). Only h_{t-1} W_hh^T is
 * sequential. The backward is BPTT by hand: with dh_t the output's gradient
 * plus dz_{t+1} W_hh, and dc_t carried as f_{t+1} dc_{t+1} + dh_t o_t
 * (1 - tanh^2 c_t), it gives dz_t (the gradient of gx), dW_hh = sum_t
 * dz_t^T h_{t-1} (one GEMM after the loop) and ds0. Three forms that agree:
 * the op with its backward, a naive double reference and a one-token step
 * (the forward's arithmetic for one row, so B = 1 forwards and steps agree
 * bit for bit). */
#ifndef SL_OPS_LSTM_H
#define SL_OPS_LSTM_H

#include "core/core.h"

/* gx: [B, T, 4D] pre-activations (rows i | f | g | o), w_hh: [4D, D] ->
 * h: [B, T, D]. seqs: NULL, or a packed batch (B = 1; see sl_seqs), each
 * sequence from its own state row; the N rows below are the seqs->n
 * sequences, else the B batch rows. s0: [N, 2D] rows (h | c), or NULL
 * (zeros). s_final: NULL, or [N, 2D] written with each sequence's last
 * (h, c) (its s0 row, or zeros, when it is empty); it may be s0's data only
 * when no backward will run. Gradients flow to gx, w_hh and s0. Saved for
 * the backward: 5D floats per token (the activated gates i, f, g, o and c),
 * besides the output h itself. */
sl_tensor *sl_lstm(sl_ctx *ctx, sl_tensor *gx, sl_tensor *w_hh, sl_tensor *s0, float *s_final,
                   const sl_seqs *seqs);

/* One call's sizes and packing (seqs: NULL, or valid bounds over T with
 * B = 1; the op checks them), and for the backward the gradient of
 * s_final. */
typedef struct sl_lstm_desc {
    int64_t B, T, D;
    const sl_seqs *seqs;
    const float *ds_final; /* [N, 2D], or NULL (zero) */
} sl_lstm_desc;

/* The kernels. act: NULL (no backward), or [B, T, 5D] written with each
 * token's i | f | g | o | c. One row (N = 1) runs its recurrent product as
 * dot products of eight rows of W_hh at a time against h_{t-1} (W_hh stays
 * in cache), threaded over blocks of hidden units with one barrier per
 * token; several rows run one sl_gemm [rows, D] x [D, 4D] per token.
 * Backward: dh: [B, T, D], and d->ds_final: a long sequence split into
 * calls chains its gradients through it (the op records none). dz: [B, T, 4D] written (the gradient
 * of gx); dw_hh: [4D, D] and ds0: [N, 2D] added to, each NULL when not wanted (s0 NULL: ds0
 * ignored). */
void sl_lstm_fwd(const sl_lstm_desc *d, const float *gx, const float *w_hh, const float *s0,
                 float *h, float *act, float *s_final);
void sl_lstm_bwd(const sl_lstm_desc *d, const float *w_hh, const float *s0, const float *h,
                 const float *act, const float *dh, float *dz, float *dw_hh, float *ds0);

/* The recurrence token by token in double; same layouts and seqs. h:
 * [B, T, D]; s0, s_final: [N, 2D] or NULL. */
void sl_lstm_ref(const sl_lstm_desc *d, const float *gx, const float *w_hh, const float *s0,
                 double *h, double *s_final);

/* One token of one sequence, state (h | c): [2D] in place; gx: [4D];
 * scratch: D floats. */
void sl_lstm_step(float *state, const float *gx, const float *w_hh, int64_t D, float *scratch);

#endif
