/* Sigmoid and the softplus decay gate (equations in gate.h). Backwards
 * recompute the nonlinearity from the saved input; the per-head parameter
 * gradients of the decay gate are summed over rows in row order, so they are
 * deterministic. */
#include <math.h>

#include "ops/fastmath.h"
#include "ops/gate.h"
#include "ops/internal.h"

/* max(z, 0) + log1p(e^-|z|): exact in both tails. */
float sl_softplusf(float z) { return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z))); }

/* dy -> dx += dy s (1 - s). */
static void sigmoid_backward(sl_ctx *ctx, const sl_node *nd)
{
    const float *x = nd->in[0]->data, *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]);
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float s = sl_sigmoidf(x[i]);
        dx[i] += dy[i] * s * (1.0f - s);
    }
}

/* x: [...] -> sigmoid(x). */
sl_tensor *sl_sigmoid(sl_ctx *ctx, sl_tensor *x)
{
    sl_tensor *y = sl_tensor_like(ctx, x);
    const float *px = x->data;
    float *py = y->data;
    int64_t n = x->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = sl_sigmoidf(px[i]);
    SL_RECORD(ctx, sigmoid_backward, y, x);
    return y;
}

/* x, A_log, dt_bias: [H] -> g: [H]. */
void sl_decay_gate_row(const float *x, const float *A_log, const float *dt_bias, float *g,
                       int64_t H)
{
    for (int64_t h = 0; h < H; h++) g[h] = -expf(A_log[h]) * sl_softplusf(x[h] + dt_bias[h]);
}

/* dg: [R, H] -> with z = x + dt_bias, A = exp(A_log):
 *   dx = ddt_bias = -A sigmoid(z) dg,  dA_log = g dg = -A softplus(z) dg. */
static void decay_gate_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *alog = nd->in[1], *dtb = nd->in[2];
    int64_t H = sl_last(x), R = sl_rows(x);
    const float *dg = nd->out->grad, *xd = x->data;
    float *dx = x->requires_grad ? sl_grad(ctx, x) : NULL;
    float *dal = alog->requires_grad ? sl_grad(ctx, alog) : NULL;
    float *ddt = dtb->requires_grad ? sl_grad(ctx, dtb) : NULL;
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            float z = xd[r * H + h] + dtb->data[h], A = expf(alog->data[h]), d = dg[r * H + h];
            float dz = -A * sl_sigmoidf(z) * d;
            if (dx) dx[r * H + h] += dz;
            if (ddt) ddt[h] += dz;
            if (dal) dal[h] -= A * sl_softplusf(z) * d;
        }
}

/* x: [..., H], A_log, dt_bias: [H] -> g: [..., H]. */
sl_tensor *sl_decay_gate(sl_ctx *ctx, sl_tensor *x, sl_tensor *A_log, sl_tensor *dt_bias)
{
    int64_t H = sl_last(x), R = sl_rows(x);
    sl_require(A_log->n == H && dt_bias->n == H, "sl_decay_gate", "x [..., H], A_log [H], dt_bias [H]");
    sl_tensor *g = sl_tensor_like(ctx, x);
    for (int64_t r = 0; r < R; r++)
        sl_decay_gate_row(x->data + r * H, A_log->data, dt_bias->data, g->data + r * H, H);
    SL_RECORD(ctx, decay_gate_backward, g, x, A_log, dt_bias);
    return g;
}
