/* Token embedding: a row gather forward, a scatter-add backward. Several
 * positions may hold the same token, so the scatter is split by columns (each
 * thread owns a block of D for every row), never by rows: race-free, and the
 * sum order per element is the row order whatever the thread count. */
#include <string.h>

#include "ops/internal.h"
#include "ops/ops.h"

/* dy: [R, D] -> dW[ids[r]] += dy[r] (rows with id -1 give nothing); ids in aux. */
static void embedding_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *w = nd->in[0];
    const int32_t *ids = nd->aux;
    const float *dy = nd->out->grad;
    float *dw = sl_grad(ctx, w);
    int64_t D = w->shape[1], R = nd->out->n / D;
    enum { CB = 64 };
    int64_t nblocks = (D + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (R * D >= SL_PAR_MIN)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t j0 = blk * CB, n = D - j0 < CB ? D - j0 : CB;
        for (int64_t r = 0; r < R; r++) {
            if (ids[r] < 0) continue;
            float *dst = dw + (int64_t)ids[r] * D + j0;
            const float *src = dy + r * D + j0;
#pragma omp simd
            for (int64_t j = 0; j < n; j++) dst[j] += src[j];
        }
    }
}

/* w: [V, D], ids: [B*T] in [0, V), or -1 for a zero row (a position the
 * model reads a vector at) -> [B, T, D]. ids must stay valid until the
 * backward pass has run. */
sl_tensor *sl_embedding(sl_ctx *ctx, sl_tensor *w, const int32_t *ids, int64_t B, int64_t T)
{
    sl_require(w->ndim == 2, "sl_embedding", "w [V, D]");
    int64_t D = w->shape[1], R = B * T;
    sl_tensor *y = SL_NEW(ctx, B, T, D);
#pragma omp parallel for schedule(static) if (R * D >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        /* Callers validate ids; this catches their bugs before a wild read. */
        sl_require(ids[r] >= -1 && ids[r] < w->shape[0], "sl_embedding", "ids in [-1, V)");
        if (ids[r] < 0) memset(y->data + r * D, 0, (size_t)D * sizeof(float));
        else memcpy(y->data + r * D, w->data + (int64_t)ids[r] * D, (size_t)D * sizeof(float));
    }
    sl_node *nd = SL_RECORD(ctx, embedding_backward, y, w);
    if (nd) nd->aux = ids;
    return y;
}
