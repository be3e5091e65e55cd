/* Window and segment max pooling: the kernels, the op that records them
 * and the reference. Work is split into (sequence, block of SL_POOL_CB
 * channels) items; a token's range never leaves its sequence, so an item
 * writes only its own rows of dx and no two threads meet. */
#include <string.h>

#include "ops/internal.h"
#include "ops/pool.h"

/* Channels per work item. */
#define SL_POOL_CB 64

static int64_t blocks(int64_t C) { return (C + SL_POOL_CB - 1) / SL_POOL_CB; }

/* The outputs [t, *end) that share one range [*lo, *hi) of a sequence of
 * len tokens, the first of them t: a whole segment, or one token. */
static void group(const sl_pool_desc *d, int64_t t, int64_t len, int64_t *end, int64_t *lo,
                  int64_t *hi)
{
    if (d->kind == SL_POOL_SEGMENT) {
        *lo = t;
        *hi = *end = t + d->size < len ? t + d->size : len;
        return;
    }
    const int64_t h = d->size / 2;
    *end = t + 1;
    *lo = t - h > 0 ? t - h : 0;
    *hi = t + h + 1 < len ? t + h + 1 : len;
}

/* Work items: (sequence, block of channels). */
static int64_t items(const sl_pool_desc *d) { return sl_seq_count(d->seqs, d->B) * blocks(d->C); }

/* Item w's first token *st, length *len, first channel *c0 and width *nc. */
static void item(const sl_pool_desc *d, int64_t w, int64_t *st, int64_t *len, int64_t *c0,
                 int64_t *nc)
{
    const int64_t n = w / blocks(d->C);
    *st = sl_seq_start(d->seqs, n, d->T);
    *len = sl_seq_len(d->seqs, n, d->T);
    *c0 = (w % blocks(d->C)) * SL_POOL_CB;
    *nc = d->C - *c0 < SL_POOL_CB ? d->C - *c0 : SL_POOL_CB;
}

void sl_max_pool_fwd(const sl_pool_desc *d, const float *x, float *y)
{
    const int64_t C = d->C;
#pragma omp parallel for schedule(static) if (d->B * d->T * C >= SL_PAR_MIN)
    for (int64_t w = 0; w < items(d); w++) {
        int64_t st, len, c0, nc, am[SL_POOL_CB], end, lo, hi;
        float mx[SL_POOL_CB];
        item(d, w, &st, &len, &c0, &nc);
        for (int64_t t = 0; t < len; t = end) {
            group(d, t, len, &end, &lo, &hi);
            sl_pool_range_max(x + st * C + c0, C, nc, lo, hi, mx, am);
            for (int64_t u = t; u < end; u++)
                memcpy(y + (st + u) * C + c0, mx, (size_t)nc * sizeof(float));
        }
    }
}

void sl_max_pool_bwd(const sl_pool_desc *d, const float *x, const float *dy, float *dx)
{
    const int64_t C = d->C;
#pragma omp parallel for schedule(static) if (d->B * d->T * C >= SL_PAR_MIN)
    for (int64_t w = 0; w < items(d); w++) {
        int64_t st, len, c0, nc, am[SL_POOL_CB], end, lo, hi;
        float mx[SL_POOL_CB], g[SL_POOL_CB];
        item(d, w, &st, &len, &c0, &nc);
        for (int64_t t = 0; t < len; t = end) {
            group(d, t, len, &end, &lo, &hi);
            sl_pool_range_max(x + st * C + c0, C, nc, lo, hi, mx, am);
            memset(g, 0, sizeof g);
            for (int64_t u = t; u < end; u++) {
                const float *r = dy + (st + u) * C + c0;
#pragma omp simd
                for (int64_t j = 0; j < nc; j++) g[j] += r[j];
            }
            for (int64_t j = 0; j < nc; j++) dx[(st + am[j]) * C + c0 + j] += g[j];
        }
    }
}

/* Node: in = {x}, out = y, saved = the desc (its seqs kept). */
static void max_pool_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    if (x->requires_grad) sl_max_pool_bwd(nd->saved, x->data, nd->out->grad, sl_grad(ctx, x));
}

/* x: [B, T, C] -> y: [B, T, C] */
sl_tensor *sl_max_pool(sl_ctx *ctx, sl_tensor *x, int kind, int64_t size, const sl_seqs *seqs)
{
    sl_require(x->ndim == 3, "sl_max_pool", "x [B, T, C]");
    sl_require(size >= 1 && (kind == SL_POOL_SEGMENT || size % 2 == 1), "sl_max_pool",
               "a size >= 1, odd for a window");
    sl_require(sl_seqs_check(seqs, x, "sl_max_pool") == SL_OK, "sl_max_pool",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, C]");
    const sl_pool_desc d = {x->shape[0], x->shape[1], x->shape[2], kind, size, seqs};
    sl_tensor *y = sl_tensor_like(ctx, x);
    sl_max_pool_fwd(&d, x->data, y->data);
    sl_node *nd = SL_RECORD(ctx, max_pool_backward, y, x);
    if (nd) {
        sl_pool_desc *k = sl_arena_alloc(&ctx->arena, sizeof *k);
        *k = d;
        k->seqs = seqs ? sl_seqs_keep(ctx, seqs) : NULL;
        nd->saved = k;
    }
    return y;
}

/* The range of token t (of len) as the definition reads: for a segment,
 * the one holding t. */
static void ref_range(const sl_pool_desc *d, int64_t t, int64_t len, int64_t *lo, int64_t *hi)
{
    int64_t end;
    group(d, d->kind == SL_POOL_SEGMENT ? t / d->size * d->size : t, len, &end, lo, hi);
}

void sl_max_pool_ref(const sl_pool_desc *d, const float *x, const float *dy, double *y,
                     double *dx)
{
    const int64_t T = d->T, C = d->C;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        for (int64_t t = 0; t < len; t++) {
            int64_t lo, hi;
            ref_range(d, t, len, &lo, &hi);
            for (int64_t c = 0; c < C; c++) {
                int64_t a = lo;
                for (int64_t u = lo + 1; u < hi; u++)
                    if (x[(st + u) * C + c] > x[(st + a) * C + c]) a = u;
                y[(st + t) * C + c] = x[(st + a) * C + c];
                if (dy) dx[(st + a) * C + c] += dy[(st + t) * C + c];
            }
        }
    }
}
