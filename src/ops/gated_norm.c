/* Gated per-head RMSNorm: the training form composes existing ops; the
 * one-token form repeats their float arithmetic so step() matches. */
#include <math.h>

#include "ops/fastmath.h"
#include "ops/gated_norm.h"
#include "ops/internal.h"
#include "ops/ops.h"

/* o, z: [B, T, G*gs], w: [gs] -> [B, T, G*gs]. */
sl_tensor *sl_gated_rmsnorm(sl_ctx *ctx, sl_tensor *o, sl_tensor *z, sl_tensor *w, int64_t G,
                            float eps)
{
    sl_require(o->ndim == 3 && sl_same_shape(o, z) && o->shape[2] == G * w->n, "sl_gated_rmsnorm",
               "o, z [B, T, G*gs], w [gs]");
    const int64_t B = o->shape[0], T = o->shape[1], gs = w->n;
    sl_tensor *n = sl_rmsnorm(ctx, SL_VIEW(ctx, o, B, T, G, gs), w, eps);
    return sl_mul(ctx, SL_VIEW(ctx, n, B, T, G * gs), sl_silu(ctx, z));
}

/* o, z: [G*gs], w: [gs] -> y: [G*gs]. */
void sl_gated_rmsnorm_apply(const float *o, const float *z, const float *w, int64_t G, int64_t gs,
                            float eps, float *y)
{
    for (int64_t h = 0; h < G; h++) {
        const float *oh = o + h * gs, *zh = z + h * gs;
        float ss = 0.0f;
        for (int64_t j = 0; j < gs; j++) ss += oh[j] * oh[j];
        float rs = 1.0f / sqrtf(ss / (float)gs + eps);
        for (int64_t j = 0; j < gs; j++)
            y[h * gs + j] = oh[j] * rs * w[j] * (zh[j] * sl_sigmoidf(zh[j]));
    }
}
