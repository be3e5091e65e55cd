/* The ZOH quotients and one channel's blocked powers (ops/s4d_powers.h). */
#include <math.h>
#include <stdlib.h>

#include "ops/s4d_powers.h"

sl_cplx sl_s4d_zoh_h(sl_cplx w)
{
    /* By its series where |w| is small and the quotient would cancel. */
    if (cabs(w) < 1e-3) return 1.0 + w * (0.5 + w * (1.0 / 6.0 + w / 24.0));
    return (cexp(w) - 1.0) / w;
}

sl_cplx sl_s4d_zoh_dh(sl_cplx w)
{
    if (cabs(w) < 1e-3) return 0.5 + w * (1.0 / 3.0 + w * (0.125 + w / 30.0));
    return (cexp(w) - sl_s4d_zoh_h(w)) / w;
}

sl_cplx sl_s4d_mode_w(const float *log_dt, const float *a_log_re, const float *a_im, int64_t M,
                      int64_t h, int64_t m)
{
    const int64_t i = h * M + m;
    return exp((double)log_dt[h]) * (-exp((double)a_log_re[i]) + I * (double)a_im[i]);
}

sl_s4d_powers sl_s4d_powers_new(int64_t M)
{
    sl_s4d_powers p = {.M = M};
    p.zr = malloc((size_t)((2 * M + 1) * SL_S4D_BLOCK) * sizeof(float));
    p.w = malloc((size_t)(4 * M) * sizeof(sl_cplx));
    sl_require(p.zr && p.w, "sl_s4d_powers", "per-thread tables");
    p.zi = p.zr + M * SL_S4D_BLOCK;
    p.ramp = p.zi + M * SL_S4D_BLOCK;
    for (int64_t j = 0; j < SL_S4D_BLOCK; j++) p.ramp[j] = (float)j;
    p.e = p.w + M;
    p.eJ = p.e + M;
    p.base = p.eJ + M;
    return p;
}

void sl_s4d_powers_free(sl_s4d_powers *p)
{
    free(p->zr);
    free(p->w);
}

void sl_s4d_powers_channel(sl_s4d_powers *p, const float *log_dt, const float *a_log_re,
                           const float *a_im, int64_t h)
{
    const int64_t M = p->M;
    for (int64_t m = 0; m < M; m++) {
        const sl_cplx wm = sl_s4d_mode_w(log_dt, a_log_re, a_im, M, h, m), E = cexp(wm);
        /* By parts: C's complex product checks every result for NaN. */
        const double er = creal(E), ei = cimag(E);
        double zr = 1.0, zi = 0.0;
        for (int64_t j = 0; j < SL_S4D_BLOCK; j++) {
            p->zr[m * SL_S4D_BLOCK + j] = (float)zr;
            p->zi[m * SL_S4D_BLOCK + j] = (float)zi;
            const double t = zr * er - zi * ei;
            zi = zr * ei + zi * er;
            zr = t;
        }
        p->w[m] = wm;
        p->e[m] = E;
        p->eJ[m] = zr + I * zi;
        p->base[m] = 1.0;
    }
}

void sl_s4d_powers_next(sl_s4d_powers *p)
{
    for (int64_t m = 0; m < p->M; m++) p->base[m] *= p->eJ[m];
}

void sl_s4d_powers_eval(const sl_s4d_powers *p, const sl_cplx *coef, int64_t nb, float *out)
{
    for (int64_t m = 0; m < p->M; m++) {
        const sl_cplx cb = coef[m] * p->base[m];
        const float cr = (float)creal(cb), ci = (float)cimag(cb);
        const float *zr = p->zr + m * SL_S4D_BLOCK, *zi = p->zi + m * SL_S4D_BLOCK;
#pragma omp simd
        for (int64_t j = 0; j < nb; j++) out[j] += cr * zr[j] - ci * zi[j];
    }
}

void sl_s4d_powers_reduce(const sl_s4d_powers *p, const float *g, int64_t nb, int64_t l0,
                          sl_cplx *Q, sl_cplx *P)
{
    for (int64_t m = 0; m < p->M; m++) {
        const float *zr = p->zr + m * SL_S4D_BLOCK, *zi = p->zi + m * SL_S4D_BLOCK;
        float qr = 0, qi = 0, pr = 0, pi = 0;
        if (P) {
#pragma omp simd reduction(+ : qr, qi, pr, pi)
            for (int64_t j = 0; j < nb; j++) {
                qr += g[j] * zr[j];
                qi += g[j] * zi[j];
                pr += p->ramp[j] * g[j] * zr[j];
                pi += p->ramp[j] * g[j] * zi[j];
            }
        } else {
#pragma omp simd reduction(+ : qr, qi)
            for (int64_t j = 0; j < nb; j++) {
                qr += g[j] * zr[j];
                qi += g[j] * zi[j];
            }
        }
        const sl_cplx q = qr + I * qi;
        Q[m] += p->base[m] * q;
        if (P) P[m] += p->base[m] * ((double)l0 * q + (pr + I * pi));
    }
}
