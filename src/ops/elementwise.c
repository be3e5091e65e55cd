/* Elementwise sum, product and scaling: the residual adds, gates and
 * constant factors that glue the larger ops together. Memory-bound, so each
 * is one threaded, vectorised pass. */
#include "ops/internal.h"
#include "ops/ops.h"

/* dy -> da += dy, db += dy. */
static void add_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *dy = nd->out->grad;
    int64_t n = nd->out->n;
    for (int k = 0; k < 2; k++) {
        sl_tensor *t = nd->in[k];
        if (!t->requires_grad) continue;
        float *dt = sl_grad(ctx, t);
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dt[i] += dy[i];
    }
}

/* a, b: [...] (same shape) -> a + b. */
sl_tensor *sl_add(sl_ctx *ctx, sl_tensor *a, sl_tensor *b)
{
    sl_require(sl_same_shape(a, b), "sl_add", "operands of the same shape");
    sl_tensor *y = sl_tensor_like(ctx, a);
    const float *pa = a->data, *pb = b->data;
    float *py = y->data;
    int64_t n = y->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = pa[i] + pb[i];
    SL_RECORD(ctx, add_backward, y, a, b);
    return y;
}

/* dy -> da += dy b, db += dy a (one at a time, so sl_mul(x, x) gets both). */
static void mul_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *dy = nd->out->grad;
    int64_t n = nd->out->n;
    for (int k = 0; k < 2; k++) {
        sl_tensor *t = nd->in[k];
        if (!t->requires_grad) continue;
        const float *other = nd->in[1 - k]->data;
        float *dt = sl_grad(ctx, t);
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dt[i] += dy[i] * other[i];
    }
}

/* a, b: [...] (same shape) -> a * b. */
sl_tensor *sl_mul(sl_ctx *ctx, sl_tensor *a, sl_tensor *b)
{
    sl_require(sl_same_shape(a, b), "sl_mul", "operands of the same shape");
    sl_tensor *y = sl_tensor_like(ctx, a);
    const float *pa = a->data, *pb = b->data;
    float *py = y->data;
    int64_t n = y->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = pa[i] * pb[i];
    SL_RECORD(ctx, mul_backward, y, a, b);
    return y;
}

/* The backward's one scalar. */
typedef struct scale_desc {
    float s;
} scale_desc;

/* dy -> da += s dy. desc: scale_desc. */
static void scale_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *dy = nd->out->grad;
    float s = ((const scale_desc *)nd->desc)->s, *da = sl_grad(ctx, nd->in[0]);
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) da[i] += s * dy[i];
}

/* a: [...] -> s a. */
sl_tensor *sl_scale(sl_ctx *ctx, sl_tensor *a, float s)
{
    sl_tensor *y = sl_tensor_like(ctx, a);
    const float *pa = a->data;
    float *py = y->data;
    int64_t n = y->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = s * pa[i];
    sl_node *nd = SL_RECORD(ctx, scale_backward, y, a);
    if (nd) {
        const scale_desc d = {s};
        SL_KEEP_DESC(ctx, nd, d);
    }
    return y;
}
