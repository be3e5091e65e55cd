/* PoNet's pooling fusion: the kernels, the op and the reference. A work
 * item is one (sequence, block of SL_FUSION_CB channels); every range stays
 * inside its sequence, so an item reads and writes only its own rows and
 * channels (and its slice of dv), and no two threads meet. */
#include <string.h>

#include "ops/internal.h"
#include "ops/pool_fusion.h"

/* mx[j], am[j]: the max and first argmax (a strict `>` scan) of column
 * j < nc over rows [lo, hi) (lo < hi) of x, rows ld apart. */
static inline void range_max(const float *x, int64_t ld, int64_t nc, int64_t lo, int64_t hi,
                             float *mx, int64_t *am)
{
    for (int64_t j = 0; j < nc; j++) {
        mx[j] = x[lo * ld + j];
        am[j] = lo;
    }
    for (int64_t u = lo + 1; u < hi; u++) {
        const float *r = x + u * ld;
#pragma omp simd
        for (int64_t j = 0; j < nc; j++) {
            const bool gt = r[j] > mx[j];
            mx[j] = gt ? r[j] : mx[j];
            am[j] = gt ? u : am[j];
        }
    }
}

/* Channels per work item. */
#define SL_FUSION_CB 64

static int64_t blocks(int64_t D) { return (D + SL_FUSION_CB - 1) / SL_FUSION_CB; }

/* Item w's sequence *n, first token *st, length *len, first channel *c0
 * and width *nc. */
static void item(const sl_pool_fusion_desc *d, int64_t w, int64_t *n, int64_t *st, int64_t *len,
                 int64_t *c0, int64_t *nc)
{
    *n = w / blocks(d->D);
    *st = sl_seq_start(d->seqs, *n, d->T);
    *len = sl_seq_len(d->seqs, *n, d->T);
    *c0 = (w % blocks(d->D)) * SL_FUSION_CB;
    *nc = d->D - *c0 < SL_FUSION_CB ? d->D - *c0 : SL_FUSION_CB;
}

/* Token t's window [*lo, *hi) in a sequence of len tokens, h = w/2. */
static void window(int64_t t, int64_t h, int64_t len, int64_t *lo, int64_t *hi)
{
    *lo = t - h > 0 ? t - h : 0;
    *hi = t + h + 1 < len ? t + h + 1 : len;
}

void sl_pool_fusion_fwd(const sl_pool_fusion_desc *d, const float *v, const float *o, float *y)
{
    const int64_t D = d->D, ld = d->ld, S = d->segment, h = d->window / 2;
    const int64_t items = sl_seq_count(d->seqs, d->B) * blocks(D);
#pragma omp parallel for schedule(static) if (d->B * d->T * D >= SL_PAR_MIN)
    for (int64_t w = 0; w < items; w++) {
        int64_t n, st, len, c0, nc, am[SL_FUSION_CB], lo, hi;
        float vs[SL_FUSION_CB], lm[SL_FUSION_CB];
        item(d, w, &n, &st, &len, &c0, &nc);
        const float *ob = o + st * ld + c0, *sb = ob + D, *lb = ob + 2 * D, *vn = v + n * D + c0;
        float *yb = y + st * D + c0;
        for (int64_t t0 = 0; t0 < len; t0 += S) {
            const int64_t t1 = t0 + S < len ? t0 + S : len;
            range_max(sb, ld, nc, t0, t1, vs, am);
            for (int64_t j = 0; j < nc; j++) vs[j] = vn[j] + vs[j];
            for (int64_t t = t0; t < t1; t++) {
                window(t, h, len, &lo, &hi);
                range_max(lb, ld, nc, lo, hi, lm, am);
#pragma omp simd
                for (int64_t j = 0; j < nc; j++) yb[t * D + j] = vs[j] * ob[t * ld + j] + lm[j];
            }
        }
    }
}

void sl_pool_fusion_bwd(const sl_pool_fusion_desc *d, const float *v, const float *o,
                        const float *dy, float *dv, float *dx, bool set)
{
    const int64_t D = d->D, ld = d->ld, S = d->segment, h = d->window / 2;
    const int64_t items = sl_seq_count(d->seqs, d->B) * blocks(D);
#pragma omp parallel for schedule(static) if (d->B * d->T * D >= SL_PAR_MIN)
    for (int64_t w = 0; w < items; w++) {
        int64_t n, st, len, c0, nc, sam[SL_FUSION_CB], lam[SL_FUSION_CB], lo, hi;
        float vs[SL_FUSION_CB], lm[SL_FUSION_CB], gs[SL_FUSION_CB], gv[SL_FUSION_CB] = {0};
        item(d, w, &n, &st, &len, &c0, &nc);
        const float *ob = o + st * ld + c0, *sb = ob + D, *lb = ob + 2 * D, *vn = v + n * D + c0;
        const float *dyb = dy + st * D + c0;
        float *dob = dx + st * ld + c0, *dsb = dob + D, *dlb = dob + 2 * D;
        /* Overwriting, dl's row j is zeroed just before the first window
         * that reaches it (token j - h) scatters, while it is in cache. */
        for (int64_t u = 0; set && u < h && u < len; u++)
            memset(dlb + u * ld, 0, (size_t)nc * sizeof(float));
        for (int64_t t0 = 0; t0 < len; t0 += S) {
            const int64_t t1 = t0 + S < len ? t0 + S : len;
            range_max(sb, ld, nc, t0, t1, vs, sam);
            for (int64_t j = 0; j < nc; j++) {
                vs[j] = vn[j] + vs[j];
                gs[j] = 0;
            }
            for (int64_t t = t0; t < t1; t++) {
                const float *dyt = dyb + t * D, *ot = ob + t * ld;
                float *dot = dob + t * ld;
#pragma omp simd
                for (int64_t j = 0; j < nc; j++) {
                    const float p = dyt[j] * ot[j];
                    gs[j] += p;
                    gv[j] += p;
                    dot[j] = dyt[j] * vs[j] + (set ? 0.0f : dot[j]);
                }
                if (set && t + h < len) memset(dlb + (t + h) * ld, 0, (size_t)nc * sizeof(float));
                window(t, h, len, &lo, &hi);
                range_max(lb, ld, nc, lo, hi, lm, lam);
                for (int64_t j = 0; j < nc; j++) dlb[lam[j] * ld + j] += dyt[j];
            }
            if (set)
                for (int64_t u = t0; u < t1; u++)
#pragma omp simd
                    for (int64_t j = 0; j < nc; j++) dsb[u * ld + j] = u == sam[j] ? gs[j] : 0.0f;
            else
                for (int64_t j = 0; j < nc; j++) dsb[sam[j] * ld + j] += gs[j];
        }
        for (int64_t j = 0; j < nc; j++) dv[n * D + c0 + j] += gv[j];
    }
}

/* Node: in = {v, x}, out = y, desc = the kernel's with o's column in x,
 * saved = the kept bounds. */
typedef struct pool_fusion_node {
    sl_pool_fusion_desc d;
    int64_t off;
} pool_fusion_node;

/* An input without a gradient gets a scratch one, so the kernel always
 * writes both. Overwriting x's gradient, the columns outside o, s, l are
 * zeroed here. */
static void pool_fusion_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *v = nd->in[0], *x = nd->in[1];
    const pool_fusion_node *a = nd->desc;
    sl_pool_fusion_desc d = a->d;
    d.seqs = nd->saved;
    const int64_t C = d.ld, R = d.B * d.T, lo = a->off, hi = a->off + 3 * d.D;
    const bool set = !x->requires_grad || !x->grad;
    float *dx = x->requires_grad && x->grad ? x->grad : sl_arena_floats(ctx, x->n);
    if (x->requires_grad) x->grad = dx;
    if (set && (lo > 0 || hi < C)) {
#pragma omp parallel for schedule(static) if (R * C >= SL_PAR_MIN)
        for (int64_t r = 0; r < R; r++) {
            memset(dx + r * C, 0, (size_t)lo * sizeof(float));
            memset(dx + r * C + hi, 0, (size_t)(C - hi) * sizeof(float));
        }
    }
    float *dv = v->requires_grad ? sl_grad(ctx, v) : sl_arena_floats(ctx, v->n);
    if (!v->requires_grad) memset(dv, 0, (size_t)v->n * sizeof(float));
    sl_pool_fusion_bwd(&d, v->data, x->data + lo, nd->out->grad, dv, dx + lo, set);
}

/* v: [N, D], x: [B, T, C] -> y: [B, T, D] */
sl_tensor *sl_pool_fusion(sl_ctx *ctx, sl_tensor *v, sl_tensor *x, int64_t off, int64_t segment,
                          int64_t window, const sl_seqs *seqs)
{
    sl_require(x->ndim == 3 && v->ndim == 2 && off >= 0 && off + 3 * v->shape[1] <= x->shape[2],
               "sl_pool_fusion", "v [N, D], o, s, l in x[..., off : off + 3D] of x [B, T, C]");
    sl_require(segment >= 1 && window >= 1 && window % 2 == 1, "sl_pool_fusion",
               "a segment >= 1 and an odd window >= 1");
    sl_require(sl_seqs_check(seqs, x, "sl_pool_fusion") == SL_OK &&
                   v->shape[0] == sl_seq_count(seqs, x->shape[0]),
               "sl_pool_fusion",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, C], "
               "one row of v per sequence");
    const int64_t B = x->shape[0], T = x->shape[1], D = v->shape[1];
    const pool_fusion_node a = {{B, T, D, x->shape[2], segment, window, seqs}, off};
    sl_tensor *y = SL_NEW(ctx, B, T, D);
    sl_pool_fusion_fwd(&a.d, v->data, x->data + off, y->data);
    sl_node *nd = SL_RECORD(ctx, pool_fusion_backward, y, v, x);
    if (nd) {
        SL_KEEP_DESC(ctx, nd, a);
        nd->saved = (void *)sl_seqs_keep(ctx, seqs);
    }
    return y;
}

/* The first argmax of rows [lo, hi) of column x (rows ld apart). */
static int64_t argmax_ref(const float *x, int64_t ld, int64_t lo, int64_t hi)
{
    int64_t a = lo;
    for (int64_t u = lo + 1; u < hi; u++)
        if (x[u * ld] > x[a * ld]) a = u;
    return a;
}

void sl_pool_fusion_ref(const sl_pool_fusion_desc *d, const float *v, const float *o,
                        const float *dy, double *y, double *dv, double *dx)
{
    const int64_t D = d->D, ld = d->ld, S = d->segment, h = d->window / 2;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, d->T), len = sl_seq_len(d->seqs, n, d->T);
        const float *os = o + st * ld;
        for (int64_t t = 0; t < len; t++) {
            const int64_t s0 = t / S * S, s1 = s0 + S < len ? s0 + S : len;
            const int64_t l0 = t - h > 0 ? t - h : 0, l1 = t + h + 1 < len ? t + h + 1 : len;
            for (int64_t c = 0; c < D; c++) {
                const int64_t as = argmax_ref(os + D + c, ld, s0, s1);
                const int64_t al = argmax_ref(os + 2 * D + c, ld, l0, l1);
                const double vs = (double)v[n * D + c] + os[as * ld + D + c];
                const double ot = os[t * ld + c];
                y[(st + t) * D + c] = vs * ot + os[al * ld + 2 * D + c];
                if (!dy) continue;
                const double g = dy[(st + t) * D + c];
                dv[n * D + c] += g * ot;
                dx[(st + t) * ld + c] += g * vs;
                dx[(st + as) * ld + D + c] += g * ot;
                dx[(st + al) * ld + 2 * D + c] += g;
            }
        }
    }
}
