/* Per-head scaling y[r, h*P + p] = x[r, h*P + p] s[r, h] and its backward
 * dx = dy s, ds[r, h] = sum_p dy x (s: [H] sums over the rows too). */
#include "ops/mul_heads.h"
#include "ops/internal.h"

void sl_mul_heads_row(const float *x, const float *s, int64_t H, int64_t P, float *y)
{
    for (int64_t h = 0; h < H; h++) {
        const float k = s[h];
#pragma omp simd
        for (int64_t p = 0; p < P; p++) y[h * P + p] = x[h * P + p] * k;
    }
}

/* Row r's scale of head h: s is [R, H], or [H] shared by every row. */
static inline float scale_of(const sl_tensor *s, int64_t H, int64_t r, int64_t h)
{
    return s->n == H ? s->data[h] : s->data[r * H + h];
}

/* dy: [R, H*P] -> dx: [R, H*P], ds: [R, H] or [H] (H: s's last dim, as in
 * the forward). */
static void mul_heads_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *s = nd->in[1];
    const float *dy = nd->out->grad;
    int64_t H = sl_last(s), HP = sl_last(x), P = HP / H, R = sl_rows(x);
    if (x->requires_grad) {
        float *dx = sl_grad(ctx, x);
#pragma omp parallel for schedule(static) if (x->n >= SL_PAR_MIN)
        for (int64_t r = 0; r < R; r++)
            for (int64_t h = 0; h < H; h++) {
                float k = scale_of(s, H, r, h);
                const float *g = dy + r * HP + h * P;
                float *d = dx + r * HP + h * P;
#pragma omp simd
                for (int64_t p = 0; p < P; p++) d[p] += g[p] * k;
            }
    }
    if (s->requires_grad) {
        float *ds = sl_grad(ctx, s);
        bool shared = s->n == H;
        /* A shared [H] scale sums over rows: one thread, rows in order. */
#pragma omp parallel for schedule(static) if (!shared && x->n >= SL_PAR_MIN)
        for (int64_t r = 0; r < R; r++)
            for (int64_t h = 0; h < H; h++) {
                const float *g = dy + r * HP + h * P, *xv = x->data + r * HP + h * P;
                float acc = 0;
#pragma omp simd reduction(+ : acc)
                for (int64_t p = 0; p < P; p++) acc += g[p] * xv[p];
                ds[shared ? h : r * H + h] += acc;
            }
    }
}

sl_tensor *sl_mul_heads(sl_ctx *ctx, sl_tensor *x, sl_tensor *s)
{
    int64_t R = sl_rows(x), HP = sl_last(x);
    int64_t H = sl_last(s);
    sl_require(H > 0 && HP % H == 0 && (s->n == H || s->n == R * H), "sl_mul_heads",
               "x [..., H*P] and s [..., H] or [H]");
    int64_t P = HP / H;
    sl_tensor *y = sl_tensor_like(ctx, x);
const bool shared = s->n == H;
#pragma omp parallel for schedule(static) if (x->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        sl_mul_heads_row(x->data + r * HP, s->data + (shared ? 0 : r * H), H, P, y->data + r * HP);
    SL_RECORD(ctx, mul_heads_backward, y, x, s);
    return y;
}
