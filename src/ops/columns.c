/* Column blocks of the last dim: a strided copy forward, a strided add back. */
#include <string.h>

#include "ops/columns.h"
#include "ops/internal.h"

/* The backward's one offset: the first column taken. */
typedef struct columns_desc {
    int64_t off;
} columns_desc;

/* dy: [R, w] -> dx[:, off : off + w] += dy. desc: columns_desc. */
static void columns_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    const int64_t W = sl_last(x), w = sl_last(nd->out), R = sl_rows(x);
    const int64_t off = ((const columns_desc *)nd->desc)->off;
    const float *dy = nd->out->grad;
    float *dx = sl_grad(ctx, x);
#pragma omp parallel for schedule(static) if (R * w >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) dx[r * W + off + j] += dy[r * w + j];
    }
}

/* x: [..., W] -> [..., w], columns off .. off + w - 1. */
sl_tensor *sl_columns(sl_ctx *ctx, sl_tensor *x, int64_t off, int64_t w)
{
    const int64_t W = sl_last(x), R = sl_rows(x);
    sl_require(off >= 0 && w > 0 && off + w <= W, "sl_columns", "0 <= off, off + w <= last dim");
    int64_t shape[SL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = w;
    sl_tensor *y = sl_tensor_new(ctx, x->ndim, shape);
#pragma omp parallel for schedule(static) if (R * w >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        memcpy(y->data + r * w, x->data + r * W + off, (size_t)w * sizeof(float));
    sl_node *nd = SL_RECORD(ctx, columns_backward, y, x);
    if (nd) {
        const columns_desc d = {off};
        SL_KEEP_DESC(ctx, nd, d);
    }
    return y;
}
