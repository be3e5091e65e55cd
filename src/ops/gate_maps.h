/* Pointwise maps of the linear-attention family: the feature maps phi of
 * linear attention (Katharopoulos et al. 2020: elu(x) + 1; relu) and the
 * log-sigmoid that puts GLA's gates in log space (Yang et al. 2023); and
 * Mamba's (Gu & Dao 2023) time step softplus and A = -exp(A_log). */
#ifndef SL_OPS_GATE_MAPS_H
#define SL_OPS_GATE_MAPS_H

#include <math.h>

#include "core/core.h"
#include "ops/fastmath.h"

/* x: [...] -> elu(x) + 1 = (x > 0 ? x + 1 : e^x), positive everywhere. */
sl_tensor *sl_elu1(sl_ctx *ctx, sl_tensor *x);
/* x: [...] -> max(x, 0). */
sl_tensor *sl_relu(sl_ctx *ctx, sl_tensor *x);
/* x: [...] -> log sigmoid(x) = min(x, 0) - log(1 + e^-|x|), in (-inf, 0);
 * the split keeps e^-|x| <= 1, so no input overflows. */
sl_tensor *sl_logsigmoid(sl_ctx *ctx, sl_tensor *x);
/* x: [...] -> softplus(x) = max(x, 0) + log(1 + e^-|x|), in (0, inf). */
sl_tensor *sl_softplus(sl_ctx *ctx, sl_tensor *x);
/* x: [...] -> -e^x (a state space model's A from its A_log). */
sl_tensor *sl_neg_exp(sl_ctx *ctx, sl_tensor *x);

/* The ops' kernels on n floats: y = map(x), and dx += dy map'(x). */
void sl_elu1_fwd(int64_t n, const float *x, float *y);
void sl_elu1_bwd(int64_t n, const float *x, const float *dy, float *dx);
void sl_relu_fwd(int64_t n, const float *x, float *y);
void sl_relu_bwd(int64_t n, const float *x, const float *dy, float *dx);
void sl_logsigmoid_fwd(int64_t n, const float *x, float *y);
void sl_logsigmoid_bwd(int64_t n, const float *x, const float *dy, float *dx);
void sl_softplus_fwd(int64_t n, const float *x, float *y);
void sl_softplus_bwd(int64_t n, const float *x, const float *dy, float *dx);
void sl_neg_exp_fwd(int64_t n, const float *x, float *y);
void sl_neg_exp_bwd(int64_t n, const float *x, const float *dy, float *dx);

/* The same maps on one float, for step(); the ops use these too, so the two
 * forms agree bit for bit. */
static inline float sl_elu1f(float x) { return x > 0.0f ? x + 1.0f : sl_expf(x); }
static inline float sl_reluf(float x) { return x > 0.0f ? x : 0.0f; }
static inline float sl_logsigmoidf(float x)
{
    return (x < 0.0f ? x : 0.0f) - sl_log1p_unit(sl_expf(-fabsf(x)));
}
/* (Vectorised, unlike gate.h's sl_softplusf, which calls libm.) */
static inline float sl_softplus_mapf(float x)
{
    return (x > 0.0f ? x : 0.0f) + sl_log1p_unit(sl_expf(-fabsf(x)));
}
static inline float sl_neg_expf(float x) { return -sl_expf(x); }

#endif
