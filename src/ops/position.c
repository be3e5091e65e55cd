/* Positional information: learned absolute positions added to the input,
 * and rotary embedding (RoPE) on packed q|k|v projections. RoPE rotates the
 * pairs (i, i + dh/2) of each head (the GPT-NeoX / LLaMA "rotate_half"
 * layout). The batched op and the one-vector step form share the angle
 * function and the rotation, so incremental decoding matches training
 * bit for bit. */
#include <math.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/ops.h"

/* -------------------------------------------------------- learned positions */

/* Token r's offset from where positions start: r % T for batch rows,
 * r - cu[i] in sequence i of a packed batch (tpos). */
static inline int64_t table_row(const int32_t *tpos, int64_t r, int64_t T)
{
    return tpos ? tpos[r] : r % T;
}

/* tpos: [T], each token's offset in its sequence of a packed batch, from
 * the arena; NULL without seqs. Checks the bounds against x: [1, T, ...]. */
static int32_t *seq_offsets(sl_ctx *ctx, const sl_seqs *seqs, const sl_tensor *x, const char *op)
{
    sl_require(sl_seqs_check(seqs, x, op) == SL_OK, op, sl_errmsg());
    if (!seqs) return NULL;
    int32_t *tpos = sl_arena_alloc(&ctx->arena, (size_t)x->shape[1] * sizeof *tpos);
    for (int64_t i = 0; i < seqs->n; i++)
        for (int64_t r = seqs->cu[i]; r < seqs->cu[i + 1]; r++) tpos[r] = (int32_t)(r - seqs->cu[i]);
    return tpos;
}

/* The backward's one offset: the position of the first token. */
typedef struct add_positions_desc {
    int64_t pos0;
} add_positions_desc;

/* dy: [B, T, D] -> dx += dy, dpos[pos0 + t] += sum_b dy[b, t]. aux: the
 * table row of each row (packed batches) or NULL; desc: add_positions_desc. */
static void add_positions_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *pos = nd->in[1];
    const float *dy = nd->out->grad;
    const int32_t *tpos = nd->aux;
    int64_t B = x->shape[0], T = x->shape[1], D = sl_last(x), n = x->n;
    int64_t pos0 = ((const add_positions_desc *)nd->desc)->pos0;
    if (x->requires_grad) {
        float *dx = sl_grad(ctx, x);
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
    }
    if (pos->requires_grad && tpos) {
        /* Packed sequences share rows of dpos: one pass in token order. */
        float *dpos = sl_grad(ctx, pos);
        for (int64_t r = 0; r < T; r++) {
            float *dp = dpos + (pos0 + tpos[r]) * D;
            const float *dyr = dy + r * D;
#pragma omp simd
            for (int64_t j = 0; j < D; j++) dp[j] += dyr[j];
        }
    } else if (pos->requires_grad) {
        float *dpos = sl_grad(ctx, pos);
        /* Each thread owns whole rows of dpos: race-free, and the batch is
         * summed in order whatever the thread count. */
#pragma omp parallel for schedule(static) if (n >= SL_PAR_MIN)
        for (int64_t t = 0; t < T; t++) {
            float *dp = dpos + (pos0 + t) * D;
            for (int64_t b = 0; b < B; b++) {
                const float *dyr = dy + (b * T + t) * D;
#pragma omp simd
                for (int64_t j = 0; j < D; j++) dp[j] += dyr[j];
            }
        }
    }
}

/* x: [B, T, D], pos: [Tmax, D] -> x + pos[pos0 + t], t counted from each
 * sequence's start in a packed batch; pos0 + (longest sequence) <= Tmax. */
sl_tensor *sl_add_positions(sl_ctx *ctx, sl_tensor *x, sl_tensor *pos, int64_t pos0,
                            const sl_seqs *seqs)
{
    sl_require(x->ndim == 3 && pos->ndim == 2 && pos->shape[1] == x->shape[2] && pos0 >= 0,
               "sl_add_positions", "x [B, T, D], pos [Tmax, D], pos0 >= 0");
    int64_t B = x->shape[0], T = x->shape[1], D = x->shape[2];
    const int32_t *tpos = seq_offsets(ctx, seqs, x, "sl_add_positions");
    int64_t longest = seqs ? 0 : T;
    for (int64_t i = 0; seqs && i < seqs->n; i++)
        longest = sl_seq_len(seqs, i, T) > longest ? sl_seq_len(seqs, i, T) : longest;
    sl_require(pos0 + longest <= pos->shape[0], "sl_add_positions",
               "pos0 + the longest sequence <= Tmax");
    sl_tensor *y = sl_tensor_like(ctx, x);
#pragma omp parallel for schedule(static) if (x->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < B * T; r++) {
        const float *xr = x->data + r * D, *pr = pos->data + (pos0 + table_row(tpos, r, T)) * D;
        float *yr = y->data + r * D;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = xr[j] + pr[j];
    }
    sl_node *nd = SL_RECORD(ctx, add_positions_backward, y, x, pos);
    if (nd) {
        const add_positions_desc d = {pos0};
        nd->aux = tpos;
        SL_KEEP_DESC(ctx, nd, d);
    }
    return y;
}

/* ------------------------------------------------------------------- rope */

/* Largest dh / 2 supported; bounds the stack tables below. */
enum { MAX_HALF = 512 };

/* Pair i's angular frequency theta^(-2i/dh), in double so that large
 * positions keep their precision. */
static double rope_freq(int64_t i, int64_t dh, float theta)
{
    return pow((double)theta, -2.0 * (double)i / (double)dh);
}

/* cos and sin of the angle pos * freq, rounded once to float. */
static void rope_cos_sin(int64_t pos, double freq, float *c, float *s)
{
    double a = (double)pos * freq;
    *c = (float)cos(a);
    *s = (float)sin(a);
}

/* One head x: [dh] -> y: [dh], pairs (i, i + half) rotated by (c[i], s[i]).
 * x may equal y. */
static inline void rotate_head(const float *x, float *y, const float *c, const float *s,
                               int64_t half)
{
#pragma omp simd
    for (int64_t i = 0; i < half; i++) {
        float x1 = x[i], x2 = x[i + half];
        y[i] = x1 * c[i] - x2 * s[i];
        y[i + half] = x2 * c[i] + x1 * s[i];
    }
}

/* The transposed rotation, accumulated: dy: [dh] -> dx: [dh]. */
static inline void unrotate_head_add(const float *dy, float *dx, const float *c, const float *s,
                                     int64_t half)
{
#pragma omp simd
    for (int64_t i = 0; i < half; i++) {
        float d1 = dy[i], d2 = dy[i + half];
        dx[i] += d1 * c[i] + d2 * s[i];
        dx[i + half] += d2 * c[i] - d1 * s[i];
    }
}

/* x: [H*dh] in place, at position pos. */
void sl_rope_apply(float *x, int64_t H, int64_t dh, int64_t pos, float theta)
{
    int64_t half = dh / 2;
    sl_require(dh % 2 == 0 && half <= MAX_HALF, "sl_rope_apply", "an even head size <= 1024");
    float c[MAX_HALF], s[MAX_HALF];
    for (int64_t i = 0; i < half; i++) rope_cos_sin(pos, rope_freq(i, dh, theta), &c[i], &s[i]);
    for (int64_t h = 0; h < H; h++) rotate_head(x + h * dh, x + h * dh, c, s, half);
}

/* The heads of q and k, all the backward needs besides the tables. */
typedef struct rope_desc {
    int64_t H, Hkv;
} rope_desc;

/* Rows of qkv are (q: H heads | k: Hkv heads | v: Hkv heads) of dh. */
static int64_t rope_dh(const sl_tensor *qkv, const rope_desc *d)
{
    return qkv->shape[2] / (d->H + 2 * d->Hkv);
}

/* dqkv: the q and k heads of dy unrotated (the transpose of a rotation),
 * v += dy. desc: rope_desc; saved: cos [T, half] then sin [T, half];
 * aux: the table row of each row (packed batches) or NULL. */
static void rope_qk_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *qkv = nd->in[0];
    const rope_desc *rd = nd->desc;
    const int64_t B = qkv->shape[0], T = qkv->shape[1], W = qkv->shape[2], dh = rope_dh(qkv, rd);
    const int64_t half = dh / 2, R = B * T, nrot = rd->H + rd->Hkv;
    const float *dy = nd->out->grad, *cos_t = nd->saved, *sin_t = cos_t + T * half;
    const int32_t *tpos = nd->aux;
    float *dx = sl_grad(ctx, qkv);
#pragma omp parallel for schedule(static) if (qkv->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        int64_t j = table_row(tpos, r, T);
        const float *c = cos_t + j * half, *s = sin_t + j * half;
        const float *dyr = dy + r * W;
        float *dxr = dx + r * W;
        for (int64_t h = 0; h < nrot; h++) unrotate_head_add(dyr + h * dh, dxr + h * dh, c, s, half);
#pragma omp simd
        for (int64_t j2 = nrot * dh; j2 < W; j2++) dxr[j2] += dyr[j2];
    }
}

/* qkv: [B, T, (H + 2 Hkv) dh] = (q | k | v) -> the same with q's H and k's
 * Hkv heads rotated at positions pos0 .. pos0 + T - 1 (restarting at pos0
 * at each sequence of a packed batch). */
sl_tensor *sl_rope_qk(sl_ctx *ctx, sl_tensor *qkv, int64_t H, int64_t Hkv, int64_t pos0,
                      float theta, const sl_seqs *seqs)
{
    const rope_desc rd = {H, Hkv};
    sl_require(qkv->ndim == 3 && H > 0 && Hkv > 0 && qkv->shape[2] % (2 * (H + 2 * Hkv)) == 0 &&
                   rope_dh(qkv, &rd) / 2 <= MAX_HALF,
               "sl_rope_qk", "qkv [B, T, (H + 2 Hkv) dh] with dh even and <= 1024");
    const int64_t B = qkv->shape[0], T = qkv->shape[1], W = qkv->shape[2], dh = rope_dh(qkv, &rd);
    const int64_t half = dh / 2, R = B * T, nrot = H + Hkv;
    double freq[MAX_HALF];
    for (int64_t i = 0; i < half; i++) freq[i] = rope_freq(i, dh, theta);
    /* The table depends on the offset t from the start only, so the rows
     * share it (and the backward reuses it): T * half trig pairs instead of
     * B * T * H * half. A pair costs ~50 ns, so threads pay off from a few
     * thousand. No sequence of a packed batch is longer than T, so T rows
     * serve it too. */
    float *cos_t = sl_arena_floats(ctx, 2 * T * half), *sin_t = cos_t + T * half;
#pragma omp parallel for schedule(static) if (T * half >= 4096)
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++)
            rope_cos_sin(pos0 + t, freq[i], &cos_t[t * half + i], &sin_t[t * half + i]);
    int32_t *tpos = seq_offsets(ctx, seqs, qkv, "sl_rope_qk");
    sl_tensor *y = sl_tensor_like(ctx, qkv);
#pragma omp parallel for schedule(static) if (qkv->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        int64_t j = table_row(tpos, r, T);
        const float *c = cos_t + j * half, *s = sin_t + j * half;
        const float *xr = qkv->data + r * W;
        float *yr = y->data + r * W;
        for (int64_t h = 0; h < nrot; h++) rotate_head(xr + h * dh, yr + h * dh, c, s, half);
        memcpy(yr + nrot * dh, xr + nrot * dh, (size_t)(W - nrot * dh) * sizeof(float));
    }
    sl_node *nd = SL_RECORD(ctx, rope_qk_backward, y, qkv);
    if (nd) {
        nd->saved = cos_t;
        nd->aux = tpos;
        SL_KEEP_DESC(ctx, nd, rd);
    }
    return y;
}
