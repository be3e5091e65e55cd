/* The carried state of S4D's diagonal SSM (ops/s4d_kernel.h) in the
 * convolution form: a chunk of L tokens that starts from the modes s0
 * (instead of zeros) differs from the zero-state convolution by one term
 * per token, and leaves the final modes
 *
 *   z_t = 2 Re sum_m C_m E_m^(t+1) s0_m                 (t = 0 .. L-1)
 *   s_final_m = E_m^L s0_m + sum_s E_m^(L-1-s) Bbar_m u_s
 *
 * (the recurrence x_t = E x_{t-1} + Bbar u_t unrolled from x_{-1} = s0).
 * The op adds z to the convolution's output y and writes s_final; its
 * hand-written backward gives y, u, s0, C, log_dt, A.log_re and A.im their
 * gradients, the final state's (ds_final) included. With w = dt A,
 * Q1 = sum_t g_t E^(t+1), P1 = sum_t g_t (t+1) E^(t+1) (g = dz),
 * R = sum_s E^(L-1-s) u_s, Rp = sum_s (L-1-s) E^(L-1-s) u_s and f the
 * complex ds_final of a mode (a real loss Re(conj(f) s_final)):
 *   ds0 = 2 conj(C Q1) + f conj(E^L),   dC = 2 conj(s0 Q1),
 *   du_s = Re sum_m conj(f_m) Bbar_m E_m^(L-1-s),
 *   dA  = 2 conj(C s0 dt P1) + f conj(L dt E^L s0 + dt^2 h'(w) R + dt Bbar Rp),
 *   ddt = 2 Re(C s0 A P1) + Re(conj(f) (L A E^L s0 + E R + A Bbar Rp)).
 * Powers as the kernel's: blocked, bases in double (ops/s4d_powers.h). */
#ifndef SL_OPS_S4D_STATE_H
#define SL_OPS_S4D_STATE_H

#include "core/core.h"

/* One call's sizes and packing (seqs: NULL, or valid bounds over T with
 * B = 1); N rows of state below are the sequences, else the B rows. */
typedef struct sl_s4d_state_desc {
    int64_t B, T, H, M;
    const sl_seqs *seqs;
    const float *ds_final; /* [N, H, M, 2], the gradient w.r.t. s_final, or NULL */
} sl_s4d_state_desc;

/* y, u: [B, T, H] -> y + z: [B, T, H]. s0: [N, H*M*2] (re, im) or NULL
 * (zeros: z = 0). s_final: NULL or [N, H*M*2], written. log_dt: [H],
 * a_log_re, a_im: [H, M], c: [S, H, M, 2] (the first set is used).
 * Gradients to every input, and through s_final when it is a linked state
 * part (sl_state_final_grad). */
sl_tensor *sl_s4d_state(sl_ctx *ctx, sl_tensor *y, sl_tensor *u, sl_tensor *s0, float *s_final,
                        sl_tensor *log_dt, sl_tensor *a_log_re, sl_tensor *a_im, sl_tensor *c,
                        const sl_seqs *seqs);

/* The kernels, threaded over channels (a channel's sequences in order, so
 * parameter gradients sum in a fixed order). Forward: out += z (out holds
 * y), s_final written when not NULL. Backward: dout (and d->ds_final) ->
 * du, ds0, dlog_dt, da_log_re, da_im, dc ([H, M, 2]), each added to and
 * NULL when not wanted. */
void sl_s4d_state_fwd(const sl_s4d_state_desc *d, const float *log_dt, const float *a_log_re,
                      const float *a_im, const float *c, const float *u, const float *s0,
                      float *out, float *s_final);
void sl_s4d_state_bwd(const sl_s4d_state_desc *d, const float *log_dt, const float *a_log_re,
                      const float *a_im, const float *c, const float *u, const float *s0,
                      const float *dout, float *du, float *ds0, float *dlog_dt, float *da_log_re,
                      float *da_im, float *dc);

/* The two terms from their definitions, each power exp(l dt A) in double:
 * out = y + z: [B, T, H], s_final: [N, H*M*2] or NULL. */
void sl_s4d_state_ref(const sl_s4d_state_desc *d, const float *log_dt, const float *a_log_re,
                      const float *a_im, const float *c, const float *y, const float *u,
                      const float *s0, double *out, double *s_final);

#endif
