/* Sigmoid, the affine sigmoid and the softplus decay gate (equations in
 * gate.h): the kernels, and the ops that record them. Backwards recompute
 * the nonlinearity from the saved input; the per-head parameter gradients
 * of the decay gate are summed over rows in row order, so they are
 * deterministic. */
#include <math.h>

#include "ops/fastmath.h"
#include "ops/gate.h"
#include "ops/internal.h"

/* max(z, 0) + log1p(e^-|z|): exact in both tails. */
float sl_softplusf(float z) { return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z))); }

void sl_sigmoid_fwd(int64_t n, const float *x, float *y)
{
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = sl_sigmoidf(x[i]);
}

/* dx += dy s (1 - s). */
void sl_sigmoid_bwd(int64_t n, const float *x, const float *dy, float *dx)
{
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float s = sl_sigmoidf(x[i]);
        dx[i] += dy[i] * s * (1.0f - s);
    }
}

static void sigmoid_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_sigmoid_bwd(nd->out->n, nd->in[0]->data, nd->out->grad, sl_grad(ctx, nd->in[0]));
}

/* x: [...] -> sigmoid(x). */
sl_tensor *sl_sigmoid(sl_ctx *ctx, sl_tensor *x)
{
    sl_tensor *y = sl_tensor_like(ctx, x);
    sl_sigmoid_fwd(x->n, x->data, y->data);
    SL_RECORD(ctx, sigmoid_backward, y, x);
    return y;
}

/* The affine sigmoid's constants, kept on the tape for its backward. */
typedef struct affine_sigmoid_op {
    float c0, c1, k;
} affine_sigmoid_op;

/* Node: in = {x}, desc: affine_sigmoid_op. dx += dy c1 k s (1 - s), s = sigmoid(k x). */
static void affine_sigmoid_backward(sl_ctx *ctx, const sl_node *nd)
{
    const affine_sigmoid_op *op = nd->desc;
    const float *x = nd->in[0]->data, *dy = nd->out->grad, ck = op->c1 * op->k, k = op->k;
    float *dx = sl_grad(ctx, nd->in[0]);
    const int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float s = sl_sigmoidf(k * x[i]);
        dx[i] += dy[i] * ck * s * (1.0f - s);
    }
}

/* x: [...] -> c0 + c1 sigmoid(k x). */
sl_tensor *sl_affine_sigmoid(sl_ctx *ctx, sl_tensor *x, float c0, float c1, float k)
{
    sl_tensor *y = sl_tensor_like(ctx, x);
    const int64_t n = x->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y->data[i] = sl_affine_sigmoidf(x->data[i], c0, c1, k);
    sl_node *nd = SL_RECORD(ctx, affine_sigmoid_backward, y, x);
    if (nd) {
        const affine_sigmoid_op op = {c0, c1, k};
        SL_KEEP_DESC(ctx, nd, op);
    }
    return y;
}

/* x, A_log, dt_bias: [H] -> g: [H]. */
void sl_decay_gate_row(const float *x, const float *A_log, const float *dt_bias, float *g,
                       int64_t H)
{
    for (int64_t h = 0; h < H; h++) g[h] = -expf(A_log[h]) * sl_softplusf(x[h] + dt_bias[h]);
}

void sl_decay_gate_fwd(int64_t R, int64_t H, const float *x, const float *A_log,
                       const float *dt_bias, float *g)
{
    for (int64_t r = 0; r < R; r++) sl_decay_gate_row(x + r * H, A_log, dt_bias, g + r * H, H);
}

/* With z = x + dt_bias, A = exp(A_log):
 *   dx = ddt_bias = -A sigmoid(z) dg,  dA_log = g dg = -A softplus(z) dg. */
void sl_decay_gate_bwd(int64_t R, int64_t H, const float *x, const float *A_log,
                       const float *dt_bias, const float *dg, float *dx, float *dA_log,
                       float *ddt_bias)
{
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            float z = x[r * H + h] + dt_bias[h], A = expf(A_log[h]), d = dg[r * H + h];
            float dz = -A * sl_sigmoidf(z) * d;
            if (dx) dx[r * H + h] += dz;
            if (ddt_bias) ddt_bias[h] += dz;
            if (dA_log) dA_log[h] -= A * sl_softplusf(z) * d;
        }
}

/* Node: in = {x, A_log, dt_bias}. */
static void decay_gate_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *alog = nd->in[1], *dtb = nd->in[2];
    sl_decay_gate_bwd(sl_rows(x), sl_last(x), x->data, alog->data, dtb->data, nd->out->grad,
                      x->requires_grad ? sl_grad(ctx, x) : NULL,
                      alog->requires_grad ? sl_grad(ctx, alog) : NULL,
                      dtb->requires_grad ? sl_grad(ctx, dtb) : NULL);
}

/* x: [..., H], A_log, dt_bias: [H] -> g: [..., H]. */
sl_tensor *sl_decay_gate(sl_ctx *ctx, sl_tensor *x, sl_tensor *A_log, sl_tensor *dt_bias)
{
    const int64_t H = sl_last(x);
    sl_require(A_log->n == H && dt_bias->n == H, "sl_decay_gate",
               "x [..., H], A_log [H], dt_bias [H]");
    sl_tensor *g = sl_tensor_like(ctx, x);
    sl_decay_gate_fwd(sl_rows(x), H, x->data, A_log->data, dt_bias->data, g->data);
    SL_RECORD(ctx, decay_gate_backward, g, x, A_log, dt_bias);
    return g;
}
