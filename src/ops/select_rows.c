/* Row selection: a gather forward, a scatter-add backward. */
#include <string.h>

#include "ops/internal.h"
#include "ops/select_rows.h"

/* dy: [n, D] -> dx[idx[i]] += dy[i]; the rows are distinct, so the
 * threads never add to the same row. aux: idx. */
static void select_rows_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    const int64_t *idx = nd->aux, n = sl_rows(nd->out), D = sl_last(x);
    const float *dy = nd->out->grad;
    float *dx = sl_grad(ctx, x);
#pragma omp parallel for schedule(static) if (n * D >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dx[idx[i] * D + j] += dy[i * D + j];
}

sl_tensor *sl_select_rows(sl_ctx *ctx, sl_tensor *x, const int64_t *idx, int64_t n)
{
    const int64_t R = sl_rows(x), D = sl_last(x);
    sl_tensor *y = SL_NEW(ctx, n, D);
    for (int64_t i = 0; i < n; i++) {
        sl_require(idx[i] >= 0 && idx[i] < R, "sl_select_rows", "rows in [0, R)");
        memcpy(y->data + i * D, x->data + idx[i] * D, (size_t)D * sizeof(float));
    }
    sl_node *nd = SL_RECORD(ctx, select_rows_backward, y, x);
    if (nd) nd->aux = idx;
    return y;
}
