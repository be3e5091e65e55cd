/* elu + 1, relu, log-sigmoid, softplus and -exp, each a threaded pointwise kernel pair and
 * the op that records it; the backwards recompute the derivative from the
 * saved input.
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
/* d/dx softplus(x) = sigmoid(x). */
static inline float softplus_d(float x) { return sl_sigmoidf(x); }

/* sl_NAME_fwd: y = F(x) and sl_NAME_bwd: dx += dy DF(x) on n floats, and
 * the op sl_NAME that records them. */
#define MAP_OP(NAME, F, DF)                                                                  \
    void sl_##NAME##_fwd(int64_t n, const float *x, float *y)                                \
    {                                                                                        \
        _Pragma("omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)")               \
        for (int64_t i = 0; i < n; i++) y[i] = F(x[i]);                                      \
    }                                                                                        \
    void sl_##NAME##_bwd(int64_t n, const float *x, const float *dy, float *dx)              \
    {                                                                                        \
        _Pragma("omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)")               \
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * DF(x[i]);                           \
    }                                                                                        \
    static void NAME##_backward(sl_ctx *ctx, const sl_node *nd)                              \
    {                                                                                        \
        sl_##NAME##_bwd(nd->out->n, nd->in[0]->data, nd->out->grad, sl_grad(ctx, nd->in[0])); \
    }                                                                                        \
    sl_tensor *sl_##NAME(sl_ctx *ctx, sl_tensor *x)                                          \
    {                                                                                        \
        sl_tensor *y = sl_tensor_like(ctx, x);                                               \
        sl_##NAME##_fwd(x->n, x->data, y->data);                                             \
        SL_RECORD(ctx, NAME##_backward, y, x);                                               \
        return y;                                                                            \
    }

MAP_OP(elu1, sl_elu1f, elu1_d)
MAP_OP(relu, sl_reluf, relu_d)
MAP_OP(logsigmoid, sl_logsigmoidf, logsigmoid_d)
MAP_OP(softplus, sl_softplus_mapf, softplus_d)
MAP_OP(neg_exp, sl_neg_expf, sl_neg_expf)
