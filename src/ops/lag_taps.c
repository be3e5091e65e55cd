/* The lag-major to channel-major transpose with zero padding, and its
 * adjoint. Threaded over channels; each output row is written once. */
#include <string.h>

#include "ops/internal.h"
#include "ops/lag_taps.h"

/* dk: [C, L] -> dx: [S, C]. */
static void lag_taps_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    const int64_t S = x->shape[0], C = x->shape[1], L = nd->out->shape[1], n = S < L ? S : L;
    const float *dk = nd->out->grad;
    float *dx = sl_grad(ctx, x);
#pragma omp parallel for schedule(static) if (n * C >= SL_PAR_MIN)
    for (int64_t l = 0; l < n; l++)
        for (int64_t c = 0; c < C; c++) dx[l * C + c] += dk[c * L + l];
}

sl_tensor *sl_lag_taps(sl_ctx *ctx, sl_tensor *x, int64_t L)
{
    sl_require(x->ndim == 2 && L >= 0, "sl_lag_taps", "x [S, C] and L >= 0");
    const int64_t S = x->shape[0], C = x->shape[1], n = S < L ? S : L;
    sl_tensor *k = SL_NEW(ctx, C, L);
#pragma omp parallel for schedule(static) if (C * L >= SL_PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        float *kc = k->data + c * L;
        for (int64_t l = 0; l < n; l++) kc[l] = x->data[l * C + c];
        memset(kc + n, 0, (size_t)(L - n) * sizeof(float));
    }
    SL_RECORD(ctx, lag_taps_backward, k, x);
    return k;
}
