/* Global attention pooling: the kernels, the op and the reference. A work
 * item is one (sequence, head); it reads and writes only that head's
 * columns of its sequence's rows. */
#include <math.h>
#include <string.h>

#include "ops/attn_pool.h"
#include "ops/internal.h"

/* The sequence's pooled query g: [P], the softmax's max m and sum z, and
 * v: [P], for rows xs (q, k: rows W apart, at the head's column). */
static void pool_head(const float *q, const float *k, int64_t W, int64_t L, int64_t P, float *g,
                      float *v, float *m, float *z)
{
    const float scale = 1.0f / sqrtf((float)P);
    memset(g, 0, (size_t)P * sizeof(float));
    for (int64_t t = 0; t < L; t++)
#pragma omp simd
        for (int64_t j = 0; j < P; j++) g[j] += q[t * W + j];
    for (int64_t j = 0; j < P; j++) g[j] /= (float)L;
    *m = -INFINITY;
    for (int64_t t = 0; t < L; t++) {
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < P; j++) s += g[j] * k[t * W + j];
        *m = fmaxf(*m, s * scale);
    }
    *z = 0;
    memset(v, 0, (size_t)P * sizeof(float));
    for (int64_t t = 0; t < L; t++) {
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < P; j++) s += g[j] * k[t * W + j];
        const float e = expf(s * scale - *m);
        *z += e;
#pragma omp simd
        for (int64_t j = 0; j < P; j++) v[j] += e * k[t * W + j];
    }
    for (int64_t j = 0; j < P; j++) v[j] /= *z;
}

int64_t sl_attn_pool_scratch_floats(const sl_attn_pool_desc *d)
{
    return sl_seq_count(d->seqs, d->B) * d->H * 3 * d->P;
}

void sl_attn_pool_fwd(const sl_attn_pool_desc *d, const float *q, const float *k, float *y,
                      float *scratch)
{
    const int64_t T = d->T, H = d->H, P = d->P, W = H * P, N = sl_seq_count(d->seqs, d->B);
#pragma omp parallel for schedule(static) if (d->B * T * W >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * H; w++) {
        const int64_t n = w / H, h = w % H;
        const int64_t o = sl_seq_start(d->seqs, n, T) * W + h * P, L = sl_seq_len(d->seqs, n, T);
        if (L == 0) continue;
        float *g = scratch + w * 3 * P, *v = g + P, m, z;
        pool_head(q + o, k + o, W, L, P, g, v, &m, &z);
        for (int64_t t = 0; t < L; t++) memcpy(y + o + t * W, v, (size_t)P * sizeof(float));
    }
}

/* Token k_t's softmax weight *a = exp(g . k_t scale - m) / z and
 * *e = dv . k_t. */
static void weight(const float *g, const float *dv, const float *kt, int64_t P, float scale,
                   float m, float z, float *a, float *e)
{
    float s = 0, de = 0;
#pragma omp simd reduction(+ : s, de)
    for (int64_t j = 0; j < P; j++) {
        s += g[j] * kt[j];
        de += dv[j] * kt[j];
    }
    *a = expf(s * scale - m) / z;
    *e = de;
}

void sl_attn_pool_bwd(const sl_attn_pool_desc *d, const float *q, const float *k, const float *dy,
                      float *dq, float *dk, float *scratch)
{
    const int64_t T = d->T, H = d->H, P = d->P, W = H * P, N = sl_seq_count(d->seqs, d->B);
    const float scale = 1.0f / sqrtf((float)P);
#pragma omp parallel for schedule(static) if (d->B * T * W >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * H; w++) {
        const int64_t n = w / H, h = w % H;
        const int64_t o = sl_seq_start(d->seqs, n, T) * W + h * P, L = sl_seq_len(d->seqs, n, T);
        if (L == 0) continue;
        float *g = scratch + w * 3 * P, *v = g + P, *dv = v + P, m, z;
        pool_head(q + o, k + o, W, L, P, g, v, &m, &z);
        memset(dv, 0, (size_t)P * sizeof(float));
        for (int64_t t = 0; t < L; t++)
#pragma omp simd
            for (int64_t j = 0; j < P; j++) dv[j] += dy[o + t * W + j];
        /* abar = sum_t a_t e_t; then ds_t = a_t (e_t - abar). dv is reused
         * for dg once dk has its a_t dv term. */
        float abar = 0, a, e;
        for (int64_t t = 0; t < L; t++) {
            weight(g, dv, k + o + t * W, P, scale, m, z, &a, &e);
            abar += a * e;
        }
        for (int64_t t = 0; t < L; t++) {
            const float *kt = k + o + t * W;
            weight(g, dv, kt, P, scale, m, z, &a, &e);
            const float ds = a * (e - abar) * scale;
            if (dk) {
                float *dkt = dk + o + t * W;
#pragma omp simd
                for (int64_t j = 0; j < P; j++) dkt[j] += a * dv[j] + ds * g[j];
            }
            /* v's slot collects dg = sum_t ds_t k_t (v is no longer read). */
#pragma omp simd
            for (int64_t j = 0; j < P; j++) v[j] = (t ? v[j] : 0.0f) + ds * kt[j];
        }
        if (dq)
            for (int64_t t = 0; t < L; t++)
#pragma omp simd
                for (int64_t j = 0; j < P; j++) dq[o + t * W + j] += v[j] / (float)L;
    }
}

/* Node: in = {q, k}, out = y, saved = the desc (its seqs kept). */
static void attn_pool_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *q = nd->in[0], *k = nd->in[1];
    const sl_attn_pool_desc *d = nd->saved;
    sl_attn_pool_bwd(d, q->data, k->data, nd->out->grad, q->requires_grad ? sl_grad(ctx, q) : NULL,
                     k->requires_grad ? sl_grad(ctx, k) : NULL,
                     sl_arena_floats(ctx, sl_attn_pool_scratch_floats(d)));
}

/* q, k: [B, T, H*P] -> y: [B, T, H*P] */
sl_tensor *sl_attn_pool(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, int64_t H, const sl_seqs *seqs)
{
    sl_require(q->ndim == 3 && k->ndim == 3 && q->shape[0] == k->shape[0] &&
                   q->shape[1] == k->shape[1] && q->shape[2] == k->shape[2] && H > 0 &&
                   q->shape[2] % H == 0,
               "sl_attn_pool", "q, k [B, T, H*P]");
    sl_require(sl_seqs_check(seqs, q, "sl_attn_pool") == SL_OK, "sl_attn_pool",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over q [1, T, W]");
    const sl_attn_pool_desc d = {q->shape[0], q->shape[1], H, q->shape[2] / H, seqs};
    sl_tensor *y = sl_tensor_like(ctx, q);
    sl_attn_pool_fwd(&d, q->data, k->data, y->data,
                     sl_arena_floats(ctx, sl_attn_pool_scratch_floats(&d)));
    sl_node *nd = SL_RECORD(ctx, attn_pool_backward, y, q, k);
    if (nd) {
        sl_attn_pool_desc *s = sl_arena_alloc(&ctx->arena, sizeof *s);
        *s = d;
        s->seqs = seqs ? sl_seqs_keep(ctx, seqs) : NULL;
        nd->saved = s;
    }
    return y;
}

void sl_attn_pool_ref(const sl_attn_pool_desc *d, const float *q, const float *k, double *y)
{
    const int64_t T = d->T, H = d->H, P = d->P, W = H * P;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), L = sl_seq_len(d->seqs, n, T);
        for (int64_t h = 0; h < H; h++) {
            double g[1024] = {0}, v[1024] = {0}, z = 0, m = -INFINITY;
            const int64_t o = st * W + h * P;
            for (int64_t t = 0; t < L; t++)
                for (int64_t j = 0; j < P; j++) g[j] += q[o + t * W + j] / (double)L;
            for (int64_t t = 0; t < L; t++) {
                double s = 0;
                for (int64_t j = 0; j < P; j++) s += g[j] * k[o + t * W + j];
                m = fmax(m, s / sqrt((double)P));
            }
            for (int64_t t = 0; t < L; t++) {
                double s = 0;
                for (int64_t j = 0; j < P; j++) s += g[j] * k[o + t * W + j];
                const double e = exp(s / sqrt((double)P) - m);
                z += e;
                for (int64_t j = 0; j < P; j++) v[j] += e * k[o + t * W + j];
            }
            for (int64_t t = 0; t < L; t++)
                for (int64_t j = 0; j < P; j++) y[o + t * W + j] = v[j] / z;
        }
    }
}
