/* The diagonal state space model of S4D (Gu, Gupta, Goel, Re 2022, "On the
 * Parameterization and Initialization of Diagonal State Space Models"):
 * per channel h, M = N/2 complex modes m (the other N/2 are their
 * conjugates, hence the 2 Re), zero-order hold with step dt:
 *
 *   dt = exp(log_dt[h]),  A_m = -exp(a_log_re[h, m]) + i a_im[h, m]
 *   E_m = exp(dt A_m),  Bbar_m = (E_m - 1) / A_m       (dt h(dt A), h(w) = (e^w - 1)/w)
 *   recurrent:  x_t = E x_{t-1} + Bbar u_t,  y_t = 2 Re sum_m C_m x_{t,m} + D u_t
 *   kernel:     K[l] = 2 Re sum_m C_m Bbar_m E_m^l  (+ D at l = 0),  y = K * u
 *
 * The kernel op is the Vandermonde product, fused (complex arithmetic from
 * real ops would be long and slow), with its hand-written backward to
 * log_dt, a_log_re, a_im, C and D. With S = 2 kernel sets (the
 * bidirectional form) the two share dt and A and each has its C; D goes to
 * the first (the forward taps). Complex numbers are laid out as (re, im)
 * float pairs. */
#ifndef SL_OPS_S4D_KERNEL_H
#define SL_OPS_S4D_KERNEL_H

#include "core/core.h"

/* One kernel's sizes: S sets of H channels of M modes, L taps. */
typedef struct sl_s4d_desc {
    int64_t S, H, M, L;
} sl_s4d_desc;

/* log_dt: [H], a_log_re, a_im: [H, M], c: [S, H, M, 2], d: [H] or NULL ->
 * K: [H, L] when S = 1, [2, H, L] when S = 2 (the layouts sl_fftconv reads
 * as causal and bidirectional kernels). Gradients to every input. */
sl_tensor *sl_s4d_kernel(sl_ctx *ctx, sl_tensor *log_dt, sl_tensor *a_log_re, sl_tensor *a_im,
                         sl_tensor *c, sl_tensor *d, int64_t L);

/* The kernels, threaded over channels. The powers E^l are made by repeated
 * multiplication in double (a block's base E^(l0), and E^j inside a block of
 * SL_S4D_BLOCK taps; ops/s4d_powers.h), so no phase l dt Im(A) is ever
 * rounded to float; the sum over modes runs in float, one vector of taps
 * at a time. Backward:
 * dK -> gradients added to (NULL: not wanted). */
void sl_s4d_kernel_fwd(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                       const float *a_im, const float *c, const float *d, float *K);
void sl_s4d_kernel_bwd(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                       const float *a_im, const float *c, const float *dK, float *dlog_dt,
                       float *da_log_re, float *da_im, float *dc, float *dd);

/* The sum with each E^l from exp(l dt A) directly, in double. K as above. */
void sl_s4d_kernel_ref(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                       const float *a_im, const float *c, const float *d, double *K);

/* The discretised modes of H channels: E, Bbar: [H, M, 2] (re, im). */
void sl_s4d_modes(int64_t H, int64_t M, const float *log_dt, const float *a_log_re,
                  const float *a_im, float *E, float *Bbar);

/* One token of the recurrent form, state in place: x: [H, M, 2], u: [H]
 * -> y: [H]; E, Bbar from sl_s4d_modes, c: [H, M, 2] (the first set), d:
 * [H] or NULL. */
void sl_s4d_step(int64_t H, int64_t M, const float *E, const float *Bbar, const float *c,
                 const float *d, const float *u, float *x, float *y);

#endif
