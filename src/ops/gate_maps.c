/* elu + 1, relu and log-sigmoid, each a threaded pointwise pass; the
 * backwards recompute the derivative from the saved input.
 *
 * Each map's loops are written out by MAP_OP with the map itself in the
 * loop body: passed as a function pointer into the OpenMP region, the map
 * stayed a call per element, which cost 13% of a linear-attention layer. */
#include "ops/gate_maps.h"
#include "ops/internal.h"

static inline float elu1_d(float x) { return x > 0.0f ? 1.0f : sl_expf(x); }
static inline float relu_d(float x) { return x > 0.0f ? 1.0f : 0.0f; }
/* d/dx log sigmoid(x) = sigmoid(-x). */
static inline float logsigmoid_d(float x) { return sl_sigmoidf(-x); }

/* sl_NAME: x: [...] -> F(x), and its backward dx += dy DF(x). */
#define MAP_OP(NAME, F, DF)                                                                  \
    static void NAME##_backward(sl_ctx *ctx, const sl_node *nd)                              \
    {                                                                                        \
        const float *x = nd->in[0]->data, *dy = nd->out->grad;                               \
        float *dx = sl_grad(ctx, nd->in[0]);                                                 \
        const int64_t n = nd->out->n;                                                        \
        _Pragma("omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)")               \
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * DF(x[i]);                           \
    }                                                                                        \
    sl_tensor *sl_##NAME(sl_ctx *ctx, sl_tensor *x)                                          \
    {                                                                                        \
        sl_tensor *y = sl_tensor_like(ctx, x);                                               \
        const float *px = x->data;                                                           \
        float *py = y->data;                                                                 \
        const int64_t n = x->n;                                                              \
        _Pragma("omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)")               \
        for (int64_t i = 0; i < n; i++) py[i] = F(px[i]);                                    \
        SL_RECORD(ctx, NAME##_backward, y, x);                                               \
        return y;                                                                            \
    }

MAP_OP(elu1, sl_elu1f, elu1_d)
MAP_OP(relu, sl_reluf, relu_d)
MAP_OP(logsigmoid, sl_logsigmoidf, logsigmoid_d)
