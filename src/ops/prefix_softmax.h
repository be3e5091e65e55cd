/* The prefix softmax of Aaren (Feng et al. 2024, "Attention as an RNN"):
 * per sequence and head, softmax attention of one fixed query over every
 * prefix, as a scan. With scores s_t and values v_t: [P],
 *     o_t = sum_{i<=t} e^(s_i - m_t) v_i / sum_{i<=t} e^(s_i - m_t),
 *     m_t = max_{i<=t} s_i.
 * The state after t tokens is the triple (m, u, w) = (m_t, sum e^(s_i - m_t),
 * sum e^(s_i - m_t) v_i), and o_t = w / u. Two states combine associatively
 * (the paper's operator):
 *     (ma, ua, wa) + (mb, ub, wb) = (m, ua e^(ma - m) + ub e^(mb - m),
 *                                     wa e^(ma - m) + wb e^(mb - m)),  m = max(ma, mb),
 * so every exponent is <= 0 and nothing overflows whatever the scores.
 *
 * The backward, with L_t = m_t + log u_t (the prefix's log-sum-exp, which
 * never decreases in t) and a_t = e^(s_t - L_t), walks back with
 *     R_t = do_t + e^(L_t - L_{t+1}) R_{t+1},   r_t = do_t . o_t + e^(L_t - L_{t+1}) r_{t+1}
 *     dv_t = a_t R_t,   ds_t = a_t (v_t . R_t - r_t),
 * every factor again <= 1. The final state's gradient (dm, du, dw) enters as
 * a virtual token after the last, with L = m_final, R = dw, r = -du, plus
 * (dm - u du - w . dw) to the score (or s0's m) that set m_final.
 *
 * Three forms that agree: the op with its backward, a naive double
 * reference (each prefix's softmax computed afresh) and a one-token step. */
#ifndef SL_OPS_PREFIX_SOFTMAX_H
#define SL_OPS_PREFIX_SOFTMAX_H

#include "core/core.h"

/* m of the empty state: stands for -inf and stays finite (e^(m - s) is 0
 * against any score). The empty state is (SL_PS_EMPTY, 0, 0). */
#define SL_PS_EMPTY (-1e30f)

/* Tokens per block of the forward's blocked scan. */
#define SL_PS_BLOCK 64

/* s: [B, T, H] scores, v: [B, T, H*P] -> o: [B, T, H*P]. seqs: NULL, or a
 * packed batch (B = 1; see sl_seqs), each sequence from its own state row;
 * the N rows below are the seqs->n sequences, else the B batch rows. s0:
 * [N, H*(P+2)], per head (m, u, w[P]), or NULL (empty). s_final: NULL, or
 * [N, H*(P+2)] written with each sequence's last state (its s0 row, or the
 * empty state, when it has no tokens); it may be s0's data only when no
 * backward will run. Gradients flow to s, v and s0. Saved for the
 * backward: L_t, one float per token and head, besides the output. */
sl_tensor *sl_prefix_softmax(sl_ctx *ctx, sl_tensor *s, sl_tensor *v, sl_tensor *s0, float *s_final,
                             const sl_seqs *seqs);

/* One call's sizes and packing, and for the backward the gradient of
 * s_final. */
typedef struct sl_prefix_softmax_desc {
    int64_t B, T, H, P;
    const sl_seqs *seqs;
    const float *ds_final; /* [N, H*(P+2)], or NULL (zero) */
} sl_prefix_softmax_desc;

/* The kernels. Forward, a blocked scan: blocks of SL_PS_BLOCK tokens of each
 * sequence and head reduce to one state each (in parallel), a short
 * sequential pass combines them into each block's incoming state, and each
 * block then runs its tokens from that state (in parallel), vectorised over
 * the P channels. lse: NULL, or [B, T, H] written with L_t. Backward:
 * threaded over (sequence, head), each a reverse walk vectorised over P;
 * d->ds_final: a long sequence split into calls chains its gradients
 * through it (the op records none). ds: [B, T, H],
 * dv: [B, T, H*P], ds0: [N, H*(P+2)] added to, each NULL when not wanted. */
void sl_prefix_softmax_fwd(const sl_prefix_softmax_desc *d, const float *s, const float *v,
                           const float *s0, float *o, float *lse, float *s_final);
void sl_prefix_softmax_bwd(const sl_prefix_softmax_desc *d, const float *s, const float *v,
                           const float *s0, const float *o, const float *lse, const float *dout,
                           float *ds, float *dv, float *ds0);

/* Each prefix's softmax computed afresh in double, O(T^2) per sequence;
 * same layouts. o: [B, T, H*P]; s_final: [N, H*(P+2)] or NULL, with m the
 * running max (or s0's m, or SL_PS_EMPTY). */
void sl_prefix_softmax_ref(const sl_prefix_softmax_desc *d, const float *s, const float *v,
                           const float *s0, double *o, double *s_final);

/* One token of one sequence: state: [H*(P+2)] in place, s: [H], v: [H*P]
 * -> o: [H*P]. The forward's per-token arithmetic. */
void sl_prefix_softmax_step(float *state, const float *s, const float *v, float *o, int64_t H,
                            int64_t P);

/* Writes the empty state of H heads of P channels: state: [H*(P+2)]. */
void sl_prefix_softmax_empty(float *state, int64_t H, int64_t P);

#endif
