/* The gates of the delta-rule mixers (Yang et al. 2024, DeltaNet; Yang,
 * Kautz, Hatamizadeh 2025, Gated DeltaNet):
 *
 *   beta = sigmoid(x)                                   writing strength in (0, 1)
 *   g    = -exp(A_log_h) softplus(x + dt_bias_h)        log decay <= 0, per head
 *
 * g is Mamba-2's discretised decay in log space: the delta rule only ever
 * exponentiates it (and differences of its sums), so it never overflows. */
#ifndef SL_OPS_GATE_H
#define SL_OPS_GATE_H

#include "core/core.h"
#include "ops/fastmath.h"

/* x: [...] -> 1 / (1 + e^-x). */
sl_tensor *sl_sigmoid(sl_ctx *ctx, sl_tensor *x);
/* x: [...] -> c0 + c1 sigmoid(k x): HGRN's lower-bounded forget gate
 * lb + (1 - lb) sigmoid(x) (Qin et al. 2023) and its complement
 * (1 - lb) sigmoid(-x), each straight from x (no 1 - f cancellation). */
sl_tensor *sl_affine_sigmoid(sl_ctx *ctx, sl_tensor *x, float c0, float c1, float k);
/* x: [..., H], A_log, dt_bias: [H] -> g: [..., H] = -exp(A_log) softplus(x + dt_bias). */
sl_tensor *sl_decay_gate(sl_ctx *ctx, sl_tensor *x, sl_tensor *A_log, sl_tensor *dt_bias);

/* The ops' kernels. Sigmoid on n floats: x -> y, and dy -> dx (added to).
 * The gate on R rows of H: x: [R, H] -> g: [R, H]; dg -> dx: [R, H],
 * dA_log, ddt_bias: [H] (each added to, NULL when not wanted; summed over
 * rows in order, so deterministic). */
void sl_sigmoid_fwd(int64_t n, const float *x, float *y);
void sl_sigmoid_bwd(int64_t n, const float *x, const float *dy, float *dx);
void sl_decay_gate_fwd(int64_t R, int64_t H, const float *x, const float *A_log,
                       const float *dt_bias, float *g);
void sl_decay_gate_bwd(int64_t R, int64_t H, const float *x, const float *A_log,
                       const float *dt_bias, const float *dg, float *dx, float *dA_log,
                       float *ddt_bias);
/* The affine sigmoid on one float, for step() and the op's kernel alike. */
static inline float sl_affine_sigmoidf(float x, float c0, float c1, float k)
{
    return c0 + c1 * sl_sigmoidf(k * x);
}
/* One row of the gate, for step(): x, A_log, dt_bias: [H] -> g: [H] (may be x). */
void sl_decay_gate_row(const float *x, const float *A_log, const float *dt_bias, float *g,
                       int64_t H);
/* softplus(z) = log(1 + e^z) without overflow for large z nor loss for very negative z. */
float sl_softplusf(float z);

#endif
