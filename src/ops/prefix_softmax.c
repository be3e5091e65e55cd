/* The prefix softmax: its kernels, the op that records them, the double
 * reference and the one-token step. A state is P + 2 floats (m, u, w[P]);
 * the forward's work items are (block of tokens, head) of every sequence,
 * the backward's (sequence, head). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/prefix_softmax.h"

/* One token into the state st = (m, u, w[P]): score s, value v: [P] ->
 * o = w / u: [P]; lse: NULL or L = m + log u. */
static inline void token(float *st, float s, const float *v, float *o, float *lse, int64_t P)
{
    const float mn = s > st[0] ? s : st[0], a = sl_expf(st[0] - mn), p = sl_expf(s - mn);
    float *w = st + 2;
    st[0] = mn;
    st[1] = st[1] * a + p;
    const float r = 1.0f / st[1];
#pragma omp simd
    for (int64_t j = 0; j < P; j++) {
        w[j] = w[j] * a + p * v[j];
        o[j] = w[j] * r;
    }
    if (lse) *lse = mn + logf(st[1]);
}

/* a <- a + b, the associative combine (a the earlier state). */
static void combine(float *a, const float *b, int64_t P)
{
    const float m = a[0] > b[0] ? a[0] : b[0], ea = sl_expf(a[0] - m), eb = sl_expf(b[0] - m);
    a[0] = m;
#pragma omp simd
    for (int64_t j = 1; j < P + 2; j++) a[j] = a[j] * ea + b[j] * eb;
}

void sl_prefix_softmax_empty(float *state, int64_t H, int64_t P)
{
    memset(state, 0, (size_t)(H * (P + 2)) * sizeof(float));
    for (int64_t h = 0; h < H; h++) state[h * (P + 2)] = SL_PS_EMPTY;
}

/* The blocks of every sequence, in order: block g is block bb[g] of
 * sequence bn[g]; first[n] is sequence n's first block, first[N] the
 * count. */
typedef struct blocks {
    int64_t *bn, *bb, *first;
} blocks;

static int64_t list_blocks(const sl_prefix_softmax_desc *d, int64_t N, blocks *k)
{
    k->first = malloc((size_t)(N + 1) * sizeof(int64_t));
    k->first[0] = 0;
    for (int64_t n = 0; n < N; n++)
        k->first[n + 1] =
            k->first[n] + (sl_seq_len(d->seqs, n, d->T) + SL_PS_BLOCK - 1) / SL_PS_BLOCK;
    const int64_t G = k->first[N];
    k->bn = malloc((size_t)(G + 1) * sizeof(int64_t));
    k->bb = malloc((size_t)(G + 1) * sizeof(int64_t));
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = k->first[n]; g < k->first[n + 1]; g++) {
            k->bn[g] = n;
            k->bb[g] = g - k->first[n];
        }
    return G;
}

/* Block g's tokens [t0, t1), counted over all B*T. */
static void block_span(const sl_prefix_softmax_desc *d, const blocks *k, int64_t g, int64_t *t0,
                       int64_t *t1)
{
    const int64_t n = k->bn[g], left = sl_seq_len(d->seqs, n, d->T) - k->bb[g] * SL_PS_BLOCK;
    *t0 = sl_seq_start(d->seqs, n, d->T) + k->bb[g] * SL_PS_BLOCK;
    *t1 = *t0 + (left < SL_PS_BLOCK ? left : SL_PS_BLOCK);
}

void sl_prefix_softmax_fwd(const sl_prefix_softmax_desc *d, const float *s, const float *v,
                           const float *s0, float *o, float *lse, float *s_final)
{
    const int64_t T = d->T, H = d->H, P = d->P, W = P + 2, N = sl_seq_count(d->seqs, d->B);
    blocks k;
    const int64_t G = list_blocks(d, N, &k);
    /* agg: each block's own state; cin: the state entering it. */
    float *agg = malloc((size_t)(G * H * W + 1) * sizeof(float));
    float *cin = malloc((size_t)(G * H * W + 1) * sizeof(float));
    const bool par = d->B * T * H * P >= SL_PAR_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t it = 0; it < G * H; it++) {
        const int64_t g = it / H, h = it % H;
        int64_t t0, t1;
        block_span(d, &k, g, &t0, &t1);
        float *a = agg + it * W;
        float m = SL_PS_EMPTY;
        for (int64_t t = t0; t < t1; t++) m = s[t * H + h] > m ? s[t * H + h] : m;
        memset(a, 0, (size_t)W * sizeof(float));
        a[0] = m;
        for (int64_t t = t0; t < t1; t++) {
            const float p = sl_expf(s[t * H + h] - m), *vt = v + (t * H + h) * P;
            a[1] += p;
#pragma omp simd
            for (int64_t j = 0; j < P; j++) a[2 + j] += p * vt[j];
        }
    }
    /* The carries: short, sequential in blocks, parallel over heads. Block
     * g + 1 enters with block g's incoming state combined with its own. */
#pragma omp parallel for schedule(static) if (par)
    for (int64_t nh = 0; nh < N * H; nh++) {
        const int64_t n = nh / H, h = nh % H, first = k.first[n], end = k.first[n + 1];
        float *c = first < end ? cin + (first * H + h) * W : s_final ? s_final + nh * W : NULL;
        if (!c) continue;
        if (s0)
            memmove(c, s0 + nh * W, (size_t)W * sizeof(float));
        else
            sl_prefix_softmax_empty(c, 1, P);
        for (int64_t g = first + 1; g < end; g++) {
            float *cg = cin + (g * H + h) * W;
            memcpy(cg, cg - H * W, (size_t)W * sizeof(float));
            combine(cg, agg + ((g - 1) * H + h) * W, P);
        }
    }
#pragma omp parallel for schedule(static) if (par)
    for (int64_t it = 0; it < G * H; it++) {
        const int64_t g = it / H, h = it % H, n = k.bn[g];
        int64_t t0, t1;
        block_span(d, &k, g, &t0, &t1);
        float *c = cin + it * W;
        for (int64_t t = t0; t < t1; t++)
            token(c, s[t * H + h], v + (t * H + h) * P, o + (t * H + h) * P,
                  lse ? lse + t * H + h : NULL, P);
        if (s_final && g == k.first[n + 1] - 1)
            memcpy(s_final + (n * H + h) * W, c, (size_t)W * sizeof(float));
    }
    free(agg);
    free(cin);
    free(k.bn);
    free(k.bb);
    free(k.first);
}

static float dot(const float *a, const float *b, int64_t P)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < P; j++) s += a[j] * b[j];
    return s;
}

/* Tokens ahead that the backward's walk prefetches: it runs down in
 * memory, H P floats per step, where the hardware prefetchers do not
 * follow (its loads waited on memory for most of its time without). */
#define PF 4

/* Token t, head h's rows of v, o, dout and dv into cache. */
static inline void prefetch_token(const sl_prefix_softmax_desc *d, int64_t t, int64_t h,
                                  const float *v, const float *o, const float *dout,
                                  const float *dv)
{
    const int64_t at = (t * d->H + h) * d->P;
    for (int64_t j = 0; j < d->P; j += 16) {
        __builtin_prefetch(v + at + j);
        __builtin_prefetch(o + at + j);
        __builtin_prefetch(dout + at + j);
        if (dv) __builtin_prefetch(dv + at + j, 1);
    }
}

void sl_prefix_softmax_bwd(const sl_prefix_softmax_desc *d, const float *s, const float *v,
                           const float *s0, const float *o, const float *lse, const float *dout,
                           float *ds, float *dv, float *ds0)
{
    const float *ds_final = d->ds_final;
    const int64_t T = d->T, H = d->H, P = d->P, W = P + 2, N = sl_seq_count(d->seqs, d->B);
    float *Rall = malloc((size_t)(N * H * P + 1) * sizeof(float));
#pragma omp parallel for schedule(static) if (d->B * T * H * P >= SL_PAR_MIN)
    for (int64_t nh = 0; nh < N * H; nh++) {
        const int64_t n = nh / H, h = nh % H;
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        const float *dsf = ds_final ? ds_final + nh * W : NULL, *z = s0 ? s0 + nh * W : NULL;
        float *R = Rall + nh * P, *dz = ds0 && z ? ds0 + nh * W : NULL;
        if (len == 0) {
            for (int64_t j = 0; dz && dsf && j < W; j++) dz[j] += dsf[j];
            continue;
        }
        /* The final state (m, u, w = u o_last) and which input set m. */
        const int64_t last = st + len - 1;
        float mT = z ? z[0] : SL_PS_EMPTY;
        int64_t arg = -1;
        for (int64_t t = st; t <= last; t++)
            if (s[t * H + h] > mT) mT = s[t * H + h], arg = t;
        const float uT = sl_expf(lse[last * H + h] - mT), *ol = o + (last * H + h) * P;
        float r = 0.0f, gm = 0.0f, Ln = mT;
        for (int64_t j = 0; j < P; j++) R[j] = dsf ? dsf[2 + j] : 0.0f;
        if (dsf) {
            r = -dsf[1];
            gm = dsf[0] - uT * dsf[1] - uT * dot(ol, dsf + 2, P);
        }
        for (int64_t t = last; t >= st; t--) {
            if (t - PF >= st) prefetch_token(d, t - PF, h, v, o, dout, dv);
            const float L = lse[t * H + h], e = sl_expf(L - Ln), a = sl_expf(s[t * H + h] - L);
            const float *dot_ = dout + (t * H + h) * P, *vt = v + (t * H + h) * P;
            const float *ot = o + (t * H + h) * P;
            r = dot(dot_, ot, P) + e * r;
#pragma omp simd
            for (int64_t j = 0; j < P; j++) R[j] = dot_[j] + e * R[j];
            if (dv)
#pragma omp simd
                for (int64_t j = 0; j < P; j++) dv[(t * H + h) * P + j] += a * R[j];
            if (ds) ds[t * H + h] += a * (dot(vt, R, P) - r);
            Ln = L;
        }
        if (ds && arg >= 0) ds[arg * H + h] += gm;
        if (dz) {
            /* s0 enters as u0 e^m0 and w0 e^m0 (a virtual first token); m0
             * moves both, and m_final when it set it. */
            const float e0 = sl_expf(z[0] - Ln), du = -e0 * r;
            float dm = z[1] * du + (arg < 0 ? gm : 0.0f);
            for (int64_t j = 0; j < P; j++) {
                dz[2 + j] += e0 * R[j];
                dm += z[2 + j] * e0 * R[j];
            }
            dz[1] += du;
            dz[0] += dm;
        }
    }
    free(Rall);
}

/* Node: in = {s, v, s0}, out = o, desc = the sl_prefix_softmax_desc (its
 * seqs kept), saved = L [B, T, H]. */
static void prefix_softmax_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *s = nd->in[0], *v = nd->in[1], *s0 = nd->in[2];
    sl_prefix_softmax_bwd(nd->desc, s->data, v->data, s0 ? s0->data : NULL, nd->out->data,
                          nd->saved, nd->out->grad, s->requires_grad ? sl_grad(ctx, s) : NULL,
                          v->requires_grad ? sl_grad(ctx, v) : NULL,
                          s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL);
}

/* s: [B, T, H], v: [B, T, H*P], s0: [N, H*(P+2)] | NULL -> o: [B, T, H*P];
 * s_final: [N, H*(P+2)] | NULL. */
sl_tensor *sl_prefix_softmax(sl_ctx *ctx, sl_tensor *s, sl_tensor *v, sl_tensor *s0, float *s_final,
                             const sl_seqs *seqs)
{
    sl_require(s->ndim == 3 && v->ndim == 3 && s->shape[0] == v->shape[0] &&
                   s->shape[1] == v->shape[1] && s->shape[2] > 0 && v->shape[2] % s->shape[2] == 0,
               "sl_prefix_softmax", "s [B, T, H], v [B, T, H*P]");
    sl_require(sl_seqs_check(seqs, s, "sl_prefix_softmax") == SL_OK, "sl_prefix_softmax",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, H]");
    sl_prefix_softmax_desc d = {s->shape[0], s->shape[1], s->shape[2], v->shape[2] / s->shape[2],
                                seqs,        sl_state_final_grad(ctx, s_final)};
    sl_require(!s0 || s0->n == sl_seq_count(seqs, d.B) * d.H * (d.P + 2), "sl_prefix_softmax",
               "s0 [N, H*(P+2)]");
    sl_tensor *o = sl_tensor_like(ctx, v);
    sl_node *nd = SL_RECORD(ctx, prefix_softmax_backward, o, s, v, s0);
    float *lse = NULL;
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
        lse = sl_arena_floats(ctx, s->n);
        nd->saved = lse;
    }
    sl_prefix_softmax_fwd(&d, s->data, v->data, s0 ? s0->data : NULL, o->data, lse, s_final);
    return o;
}

void sl_prefix_softmax_ref(const sl_prefix_softmax_desc *d, const float *s, const float *v,
                           const float *s0, double *o, double *s_final)
{
    const int64_t T = d->T, H = d->H, P = d->P, W = P + 2;
    double *w = malloc((size_t)P * sizeof(double));
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, T), len = sl_seq_len(d->seqs, n, T);
        for (int64_t h = 0; h < H; h++) {
            const float *z = s0 ? s0 + (n * H + h) * W : NULL;
            for (int64_t t = 0; t <= len; t++) {
                /* The prefix of t tokens (the state after them when t = len). */
                double m = z ? z[0] : SL_PS_EMPTY, u;
                for (int64_t i = 0; i < t; i++) m = fmax(m, s[(st + i) * H + h]);
                u = z ? z[1] * exp(z[0] - m) : 0.0;
                for (int64_t j = 0; j < P; j++) w[j] = z ? z[2 + j] * exp(z[0] - m) : 0.0;
                for (int64_t i = 0; i < t; i++) {
                    const double p = exp(s[(st + i) * H + h] - m);
                    u += p;
                    for (int64_t j = 0; j < P; j++) w[j] += p * v[((st + i) * H + h) * P + j];
                }
                if (t > 0)
                    for (int64_t j = 0; j < P; j++) o[((st + t - 1) * H + h) * P + j] = w[j] / u;
                if (t == len && s_final) {
                    double *f = s_final + (n * H + h) * W;
                    f[0] = m;
                    f[1] = u;
                    for (int64_t j = 0; j < P; j++) f[2 + j] = w[j];
                }
            }
        }
    }
    free(w);
}

void sl_prefix_softmax_step(float *state, const float *s, const float *v, float *o, int64_t H,
                            int64_t P)
{
    for (int64_t h = 0; h < H; h++) token(state + h * (P + 2), s[h], v + h * P, o + h * P, NULL, P);
}
