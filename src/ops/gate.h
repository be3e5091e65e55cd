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

/* x: [...] -> 1 / (1 + e^-x). */
sl_tensor *sl_sigmoid(sl_ctx *ctx, sl_tensor *x);
/* x: [..., H], A_log, dt_bias: [H] -> g: [..., H] = -exp(A_log) softplus(x + dt_bias). */
sl_tensor *sl_decay_gate(sl_ctx *ctx, sl_tensor *x, sl_tensor *A_log, sl_tensor *dt_bias);
/* One row of the gate, for step(): x, A_log, dt_bias: [H] -> g: [H]. */
void sl_decay_gate_row(const float *x, const float *A_log, const float *dt_bias, float *g,
                       int64_t H);
/* softplus(z) = log(1 + e^z) without overflow for large z nor loss for very negative z. */
float sl_softplusf(float z);

#endif
