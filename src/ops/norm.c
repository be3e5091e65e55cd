/* LayerNorm and RMSNorm over the last dim. RMSNorm is LayerNorm without
 * centring and without bias, so both share one forward and one backward
 * kernel. The forward saves only the per-row statistics (mean, 1/std); the
 * backward recomputes the normalised row from x, which stays cheap because a
 * row fits in L1. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/norm.h"
#include "ops/ops.h"

/* One row: x: [D] -> y: [D] = (x - mean) rs w + b; mean is 0 when !center,
 * b may be NULL. Returns rs = 1 / sqrt(var + eps); *mean gets the mean. */
static inline float norm_row(const float *x, const float *w, const float *b, float *y, int64_t D,
                             float eps, bool center, float *mean)
{
    float mu = 0, ss = 0;
    if (center) {
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) s += x[j];
        mu = s / (float)D;
    }
    /* Two passes (mean, then squared deviations) avoid the cancellation
     * of E[x^2] - E[x]^2 when |mean| >> std. */
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < D; j++) ss += (x[j] - mu) * (x[j] - mu);
    const float rs = 1.0f / sqrtf(ss / (float)D + eps);
    if (b) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) y[j] = (x[j] - mu) * rs * w[j] + b[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) y[j] = (x[j] - mu) * rs * w[j];
    }
    *mean = mu;
    return rs;
}

float sl_layernorm_row(const float *x, const float *w, const float *b, float *y, int64_t D,
                       float eps, float *mean)
{
    return norm_row(x, w, b, y, D, eps, true, mean);
}

float sl_rmsnorm_row(const float *x, const float *w, float *y, int64_t D, float eps)
{
    float mean;
    return norm_row(x, w, NULL, y, D, eps, false, &mean);
}

void sl_norm_fwd(const sl_norm_desc *d, const float *x, const float *w, const float *b, float *y,
                 float *mean, float *rstd)
{
    const int64_t R = d->R, D = d->D;
#pragma omp parallel for schedule(static) if (R * D >= SL_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        float mu = 0.0f;
        const float rs = d->center ? sl_layernorm_row(x + r * D, w, b, y + r * D, D, d->eps, &mu)
                                   : sl_rmsnorm_row(x + r * D, w, y + r * D, D, d->eps);
        if (mean) mean[r] = mu;
        if (rstd) rstd[r] = rs;
    }
}

/* The backward's team: one thread below SL_PAR_MIN, as the forward. */
static int bwd_threads(const sl_norm_desc *d)
{
    return d->R * d->D >= SL_PAR_MIN ? omp_get_max_threads() : 1;
}

/* Each thread's dw and db slices. */
int64_t sl_norm_bwd_scratch(const sl_norm_desc *d) { return 2 * (int64_t)bwd_threads(d) * d->D; }

/* With xh = (x - mean) rstd and g = dy w:
 *   dx += rstd (g - mean(g) - xh mean(g xh))   (mean(g) term only when centred)
 *   dw += sum_r dy xh,  db += sum_r dy.
 * Each thread sums dw, db over its own rows into a private slice, and the
 * slices are added in thread order: deterministic for a given thread count. */
void sl_norm_bwd(const sl_norm_desc *d, const float *x, const float *w, const float *mean,
                 const float *rstd, const float *dy, float *dx, float *dw, float *db,
                 float *scratch)
{
    const int64_t R = d->R, D = d->D;
    const bool center = d->center;
    const int nt = bwd_threads(d);
    float *part = dw || db ? scratch : NULL;
    if (part) memset(part, 0, (size_t)(2 * nt * D) * sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        float *dwp = part ? part + 2 * (int64_t)omp_get_thread_num() * D : NULL;
        float *dbp = dwp ? dwp + D : NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x + r * D, *dyr = dy + r * D;
            float mu = center ? mean[r] : 0, rs = rstd[r], sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
            for (int64_t j = 0; j < D; j++) {
                float g = dyr[j] * w[j];
                sg += g;
                sgx += g * (xr[j] - mu) * rs;
            }
            if (dx) {
                float *dxr = dx + r * D;
                float mg = center ? sg / (float)D : 0, mgx = sgx / (float)D;
#pragma omp simd
                for (int64_t j = 0; j < D; j++)
                    dxr[j] += rs * (dyr[j] * w[j] - mg - (xr[j] - mu) * rs * mgx);
            }
            if (dw) {
#pragma omp simd
                for (int64_t j = 0; j < D; j++) dwp[j] += dyr[j] * (xr[j] - mu) * rs;
            }
            if (db) {
#pragma omp simd
                for (int64_t j = 0; j < D; j++) dbp[j] += dyr[j];
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        const float *dwp = part ? part + 2 * (int64_t)t * D : NULL;
        if (dw)
            for (int64_t j = 0; j < D; j++) dw[j] += dwp[j];
        if (db)
            for (int64_t j = 0; j < D; j++) db[j] += dwp[D + j];
    }
}

/* Node: in = {x, w, b (LayerNorm)}, saved = [mean (LayerNorm) | rstd], [R] each. */
static void norm_backward(sl_ctx *ctx, const sl_node *nd, bool center)
{
    sl_tensor *x = nd->in[0], *w = nd->in[1], *b = center ? nd->in[2] : NULL;
    const sl_norm_desc d = {sl_rows(x), sl_last(x), 0.0f, center};
    const float *mean = center ? nd->saved : NULL,
                *rstd = (const float *)nd->saved + (center ? d.R : 0);
    float *dw = w->requires_grad ? sl_grad(ctx, w) : NULL;
    float *db = b && b->requires_grad ? sl_grad(ctx, b) : NULL;
    sl_norm_bwd(&d, x->data, w->data, mean, rstd, nd->out->grad,
                x->requires_grad ? sl_grad(ctx, x) : NULL, dw, db,
                dw || db ? sl_arena_floats(ctx, sl_norm_bwd_scratch(&d)) : NULL);
}

static void layernorm_backward(sl_ctx *ctx, const sl_node *nd) { norm_backward(ctx, nd, true); }
static void rmsnorm_backward(sl_ctx *ctx, const sl_node *nd) { norm_backward(ctx, nd, false); }

/* x: [..., D], w: [D], b: [D] or NULL -> [..., D]. Saves mean, rstd: [R]. */
sl_tensor *sl_layernorm(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *b, float eps)
{
    int64_t R = sl_rows(x), D = sl_last(x);
    sl_require(w->n == D && (!b || b->n == D), "sl_layernorm", "x [..., D], w [D], b [D]");
    sl_tensor *y = sl_tensor_like(ctx, x);
    sl_node *nd = SL_RECORD(ctx, layernorm_backward, y, x, w, b);
    float *stats = nd ? sl_arena_floats(ctx, 2 * R) : NULL;
    if (nd) nd->saved = stats;
    const sl_norm_desc d = {R, D, eps, true};
    sl_norm_fwd(&d, x->data, w->data, b ? b->data : NULL, y->data, stats, stats ? stats + R : NULL);
    return y;
}

/* x: [..., D], w: [D] -> [..., D]. Saves rstd: [R]. */
sl_tensor *sl_rmsnorm(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, float eps)
{
    int64_t R = sl_rows(x), D = sl_last(x);
    sl_require(w->n == D, "sl_rmsnorm", "x [..., D], w [D]");
    sl_tensor *y = sl_tensor_like(ctx, x);
    sl_node *nd = SL_RECORD(ctx, rmsnorm_backward, y, x, w);
    float *rstd = nd ? sl_arena_floats(ctx, R) : NULL;
    if (nd) nd->saved = rstd;
    const sl_norm_desc d = {R, D, eps, false};
    sl_norm_fwd(&d, x->data, w->data, NULL, y->data, NULL, rstd);
    return y;
}

/* The obvious two-pass loops in double, forward and backward together. */
void sl_norm_ref(const sl_norm_desc *d, const float *x, const float *w, const float *b,
                 const float *dy, double *y, double *dx, double *dw, double *db)
{
    const int64_t R = d->R, D = d->D;
    const bool center = d->center;
    memset(dw, 0, (size_t)D * sizeof(double));
    memset(db, 0, (size_t)D * sizeof(double));
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * D, *dyr = dy + r * D;
        double mu = 0, var = 0, sg = 0, sgx = 0;
        if (center) {
            for (int64_t j = 0; j < D; j++) mu += xr[j];
            mu /= D;
        }
        for (int64_t j = 0; j < D; j++) var += (xr[j] - mu) * (xr[j] - mu);
        double rs = 1 / sqrt(var / D + d->eps);
        for (int64_t j = 0; j < D; j++) {
            double xh = (xr[j] - mu) * rs, g = (double)dyr[j] * w[j];
            y[r * D + j] = xh * w[j] + (b ? b[j] : 0);
            sg += g;
            sgx += g * xh;
            dw[j] += dyr[j] * xh;
            db[j] += dyr[j];
        }
        for (int64_t j = 0; j < D; j++) {
            double xh = (xr[j] - mu) * rs, g = (double)dyr[j] * w[j];
            dx[r * D + j] = rs * (g - (center ? sg / D : 0) - xh * sgx / D);
        }
    }
}
