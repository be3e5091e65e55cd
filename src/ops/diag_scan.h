/* The diagonal (elementwise) linear scan behind HGRN (Qin et al. 2023), S4D
 * and Mamba's selective scan in their recurrent form: per sequence and
 * channel c,
 *     h_t = a_t h_{t-1} + b_t,   h_{-1} = s0 (zeros when absent)
 * and its backward, with g_t = dL/dh_t summed over every later use,
 *     g_t = dh_t + a_{t+1} g_{t+1},  da_t = g_t h_{t-1},  db_t = g_t,
 *     ds0 = a_0 g_0.
 * Three forms that agree: the op with its backward, a naive double
 * reference and a one-token step. */
#ifndef SL_OPS_DIAG_SCAN_H
#define SL_OPS_DIAG_SCAN_H

#include "core/core.h"

/* a, b: [B, T, C] -> h: [B, T, C], every h_t (the backward reads h_{t-1}).
 * seqs: NULL, or a packed batch (B = 1; see sl_seqs): each sequence starts
 * from its own row of s0 and never reads the previous one's tokens; the N
 * rows below are then the seqs->n sequences, else the B batch rows. s0:
 * [N, C] or NULL (zeros). s_final: NULL, or [N, C] written with each
 * sequence's last h (its s0 row, or zeros, when it is empty); it may be
 * s0's data only when no backward will run (the backward reads s0).
 * Gradients flow to a, b and s0, and through s_final when it is a linked
 * state part (sl_state_final_grad). */
sl_tensor *sl_diag_scan(sl_ctx *ctx, sl_tensor *a, sl_tensor *b, sl_tensor *s0, float *s_final,
                        const sl_seqs *seqs);

/* One call's sizes and packing (seqs: NULL, or valid bounds over T with
 * B = 1; the op checks them). */
typedef struct sl_diag_scan_desc {
    int64_t B, T, C;
    const sl_seqs *seqs;
    const float *ds_final; /* [N, C], the gradient w.r.t. s_final, or NULL */
} sl_diag_scan_desc;

/* The op's kernels, threaded over (sequence, block of channels); inside a
 * block the loop runs in time, one vector of channels per token (parallel
 * and vectorised across channels). A long row with few channels (B rows of
 * 64-channel blocks fewer than 4, T >= 4096, no packing) is also split in
 * time into pieces of 2048 tokens, scanned in parallel and joined by their
 * carries. Backward:
 * dh (and d->ds_final) -> da, db: [B, T, C], ds0: [N, C], each added to
 * and NULL when not wanted. */
void sl_diag_scan_fwd(const sl_diag_scan_desc *d, const float *a, const float *b, const float *s0,
                      float *h, float *s_final, float *scratch);
void sl_diag_scan_bwd(const sl_diag_scan_desc *d, const float *a, const float *h, const float *s0,
                      const float *dh, float *da, float *db, float *ds0, float *scratch);
/* Floats of scratch either kernel needs: 0 unless a long row of few
 * channels is also split in time (diag_scan.c). */
int64_t sl_diag_scan_scratch_floats(const sl_diag_scan_desc *d);

/* The recurrence token by token in double; same layouts and seqs. h:
 * [B, T, C]; s0, s_final: [N, C] or NULL. */
void sl_diag_scan_ref(const sl_diag_scan_desc *d, const float *a, const float *b, const float *s0,
                      double *h, double *s_final);

/* One token, state in place. state: [C], a, b: [C]; afterwards state = h_t
 * (the forward's arithmetic, so the two agree bit for bit). */
void sl_diag_scan_step(float *state, const float *a, const float *b, int64_t C);

#endif
