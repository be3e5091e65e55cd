/* The gated long-convolution chain: block kernels over channels on top of
 * the short-conv and FFT-conv kernels, the op that records them, and the
 * direct reference. */
#include <stdlib.h>
#include <string.h>

#include "ops/channel_block.h"
#include "ops/fftconv.h"
#include "ops/gated_conv.h"
#include "ops/internal.h"
#include "ops/shortconv.h"

/* Channels per block: two of fftconv's work items, so that two threads
 * share a block's convolutions. A channel's numbers do not depend on it. */
#define GC_CB 16
#define GC_MAX_N 8

/* One block's buffers, each [B, T, nc] (a block's channels packed):
 * x[g] the short-conv outputs, v[o] the chain's values (v[0] = x[N]), and
 * working rows; scr is the short conv's scratch. */
typedef struct gc_work {
    float *x[GC_MAX_N + 1], *v[GC_MAX_N];
    float *u, *cv, *dv, *dx, *tmp, *scr, *block;
} gc_work;

static int64_t rows_len(const sl_gated_conv_desc *d) { return d->B * d->T * GC_CB; }

static sl_shortconv_desc sc_desc(const sl_gated_conv_desc *d, int64_t nc)
{
    return (sl_shortconv_desc){d->B, d->T, nc, d->K, d->seqs, NULL};
}

static sl_fftconv_desc fc_desc(const sl_gated_conv_desc *d, int64_t nc)
{
    return (sl_fftconv_desc){d->B, d->T, nc, true, d->seqs};
}

static gc_work work_new(const sl_gated_conv_desc *d)
{
    sl_require(d->N >= 2 && d->N <= GC_MAX_N, "sl_gated_conv", "order 2 .. 8");
    const int64_t n = rows_len(d), N = d->N;
    const sl_shortconv_desc sd = sc_desc(d, GC_CB);
    int64_t scr = sl_shortconv_fwd_scratch(&sd), sb = sl_shortconv_bwd_scratch(&sd);
    if (sb > scr) scr = sb;
    gc_work w;
    const int64_t nbuf = (N + 1) + (N - 1) + 5;
    w.block = sl_scratch(SL_SCRATCH_BLOCK, (size_t)(nbuf * n + scr + 1) * sizeof(float));
    float *q = w.block;
    for (int64_t g = 0; g <= N; g++, q += n) w.x[g] = q;
    w.v[0] = w.x[N];
    for (int64_t o = 1; o < N; o++, q += n) w.v[o] = q;
    w.u = q;
    w.cv = q + n;
    w.dv = q + 2 * n;
    w.dx = q + 3 * n;
    w.tmp = q + 4 * n;
    w.scr = q + 5 * n;
    return w;
}

/* Block d0 (nc channels) forward: x[g] and v[o] for every g, o. */
static void block_fwd(const sl_gated_conv_desc *d, const float *p, const float *w,
                      const float *bias, const float *h, const float *s, int64_t d0, int64_t nc,
                      gc_work *k)
{
    const int64_t D = d->D, N = d->N, BT = d->B * d->T, n = BT * nc, P = (N + 1) * D;
    const sl_shortconv_desc sd = sc_desc(d, nc);
    const sl_fftconv_desc fd = fc_desc(d, nc);
    for (int64_t g = 0; g <= N; g++) {
        const int64_t c0 = g * D + d0;
        cb_gather(p, P, c0, nc, BT, k->tmp);
        sl_shortconv_fwd(&sd, k->tmp, w + c0 * d->K, bias ? bias + c0 : NULL, NULL, k->x[g], NULL,
                         k->scr);
    }
    for (int64_t o = 0; o + 1 < N; o++) {
        const float *so = s + o * D + d0;
        cb_mul(k->v[o], k->x[N - 1 - o], k->u, n);
        sl_fftconv_fwd(&fd, k->u, h + (o * D + d0) * d->T, k->cv);
        float *vn = k->v[o + 1];
#pragma omp parallel for schedule(static) if (n >= SL_PAR_MIN)
        for (int64_t t = 0; t < BT; t++)
            for (int64_t j = 0; j < nc; j++)
                vn[t * nc + j] = k->cv[t * nc + j] + so[j] * k->u[t * nc + j];
    }
}

void sl_gated_conv_fwd(const sl_gated_conv_desc *d, const float *p, const float *w,
                       const float *bias, const float *h, const float *s, float *z)
{
    const int64_t D = d->D, N = d->N, BT = d->B * d->T;
    if (BT == 0) return;
    gc_work k = work_new(d);
    for (int64_t d0 = 0; d0 < D; d0 += GC_CB) {
        const int64_t nc = D - d0 < GC_CB ? D - d0 : GC_CB;
        block_fwd(d, p, w, bias, h, s, d0, nc, &k);
        cb_mul(k.v[N - 1], k.x[0], k.tmp, BT * nc);
        cb_scatter(z, D, d0, nc, BT, k.tmp, false);
    }
}

/* Group g's short-conv backward from dxg: [BT, nc] (block d0) into dp, dw,
 * dbias. Uses tmp and cv. */
static void group_bwd(const sl_gated_conv_desc *d, const float *p, const float *w, int64_t g,
                      int64_t d0, int64_t nc, const float *dxg, gc_work *k, float *dp, float *dw,
                      float *dbias)
{
    const int64_t D = d->D, BT = d->B * d->T, P = (d->N + 1) * D, c0 = g * D + d0;
    const sl_shortconv_desc sd = sc_desc(d, nc);
    cb_gather(p, P, c0, nc, BT, k->tmp);
    if (dp) memset(k->cv, 0, (size_t)(BT * nc) * sizeof(float));
    sl_shortconv_bwd(&sd, k->tmp, w + c0 * d->K, NULL, dxg, dp ? k->cv : NULL,
                     dw ? dw + c0 * d->K : NULL, dbias ? dbias + c0 : NULL, NULL, k->scr);
    if (dp) cb_scatter(dp, P, c0, nc, BT, k->cv, true);
}

void sl_gated_conv_bwd(const sl_gated_conv_desc *d, const float *p, const float *w,
                       const float *bias, const float *h, const float *s, const float *dz,
                       float *dp, float *dw, float *dbias, float *dh, float *ds)
{
    const int64_t D = d->D, N = d->N, BT = d->B * d->T, T = d->T;
    if (BT == 0) return;
    const bool dsc = dp || dw || dbias; /* the short conv's backward is wanted */
    gc_work k = work_new(d);
    for (int64_t d0 = 0; d0 < D; d0 += GC_CB) {
        const int64_t nc = D - d0 < GC_CB ? D - d0 : GC_CB, n = BT * nc;
        const sl_fftconv_desc fd = fc_desc(d, nc);
        block_fwd(d, p, w, bias, h, s, d0, nc, &k);
        cb_gather(dz, D, d0, nc, BT, k.tmp);
        cb_mul(k.tmp, k.x[0], k.dv, n);
        cb_mul(k.tmp, k.v[N - 1], k.dx, n);
        if (dsc) group_bwd(d, p, w, 0, d0, nc, k.dx, &k, dp, dw, dbias);
        for (int64_t o = N - 2; o >= 0; o--) {
            const int64_t i = N - 1 - o, c0 = o * D + d0;
            const float *so = s + c0;
            cb_mul(k.v[o], k.x[i], k.u, n);
            /* du into tmp (free until group_bwd). */
            memset(k.tmp, 0, (size_t)n * sizeof(float));
            sl_fftconv_bwd(&fd, k.u, h + c0 * T, k.dv, k.tmp, dh ? dh + c0 * T : NULL);
            if (ds)
                for (int64_t j = 0; j < nc; j++) {
                    double acc = 0;
                    for (int64_t t = 0; t < BT; t++) acc += (double)k.dv[t * nc + j] * k.u[t * nc + j];
                    ds[c0 + j] += (float)acc;
                }
#pragma omp parallel for schedule(static) if (n >= SL_PAR_MIN)
            for (int64_t t = 0; t < BT; t++)
                for (int64_t j = 0; j < nc; j++) {
                    const int64_t e = t * nc + j;
                    const float du = k.tmp[e] + so[j] * k.dv[e];
                    k.dx[e] = du * k.v[o][e];
                    k.dv[e] = du * k.x[i][e];
                }
            if (dsc) group_bwd(d, p, w, i, d0, nc, k.dx, &k, dp, dw, dbias);
        }
        if (dsc) group_bwd(d, p, w, N, d0, nc, k.dv, &k, dp, dw, dbias);
    }
}

/* ---------------------------------------------------------------- the op */
/* Node: in = {p, w, bias, h, s}, desc: sl_gated_conv_desc. */
static void gated_conv_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *p = nd->in[0], *w = nd->in[1], *bias = nd->in[2], *h = nd->in[3], *s = nd->in[4];
#define GC_GRAD(t) ((t) && (t)->requires_grad ? sl_grad(ctx, t) : NULL)
    sl_gated_conv_bwd(nd->desc, p->data, w->data, bias ? bias->data : NULL, h->data, s->data,
                      nd->out->grad, GC_GRAD(p), GC_GRAD(w), GC_GRAD(bias), GC_GRAD(h),
                      GC_GRAD(s));
#undef GC_GRAD
}

sl_tensor *sl_gated_conv(sl_ctx *ctx, sl_tensor *p, sl_tensor *w, sl_tensor *bias, sl_tensor *h,
                         sl_tensor *s, int64_t N, const sl_seqs *seqs)
{
    sl_require(p->ndim == 3 && N >= 2 && N <= GC_MAX_N && p->shape[2] % (N + 1) == 0,
               "sl_gated_conv", "p [B, T, (N+1)D], N in 2 .. 8");
    const int64_t B = p->shape[0], T = p->shape[1], D = p->shape[2] / (N + 1);
    sl_require(w->ndim == 2 && w->shape[0] == (N + 1) * D && (!bias || bias->n == (N + 1) * D),
               "sl_gated_conv", "w [(N+1)D, K], bias [(N+1)D]");
    sl_require(h->ndim == 2 && h->shape[0] == (N - 1) * D && h->shape[1] == T &&
                   s->n == (N - 1) * D,
               "sl_gated_conv", "h [(N-1)D, T], s [(N-1)D]");
    sl_require(sl_seqs_check(seqs, p, "sl_gated_conv") == SL_OK, "sl_gated_conv",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, C]");
    sl_gated_conv_desc d = {B, T, D, N, w->shape[1], seqs};
    sl_tensor *z = SL_NEW(ctx, B, T, D);
    sl_node *nd = SL_RECORD(ctx, gated_conv_backward, z, p, w, bias, h, s);
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_gated_conv_fwd(&d, p->data, w->data, bias ? bias->data : NULL, h->data, s->data, z->data);
    return z;
}

/* ------------------------------------------------------------- reference */
void sl_gated_conv_ref(const sl_gated_conv_desc *d, const float *p, const float *w,
                       const float *bias, const float *h, const float *s, double *z)
{
    const int64_t T = d->T, D = d->D, N = d->N, K = d->K, P = (N + 1) * D;
    memset(z, 0, (size_t)(d->B * T * D) * sizeof(double));
    double *x = malloc((size_t)((N + 1) * T + 2 * T + 1) * sizeof(double)), *v = x + (N + 1) * T,
           *u = v + T;
    sl_require(x != NULL, "sl_gated_conv_ref", "memory");
    for (int64_t i = 0; i < sl_seq_count(d->seqs, d->B); i++) {
        const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
        for (int64_t c = 0; c < D; c++) {
            for (int64_t g = 0; g <= N; g++) {
                const int64_t cg = g * D + c;
                for (int64_t t = 0; t < L; t++) {
                    double a = bias ? bias[cg] : 0.0;
                    for (int64_t j = 0; j < K; j++) {
                        const int64_t r = t + j - (K - 1);
                        if (r >= 0) a += (double)w[cg * K + j] * p[(st + r) * P + cg];
                    }
                    x[g * T + t] = a;
                }
            }
            for (int64_t t = 0; t < L; t++) v[t] = x[N * T + t];
            for (int64_t o = 0; o + 1 < N; o++) {
                const int64_t co = o * D + c;
                for (int64_t t = 0; t < L; t++) u[t] = v[t] * x[(N - 1 - o) * T + t];
                for (int64_t t = 0; t < L; t++) {
                    double a = s[co] * u[t];
                    for (int64_t r = 0; r <= t; r++) a += (double)h[co * T + t - r] * u[r];
                    v[t] = a;
                }
            }
            for (int64_t t = 0; t < L; t++) z[(st + t) * D + c] = v[t] * x[t];
        }
    }
    free(x);
}
