/* Finite-difference gradient check for any op or composition of ops.
 *
 * The scalar probed is L = sum_i r_i out_i with fixed random weights r,
 * accumulated in double. Each input element (up to max_probe of them, spread
 * evenly) is moved by +-h and dL/dx = (L+ - L-) / 2h, computed in double, is
 * compared with the tape's gradient. Ops run in float32, so h must be large
 * enough for the float rounding of out to stay small against h. */
#ifndef SL_GRADCHECK_H
#define SL_GRADCHECK_H

#include <string.h>

#include "check.h"
#include "core/core.h"

typedef sl_tensor *(*gc_fn)(sl_ctx *ctx, sl_tensor **in, void *arg);

/* A leaf tensor with malloc'd data and grad, filled with N(0, scale), or
 * zeros when rng is NULL. */
static inline sl_tensor *gc_leaf(sl_rng *rng, float scale, int ndim, const int64_t *shape)
{
    sl_tensor *t = calloc(1, sizeof *t);
    t->ndim = ndim;
    t->n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->n *= shape[i];
    }
    t->data = malloc((size_t)t->n * sizeof(float));
    t->grad = calloc((size_t)t->n, sizeof(float));
    for (int64_t i = 0; i < t->n; i++) t->data[i] = rng ? scale * sl_rng_normal(rng) : 0.0f;
    t->requires_grad = true;
    return t;
}
#define GC_LEAF(rng, scale, ...)                                                                   \
    gc_leaf((rng), (scale), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),             \
            (int64_t[]){__VA_ARGS__})

static inline void gc_free(sl_tensor *t)
{
    free(t->data);
    free(t->grad);
    free(t);
}

/* Frees the non-NULL leaves among in[0 .. n). */
static inline void gc_free_all(sl_tensor **in, int n)
{
    for (int i = 0; i < n; i++)
        if (in[i]) gc_free(in[i]);
}

/* An activation [1, d1, d2] in ctx over a copy of src, gradient on. */
static inline sl_tensor *gc_ctx_leaf(sl_ctx *ctx, const float *src, int64_t d1, int64_t d2)
{
    sl_tensor *t = SL_NEW(ctx, 1, d1, d2);
    memcpy(t->data, src, (size_t)t->n * sizeof(float));
    t->requires_grad = true;
    return t;
}

/* A malloc'd copy of n floats (NULL for NULL). */
static inline float *gc_dup(const float *src, int64_t n)
{
    if (!src) return NULL;
    float *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(d, src, (size_t)n * sizeof(float));
    return d;
}

/* Tokens [t0, t0 + n) of x: [1, T, W] as a new [1, n, W] leaf. */
static inline sl_tensor *gc_leaf_slice(const sl_tensor *x, int64_t t0, int64_t n)
{
    const int64_t W = x->shape[2];
    sl_tensor *y = gc_leaf(NULL, 0.0f, 3, (int64_t[]){1, n, W});
    memcpy(y->data, x->data + t0 * W, (size_t)(n * W) * sizeof(float));
    return y;
}

/* Tokens [t0, t0 + n) of each row of x: [B, T, W] as a new [B, n, W]
 * activation in ctx (no gradient link to x). */
static inline sl_tensor *gc_time_slice(sl_ctx *ctx, const sl_tensor *x, int64_t t0, int64_t n)
{
    int64_t B = x->shape[0], T = x->shape[1], W = x->shape[2];
    sl_tensor *y = SL_NEW(ctx, B, n, W);
    for (int64_t b = 0; b < B; b++)
        memcpy(y->data + b * n * W, x->data + (b * T + t0) * W, (size_t)(n * W) * sizeof(float));
    return y;
}

/* dL/dx[i] by central differences of loss(arg) (a double loss, such as a
 * double reference's), x[i] moved by +-h, divided by the step the float
 * x[i] actually took. */
static inline double gc_central(float *x, int64_t i, double (*loss)(void *), void *arg, float h)
{
    const float x0 = x[i], xp = x0 + h, xm = x0 - h;
    x[i] = xp;
    const double Lp = loss(arg);
    x[i] = xm;
    const double Lm = loss(arg);
    x[i] = x0;
    return (Lp - Lm) / ((double)xp - (double)xm);
}

/* Each analytic gradient grad[k] of in[k] (n[k] floats, every stride[k]-th
 * probed) against gc_central of loss with step h; names[k] in messages. */
static inline void gc_check_central(float *const *in, float *const *grad, const int64_t *n,
                                    const int64_t *stride, const char *const *names, int nin,
                                    double (*loss)(void *), void *arg, float h, double atol,
                                    double rtol)
{
    for (int k = 0; k < nin; k++)
        for (int64_t i = 0; i < n[k]; i += stride[k])
            CHECK_CLOSE(grad[k][i], gc_central(in[k], i, loss, arg, h), atol, rtol, names[k]);
}

/* One forward of f with gradients on and a backward from dout (out->n
 * floats): res[0] a malloc'd copy of the output, res[1 + k] of in[k]'s
 * gradient (NULL for a NULL input); n[] their sizes. For comparing runs
 * (thread counts) and checking them finite. */
static inline void gc_outputs(gc_fn f, sl_tensor **in, int nin, void *arg, const float *dout,
                              float **res, int64_t *n)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    for (int k = 0; k < nin; k++)
        if (in[k]) memset(in[k]->grad, 0, (size_t)in[k]->n * sizeof(float));
    sl_tensor *out = f(&ctx, in, arg);
    sl_backward_with(&ctx, out, dout);
    res[0] = gc_dup(out->data, out->n);
    n[0] = out->n;
    for (int k = 0; k < nin; k++) {
        res[1 + k] = in[k] ? gc_dup(in[k]->grad, in[k]->n) : NULL;
        n[1 + k] = in[k] ? in[k]->n : 0;
    }
    sl_ctx_free(&ctx);
}

static inline double gc_loss(gc_fn f, sl_tensor **in, void *arg, const float *r, int64_t *nout)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *out = f(&ctx, in, arg);
    double L = 0;
    for (int64_t i = 0; i < out->n; i++) L += (double)r[i] * out->data[i];
    if (nout) *nout = out->n;
    sl_ctx_free(&ctx);
    return L;
}

/* Checks d/d(in[k]) for every k with requires_grad. Returns true when all
 * probed elements satisfy |analytic - numeric| <= atol + rtol |numeric|. */
static inline bool gradcheck(const char *name, gc_fn f, sl_tensor **in, int nin, void *arg, float h,
                             double atol, double rtol, int64_t max_probe)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1234);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    for (int k = 0; k < nin; k++)
        if (in[k]->requires_grad) memset(in[k]->grad, 0, (size_t)in[k]->n * sizeof(float));
    sl_tensor *out = f(&ctx, in, arg);
    float *r = malloc((size_t)out->n * sizeof(float));
    for (int64_t i = 0; i < out->n; i++) r[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, out, r);
    bool ok = true;
    for (int k = 0; k < nin; k++) {
        sl_tensor *t = in[k];
        if (!t->requires_grad) continue;
        int64_t stride = t->n > max_probe ? t->n / max_probe : 1;
        for (int64_t i = 0; i < t->n; i += stride) {
            float x0 = t->data[i];
            t->data[i] = x0 + h;
            double Lp = gc_loss(f, in, arg, r, NULL);
            t->data[i] = x0 - h;
            double Lm = gc_loss(f, in, arg, r, NULL);
            t->data[i] = x0;
            double num = (Lp - Lm) / (2.0 * h), ana = t->grad[i];
            if (!(fabs(ana - num) <= atol + rtol * fabs(num))) {
                if (ok)
                    fprintf(stderr, "  %s: d input %d [%lld]: analytic %.7g numeric %.7g\n", name,
                            k, (long long)i, ana, num);
                ok = false;
            }
        }
    }
    free(r);
    sl_ctx_free(&ctx);
    return ok;
}

#endif
