/* The (gated) delta rule, one fused op: DeltaNet (Yang et al. 2024,
 * "Parallelizing Linear Transformers with the Delta Rule over Sequence
 * Length") and Gated DeltaNet (Yang, Kautz, Hatamizadeh 2025, "Gated Delta
 * Networks: Improving Mamba2 with Delta Rule"). Per sequence and head h, with
 * S: [dk, dk] (keys x values, dv = dk) and q, k already L2-normalised:
 *
 *   S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
 *   o_t = S_t^T q_t                         (S read after writing token t)
 *
 * g = 0 (g NULL) is plain DeltaNet; g_t <= 0 per token and head is the gated
 * rule. Layouts: q, k, v, o: [B, T, H*dk] (head h at columns h*dk..),
 * beta, g: [B, T, H], states (s0, s_final): [N, H, dk, dk], one row per
 * sequence (N = B, or the n of a packed batch). */
#ifndef SL_OPS_DELTA_RULE_H
#define SL_OPS_DELTA_RULE_H

#include "core/core.h"
#include "ops/chunk_runtime.h"
#include "ops/recurrence.h"

/* Chunkwise-parallel forward (WY/UT transform, chunks of C tokens) and its
 * backward (dq, dk, dv, dbeta, dg, ds0). beta in (0, 1); g: [B, T, H] or
 * NULL; s0: [N, H, dk, dk] or NULL (zeros); s_final: [N, H, dk, dk] floats
 * or NULL, and may be s0->data. -> o: [B, T, H*dk]. The final state carries
 * a gradient only as a linked state part (sl_state_final_grad). Memory: O(T/C * dk^2) per (sequence, h) saved for the
 * backward.
 *
 * seqs NULL: the N = B rows of T tokens are the sequences. Else q is a
 * packed batch [1, T, H*dk] of N = seqs->n sequences (see sl_seqs): each is
 * chunked from its own first token (its last chunk may be short), starts
 * from its own s0 row and ends in its own s_final row, and nothing crosses
 * a bound in either pass; a zero-length sequence passes its s0 row to
 * s_final. Bad bounds stop the program (sl_require), as a bad shape does. */
sl_tensor *sl_delta_rule(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *beta,
                         sl_tensor *g, sl_tensor *s0, int64_t H, int64_t C, float *s_final,
                         const sl_seqs *seqs);

/* sl_delta_rule on blocks of in's tensors (sl_rec_in, recurrence.h), read
 * in place: q, k the H*dk columns from q_off, k_off, v the H*dk columns
 * from v_off (dv = dk; map SL_REC_PLAIN, scales 1); dq, dk, dv land in the
 * same columns of the tensors' gradients. The same op otherwise. */
sl_tensor *sl_delta_rule_in(sl_ctx *ctx, const sl_rec_in *in, sl_tensor *beta, sl_tensor *g,
                            sl_tensor *s0, int64_t H, int64_t C, float *s_final,
                            const sl_seqs *seqs);

/* The kernel apart from the tape: what one run needs to know besides its
 * pointers. */
typedef struct sl_delta_rule_desc {
    int64_t B, T, H, dk, C;
    sl_rec_layout io;   /* where q, k and v are read from */
    sl_chunk_rows rows; /* the sequences and their chunks */
    const float *ds_final; /* [N, H, dk, dk], the gradient w.r.t. s_final, or NULL */
} sl_delta_rule_desc;

/* Floats of scratch sl_delta_rule_fwd and sl_delta_rule_bwd need (one
 * buffer per thread), and of the chunk-entry states the forward saves for
 * the backward ([chunks, H, dk, dk], sl_chunk_state_at). */
int64_t sl_delta_rule_scratch_floats(const sl_delta_rule_desc *d, bool backward);
int64_t sl_delta_rule_states_floats(const sl_delta_rule_desc *d);

/* q, k, v: the tensors the blocks are read from (d->io), beta, g: [B*T, H]
 * (g may be NULL), s0: [N, H, dk, dk] or NULL -> o: [B*T, H*dk]; states
 * (NULL when no backward follows) and s_final (or NULL) written. */
void sl_delta_rule_fwd(const sl_delta_rule_desc *d, const float *q, const float *k,
                       const float *v, const float *beta, const float *g, const float *s0,
                       float *o, float *states, float *s_final, float *scratch);
/* The adjoint from the forward's states and dout: [B*T, H*dk]; each
 * gradient (laid out as its input) is added to, or NULL when not wanted. */
void sl_delta_rule_bwd(const sl_delta_rule_desc *d, const float *q, const float *k,
                       const float *v, const float *beta, const float *g, const float *states,
                       const float *dout, float *dq, float *dk, float *dv, float *dbeta,
                       float *dg, float *ds0, float *scratch);

/* The step-by-step recurrence in double: the oracle. Same layouts (q, k, v,
 * o: [B, T, H*dk]) and the same seqs (NULL: B rows of T; else valid bounds
 * over T, B = 1); g, s0, s_final may be NULL. */
void sl_delta_rule_ref(const float *q, const float *k, const float *v, const float *beta,
                       const float *g, const float *s0, int64_t B, int64_t T, int64_t H,
                       int64_t dk, float *o, float *s_final, const sl_seqs *seqs);
/* One token of one sequence, state in place. state: [H, dk, dk], q, k, v:
 * [H*dk], beta, g: [H] (g may be NULL) -> o: [H*dk]; scratch: [dk]. */
void sl_delta_rule_step(float *state, const float *q, const float *k, const float *v,
                        const float *beta, const float *g, int64_t H, int64_t dk, float *o,
                        float *scratch);

#endif
