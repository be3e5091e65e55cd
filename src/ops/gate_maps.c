/* elu + 1, relu and log-sigmoid, each a threaded pointwise pass; the
 * backwards recompute the derivative from the saved input. */
#include "ops/gate_maps.h"
#include "ops/internal.h"

typedef float (*map_fn)(float);

/* y = f(x) over n floats. Always inlined, so that f is a known function
 * in each caller and the loop vectorises (through a pointer it cost a call
 * per element: 10% of a linear-attention layer's time). */
static inline __attribute__((always_inline)) sl_tensor *map_forward(sl_ctx *ctx, sl_tensor *x,
                                                                     map_fn f, sl_backward_fn back)
{
    sl_tensor *y = sl_tensor_like(ctx, x);
    const float *px = x->data;
    float *py = y->data;
    int64_t n = x->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = f(px[i]);
    SL_RECORD(ctx, back, y, x);
    return y;
}

/* dx += dy f'(x). */
static inline __attribute__((always_inline)) void map_backward(sl_ctx *ctx, const sl_node *nd,
                                                               map_fn dfdx)
{
    const float *x = nd->in[0]->data, *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]);
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * dfdx(x[i]);
}

static float elu1_f(float x) { return sl_elu1f(x); }
static float elu1_d(float x) { return x > 0.0f ? 1.0f : sl_expf(x); }
static float relu_f(float x) { return sl_reluf(x); }
static float relu_d(float x) { return x > 0.0f ? 1.0f : 0.0f; }
static float logsigmoid_f(float x) { return sl_logsigmoidf(x); }
/* d/dx log sigmoid(x) = sigmoid(-x). */
static float logsigmoid_d(float x) { return sl_sigmoidf(-x); }

static void elu1_backward(sl_ctx *ctx, const sl_node *nd) { map_backward(ctx, nd, elu1_d); }
static void relu_backward(sl_ctx *ctx, const sl_node *nd) { map_backward(ctx, nd, relu_d); }
static void logsigmoid_backward(sl_ctx *ctx, const sl_node *nd)
{
    map_backward(ctx, nd, logsigmoid_d);
}

/* x: [...] -> [...] for each map. */
sl_tensor *sl_elu1(sl_ctx *ctx, sl_tensor *x) { return map_forward(ctx, x, elu1_f, elu1_backward); }
sl_tensor *sl_relu(sl_ctx *ctx, sl_tensor *x) { return map_forward(ctx, x, relu_f, relu_backward); }
sl_tensor *sl_logsigmoid(sl_ctx *ctx, sl_tensor *x)
{
    return map_forward(ctx, x, logsigmoid_f, logsigmoid_backward);
}
