/* The diagonal scan: its kernels, the op that records them, the reference
 * and the one-token step. Work is split into (sequence, block of SL_DS_CB
 * channels) items; each walks its sequence in time with a carry of one
 * block, so a token's update is one vector operation. */
#include <string.h>

#include "ops/diag_scan.h"
#include "ops/internal.h"

/* Channels per work item: a few vectors wide, and enough items to share. */
#define SL_DS_CB 64

static int64_t blocks(int64_t C) { return (C + SL_DS_CB - 1) / SL_DS_CB; }

void sl_diag_scan_fwd(const sl_diag_scan_desc *d, const float *a, const float *b, const float *s0,
                      float *h, float *s_final)
{
    const int64_t T = d->T, C = d->C, N = sl_seq_count(d->seqs, d->B), NB = blocks(C);
#pragma omp parallel for schedule(static) if (d->B * T * C >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * NB; w++) {
        const int64_t n = w / NB, c0 = (w % NB) * SL_DS_CB;
        const int64_t nc = C - c0 < SL_DS_CB ? C - c0 : SL_DS_CB;
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        float carry[SL_DS_CB];
        for (int64_t j = 0; j < nc; j++) carry[j] = s0 ? s0[n * C + c0 + j] : 0.0f;
        for (int64_t t = 0; t < len; t++) {
            const int64_t o = (st + t) * C + c0;
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) {
                carry[j] = a[o + j] * carry[j] + b[o + j];
                h[o + j] = carry[j];
            }
        }
        if (s_final) memcpy(s_final + n * C + c0, carry, (size_t)nc * sizeof(float));
    }
}

void sl_diag_scan_bwd(const sl_diag_scan_desc *d, const float *a, const float *h, const float *s0,
                      const float *dh, float *da, float *db, float *ds0)
{
    const int64_t T = d->T, C = d->C, N = sl_seq_count(d->seqs, d->B), NB = blocks(C);
#pragma omp parallel for schedule(static) if (d->B * T * C >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * NB; w++) {
        const int64_t n = w / NB, c0 = (w % NB) * SL_DS_CB;
        const int64_t nc = C - c0 < SL_DS_CB ? C - c0 : SL_DS_CB;
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        /* g: dL/dh_t with every later token's use folded in; the a_{t+1}
         * factor is applied when the walk steps back past token t + 1. */
        float g[SL_DS_CB] = {0};
        if (d->ds_final) memcpy(g, d->ds_final + n * C + c0, (size_t)nc * sizeof(float));
        for (int64_t t = len - 1; t >= 0; t--) {
            const int64_t o = (st + t) * C + c0;
            const float *hp = t > 0 ? h + o - C : s0 ? s0 + n * C + c0 : NULL;
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) {
                g[j] += dh[o + j];
                if (db) db[o + j] += g[j];
                if (da && hp) da[o + j] += g[j] * hp[j];
                g[j] *= a[o + j];
            }
        }
        if (ds0)
            for (int64_t j = 0; j < nc; j++) ds0[n * C + c0 + j] += g[j];
    }
}

/* Node: in = {a, b, s0}, out = h, desc = sl_diag_scan_desc. */
static void diag_scan_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *a = nd->in[0], *b = nd->in[1], *s0 = nd->in[2];
    sl_diag_scan_bwd(nd->desc, a->data, nd->out->data, s0 ? s0->data : NULL, nd->out->grad,
                     a->requires_grad ? sl_grad(ctx, a) : NULL,
                     b->requires_grad ? sl_grad(ctx, b) : NULL,
                     s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL);
}

/* a, b: [B, T, C], s0: [N, C] | NULL -> h: [B, T, C]; s_final: [N, C] | NULL. */
sl_tensor *sl_diag_scan(sl_ctx *ctx, sl_tensor *a, sl_tensor *b, sl_tensor *s0, float *s_final,
                        const sl_seqs *seqs)
{
    sl_require(a->ndim == 3 && b->ndim == 3 && a->shape[0] == b->shape[0] &&
                   a->shape[1] == b->shape[1] && a->shape[2] == b->shape[2],
               "sl_diag_scan", "a, b [B, T, C]");
    /* Before anything is allocated or recorded: bounds past T would read and
     * write outside every tensor. */
    sl_require(sl_seqs_check(seqs, a, "sl_diag_scan") == SL_OK, "sl_diag_scan",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, C]");
    sl_diag_scan_desc d = {a->shape[0], a->shape[1], a->shape[2], seqs,
                           sl_state_final_grad(ctx, s_final)};
    sl_require(!s0 || s0->n == sl_seq_count(seqs, d.B) * d.C, "sl_diag_scan", "s0 [N, C]");
    sl_tensor *h = sl_tensor_like(ctx, a);
    sl_node *nd = SL_RECORD(ctx, diag_scan_backward, h, a, b, s0);
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_diag_scan_fwd(&d, a->data, b->data, s0 ? s0->data : NULL, h->data, s_final);
    return h;
}

void sl_diag_scan_ref(const sl_diag_scan_desc *d, const float *a, const float *b, const float *s0,
                      double *h, double *s_final)
{
    const int64_t T = d->T, C = d->C;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        for (int64_t c = 0; c < C; c++) {
            double s = s0 ? s0[n * C + c] : 0.0;
            for (int64_t t = 0; t < len; t++) {
                const int64_t i = (st + t) * C + c;
                s = a[i] * s + b[i];
                h[i] = s;
            }
            if (s_final) s_final[n * C + c] = s;
        }
    }
}

void sl_diag_scan_step(float *state, const float *a, const float *b, int64_t C)
{
#pragma omp simd
    for (int64_t c = 0; c < C; c++) state[c] = a[c] * state[c] + b[c];
}
