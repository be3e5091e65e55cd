/* The S4D state terms: kernels, op, reference. A work item is one channel;
 * it walks its sequences in order, each in blocks of SL_S4D_BLOCK tokens:
 * z and du are evaluations of the powers (gathered into a block buffer,
 * then scattered to their strided column), R, Q1 and their ramps are
 * reductions over a block of the column (u read backwards for R). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/s4d_powers.h"
#include "ops/s4d_state.h"

static sl_cplx pair(const float *x, int64_t i) { return x[2 * i] + I * x[2 * i + 1]; }

static int64_t block_len(int64_t len, int64_t l0)
{
    return len - l0 < SL_S4D_BLOCK ? len - l0 : SL_S4D_BLOCK;
}

/* One thread's buffers: the powers, a block of a column, and per-mode sums. */
typedef struct st_work {
    sl_s4d_powers pw;
    float *blk;                          /* [J] */
    sl_cplx *bbar, *coef, *q, *p, *r, *rp; /* [M] each */
} st_work;

static st_work work_new(int64_t M)
{
    st_work w = {.pw = sl_s4d_powers_new(M), .blk = malloc(SL_S4D_BLOCK * sizeof(float)),
                 .bbar = malloc((size_t)(6 * M) * sizeof(sl_cplx))};
    sl_require(w.blk && w.bbar, "sl_s4d_state", "per-thread buffers");
    w.coef = w.bbar + M;
    w.q = w.coef + M;
    w.p = w.q + M;
    w.r = w.p + M;
    w.rp = w.r + M;
    return w;
}

static void work_free(st_work *w)
{
    sl_s4d_powers_free(&w->pw);
    free(w->blk);
    free(w->bbar);
}

/* Channel h's powers and Bbar. */
static void channel(st_work *w, const float *log_dt, const float *a_log_re, const float *a_im,
                    int64_t h)
{
    sl_s4d_powers_channel(&w->pw, log_dt, a_log_re, a_im, h);
    const double dt = exp((double)log_dt[h]);
    for (int64_t m = 0; m < w->pw.M; m++) w->bbar[m] = dt * sl_s4d_zoh_h(w->pw.w[m]);
}

/* col[t * H] += Re sum_m coef_m E_m^l for the len tokens of a column (l = t,
 * or len-1-t when rev), from bases at 1. */
static void eval_column(st_work *w, int64_t len, bool rev, float *col, int64_t H)
{
    for (int64_t l0 = 0; l0 < len; l0 += SL_S4D_BLOCK) {
        const int64_t nb = block_len(len, l0);
        memset(w->blk, 0, (size_t)nb * sizeof(float));
        sl_s4d_powers_eval(&w->pw, w->coef, nb, w->blk);
        for (int64_t j = 0; j < nb; j++) col[(rev ? len - 1 - l0 - j : l0 + j) * H] += w->blk[j];
        sl_s4d_powers_next(&w->pw);
    }
}

/* Q += sum_l x_l E^l (P += sum_l l x_l E^l when P) over a column's len
 * tokens, x_l its token l (rev: len-1-l), from bases at 1. */
static void reduce_column(st_work *w, int64_t len, bool rev, const float *col, int64_t H,
                          sl_cplx *Q, sl_cplx *P)
{
    for (int64_t l0 = 0; l0 < len; l0 += SL_S4D_BLOCK) {
        const int64_t nb = block_len(len, l0);
        for (int64_t j = 0; j < nb; j++) w->blk[j] = col[(rev ? len - 1 - l0 - j : l0 + j) * H];
        sl_s4d_powers_reduce(&w->pw, w->blk, nb, l0, Q, P);
        sl_s4d_powers_next(&w->pw);
    }
}

static void rewind_bases(st_work *w)
{
    for (int64_t m = 0; m < w->pw.M; m++) w->pw.base[m] = 1.0;
}

void sl_s4d_state_fwd(const sl_s4d_state_desc *d, const float *log_dt, const float *a_log_re,
                      const float *a_im, const float *c, const float *u, const float *s0,
                      float *out, float *s_final)
{
    const int64_t T = d->T, H = d->H, M = d->M, N = sl_seq_count(d->seqs, d->B);
#pragma omp parallel if (d->B * T * H * M >= SL_PAR_MIN)
    {
        st_work w = work_new(M);
#pragma omp for schedule(static)
        for (int64_t h = 0; h < H; h++) {
            channel(&w, log_dt, a_log_re, a_im, h);
            for (int64_t n = 0; n < N; n++) {
                const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
                const float *x0 = s0 ? s0 + (n * H + h) * 2 * M : NULL;
                if (x0) {
                    for (int64_t m = 0; m < M; m++)
                        w.coef[m] = 2.0 * pair(c, h * M + m) * pair(x0, m) * w.pw.e[m];
                    rewind_bases(&w);
                    eval_column(&w, len, false, out + st * H + h, H);
                }
                if (!s_final) continue;
                for (int64_t m = 0; m < M; m++) w.r[m] = 0.0;
                rewind_bases(&w);
                reduce_column(&w, len, true, u + st * H + h, H, w.r, NULL);
                float *xf = s_final + (n * H + h) * 2 * M;
                for (int64_t m = 0; m < M; m++) {
                    sl_cplx x = w.bbar[m] * w.r[m];
                    if (x0) x += cexp((double)len * w.pw.w[m]) * pair(x0, m);
                    xf[2 * m] = (float)creal(x);
                    xf[2 * m + 1] = (float)cimag(x);
                }
            }
        }
        work_free(&w);
    }
}

void sl_s4d_state_bwd(const sl_s4d_state_desc *d, const float *log_dt, const float *a_log_re,
                      const float *a_im, const float *c, const float *u, const float *s0,
                      const float *dout, float *du, float *ds0, float *dlog_dt, float *da_log_re,
                      float *da_im, float *dc)
{
    const int64_t T = d->T, H = d->H, M = d->M, N = sl_seq_count(d->seqs, d->B);
#pragma omp parallel if (d->B * T * H * M >= SL_PAR_MIN)
    {
        st_work w = work_new(M);
#pragma omp for schedule(static)
        for (int64_t h = 0; h < H; h++) {
            channel(&w, log_dt, a_log_re, a_im, h);
            const double dt = exp((double)log_dt[h]);
            double ddt = 0;
            for (int64_t n = 0; n < N; n++) {
                const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
                const int64_t o = (n * H + h) * 2 * M;
                const float *x0 = s0 ? s0 + o : NULL, *f = d->ds_final ? d->ds_final + o : NULL;
                for (int64_t m = 0; m < M; m++) w.q[m] = w.p[m] = w.r[m] = w.rp[m] = 0.0;
                if (x0) {
                    rewind_bases(&w);
                    reduce_column(&w, len, false, dout + st * H + h, H, w.q, w.p);
                }
                if (f) {
                    rewind_bases(&w);
                    reduce_column(&w, len, true, u + st * H + h, H, w.r, w.rp);
                    if (du) {
                        for (int64_t m = 0; m < M; m++) w.coef[m] = conj(pair(f, m)) * w.bbar[m];
                        rewind_bases(&w);
                        eval_column(&w, len, true, du + st * H + h, H);
                    }
                }
                for (int64_t m = 0; m < M; m++) {
                    const int64_t i = h * M + m;
                    const sl_cplx E = w.pw.e[m], wm = w.pw.w[m], A = wm / dt;
                    const sl_cplx Cm = pair(c, i), x = x0 ? pair(x0, m) : 0.0;
                    /* Q1 = E Q0, P1 = E (P0 + Q0) from the sums over t of E^t. */
                    const sl_cplx Q1 = E * w.q[m], P1 = E * (w.p[m] + w.q[m]);
                    sl_cplx gA = 2.0 * conj(Cm * x * dt * P1), gx = 2.0 * conj(Cm * Q1);
                    ddt += 2.0 * creal(Cm * x * A * P1);
                    if (f) {
                        const sl_cplx g = pair(f, m), EL = cexp((double)len * wm);
                        const sl_cplx Bb = w.bbar[m], R = w.r[m], Rp = w.rp[m];
                        gA += g * conj((double)len * dt * EL * x +
                                       dt * dt * sl_s4d_zoh_dh(wm) * R + dt * Bb * Rp);
                        ddt += creal(conj(g) * ((double)len * A * EL * x + E * R + A * Bb * Rp));
                        gx += g * conj(EL);
                    }
                    if (ds0 && x0) {
                        ds0[o + 2 * m] += (float)creal(gx);
                        ds0[o + 2 * m + 1] += (float)cimag(gx);
                    }
                    if (dc) {
                        const sl_cplx gc = 2.0 * conj(x * Q1);
                        dc[2 * i] += (float)creal(gc);
                        dc[2 * i + 1] += (float)cimag(gc);
                    }
                    if (da_log_re) da_log_re[i] += (float)(creal(gA) * -exp((double)a_log_re[i]));
                    if (da_im) da_im[i] += (float)cimag(gA);
                }
            }
            if (dlog_dt) dlog_dt[h] += (float)(ddt * dt);
        }
        work_free(&w);
    }
}

/* Node: in = {y, u, s0, log_dt, a_log_re, a_im, c}, desc: sl_s4d_state_desc. */
static void s4d_state_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *const *in = nd->in;
    float *g[7];
    for (int i = 0; i < 7; i++) g[i] = in[i] && in[i]->requires_grad ? sl_grad(ctx, in[i]) : NULL;
    const float *dout = nd->out->grad;
    if (g[0])
        for (int64_t i = 0; i < nd->out->n; i++) g[0][i] += dout[i];
    sl_s4d_state_bwd(nd->desc, in[3]->data, in[4]->data, in[5]->data, in[6]->data, in[1]->data,
                     in[2] ? in[2]->data : NULL, dout, g[1], g[2], g[3], g[4], g[5], g[6]);
}

sl_tensor *sl_s4d_state(sl_ctx *ctx, sl_tensor *y, sl_tensor *u, sl_tensor *s0, float *s_final,
                        sl_tensor *log_dt, sl_tensor *a_log_re, sl_tensor *a_im, sl_tensor *c,
                        const sl_seqs *seqs)
{
    sl_require(u->ndim == 3 && y->ndim == 3 && y->n == u->n && c->ndim == 4 && c->shape[3] == 2,
               "sl_s4d_state", "y, u [B, T, H], c [S, H, M, 2]");
    sl_require(sl_seqs_check(seqs, u, "sl_s4d_state") == SL_OK, "sl_s4d_state",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, H]");
    sl_s4d_state_desc d = {u->shape[0], u->shape[1], u->shape[2], c->shape[2], seqs,
                           sl_state_final_grad(ctx, s_final)};
    const int64_t N = sl_seq_count(seqs, d.B);
    sl_require(c->shape[1] == d.H && log_dt->n == d.H && a_log_re->n == d.H * d.M &&
                   a_im->n == d.H * d.M && (!s0 || s0->n == N * d.H * d.M * 2),
               "sl_s4d_state", "log_dt [H], a_log_re, a_im [H, M], s0 [N, H*M*2]");
    sl_tensor *out = sl_tensor_like(ctx, y);
    sl_node *nd = SL_RECORD(ctx, s4d_state_backward, out, y, u, s0, log_dt, a_log_re, a_im, c);
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
    }
    memcpy(out->data, y->data, (size_t)y->n * sizeof(float));
    sl_s4d_state_fwd(&d, log_dt->data, a_log_re->data, a_im->data, c->data, u->data,
                     s0 ? s0->data : NULL, out->data, s_final);
    return out;
}

void sl_s4d_state_ref(const sl_s4d_state_desc *d, const float *log_dt, const float *a_log_re,
                      const float *a_im, const float *c, const float *y, const float *u,
                      const float *s0, double *out, double *s_final)
{
    const int64_t T = d->T, H = d->H, M = d->M;
    for (int64_t i = 0; i < d->B * T * H; i++) out[i] = y[i];
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        for (int64_t h = 0; h < H; h++)
            for (int64_t m = 0; m < M; m++) {
                const int64_t o = (n * H + h) * M + m;
                const sl_cplx wm = sl_s4d_mode_w(log_dt, a_log_re, a_im, M, h, m);
                const sl_cplx bbar = exp((double)log_dt[h]) * (cexp(wm) - 1.0) / wm;
                const sl_cplx x0 = s0 ? pair(s0, o) : 0.0;
                sl_cplx xf = cexp((double)len * wm) * x0;
                for (int64_t t = 0; t < len; t++) {
                    const int64_t i = (st + t) * H + h;
                    out[i] += 2.0 * creal(pair(c, h * M + m) * cexp((double)(t + 1) * wm) * x0);
                    xf += cexp((double)(len - 1 - t) * wm) * bbar * u[i];
                }
                if (s_final) {
                    s_final[2 * o] = creal(xf);
                    s_final[2 * o + 1] = cimag(xf);
                }
            }
    }
}
