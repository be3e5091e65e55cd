/* y = o / (den + eps) per head, and its backward:
 *     do += dy / (den + eps),   dden -= sum_j dy_j y_j / (den + eps). */
#include "ops/div_heads.h"
#include "ops/internal.h"

void sl_div_heads_row(const float *o, const float *den, int64_t H, int64_t dv, float eps,
                      float *y)
{
    for (int64_t h = 0; h < H; h++) {
        const float inv = 1.0f / (den[h] + eps);
        for (int64_t j = 0; j < dv; j++) y[h * dv + j] = o[h * dv + j] * inv;
    }
}

/* The backward's one scalar. */
typedef struct div_heads_desc {
    float eps;
} div_heads_desc;

/* desc: div_heads_desc; H is den's last dim; the output y is reused for
 * dden. */
static void div_heads_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *o = nd->in[0], *den = nd->in[1];
    const int64_t H = sl_last(den), R = sl_rows(o), dv = sl_last(o) / H;
    const float eps = ((const div_heads_desc *)nd->desc)->eps, *y = nd->out->data, *dy = nd->out->grad;
    float *dO = o->requires_grad ? sl_grad(ctx, o) : NULL;
    float *dden = den->requires_grad ? sl_grad(ctx, den) : NULL;
#pragma omp parallel for schedule(static) if (R * H * dv >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t off = (r * H + h) * dv;
            const float inv = 1.0f / (den->data[r * H + h] + eps);
            float s = 0.0f;
            for (int64_t j = 0; j < dv; j++) {
                if (dO) dO[off + j] += dy[off + j] * inv;
                s += dy[off + j] * y[off + j];
            }
            if (dden) dden[r * H + h] -= s * inv;
        }
}

/* o: [..., H*dv], den: [..., H] (same leading dims) -> [..., H*dv]. */
sl_tensor *sl_div_heads(sl_ctx *ctx, sl_tensor *o, sl_tensor *den, float eps)
{
    const int64_t R = sl_rows(o), H = sl_last(den);
    sl_require(sl_rows(den) == R && H > 0 && sl_last(o) % H == 0, "sl_div_heads",
               "o [..., H*dv], den [..., H]");
    const int64_t dv = sl_last(o) / H;
    sl_tensor *y = sl_tensor_like(ctx, o);
#pragma omp parallel for schedule(static) if (o->n >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        sl_div_heads_row(o->data + r * H * dv, den->data + r * H, H, dv, eps, y->data + r * H * dv);
    sl_node *nd = SL_RECORD(ctx, div_heads_backward, y, o, den);
    if (nd) {
        const div_heads_desc d = {eps};
        SL_KEEP_DESC(ctx, nd, d);
    }
    return y;
}
