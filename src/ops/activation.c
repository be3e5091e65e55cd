/* Pointwise activations of the channel MLP: GELU (tanh form), SiLU and the
 * SwiGLU gate. Backwards recompute the nonlinearity from the saved input
 * rather than storing it: one sl_expf is cheaper than another tensor's worth
 * of memory traffic. */
#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/ops.h"

/* ------------------------------------------------------------------- gelu */

/* dy -> dx += dy gelu'(x), gelu'(x) = s + 2 x s (1 - s) c (1 + 3 a x^2),
 * s = sigmoid(2u). */
static void gelu_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *x = nd->in[0]->data, *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]);
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], s = sl_gelu_sigmoidf(v);
        dx[i] += dy[i] * (s + 2.0f * v * s * (1.0f - s) * SL_GELU_C *
                                  (1.0f + 3.0f * SL_GELU_A * v * v));
    }
}

/* x: [...] -> gelu(x), PyTorch's approximate='tanh'. */
sl_tensor *sl_gelu(sl_ctx *ctx, sl_tensor *x)
{
    sl_tensor *y = sl_tensor_like(ctx, x);
    const float *px = x->data;
    float *py = y->data;
    int64_t n = x->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = sl_geluf(px[i]);
    SL_RECORD(ctx, gelu_backward, y, x);
    return y;
}

/* ------------------------------------------------------------------- silu */

/* silu'(x) = s (1 + x (1 - s)), s = sigmoid(x). */
static inline float silu_grad(float x, float s) { return s * (1.0f + x * (1.0f - s)); }

/* dy -> dx += dy silu'(x). */
static void silu_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *x = nd->in[0]->data, *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]);
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * silu_grad(x[i], sl_sigmoidf(x[i]));
}

/* x: [...] -> x sigmoid(x). */
sl_tensor *sl_silu(sl_ctx *ctx, sl_tensor *x)
{
    sl_tensor *y = sl_tensor_like(ctx, x);
    const float *px = x->data;
    float *py = y->data;
    int64_t n = x->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = sl_siluf(px[i]);
    SL_RECORD(ctx, silu_backward, y, x);
    return y;
}

/* -------------------------------------------------------------- silu gate */

/* dy -> da += dy silu(z), dz += dy a silu'(z). */
static void silu_gate_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *ta = nd->in[0], *tz = nd->in[1];
    const float *a = ta->data, *z = tz->data, *dy = nd->out->grad;
    float *da = ta->requires_grad ? sl_grad(ctx, ta) : NULL;
    float *dz = tz->requires_grad ? sl_grad(ctx, tz) : NULL;
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float s = sl_sigmoidf(z[i]);
        if (da) da[i] += dy[i] * z[i] * s;
        if (dz) dz[i] += dy[i] * a[i] * silu_grad(z[i], s);
    }
}

sl_tensor *sl_silu_gate(sl_ctx *ctx, sl_tensor *a, sl_tensor *z)
{
    sl_require(sl_same_shape(a, z), "sl_silu_gate", "a and z of one shape");
    sl_tensor *y = sl_tensor_like(ctx, a);
    const float *pa = a->data, *pz = z->data;
    float *py = y->data;
    int64_t n = a->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = pa[i] * sl_siluf(pz[i]);
    SL_RECORD(ctx, silu_gate_backward, y, a, z);
    return y;
}

/* ----------------------------------------------------------------- swiglu */

/* dy: [R, F] -> for x = (a | g): da += dy g silu'(a), dg += dy silu(a). */
static void swiglu_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *x = nd->in[0]->data, *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]);
    int64_t F = sl_last(nd->out), R = sl_rows(nd->out);
#pragma omp parallel for schedule(static) if (R * F >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *a = x + r * 2 * F, *g = a + F, *dyr = dy + r * F;
        float *da = dx + r * 2 * F, *dg = da + F;
#pragma omp simd
        for (int64_t j = 0; j < F; j++) {
            float s = sl_sigmoidf(a[j]);
            da[j] += dyr[j] * g[j] * silu_grad(a[j], s);
            dg[j] += dyr[j] * a[j] * s;
        }
    }
}

/* x: [..., 2F] = (a | g) -> silu(a) g: [..., F]. */
sl_tensor *sl_swiglu(sl_ctx *ctx, sl_tensor *x)
{
    int64_t F2 = sl_last(x), F = F2 / 2, R = sl_rows(x);
    sl_require(F2 % 2 == 0, "sl_swiglu", "an even last dimension");
    int64_t shape[SL_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = F;
    sl_tensor *y = sl_tensor_new(ctx, x->ndim, shape);
    const float *px = x->data;
    float *py = y->data;
#pragma omp parallel for schedule(static) if (R * F >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *a = px + r * F2, *g = a + F;
        float *yr = py + r * F;
#pragma omp simd
        for (int64_t j = 0; j < F; j++) yr[j] = sl_siluf(a[j]) * g[j];
    }
    SL_RECORD(ctx, swiglu_backward, y, x);
    return y;
}
