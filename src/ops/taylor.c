/* Based's Taylor feature map: the row function, the kernels on pointers and
 * the op that records them. With c = d^(-1/4) and
 * u = c x, the features are 1, u_i and u_i u_j / sqrt(2) for every ordered
 * pair (i, j), so
 *     dx_i = c (dy_i + sum_j (dy_ij + dy_ji) u_j / sqrt(2)). */
#include <math.h>

#include "ops/internal.h"
#include "ops/taylor.h"

/* x: [H*d] -> out: [H*F]. */
void sl_taylor_row(const float *x, int64_t H, int64_t d, float *out)
{
    const int64_t F = sl_taylor_width(d);
    const float c = 1.0f / sqrtf(sqrtf((float)d)), r2 = 1.0f / sqrtf(2.0f);
    for (int64_t h = 0; h < H; h++) {
        const float *xh = x + h * d;
        float *o = out + h * F, *sq = o + 1 + d;
        o[0] = 1.0f;
        for (int64_t i = 0; i < d; i++) o[1 + i] = c * xh[i];
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) sq[i * d + j] = o[1 + i] * o[1 + j] * r2;
    }
}

void sl_taylor_fwd(int64_t R, int64_t H, int64_t d, const float *x, float *y)
{
    const int64_t F = sl_taylor_width(d);
#pragma omp parallel for schedule(static) if (R * H * F >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) sl_taylor_row(x + r * H * d, H, d, y + r * H * F);
}

void sl_taylor_bwd(int64_t R, int64_t H, int64_t d, const float *x, const float *dy, float *dx)
{
    const int64_t F = sl_taylor_width(d);
    const float c = 1.0f / sqrtf(sqrtf((float)d)), r2 = 1.0f / sqrtf(2.0f);
#pragma omp parallel for schedule(static) if (R * H * F >= SL_PAR_MIN)
    for (int64_t rh = 0; rh < R * H; rh++) {
        const float *xh = x + rh * d, *g = dy + rh * F, *gsq = g + 1 + d;
        float *dxh = dx + rh * d;
        for (int64_t i = 0; i < d; i++) {
            float s = g[1 + i];
            for (int64_t j = 0; j < d; j++) s += (gsq[i * d + j] + gsq[j * d + i]) * c * xh[j] * r2;
            dxh[i] += c * s;
        }
    }
}

/* The backward's one size: the heads of x's last dim. */
typedef struct taylor_desc {
    int64_t H;
} taylor_desc;

/* Node: in = {x}, desc: taylor_desc. */
static void taylor_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    const int64_t H = ((const taylor_desc *)nd->desc)->H;
    sl_taylor_bwd(sl_rows(x), H, sl_last(x) / H, x->data, nd->out->grad, sl_grad(ctx, x));
}

/* x: [..., H*d] -> [..., H*F]. */
sl_tensor *sl_taylor_features(sl_ctx *ctx, sl_tensor *x, int64_t H)
{
    sl_require(H > 0 && sl_last(x) % H == 0, "sl_taylor_features", "x [..., H*d]");
    const int64_t d = sl_last(x) / H;
    int64_t shape[SL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = H * sl_taylor_width(d);
    sl_tensor *y = sl_tensor_new(ctx, x->ndim, shape);
    sl_taylor_fwd(sl_rows(x), H, d, x->data, y->data);
    sl_node *nd = SL_RECORD(ctx, taylor_backward, y, x);
    if (nd) {
        const taylor_desc dd = {H};
        SL_KEEP_DESC(ctx, nd, dd);
    }
    return y;
}
