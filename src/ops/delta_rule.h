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
 * beta, g: [B, T, H], states: [N, H, dk, dk], one row per sequence (N = B,
 * or the n of a packed batch). */
#ifndef SL_OPS_DELTA_RULE_H
#define SL_OPS_DELTA_RULE_H

#include "core/core.h"

/* Chunkwise-parallel forward (WY/UT transform, chunks of C tokens) and its
 * backward (dq, dk, dv, dbeta, dg, dS0). beta in (0, 1); g: [B, T, H] or
 * NULL; S0: [N, H, dk, dk] or NULL (zeros); S_out: [N, H, dk, dk] floats or
 * NULL, and may be S0->data. -> o: [B, T, H*dk]. The final state carries no
 * gradient. Memory: O(T/C * dk^2) per (sequence, h) saved for the backward.
 *
 * seqs NULL: the N = B rows of T tokens are the sequences. Else q is a
 * packed batch [1, T, H*dk] of N = seqs->n sequences (see sl_seqs): each is
 * chunked from its own first token (its last chunk may be short), starts
 * from its own S0 row and ends in its own S_out row, and nothing crosses a
 * bound in either pass; a zero-length sequence passes its S0 row to S_out.
 * Bad bounds stop the program (sl_require), as a bad shape does. */
sl_tensor *sl_delta_rule(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v, sl_tensor *beta,
                         sl_tensor *g, sl_tensor *S0, int64_t H, int64_t C, float *S_out,
                         const sl_seqs *seqs);
/* The step-by-step recurrence in double: the oracle. Same layouts and the
 * same seqs (NULL: B rows of T; else valid bounds over T, B = 1); g, S0,
 * S_out may be NULL. */
void sl_delta_rule_ref(const float *q, const float *k, const float *v, const float *beta,
                       const float *g, const float *S0, int64_t B, int64_t T, int64_t H,
                       int64_t dk, float *o, float *S_out, const sl_seqs *seqs);
/* One token of one sequence, state in place: q, k, v: [H*dk], beta, g: [H]
 * (g may be NULL), S: [H, dk, dk] -> o: [H*dk]; scratch: [dk]. */
void sl_delta_rule_step(const float *q, const float *k, const float *v, const float *beta,
                        const float *g, int64_t H, int64_t dk, float *S, float *o,
                        float *scratch);

#endif
