/* S4D's kernel (the Vandermonde product) with its backward, the direct
 * reference, the discretised modes, and the recurrent form (one token, and
 * a batch token by token). The derivatives, with w = dt A, h(w) = (e^w-1)/w
 * so Bbar = dt h(w), Q = sum_l g_l E^l, P = sum_l g_l l E^l (g = dK) and, for
 * a real L = sum_l g_l 2 Re f_l(z) of a complex z, dL/dz = 2 conj(df/dz):
 *   dC  = 2 conj(Bbar Q)
 *   dA  = 2 conj(C dt^2 (h'(w) Q + h(w) P))    (dBbar/dA = dt^2 h'(w))
 *   ddt = 2 Re(C (E Q + (E - 1) P))             (dBbar/ddt = E) */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/s4d_kernel.h"

/* Taps per block: the block's powers E^j come from one table per mode. */
#define SL_S4D_BLOCK 256

typedef double complex cplx;

/* h(w) = (e^w - 1) / w and h'(w) = (e^w - h(w)) / w, by their series where
 * |w| is small and the quotients would cancel. */
static cplx zoh_h(cplx w)
{
    if (cabs(w) < 1e-3) return 1.0 + w * (0.5 + w * (1.0 / 6.0 + w / 24.0));
    return (cexp(w) - 1.0) / w;
}
static cplx zoh_dh(cplx w)
{
    if (cabs(w) < 1e-3) return 0.5 + w * (1.0 / 3.0 + w * (0.125 + w / 30.0));
    return (cexp(w) - zoh_h(w)) / w;
}

/* Mode (h, m)'s dt A. */
static cplx mode_w(const float *log_dt, const float *a_log_re, const float *a_im, int64_t M,
                   int64_t h, int64_t m)
{
    const int64_t i = h * M + m;
    return exp((double)log_dt[h]) * (-exp((double)a_log_re[i]) + I * (double)a_im[i]);
}

static cplx c_at(const float *c, int64_t i) { return c[2 * i] + I * c[2 * i + 1]; }

/* One thread's tables for a channel: E^j (j < SL_S4D_BLOCK) per mode in
 * float, E^J and the running base E^(l0) in double. */
typedef struct s4d_work {
    float *zr, *zi; /* [M, J] */
    float *ramp;    /* [J]: j as a float (an int64 j would not vectorise) */
    cplx *e, *eJ, *base, *ct; /* [M], [M], [M], [S, M] */
    cplx *q, *p;              /* [S, M]: the backward's Q and P */
} s4d_work;

static s4d_work work_new(const sl_s4d_desc *ds)
{
    const int64_t M = ds->M, S = ds->S;
    s4d_work w;
    w.zr = malloc((size_t)((2 * M + 1) * SL_S4D_BLOCK) * sizeof(float));
    w.e = malloc((size_t)(3 * M + 3 * S * M) * sizeof(cplx));
    sl_require(w.zr && w.e, "sl_s4d_kernel", "per-thread tables");
    w.zi = w.zr + M * SL_S4D_BLOCK;
    w.ramp = w.zi + M * SL_S4D_BLOCK;
    for (int64_t j = 0; j < SL_S4D_BLOCK; j++) w.ramp[j] = (float)j;
    w.eJ = w.e + M;
    w.base = w.eJ + M;
    w.ct = w.base + M;
    w.q = w.ct + S * M;
    w.p = w.q + S * M;
    return w;
}

static void work_free(s4d_work *w)
{
    free(w->zr);
    free(w->e);
}

/* Channel h's tables: E, E^j, E^J, base = 1, and Ct = C Bbar per set. */
static void channel_tables(const sl_s4d_desc *ds, const float *log_dt, const float *a_log_re,
                           const float *a_im, const float *c, int64_t h, s4d_work *w)
{
    const int64_t M = ds->M, H = ds->H;
    const double dt = exp((double)log_dt[h]);
    for (int64_t m = 0; m < M; m++) {
        const cplx wm = mode_w(log_dt, a_log_re, a_im, M, h, m), E = cexp(wm);
        /* By parts: C's complex product checks every result for NaN. */
        const double er = creal(E), ei = cimag(E);
        double zr = 1.0, zi = 0.0;
        for (int64_t j = 0; j < SL_S4D_BLOCK; j++) {
            w->zr[m * SL_S4D_BLOCK + j] = (float)zr;
            w->zi[m * SL_S4D_BLOCK + j] = (float)zi;
            const double t = zr * er - zi * ei;
            zi = zr * ei + zi * er;
            zr = t;
        }
        w->e[m] = E;
        w->eJ[m] = zr + I * zi;
        w->base[m] = 1.0;
        for (int64_t s = 0; s < ds->S; s++)
            w->ct[s * M + m] = c_at(c, (s * H + h) * M + m) * dt * zoh_h(wm);
    }
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
                for (int64_t s = 0; s < S; s++) {
                    float *k = K + (s * H + h) * L + l0;
                    for (int64_t m = 0; m < M; m++) {
                        const cplx cb = 2.0 * w.ct[s * M + m] * w.base[m];
                        const float cr = (float)creal(cb), ci = (float)cimag(cb);
                        const float *zr = w.zr + m * SL_S4D_BLOCK, *zi = w.zi + m * SL_S4D_BLOCK;
#pragma omp simd
                        for (int64_t j = 0; j < nb; j++) k[j] += cr * zr[j] - ci * zi[j];
                    }
                }
                for (int64_t m = 0; m < M; m++) w.base[m] *= w.eJ[m];
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
                for (int64_t s = 0; s < S; s++) {
                    const float *g = dK + (s * H + h) * L + l0;
                    for (int64_t m = 0; m < M; m++) {
                        const float *zr = w.zr + m * SL_S4D_BLOCK, *zi = w.zi + m * SL_S4D_BLOCK;
                        float qr = 0, qi = 0, pr = 0, pi = 0;
#pragma omp simd reduction(+ : qr, qi, pr, pi)
                        for (int64_t j = 0; j < nb; j++) {
                            qr += g[j] * zr[j];
                            qi += g[j] * zi[j];
                            pr += w.ramp[j] * g[j] * zr[j];
                            pi += w.ramp[j] * g[j] * zi[j];
                        }
                        const cplx q = qr + I * qi;
                        w.q[s * M + m] += w.base[m] * q;
                        w.p[s * M + m] += w.base[m] * ((double)l0 * q + (pr + I * pi));
                    }
                }
                for (int64_t m = 0; m < M; m++) w.base[m] *= w.eJ[m];
            }
            const double dt = exp((double)log_dt[h]);
            double ddt = 0;
            for (int64_t m = 0; m < M; m++) {
                const int64_t i = h * M + m;
                const cplx wm = mode_w(log_dt, a_log_re, a_im, M, h, m), E = w.e[m];
                const cplx hw = zoh_h(wm), dhw = zoh_dh(wm);
                cplx fa = 0;
                for (int64_t s = 0; s < S; s++) {
                    const int64_t ic = (s * H + h) * M + m;
                    const cplx Cm = c_at(c, ic), Q = w.q[s * M + m], P = w.p[s * M + m];
                    const cplx fc = dt * hw * Q;
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
                    const cplx wm = mode_w(log_dt, a_log_re, a_im, M, h, m);
                    const cplx bbar = exp((double)log_dt[h]) * (cexp(wm) - 1.0) / wm;
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
            const cplx A = -exp((double)a_log_re[i]) + I * (double)a_im[i], wm = dt * A;
            const cplx e = cexp(wm), b = cabs(wm) < 1e-3 ? dt * zoh_h(wm) : (e - 1.0) / A;
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

void sl_s4d_recur(const sl_s4d_desc *ds, int64_t B, int64_t T, const sl_seqs *seqs,
                  const float *E, const float *Bbar, const float *c, const float *d,
                  const float *u, float *x, float *y)
{
    const int64_t H = ds->H, M = ds->M, N = sl_seq_count(seqs, B);
#pragma omp parallel for schedule(static) if (B * T * H * M >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * H; w++) {
        const int64_t n = w / H, h = w % H, o = 2 * h * M;
        const int64_t st = sl_seq_start(seqs, n, T), len = sl_seq_len(seqs, n, T);
        float *xs = x + n * H * 2 * M + o;
        for (int64_t t = 0; t < len; t++) {
            const int64_t i = (st + t) * H + h;
            y[i] = token(M, E + o, Bbar + o, c + o, d ? d[h] : 0.0f, u[i], xs);
        }
    }
}
