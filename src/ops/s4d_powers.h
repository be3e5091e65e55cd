/* Shared by ops/s4d_kernel.c and ops/s4d_state.c (not part of the API):
 * the ZOH quotients and the blocked powers E^l of one channel's modes.
 *
 * A sum over taps l of a mode's powers runs in blocks of SL_S4D_BLOCK taps:
 * E^l = E^(l0) E^j with the block's base E^(l0) in double (advanced by E^J
 * each block) and E^j (j < J) from a float table made by repeated double
 * multiplication, so no phase l dt Im(A) is ever rounded to float while
 * the inner loops over taps run in float vectors. */
#ifndef SL_OPS_S4D_POWERS_H
#define SL_OPS_S4D_POWERS_H

#include <complex.h>

#include "core/core.h"

/* Taps per block: the block's powers E^j come from one table per mode. */
#define SL_S4D_BLOCK 256

typedef double complex sl_cplx;

/* h(w) = (e^w - 1) / w and h'(w) = (e^w - h(w)) / w (series near 0). */
sl_cplx sl_s4d_zoh_h(sl_cplx w);
sl_cplx sl_s4d_zoh_dh(sl_cplx w);

/* Mode (h, m)'s dt A. */
sl_cplx sl_s4d_mode_w(const float *log_dt, const float *a_log_re, const float *a_im, int64_t M,
                      int64_t h, int64_t m);

/* One thread's tables for a channel's M modes. */
typedef struct sl_s4d_powers {
    int64_t M;
    float *zr, *zi; /* [M, J]: E^j */
    float *ramp;    /* [J]: j as a float (an int64 j would not vectorise) */
    sl_cplx *w, *e, *eJ, *base; /* [M] each: dt A, E, E^J, E^(l0) */
} sl_s4d_powers;

sl_s4d_powers sl_s4d_powers_new(int64_t M);
void sl_s4d_powers_free(sl_s4d_powers *p);
/* Channel h's tables, base = 1 (block l0 = 0). */
void sl_s4d_powers_channel(sl_s4d_powers *p, const float *log_dt, const float *a_log_re,
                           const float *a_im, int64_t h);
/* To the next block: base *= E^J. */
void sl_s4d_powers_next(sl_s4d_powers *p);
/* out[j] += Re sum_m coef_m E_m^(l0 + j), j < nb: coef [M]. */
void sl_s4d_powers_eval(const sl_s4d_powers *p, const sl_cplx *coef, int64_t nb, float *out);
/* Q_m += sum_j g[j] E_m^(l0 + j), P_m += sum_j (l0 + j) g[j] E_m^(l0 + j),
 * j < nb (P NULL: not wanted). */
void sl_s4d_powers_reduce(const sl_s4d_powers *p, const float *g, int64_t nb, int64_t l0,
                          sl_cplx *Q, sl_cplx *P);

#endif
