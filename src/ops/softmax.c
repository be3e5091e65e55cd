/* Softmax over the last dim, max-subtracted so large logits cannot overflow.
 * The backward needs only the output, which the node already holds. */
#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/ops.h"

/* dy: [R, D] -> dx += y (dy - sum_j dy_j y_j). */
static void softmax_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *y = nd->out->data, *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]);
    int64_t R = sl_rows(nd->out), D = sl_last(nd->out);
#pragma omp parallel for schedule(static) if (R * D >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *yr = y + r * D, *dyr = dy + r * D;
        float *dxr = dx + r * D, dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < D; j++) dot += dyr[j] * yr[j];
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dxr[j] += yr[j] * (dyr[j] - dot);
    }
}

/* x: [..., D] -> [..., D], each row summing to 1. */
sl_tensor *sl_softmax(sl_ctx *ctx, sl_tensor *x)
{
    sl_tensor *y = sl_tensor_like(ctx, x);
    int64_t R = sl_rows(x), D = sl_last(x);
    const float *px = x->data;
    float *py = y->data;
#pragma omp parallel for schedule(static) if (R * D >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = px + r * D;
        float *yr = py + r * D, m = xr[0], s = 0;
#pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < D; j++) m = xr[j] > m ? xr[j] : m;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) {
            yr[j] = sl_expf(xr[j] - m);
            s += yr[j];
        }
        float inv = 1.0f / s;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] *= inv;
    }
    SL_RECORD(ctx, softmax_backward, y, x);
    return y;
}
