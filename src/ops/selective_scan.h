/* Mamba's selective scan (Gu & Dao 2023, "Mamba: Linear-Time Sequence
 * Modeling with Selective State Spaces", S6, algorithm 2). Per sequence,
 * channel e < E and state n < N:
 *     s_t[e,n] = exp(dt_t[e] A[e,n]) s_{t-1}[e,n] + dt_t[e] B_t[n] u_t[e]
 *     y_t[e]   = sum_n C_t[n] s_t[e,n] + D[e] u_t[e]
 * with s_{-1} = s0 (zeros when absent).
 *
 * Memory is the point: s for every token is [T, E, N] floats (32 GB at
 * T = 1M, E = 512, N = 16). The forward keeps only the states entering
 * each chunk of C tokens; the backward recomputes one chunk's states from
 * its entry state, then runs the reverse scan through it, with
 * g_t = dL/ds_t over every later use:
 *     g_t = dy_t[e] C_t[n] + a_{t+1} g_{t+1},  g_{last} += ds_final,
 *     a_t = exp(dt_t A),  ds0 = a_0 g_0,
 *     dC_t[n] = sum_e dy_t[e] s_t,   dB_t[n] = sum_e g_t dt_t u_t,
 *     du_t = dy_t D + sum_n g_t dt_t B_t,   dD = sum_t dy_t u_t,
 *     ddt_t = sum_n g_t (B_t u_t + A a_t s_{t-1}),   dA = sum_t g_t dt_t a_t s_{t-1}.
 * Three forms that agree: the op with its backward, a naive double
 * reference and a one-token step. */
#ifndef SL_OPS_SELECTIVE_SCAN_H
#define SL_OPS_SELECTIVE_SCAN_H

#include "core/core.h"
#include "ops/chunk_runtime.h"

/* u, dt: [B, T, E], A: [E, N], Bm, Cm: [B, T, N], D: [E] or NULL (no skip)
 * -> y: [B, T, E]; chunks of C tokens between saved states. seqs: NULL, or
 * a packed batch (B = 1; see sl_seqs): each sequence starts from its own
 * row of s0 and never reads the previous one's tokens; the rows below are
 * then the seqs->n sequences, else the B batch rows. s0: [rows, E, N] or
 * NULL (zeros). s_final: NULL, or [rows, E, N] written with each
 * sequence's last state (its s0 row, or zeros, when it is empty); it may
 * be s0's data. Gradients flow to every tensor input, and through s_final
 * when it is a linked state part (sl_state_final_grad). */
sl_tensor *sl_selective_scan(sl_ctx *ctx, sl_tensor *u, sl_tensor *dt, sl_tensor *A, sl_tensor *Bm,
                             sl_tensor *Cm, sl_tensor *D, sl_tensor *s0, int64_t C, float *s_final,
                             const sl_seqs *seqs);

/* One call's sizes, its sequences and their chunks (sl_chunk_rows_keep
 * with C tokens a chunk), and the gradient w.r.t. s_final. */
typedef struct sl_selective_scan_desc {
    int64_t B, T, E, N;
    sl_chunk_rows rows;
    const float *ds_final; /* [rows, E, N], or NULL */
} sl_selective_scan_desc;

/* The kernels' buffers, in floats: the chunk-entry states the forward
 * saves for the backward; each kernel's scratch (for all its threads);
 * and the backward's work buffer (its per-channel-block partial sums of dBm, dCm,
 * dA and dD, summed in a fixed order so no result depends on the thread
 * count). */
int64_t sl_selective_scan_states_floats(const sl_selective_scan_desc *d);
int64_t sl_selective_scan_fwd_scratch(const sl_selective_scan_desc *d);
int64_t sl_selective_scan_bwd_scratch(const sl_selective_scan_desc *d);
int64_t sl_selective_scan_work_floats(const sl_selective_scan_desc *d);

/* Threaded over (sequence, block of channels); inside a block the loop runs
 * in time, one vector of channels per state n. The forward writes y,
 * states (NULL when no backward follows) and s_final (or NULL). The
 * backward takes the forward's states and dy: [B, T, E] and
 * adds to du, ddt: [B, T, E], dA: [E, N], dBm, dCm: [B, T, N], dD: [E],
 * ds0: [rows, E, N] (each NULL when not wanted). */
void sl_selective_scan_fwd(const sl_selective_scan_desc *d, const float *u, const float *dt,
                           const float *A, const float *Bm, const float *Cm, const float *D,
                           const float *s0, float *y, float *states, float *s_final,
                           float *scratch);
void sl_selective_scan_bwd(const sl_selective_scan_desc *d, const float *u, const float *dt,
                           const float *A, const float *Bm, const float *Cm, const float *D,
                           const float *states, const float *dy, float *du, float *ddt, float *dA,
                           float *dBm, float *dCm, float *dD, float *ds0, float *scratch,
                           float *work);

/* The recurrence token by token in double; same layouts (the chunks of
 * d->rows are not used). y: [B, T, E]; s0, s_final: [rows, E, N] or NULL. */
void sl_selective_scan_ref(const sl_selective_scan_desc *d, const float *u, const float *dt,
                           const float *A, const float *Bm, const float *Cm, const float *D,
                           const float *s0, double *y, double *s_final);

/* One token of one sequence, state in place: s: [E, N], u, dt: [E],
 * A: [E, N], Bm, Cm: [N], D: [E] or NULL -> y: [E]. The forward's
 * arithmetic in the forward's order. */
void sl_selective_scan_step(float *s, const float *u, const float *dt, const float *A,
                            const float *Bm, const float *Cm, const float *D, int64_t E, int64_t N,
                            float *y);

#endif
