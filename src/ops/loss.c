/* Losses. Mean cross-entropy of logits against integer targets, with an
 * ignored target value (padding). The forward saves one log-sum-exp per row, not the
 * softmax (a [rows, V] tensor); the backward recomputes the softmax from it
 * with one exp per element. */
#include <math.h>

#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/ops.h"

/* What the backward reads besides lse: the ignored target and the number
 * of counted rows. */
typedef struct ce_desc {
    int32_t ignore_index;
    int64_t count;
} ce_desc;

/* dloss: [1] -> dlogits[r] += dloss / count (softmax(logits[r]) - onehot(t_r))
 * for each counted row. aux: targets [R]; saved: lse [R]; desc: ce_desc. */
static void cross_entropy_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *logits = nd->in[0];
    const int32_t *targets = nd->aux;
    const float *lse = nd->saved, *x = logits->data;
    float *dx = sl_grad(ctx, logits);
    const ce_desc *d = nd->desc;
    int64_t R = sl_rows(logits), V = sl_last(logits), ignore = d->ignore_index;
    if (d->count == 0) return;
    float scale = nd->out->grad[0] / (float)d->count;
#pragma omp parallel for schedule(static) if (R * V >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        if (targets[r] == ignore) continue;
        const float *xr = x + r * V;
        float *dxr = dx + r * V, l = lse[r];
#pragma omp simd
        for (int64_t j = 0; j < V; j++) dxr[j] += scale * sl_expf(xr[j] - l);
        dxr[targets[r]] -= scale;
    }
}

/* logits: [..., V], targets: [R] (one per row, in [0, V) or ignore_index)
 * -> [1], the mean over counted rows of lse(logits[r]) - logits[r, t_r]. */
sl_tensor *sl_cross_entropy(sl_ctx *ctx, sl_tensor *logits, const int32_t *targets,
                            int32_t ignore_index)
{
    int64_t R = sl_rows(logits), V = sl_last(logits);
    const float *x = logits->data;
    float *lse = sl_arena_floats(ctx, R), *row_loss = sl_arena_floats(ctx, R);
#pragma omp parallel for schedule(static) if (R * V >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        if (targets[r] == ignore_index) {
            row_loss[r] = 0;
            continue;
        }
        sl_require(targets[r] >= 0 && targets[r] < V, "sl_cross_entropy",
                   "targets in [0, V) or ignore_index");
        const float *xr = x + r * V;
        float m = xr[0], s = 0;
#pragma omp simd reduction(max : m)
        for (int64_t j = 0; j < V; j++) m = xr[j] > m ? xr[j] : m;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < V; j++) s += sl_expf(xr[j] - m);
        lse[r] = m + logf(s);
        row_loss[r] = lse[r] - xr[targets[r]];
    }
    /* Summed in row order on one thread: the loss is bit-identical for any
     * thread count. */
    double total = 0;
    int64_t count = 0;
    for (int64_t r = 0; r < R; r++) {
        if (targets[r] == ignore_index) continue;
        total += row_loss[r];
        count++;
    }
    sl_tensor *loss = SL_NEW(ctx, 1);
    loss->data[0] = count ? (float)(total / (double)count) : 0.0f;
    sl_node *nd = SL_RECORD(ctx, cross_entropy_backward, loss, logits);
    if (nd) {
        nd->aux = targets;
        nd->saved = lse;
        const ce_desc d = {ignore_index, count};
        SL_KEEP_DESC(ctx, nd, d);
    }
    return loss;
}

/* What mse's backward reads: the mask and the number of counted values. */
typedef struct mse_desc {
    const uint8_t *mask;
    int64_t count;
} mse_desc;

/* dloss: [1] -> dpred[r] += dloss 2 (pred[r] - target[r]) / count for
 * counted rows. aux: target [R, C]; desc: mse_desc. */
static void mse_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *pred = nd->in[0];
    const float *y = nd->aux, *x = pred->data;
    const mse_desc *d = nd->desc;
    const uint8_t *mask = d->mask;
    if (d->count == 0) return;
    float *dx = sl_grad(ctx, pred);
    const int64_t R = sl_rows(pred), C = sl_last(pred);
    const float scale = 2.0f * nd->out->grad[0] / (float)d->count;
#pragma omp parallel for schedule(static) if (R * C >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        if (mask && !mask[r]) continue;
        for (int64_t j = 0; j < C; j++) dx[r * C + j] += scale * (x[r * C + j] - y[r * C + j]);
    }
}

sl_tensor *sl_mse(sl_ctx *ctx, sl_tensor *pred, const float *target, const uint8_t *mask)
{
    const int64_t R = sl_rows(pred), C = sl_last(pred);
    /* Summed in row order in double: the same value for any thread count. */
    double total = 0;
    int64_t count = 0;
    for (int64_t r = 0; r < R; r++) {
        if (mask && !mask[r]) continue;
        for (int64_t j = 0; j < C; j++) {
            const double e = (double)pred->data[r * C + j] - target[r * C + j];
            total += e * e;
        }
        count += C;
    }
    sl_tensor *loss = SL_NEW(ctx, 1);
    loss->data[0] = count ? (float)(total / (double)count) : 0.0f;
    sl_node *nd = SL_RECORD(ctx, mse_backward, loss, pred);
    if (nd) {
        nd->aux = target;
        const mse_desc d = {mask, count};
        SL_KEEP_DESC(ctx, nd, d);
    }
    return loss;
}
