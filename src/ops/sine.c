/* sin(f x) per unit and its backward. The frequency gradient sums over
 * rows in a fixed order (per thread, then threads in order), so it does not
 * depend on the thread count's timing. */
#include <math.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/sine.h"

void sl_sine_row(const float *x, const float *f, int64_t W, float *y)
{
    for (int64_t j = 0; j < W; j++) y[j] = sinf(f[j] * x[j]);
}

/* Rows per block of the frequency gradient: its partial sums are reduced
 * block by block in order, whatever the thread count. */
#define SINE_BLOCK 256

/* dy: [R, W] -> dx: [R, W], df: [W]. */
static void sine_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *f = nd->in[1];
    const int64_t W = sl_last(x), R = sl_rows(x), nb = (R + SINE_BLOCK - 1) / SINE_BLOCK;
    const float *dy = nd->out->grad, *fv = f->data;
    float *dx = x->requires_grad ? sl_grad(ctx, x) : NULL;
    float *part = f->requires_grad ? sl_arena_floats(ctx, nb * W) : NULL;
#pragma omp parallel for schedule(static) if (x->n >= SL_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float *pb = part ? part + b * W : NULL;
        if (pb) memset(pb, 0, (size_t)W * sizeof(float));
        for (int64_t r = b * SINE_BLOCK; r < R && r < (b + 1) * SINE_BLOCK; r++) {
            const float *xr = x->data + r * W, *g = dy + r * W;
            for (int64_t j = 0; j < W; j++) {
                const float c = g[j] * cosf(fv[j] * xr[j]);
                if (dx) dx[r * W + j] += c * fv[j];
                if (pb) pb[j] += c * xr[j];
            }
        }
    }
    if (!part) return;
    float *df = sl_grad(ctx, f);
    for (int64_t b = 0; b < nb; b++)
        for (int64_t j = 0; j < W; j++) df[j] += part[b * W + j];
}

sl_tensor *sl_sine(sl_ctx *ctx, sl_tensor *x, sl_tensor *f)
{
    const int64_t W = sl_last(x), R = sl_rows(x);
    sl_require(f->n == W, "sl_sine", "x [..., W] and f [W]");
    sl_tensor *y = sl_tensor_like(ctx, x);
#pragma omp parallel for schedule(static) if (x->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) sl_sine_row(x->data + r * W, f->data, W, y->data + r * W);
    SL_RECORD(ctx, sine_backward, y, x, f);
    return y;
}
