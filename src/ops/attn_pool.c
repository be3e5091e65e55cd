/* Global attention pooling: the kernels, the op and the reference. A work
 * item is one (sequence, head); it reads only that head's columns of its
 * sequence's keys and writes only their gradient, and its own slices of v
 * and dg. */
#include <math.h>
#include <string.h>

#include "ops/attn_pool.h"
#include "ops/internal.h"

static float dot(const float *a, const float *b, int64_t P)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < P; j++) s += a[j] * b[j];
    return s;
}

/* Item w's sequence n, head h, first key (offset into k), length; its
 * scratch is 2 floats per token at 2 (H st + h L), st its first token. */
static void item(const sl_attn_pool_desc *d, int64_t w, int64_t *n, int64_t *ko, int64_t *L,
                 int64_t *so)
{
    const int64_t h = w % d->H;
    *n = w / d->H;
    const int64_t st = sl_seq_start(d->seqs, *n, d->T);
    *L = sl_seq_len(d->seqs, *n, d->T);
    *ko = st * d->ld + h * d->P;
    *so = 2 * (d->H * st + h * *L);
}

int64_t sl_attn_pool_scratch_floats(const sl_attn_pool_desc *d) { return 2 * d->H * d->B * d->T; }

void sl_attn_pool_fwd(const sl_attn_pool_desc *d, const float *g, const float *k, float *v,
                      float *scratch)
{
    const int64_t H = d->H, P = d->P, ld = d->ld, N = sl_seq_count(d->seqs, d->B);
    const float scale = 1.0f / sqrtf((float)P);
#pragma omp parallel for schedule(static) if (d->B * d->T * H * P >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * H; w++) {
        int64_t n, ko, L, so;
        item(d, w, &n, &ko, &L, &so);
        const float *gh = g + n * H * P + (w % H) * P, *kh = k + ko;
        float *vh = v + n * H * P + (w % H) * P, *s = scratch + so, m = -INFINITY, z = 0;
        for (int64_t t = 0; t < L; t++) {
            s[t] = dot(gh, kh + t * ld, P) * scale;
            m = fmaxf(m, s[t]);
        }
        memset(vh, 0, (size_t)P * sizeof(float));
        for (int64_t t = 0; t < L; t++) {
            const float e = expf(s[t] - m), *kt = kh + t * ld;
            z += e;
#pragma omp simd
            for (int64_t j = 0; j < P; j++) vh[j] += e * kt[j];
        }
        for (int64_t j = 0; j < P && L; j++) vh[j] /= z;
    }
}

void sl_attn_pool_bwd(const sl_attn_pool_desc *d, const float *g, const float *k, const float *dv,
                      float *dg, float *dk, float *scratch)
{
    const int64_t H = d->H, P = d->P, ld = d->ld, N = sl_seq_count(d->seqs, d->B);
    const float scale = 1.0f / sqrtf((float)P);
#pragma omp parallel for schedule(static) if (d->B * d->T * H * P >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * H; w++) {
        int64_t n, ko, L, so;
        item(d, w, &n, &ko, &L, &so);
        const int64_t c = n * H * P + (w % H) * P;
        const float *gh = g + c, *dvh = dv + c, *kh = k + ko;
        /* a: the scores, then the softmax weights; e_t = dv . k_t. */
        float *a = scratch + so, *e = a + L, m = -INFINITY, z = 0, abar = 0;
        for (int64_t t = 0; t < L; t++) {
            a[t] = dot(gh, kh + t * ld, P) * scale;
            e[t] = dot(dvh, kh + t * ld, P);
            m = fmaxf(m, a[t]);
        }
        for (int64_t t = 0; t < L; t++) {
            a[t] = expf(a[t] - m);
            z += a[t];
            abar += a[t] * e[t];
        }
        abar /= z;
        for (int64_t t = 0; t < L; t++) {
            const float at = a[t] / z, ds = at * (e[t] - abar) * scale, *kt = kh + t * ld;
            if (dk) {
                float *dkt = dk + ko + t * ld;
#pragma omp simd
                for (int64_t j = 0; j < P; j++) dkt[j] += at * dvh[j] + ds * gh[j];
            }
            if (dg)
#pragma omp simd
                for (int64_t j = 0; j < P; j++) dg[c + j] += ds * kt[j];
        }
    }
}

/* Node: in = {g, x}, out = v, desc = the kernel's (its k offset in x
 * beside it), saved = the kept bounds. */
typedef struct attn_pool_node {
    sl_attn_pool_desc d;
    int64_t off;
} attn_pool_node;

static void attn_pool_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *g = nd->in[0], *x = nd->in[1];
    const attn_pool_node *a = nd->desc;
    sl_attn_pool_desc d = a->d;
    d.seqs = nd->saved;
    sl_attn_pool_bwd(&d, g->data, x->data + a->off, nd->out->grad,
                     g->requires_grad ? sl_grad(ctx, g) : NULL,
                     x->requires_grad ? sl_grad(ctx, x) + a->off : NULL,
                     sl_arena_floats(ctx, sl_attn_pool_scratch_floats(&d)));
}

/* g: [N, H*P], x: [B, T, C] -> v: [N, H*P] */
sl_tensor *sl_attn_pool(sl_ctx *ctx, sl_tensor *g, sl_tensor *x, int64_t off, int64_t H,
                        const sl_seqs *seqs)
{
    sl_require(x->ndim == 3 && g->ndim == 2 && H > 0 && g->shape[1] % H == 0 && off >= 0 &&
                   off + g->shape[1] <= x->shape[2],
               "sl_attn_pool", "g [N, H*P], keys x[..., off : off + H*P] of x [B, T, C]");
    sl_require(sl_seqs_check(seqs, x, "sl_attn_pool") == SL_OK &&
                   g->shape[0] == sl_seq_count(seqs, x->shape[0]),
               "sl_attn_pool",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, C], "
               "one row of g per sequence");
    const attn_pool_node a = {{x->shape[0], x->shape[1], H, g->shape[1] / H, x->shape[2], seqs},
                              off};
    sl_tensor *v = sl_tensor_like(ctx, g);
    sl_attn_pool_fwd(&a.d, g->data, x->data + off, v->data,
                     sl_arena_floats(ctx, sl_attn_pool_scratch_floats(&a.d)));
    sl_node *nd = SL_RECORD(ctx, attn_pool_backward, v, g, x);
    if (nd) {
        SL_KEEP_DESC(ctx, nd, a);
        nd->saved = (void *)sl_seqs_keep(ctx, seqs);
    }
    return v;
}

void sl_attn_pool_ref(const sl_attn_pool_desc *d, const float *g, const float *k, double *v)
{
    const int64_t H = d->H, P = d->P, W = H * P, T = d->T, ld = d->ld;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), L = sl_seq_len(d->seqs, n, T);
        for (int64_t h = 0; h < H; h++) {
            double *vh = v + n * W + h * P, z = 0, m = -INFINITY;
            const float *gh = g + n * W + h * P, *kh = k + st * ld + h * P;
            for (int64_t j = 0; j < P; j++) vh[j] = 0;
            for (int64_t t = 0; t < L; t++) {
                double s = 0;
                for (int64_t j = 0; j < P; j++) s += (double)gh[j] * kh[t * ld + j];
                m = fmax(m, s / sqrt((double)P));
            }
            for (int64_t t = 0; t < L; t++) {
                double s = 0;
                for (int64_t j = 0; j < P; j++) s += (double)gh[j] * kh[t * ld + j];
                const double e = exp(s / sqrt((double)P) - m);
                z += e;
                for (int64_t j = 0; j < P; j++) vh[j] += e * kh[t * ld + j];
            }
            for (int64_t j = 0; j < P && L; j++) vh[j] /= z;
        }
    }
}
