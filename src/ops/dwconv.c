/* The non-causal depthwise conv: kernels, op and reference. A work item is
 * a block of SL_DWC_CB channels over every sequence, its taps transposed
 * to [K, block] so that each tap is one vector operation over channels. */
#include <string.h>

#include "ops/dwconv.h"
#include "ops/internal.h"

#define SL_DWC_CB 64
#define SL_DWC_KMAX 63

static int64_t blocks(int64_t C) { return (C + SL_DWC_CB - 1) / SL_DWC_CB; }

/* wt: [K, nc] <- w's columns c0 .. c0 + nc, transposed. */
static void taps(const float *w, int64_t K, int64_t c0, int64_t nc, float *wt)
{
    for (int64_t j = 0; j < K; j++)
        for (int64_t i = 0; i < nc; i++) wt[j * SL_DWC_CB + i] = w[(c0 + i) * K + j];
}

void sl_dwconv_fwd(const sl_dwconv_desc *d, const float *x, const float *w, const float *bias,
                   float *y)
{
    const int64_t T = d->T, C = d->C, K = d->K, h = K / 2, N = sl_seq_count(d->seqs, d->B);
#pragma omp parallel for schedule(static) if (d->B * T * C >= SL_PAR_MIN)
    for (int64_t b = 0; b < blocks(C); b++) {
        const int64_t c0 = b * SL_DWC_CB, nc = C - c0 < SL_DWC_CB ? C - c0 : SL_DWC_CB;
        float wt[SL_DWC_KMAX * SL_DWC_CB];
        taps(w, K, c0, nc, wt);
        for (int64_t n = 0; n < N; n++) {
            const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
            for (int64_t t = 0; t < len; t++) {
                float *yr = y + (st + t) * C + c0;
                for (int64_t i = 0; i < nc; i++) yr[i] = bias ? bias[c0 + i] : 0.0f;
                for (int64_t j = 0; j < K; j++) {
                    const int64_t u = t + j - h;
                    if (u < 0 || u >= len) continue;
                    const float *xr = x + (st + u) * C + c0, *wj = wt + j * SL_DWC_CB;
#pragma omp simd
                    for (int64_t i = 0; i < nc; i++) yr[i] += wj[i] * xr[i];
                }
            }
        }
    }
}

void sl_dwconv_bwd(const sl_dwconv_desc *d, const float *x, const float *w, const float *dy,
                   float *dx, float *dw, float *dbias)
{
    const int64_t T = d->T, C = d->C, K = d->K, h = K / 2, N = sl_seq_count(d->seqs, d->B);
#pragma omp parallel for schedule(static) if (d->B * T * C >= SL_PAR_MIN)
    for (int64_t b = 0; b < blocks(C); b++) {
        const int64_t c0 = b * SL_DWC_CB, nc = C - c0 < SL_DWC_CB ? C - c0 : SL_DWC_CB;
        float wt[SL_DWC_KMAX * SL_DWC_CB], gw[SL_DWC_KMAX * SL_DWC_CB], gb[SL_DWC_CB];
        taps(w, K, c0, nc, wt);
        memset(gw, 0, sizeof gw);
        memset(gb, 0, sizeof gb);
        for (int64_t n = 0; n < N; n++) {
            const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
            for (int64_t t = 0; t < len; t++) {
                const float *g = dy + (st + t) * C + c0;
#pragma omp simd
                for (int64_t i = 0; i < nc; i++) gb[i] += g[i];
                for (int64_t j = 0; j < K; j++) {
                    const int64_t u = t + j - h;
                    if (u < 0 || u >= len) continue;
                    const float *xr = x + (st + u) * C + c0, *wj = wt + j * SL_DWC_CB;
                    float *gwj = gw + j * SL_DWC_CB;
                    if (dx) {
                        float *dxr = dx + (st + u) * C + c0;
#pragma omp simd
                        for (int64_t i = 0; i < nc; i++) dxr[i] += wj[i] * g[i];
                    }
#pragma omp simd
                    for (int64_t i = 0; i < nc; i++) gwj[i] += g[i] * xr[i];
                }
            }
        }
        for (int64_t i = 0; i < nc; i++) {
            if (dbias) dbias[c0 + i] += gb[i];
            for (int64_t j = 0; j < K && dw; j++) dw[(c0 + i) * K + j] += gw[j * SL_DWC_CB + i];
        }
    }
}

/* Node: in = {x, w, bias}, out = y, saved = the desc (its seqs kept). */
static void dwconv_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *w = nd->in[1], *bias = nd->in[2];
    sl_dwconv_bwd(nd->saved, x->data, w->data, nd->out->grad,
                  x->requires_grad ? sl_grad(ctx, x) : NULL,
                  w->requires_grad ? sl_grad(ctx, w) : NULL,
                  bias && bias->requires_grad ? sl_grad(ctx, bias) : NULL);
}

/* x: [B, T, C], w: [C, K], bias: [C] | NULL -> y: [B, T, C] */
sl_tensor *sl_dwconv(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *bias,
                     const sl_seqs *seqs)
{
    sl_require(x->ndim == 3 && w->ndim == 2 && w->shape[0] == x->shape[2] &&
                   w->shape[1] % 2 == 1 && w->shape[1] <= SL_DWC_KMAX &&
                   (!bias || bias->n == x->shape[2]),
               "sl_dwconv", "x [B, T, C], w [C, K] with K odd and <= 63, bias [C]");
    sl_require(sl_seqs_check(seqs, x, "sl_dwconv") == SL_OK, "sl_dwconv",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, C]");
    const sl_dwconv_desc d = {x->shape[0], x->shape[1], x->shape[2], w->shape[1], seqs};
    sl_tensor *y = sl_tensor_like(ctx, x);
    sl_dwconv_fwd(&d, x->data, w->data, bias ? bias->data : NULL, y->data);
    sl_node *nd = SL_RECORD(ctx, dwconv_backward, y, x, w, bias);
    if (nd) {
        sl_dwconv_desc *s = sl_arena_alloc(&ctx->arena, sizeof *s);
        *s = d;
        s->seqs = seqs ? sl_seqs_keep(ctx, seqs) : NULL;
        nd->saved = s;
    }
    return y;
}

void sl_dwconv_ref(const sl_dwconv_desc *d, const float *x, const float *w, const float *bias,
                   double *y)
{
    const int64_t T = d->T, C = d->C, K = d->K;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        for (int64_t t = 0; t < len; t++)
            for (int64_t c = 0; c < C; c++) {
                double s = bias ? bias[c] : 0.0;
                for (int64_t j = 0; j < K; j++) {
                    const int64_t u = t + j - K / 2;
                    if (u >= 0 && u < len) s += (double)w[c * K + j] * x[(st + u) * C + c];
                }
                y[(st + t) * C + c] = s;
            }
    }
}
