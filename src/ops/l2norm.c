/* Per-group L2 normalisation (equation in l2norm.h): the kernels, and the
 * op that records them. The forward keeps one reciprocal norm per group; the
 * backward rebuilds y = x r from x, which is cheaper than storing y:
 *   dx = r (dy - y (y . dy)). */
#include <math.h>

#include "ops/internal.h"
#include "ops/l2norm.h"

#define L2_EPS 1e-6f

/* x: [n] -> y = x / sqrt(sum x^2 + eps): [n]; returns the 1 / norm. */
float sl_l2norm_row(const float *x, float *y, int64_t n)
{
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < n; j++) ss += x[j] * x[j];
    const float r = 1.0f / sqrtf(ss + L2_EPS);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) y[j] = x[j] * r;
    return r;
}

void sl_l2norm_fwd(int64_t ng, int64_t group, const float *x, float *y, float *rn)
{
#pragma omp parallel for schedule(static) if (ng * group >= SL_PAR_MIN)
    for (int64_t g = 0; g < ng; g++) {
        const float r = sl_l2norm_row(x + g * group, y + g * group, group);
        if (rn) rn[g] = r;
    }
}

/* dx += r (dy - y (y . dy)), y = x r rebuilt. */
void sl_l2norm_bwd(int64_t ng, int64_t group, const float *x, const float *rn, const float *dy,
                   float *dx)
{
#pragma omp parallel for schedule(static) if (ng * group >= SL_PAR_MIN)
    for (int64_t g = 0; g < ng; g++) {
        const float *xg = x + g * group, *dyg = dy + g * group;
        float r = rn[g], yd = 0;
#pragma omp simd reduction(+ : yd)
        for (int64_t j = 0; j < group; j++) yd += xg[j] * r * dyg[j];
        float *dxg = dx + g * group;
#pragma omp simd
        for (int64_t j = 0; j < group; j++) dxg[j] += r * (dyg[j] - xg[j] * r * yd);
    }
}

/* The backward's one size: the floats per normalised group. */
typedef struct l2norm_desc {
    int64_t group;
} l2norm_desc;

/* Node: in = {x}, saved = 1/norm: [ng], desc: l2norm_desc. */
static void l2norm_backward(sl_ctx *ctx, const sl_node *nd)
{
    const int64_t group = ((const l2norm_desc *)nd->desc)->group;
    sl_l2norm_bwd(nd->out->n / group, group, nd->in[0]->data, nd->saved, nd->out->grad,
                  sl_grad(ctx, nd->in[0]));
}

/* x: [..., G*group] -> y: same shape. Saves 1/norm: [n / group]. */
sl_tensor *sl_l2norm(sl_ctx *ctx, sl_tensor *x, int64_t group)
{
    sl_require(group > 0 && sl_last(x) % group == 0, "sl_l2norm", "a last dim that groups divide");
    const int64_t ng = x->n / group;
    sl_tensor *y = sl_tensor_like(ctx, x);
    sl_node *nd = SL_RECORD(ctx, l2norm_backward, y, x);
    float *rn = nd ? sl_arena_floats(ctx, ng) : NULL;
    if (nd) {
        const l2norm_desc d = {group};
        nd->saved = rn;
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_l2norm_fwd(ng, group, x->data, y->data, rn);
    return y;
}

/* x, y: [n], n a multiple of group. */
void sl_l2norm_ref(const float *x, int64_t n, int64_t group, float *y)
{
    for (int64_t g = 0; g < n / group; g++) {
        double ss = 0;
        for (int64_t j = 0; j < group; j++) ss += (double)x[g * group + j] * x[g * group + j];
        double r = 1.0 / sqrt(ss + (double)L2_EPS);
        for (int64_t j = 0; j < group; j++) y[g * group + j] = (float)(x[g * group + j] * r);
    }
}
