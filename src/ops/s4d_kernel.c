/* S4D's kernel (the Vandermonde product) with its backward, the direct
 * reference, the discretised modes, and the one-token recurrent form. The
 * derivatives, with w = dt A, h(w) = (e^w-1)/w so Bbar = dt h(w),
 * Q = sum_l g_l E^l, P = sum_l g_l l E^l (g = dK) and, for a real
 * L = sum_l g_l 2 Re f_l(z) of a complex z, dL/dz = 2 conj(df/dz):
 *   dC  = 2 conj(Bbar Q)
 *   dA  = 2 conj(C dt^2 (h'(w) Q + h(w) P))    (dBbar/dA = dt^2 h'(w))
 *   ddt = 2 Re(C (E Q + (E - 1) P))             (dBbar/ddt = E) */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/s4d_powers.h"
#include "ops/s4d_kernel.h"

static sl_cplx c_at(const float *c, int64_t i) { return c[2 * i] + I * c[2 * i + 1]; }

/* One thread's work: the channel's powers, Ct = 2 C Bbar per set, and the
 * backward's Q and P per set. */
typedef struct s4d_work {
    sl_s4d_powers pw;
    sl_cplx *ct, *q, *p; /* [S, M] each */
} s4d_work;

static s4d_work work_new(const sl_s4d_desc *ds)
{
    s4d_work w = {.pw = sl_s4d_powers_new(ds->M),
                  .ct = malloc((size_t)(3 * ds->S * ds->M) * sizeof(sl_cplx))};
    sl_require(w.ct, "sl_s4d_kernel", "per-thread tables");
    w.q = w.ct + ds->S * ds->M;
    w.p = w.q + ds->S * ds->M;
    return w;
}

static void work_free(s4d_work *w)
{
    sl_s4d_powers_free(&w->pw);
    free(w->ct);
}

/* Channel h's tables: the powers, and Ct = 2 C Bbar per set. */
static void channel_tables(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                           const float *a_im, const float *c, int64_t h, s4d_work *w)
{
    const int64_t M = ds->M, H = ds->H;
    const double dt = exp((double)log_dt[h]);
    sl_s4d_powers_channel(&w->pw, log_dt, a_log_re, a_im, h);
    for (int64_t m = 0; m < M; m++)
        for (int64_t s = 0; s < ds->S; s++)
            w->ct[s * M + m] =
                2.0 * (c_at(c, (s * H + h) * M + m) * dt * sl_s4d_zoh_h(w->pw.w[m]));
}

void sl_s4d_kernel_fwd(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                       const float *a_im, const float *c, const float *d, float *K)
{
    const int64_t S = ds->S, H = ds->H, M = ds->M, L = ds->L;
#pragma omp parallel if (S * H * M * L >= SL_PAR_MIN)
    {
        s4d_work w = work_new(ds);
#pragma omp for schedule(static)
        for (int64_t h = 0; h < H; h++) {
            channel_tables(ds, log_dt, a_log_re, a_im, c, h, &w);
            for (int64_t s = 0; s < S; s++)
                memset(K + (s * H + h) * L, 0, (size_t)L * sizeof(float));
            for (int64_t l0 = 0; l0 < L; l0 += SL_S4D_BLOCK) {
                const int64_t nb = L - l0 < SL_S4D_BLOCK ? L - l0 : SL_S4D_BLOCK;
                for (int64_t s = 0; s < S; s++)
                    sl_s4d_powers_eval(&w.pw, w.ct + s * M, nb, K + (s * H + h) * L + l0);
                sl_s4d_powers_next(&w.pw);
            }
            if (d && L > 0) K[h * L] += d[h];
        }
        work_free(&w);
    }
}

void sl_s4d_kernel_bwd(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                       const float *a_im, const float *c, const float *dK, float *dlog_dt,
                       float *da_log_re, float *da_im, float *dc, float *dd)
{
    const int64_t S = ds->S, H = ds->H, M = ds->M, L = ds->L;
#pragma omp parallel if (S * H * M * L >= SL_PAR_MIN)
    {
        s4d_work w = work_new(ds);
#pragma omp for schedule(static)
        for (int64_t h = 0; h < H; h++) {
            channel_tables(ds, log_dt, a_log_re, a_im, c, h, &w);
            for (int64_t i = 0; i < S * M; i++) w.q[i] = w.p[i] = 0.0;
            for (int64_t l0 = 0; l0 < L; l0 += SL_S4D_BLOCK) {
                const int64_t nb = L - l0 < SL_S4D_BLOCK ? L - l0 : SL_S4D_BLOCK;
                for (int64_t s = 0; s < S; s++)
                    sl_s4d_powers_reduce(&w.pw, dK + (s * H + h) * L + l0, nb, l0, w.q + s * M,
                                         w.p + s * M);
                sl_s4d_powers_next(&w.pw);
            }
            const double dt = exp((double)log_dt[h]);
            double ddt = 0;
            for (int64_t m = 0; m < M; m++) {
                const int64_t i = h * M + m;
                const sl_cplx wm = w.pw.w[m], E = w.pw.e[m];
                const sl_cplx hw = sl_s4d_zoh_h(wm), dhw = sl_s4d_zoh_dh(wm);
                sl_cplx fa = 0;
                for (int64_t s = 0; s < S; s++) {
                    const int64_t ic = (s * H + h) * M + m;
                    const sl_cplx Cm = c_at(c, ic), Q = w.q[s * M + m], P = w.p[s * M + m];
                    const sl_cplx fc = dt * hw * Q;
                    if (dc) {
                        dc[2 * ic] += (float)(2.0 * creal(fc));
                        dc[2 * ic + 1] += (float)(-2.0 * cimag(fc));
                    }
                    fa += Cm * dt * dt * (dhw * Q + hw * P);
                    ddt += 2.0 * creal(Cm * (E * Q + (E - 1.0) * P));
                }
                if (da_log_re) da_log_re[i] += (float)(2.0 * creal(fa) * -exp((double)a_log_re[i]));
                if (da_im) da_im[i] += (float)(-2.0 * cimag(fa));
            }
            if (dlog_dt) dlog_dt[h] += (float)(ddt * dt);
            if (dd && L > 0) dd[h] += dK[h * L];
        }
        work_free(&w);
    }
}

/* Node: in = {log_dt, a_log_re, a_im, c, d}, desc: sl_s4d_desc. */
static void s4d_kernel_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *const *in = nd->in;
    float *g[5];
    for (int i = 0; i < 5; i++) g[i] = in[i] && in[i]->requires_grad ? sl_grad(ctx, in[i]) : NULL;
    sl_s4d_kernel_bwd(nd->desc, in[0]->data, in[1]->data, in[2]->data, in[3]->data,
                      nd->out->grad, g[0], g[1], g[2], g[3], g[4]);
}

sl_tensor *sl_s4d_kernel(sl_ctx *ctx, sl_tensor *log_dt, sl_tensor *a_log_re, sl_tensor *a_im,
                         sl_tensor *c, sl_tensor *d, int64_t L)
{
    sl_require(c->ndim == 4 && (c->shape[0] == 1 || c->shape[0] == 2) && c->shape[3] == 2,
               "sl_s4d_kernel", "c [S, H, M, 2] with S = 1 or 2");
    const sl_s4d_desc ds = {c->shape[0], c->shape[1], c->shape[2], L};
    sl_require(log_dt->n == ds.H && a_log_re->n == ds.H * ds.M && a_im->n == ds.H * ds.M &&
                   (!d || d->n == ds.H) && L >= 0,
               "sl_s4d_kernel", "log_dt [H], a_log_re, a_im [H, M], d [H], L >= 0");
    sl_tensor *K = ds.S == 1 ? SL_NEW(ctx, ds.H, L) : SL_NEW(ctx, 2, ds.H, L);
    sl_node *nd = SL_RECORD(ctx, s4d_kernel_backward, K, log_dt, a_log_re, a_im, c, d);
    if (nd) SL_KEEP_DESC(ctx, nd, ds);
    sl_s4d_kernel_fwd(&ds, log_dt->data, a_log_re->data, a_im->data, c->data, d ? d->data : NULL,
                      K->data);
    return K;
}

void sl_s4d_kernel_ref(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                       const float *a_im, const float *c, const float *d, double *K)
{
    const int64_t S = ds->S, H = ds->H, M = ds->M, L = ds->L;
    for (int64_t s = 0; s < S; s++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < L; l++) {
                double k = s == 0 && l == 0 && d ? d[h] : 0.0;
                for (int64_t m = 0; m < M; m++) {
                    const sl_cplx wm = sl_s4d_mode_w(log_dt, a_log_re, a_im, M, h, m);
                    const sl_cplx bbar = exp((double)log_dt[h]) * (cexp(wm) - 1.0) / wm;
                    k += 2.0 * creal(c_at(c, (s * H + h) * M + m) * bbar * cexp((double)l * wm));
                }
                K[(s * H + h) * L + l] = k;
            }
}

void sl_s4d_modes(int64_t H, int64_t M, const float *log_dt, const float *a_log_re,
                  const float *a_im, float *E, float *Bbar)
{
    /* step() calls this every token: D M complex exponentials, threaded. */
#pragma omp parallel for schedule(static) if (H * M >= 4096)
    for (int64_t h = 0; h < H; h++)
        for (int64_t m = 0; m < M; m++) {
            const int64_t i = h * M + m;
            const double dt = exp((double)log_dt[h]);
            const sl_cplx A = -exp((double)a_log_re[i]) + I * (double)a_im[i], wm = dt * A;
            const sl_cplx e = cexp(wm), b = cabs(wm) < 1e-3 ? dt * sl_s4d_zoh_h(wm) : (e - 1.0) / A;
            E[2 * i] = (float)creal(e);
            E[2 * i + 1] = (float)cimag(e);
            Bbar[2 * i] = (float)creal(b);
            Bbar[2 * i + 1] = (float)cimag(b);
        }
}

/* Channel h's token: x: [M, 2] in place; returns 2 Re sum C x + D u. */
static inline float token(int64_t M, const float *E, const float *B, const float *c, float d,
                          float u, float *x)
{
    float y = 0;
    for (int64_t m = 0; m < M; m++) {
        const float xr = E[2 * m] * x[2 * m] - E[2 * m + 1] * x[2 * m + 1] + B[2 * m] * u;
        const float xi = E[2 * m] * x[2 * m + 1] + E[2 * m + 1] * x[2 * m] + B[2 * m + 1] * u;
        x[2 * m] = xr;
        x[2 * m + 1] = xi;
        y += c[2 * m] * xr - c[2 * m + 1] * xi;
    }
    return 2.0f * y + d * u;
}

void sl_s4d_step(int64_t H, int64_t M, const float *E, const float *Bbar, const float *c,
                 const float *d, const float *u, float *x, float *y)
{
    for (int64_t h = 0; h < H; h++) {
        const int64_t o = 2 * h * M;
        y[h] = token(M, E + o, Bbar + o, c + o, d ? d[h] : 0.0f, u[h], x + o);
    }
}
