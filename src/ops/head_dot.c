/* y[r, h] = sum_p a[r, h*P+p] b[r, h*P+p] and its backward
 * da = dy[r, h] b, db = dy[r, h] a. */
#include <string.h>

#include "ops/head_dot.h"
#include "ops/internal.h"

/* dy: [R, H] -> da, db: [R, H*P] (H: the output's last dim). */
static void head_dot_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *a = nd->in[0], *b = nd->in[1];
    const int64_t H = sl_last(nd->out), HP = sl_last(a), P = HP / H, R = sl_rows(a);
    const float *dy = nd->out->grad;
    float *da = a->requires_grad ? sl_grad(ctx, a) : NULL;
    float *db = b->requires_grad ? sl_grad(ctx, b) : NULL;
#pragma omp parallel for schedule(static) if (a->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            const float g = dy[r * H + h];
            const int64_t o = r * HP + h * P;
#pragma omp simd
            for (int64_t p = 0; p < P; p++) {
                if (da) da[o + p] += g * b->data[o + p];
                if (db) db[o + p] += g * a->data[o + p];
            }
        }
}

/* a, b: [..., H*P] -> [..., H] */
sl_tensor *sl_head_dot(sl_ctx *ctx, sl_tensor *a, sl_tensor *b, int64_t H)
{
    sl_require(sl_same_shape(a, b) && H > 0 && sl_last(a) % H == 0, "sl_head_dot",
               "a, b [..., H*P] of the same shape");
    const int64_t HP = sl_last(a), P = HP / H, R = sl_rows(a);
    int64_t shape[SL_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = H;
    sl_tensor *y = sl_tensor_new(ctx, a->ndim, shape);
#pragma omp parallel for schedule(static) if (a->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            const float *x = a->data + r * HP + h * P, *z = b->data + r * HP + h * P;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t p = 0; p < P; p++) s += x[p] * z[p];
            y->data[r * H + h] = s;
        }
    SL_RECORD(ctx, head_dot_backward, y, a, b);
    return y;
}
