/* The matrix memory of xLSTM's mLSTM cell (Beck et al. 2024, "xLSTM:
 * Extended Long Short-Term Memory", section 2.3 and appendix A.3), with its
 * stabiliser. Per sequence row r and head h, with q_t, k_t in R^dk (k
 * scaled by 1/sqrt(dk): by the caller, or by sl_mlstm_in's k_scale as it
 * reads k), v_t in R^dv, the input gate's
 * pre-activation it_t (the gate itself is exp(it_t)) and the log forget
 * gate lf_t <= 0 (logsigmoid of the forget pre-activation):
 *
 *     m_t = max(lf_t + m_{t-1}, it_t)
 *     C_t = e^(lf_t + m_{t-1} - m_t) C_{t-1} + e^(it_t - m_t) k_t v_t^T     C: [dk, dv]
 *     n_t = e^(lf_t + m_{t-1} - m_t) n_{t-1} + e^(it_t - m_t) k_t           n: [dk]
 *     h_t = C_t^T q_t / max(|n_t . q_t|, e^(-m_t))
 *
 * Why the backward may hold m constant. (C, n, m) stands for the
 * unstabilised state (C e^m, n e^m): unrolling the recurrence,
 * C_t e^(m_t) = e^(lf_t) C_{t-1} e^(m_{t-1}) + e^(it_t) k_t v_t^T, whatever
 * the m's are. Dividing numerator, denominator and floor of h_t by e^(-m_t),
 *     h_t = (C_t e^m_t)^T q_t / max(|(n_t e^m_t) . q_t|, 1),
 * so the outputs are one function F of the inputs alone and m is only a
 * choice of scale. Write the computation as G(inputs, m) with every m_t (and
 * the m carried from chunk to chunk) a free variable: G does not change when
 * any one m moves (the factors it scales cancel as above), so dG/dm = 0 and
 * dF/dx = dG/dx + dG/dm dm/dx = dG/dx. The backward therefore differentiates
 * only the explicit exponents, with m held fixed; the max() that picks m is
 * never differentiated. For the same reason the initial state's m has the
 * gradient <dC0, C0> + <dn0, n0> (it enters only as e^(m0) (C0, n0)), and
 * where the floor e^(-m_t) wins, h_t does not depend on n_t at all.
 *
 * State layout, one flat row per (sequence, head): [dk*dv + dk + 1] floats,
 * C row-major [dk, dv], then n [dk], then m; s0 and s_final are
 * [rows, H, dk*dv + dk + 1]. A fresh state (m_0 = -inf) is C = 0, n = 0 and
 * m = SL_MLSTM_M_FRESH = -1e30: finite, so lf + m_prev - m_t never forms
 * inf - inf; the first token's m_t is then it_t, and the old state's factor
 * e^(-1e30 + ...) is 0 (in float sl_expf stops at ~1e-38, which multiplies
 * C = 0 and n = 0: still exactly 0). Any all-zero C and n is equivalent
 * (the unstabilised state is 0 whatever m is); the sentinel keeps the first
 * token's exponents at 0 rather than near the bottom of float's range.
 *
 * The floor e^(-m_t) is evaluated with its exponent clamped to
 * [-87.34, 88.38], as sl_expf does, in all three forms: a zero numerator
 * over a zero denominator then gives 0, never NaN, and no exponent
 * overflows. It changes h only where |n_t . q_t| < ~1e-38 or where the
 * floor is e^88 (|h| < 1e-38 |C^T q|).
 *
 * Three forms that agree: the chunkwise-parallel op with its hand-written
 * backward (the training path), the step-by-step reference in double, and
 * the one-token step. */
#ifndef SL_OPS_MLSTM_H
#define SL_OPS_MLSTM_H

#include "core/core.h"
#include "ops/recurrence.h"

/* m of a fresh state: stands for -inf and stays finite (see above). */
#define SL_MLSTM_M_FRESH (-1e30f)

/* Floats of one (sequence, head) state: C [dk, dv], n [dk], m. */
static inline int64_t sl_mlstm_state_floats(int64_t dk, int64_t dv) { return dk * dv + dk + 1; }

/* Writes n fresh (sequence, head) states: C = 0, n = 0, m = SL_MLSTM_M_FRESH.
 * s: [n, dk*dv + dk + 1]. */
void sl_mlstm_state_fresh(float *s, int64_t n, int64_t dk, int64_t dv);

/* The chunkwise-parallel op, chunks of C tokens (per chunk of L <= C tokens
 * entering with state (C~, n~, m_prev), b_i = lf_1 + .. + lf_i inside it,
 * D_ij = b_i - b_j + it_j for j <= i):
 *     m_i   = max(max_{j<=i} D_ij, b_i + m_prev)            (= the recurrent m)
 *     num_i = e^(b_i + m_prev - m_i) C~^T q_i + sum_{j<=i} e^(D_ij - m_i) (q_i . k_j) v_j
 *     den_i = e^(b_i + m_prev - m_i) n~ . q_i + sum_{j<=i} e^(D_ij - m_i) (q_i . k_j)
 *     h_i   = num_i / max(|den_i|, e^(-m_i))
 * and the state leaving it is m_L with C~' = e^(b_L + m_prev - m_L) C~ +
 * sum_j e^(D_Lj - m_L) k_j v_j^T (n~' likewise with k_j). Every exponent is
 * <= 0, so any T with any gate values stays finite.
 *
 * q, k: [B, T, H*dk], v: [B, T, H*dv], igate, lfgate: [B, T, H] (lfgate <= 0)
 * -> h: [B, T, H*dv]. seqs == NULL: B rows of T tokens. Else a packed batch
 * (B = 1, see sl_seqs): the rows are the sequences [cu[i], cu[i+1]), each with
 * its own state row. s0: [rows, H, dk*dv + dk + 1] or NULL (fresh). s_final:
 * NULL or [rows, H, dk*dv + dk + 1], written with the final states; it may be
 * s0's data. Gradients flow to q, k, v, igate, lfgate and all of s0 (C, n
 * and m), and through s_final (C and n) when it is a linked state part
 * (sl_state_final_grad). */
sl_tensor *sl_mlstm(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *igate,
                    sl_tensor *lfgate, sl_tensor *s0, int64_t H, int64_t C, float *s_final,
                    const sl_seqs *seqs);

/* sl_mlstm on blocks of in's tensors (sl_rec_in, recurrence.h), read in
 * place: q, k are the H*dk columns from q_off, k_off of [B, T, *] tensors,
 * v the H*dv columns from v_off (q, k and v may be one packed projection),
 * times q_scale and k_scale as they are read (0 reads as 1); map must be
 * SL_REC_PLAIN. The same op, state and gradients as sl_mlstm on the scaled
 * blocks; dq, dk, dv land in the same columns of the tensors' gradients
 * (through the scales), so the projection needs no split into copies. */
sl_tensor *sl_mlstm_in(sl_ctx *ctx, const sl_rec_in *in, sl_tensor *igate, sl_tensor *lfgate,
                       sl_tensor *s0, int64_t H, int64_t C, float *s_final, const sl_seqs *seqs);

/* The kernel apart from the tape: what one run needs to know besides its
 * pointers (dva = dv + 1: the value block with the denominator's column). */
typedef struct sl_mlstm_desc {
    int64_t B, T, H, dk, dv, dva, C;
    sl_rec_layout io;   /* where q, k and v are read from */
    sl_chunk_rows rows; /* the sequences and their chunks */
    /* [rows, H, dk*dv + dk + 1], the gradient w.r.t. s_final (its m part
     * unused: m is held fixed), or NULL */
    const float *ds_final;
} sl_mlstm_desc;

/* Floats of scratch sl_mlstm_fwd and sl_mlstm_bwd need (one buffer per
 * thread), and of the chunk-entry states (C~ with its n~ column, and m:
 * dk*dva + 1 floats each, sl_chunk_state_at) the forward saves. */
int64_t sl_mlstm_scratch_floats(const sl_mlstm_desc *d);
int64_t sl_mlstm_states_floats(const sl_mlstm_desc *d);

/* q, k, v: the tensors the blocks are read from (d->io), igate, lfgate:
 * [B*T, H], s0: [rows, H, dk*dv + dk + 1] or NULL -> h: [B*T, H*dv];
 * states and den ([B*T, H], each token's den_i), both or neither NULL (no
 * backward follows), and s_final (or NULL) written. */
void sl_mlstm_fwd(const sl_mlstm_desc *d, const float *q, const float *k, const float *v,
                  const float *igate, const float *lfgate, const float *s0, float *h,
                  float *states, float *den, float *s_final, float *scratch);
/* The adjoint from the forward's h, states and den and dout: [B*T, H*dv];
 * each gradient (laid out as its input) is added to, or NULL when not
 * wanted. */
void sl_mlstm_bwd(const sl_mlstm_desc *d, const float *q, const float *k, const float *v,
                  const float *igate, const float *lfgate, const float *h, const float *states,
                  const float *den, const float *dout, float *dq, float *dk, float *dv,
                  float *digate, float *dlfgate, float *ds0, float *scratch);

/* The oracle: the recurrence token by token, state and sums in double.
 * Layouts as sl_mlstm (q, k: [B, T, H*dk], ..., h: [B, T, H*dv]); s0 and
 * s_final may be NULL; seqs as in sl_mlstm (then B = 1). */
void sl_mlstm_ref(const float *q, const float *k, const float *v, const float *igate,
                  const float *lfgate, const float *s0, int64_t B, int64_t T, int64_t H,
                  int64_t dk, int64_t dv, float *h, float *s_final, const sl_seqs *seqs);

/* One token of one sequence, state in place. state: [H, dk*dv + dk + 1],
 * q, k: [H*dk], v: [H*dv], igate, lfgate: [H] -> h: [H*dv]. */
void sl_mlstm_step(float *state, const float *q, const float *k, const float *v, const float *igate,
                   const float *lfgate, int64_t H, int64_t dk, int64_t dv, float *h);

#endif
