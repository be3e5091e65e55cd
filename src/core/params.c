/* Parameters in one flat buffer (plus one each for grads and AdamW moments). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void sl_params_init(sl_params *p) { memset(p, 0, sizeof *p); }

void sl_params_free(sl_params *p)
{
    for (size_t i = 0; i < p->count; i++) {
        free(p->list[i]->fixed);
        free(p->list[i]);
    }
    free(p->list);
    free(p->data);
    free(p->grad);
    free(p->m);
    free(p->v);
    memset(p, 0, sizeof *p);
}

sl_tensor *sl_param_add(sl_params *p, const char *name, int ndim, const int64_t *shape,
                        sl_init_kind init, float scale, bool decay)
{
    if (p->count == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->list = realloc(p->list, p->cap * sizeof *p->list);
        if (!p->list) abort();
    }
    sl_param *q = calloc(1, sizeof *q);
    if (!q) abort();
    snprintf(q->name, sizeof q->name, "%s%s", p->prefix, name);
    q->t.ndim = ndim;
    q->t.n = 1;
    for (int i = 0; i < ndim; i++) {
        q->t.shape[i] = shape[i];
        q->t.n = sl_size_mul(q->t.n, shape[i]); /* past INT64_MAX: refused by finalize */
    }
    q->t.requires_grad = true;
    q->init = init;
    q->scale = scale;
    q->decay = decay;
    p->list[p->count++] = q;
    return &q->t;
}

sl_tensor *sl_param_add_range(sl_params *p, const char *name, int ndim, const int64_t *shape,
                              sl_init_kind init, float lo, float hi, bool decay)
{
    sl_tensor *t = sl_param_add(p, name, ndim, shape, init, 0.0f, decay);
    p->list[p->count - 1]->lo = lo;
    p->list[p->count - 1]->hi = hi;
    return t;
}

sl_tensor *sl_param_add_fixed(sl_params *p, const char *name, int ndim, const int64_t *shape,
                              const float *values, bool decay)
{
    sl_tensor *t = sl_param_add(p, name, ndim, shape, SL_INIT_FIXED, 0.0f, decay);
    sl_param *q = p->list[p->count - 1];
    q->fixed = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof(float));
    if (!q->fixed)
        sl_out_of_memory("a fixed parameter's init values", (size_t)t->n * sizeof(float));
    memcpy(q->fixed, values, (size_t)t->n * sizeof(float));
    return t;
}

/* A ranged kind's range must be finite and ordered, and inside the domain of
 * its log: A_LOG takes lo >= 0 (a > lo >= 0, so log(a) is finite), DT_BIAS
 * and LOG_UNIFORM lo > 0; ONES_SPAN whole element indices inside the tensor. */
static bool range_ok(const sl_param *q)
{
    if (q->init != SL_INIT_A_LOG && q->init != SL_INIT_DT_BIAS && q->init != SL_INIT_LOG_UNIFORM &&
        q->init != SL_INIT_ONES_SPAN)
        return true;
    if (!isfinite(q->lo) || !isfinite(q->hi) || !(q->lo <= q->hi)) return false;
    if (q->init == SL_INIT_ONES_SPAN)
        return q->lo >= 0 && q->hi <= (float)q->t.n && q->lo == floorf(q->lo) &&
               q->hi == floorf(q->hi);
    return q->init == SL_INIT_A_LOG ? q->lo >= 0 && q->hi > 0 : q->lo > 0;
}

/* n zeroed floats, 64-byte aligned; NULL when the allocation fails. */
static float *zeroed(size_t n)
{
    void *ptr = NULL;
    if (posix_memalign(&ptr, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
    memset(ptr, 0, (n ? n : 1) * sizeof(float));
    return ptr;
}

sl_status sl_params_finalize(sl_params *p)
{
    int64_t off = 0;
    const sl_param *largest = NULL;
    for (size_t i = 0; i < p->count; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->list[i]->name, p->list[j]->name) == 0)
                return sl_fail(SL_ERR_ARG, "parameter '%s' declared twice", p->list[i]->name);
        if (!range_ok(p->list[i]))
            return sl_fail(SL_ERR_ARG,
                           "parameter '%s': init range [%g, %g] out of its kind's domain",
                           p->list[i]->name, (double)p->list[i]->lo, (double)p->list[i]->hi);
        p->list[i]->offset = (size_t)off;
        /* 16-float (64-byte) alignment keeps every tensor SIMD-aligned. */
        off = sl_size_add(off, sl_size_add(p->list[i]->t.n, 15) & ~(int64_t)15);
        if (!largest || p->list[i]->t.n > largest->t.n) largest = p->list[i];
    }
    /* Four buffers of off floats each, planned before any is allocated. */
    sl_status st = sl_mem_check(sl_size_mul(off, 4 * sizeof(float)),
                                "%lld parameters (weights, gradients and 2 AdamW moments; the "
                                "largest is '%s')",
                                (long long)off, largest ? largest->name : "none");
    if (st) return st;
    p->total = (size_t)off;
    p->data = zeroed(p->total);
    p->grad = zeroed(p->total);
    p->m = zeroed(p->total);
    p->v = zeroed(p->total);
    if (!p->data || !p->grad || !p->m || !p->v)
        return sl_fail(SL_ERR_OOM, "out of memory for %zu parameters (4 buffers of %zu bytes)",
                       p->total, p->total * sizeof(float));
    for (size_t i = 0; i < p->count; i++) {
        p->list[i]->t.data = p->data + p->list[i]->offset;
        p->list[i]->t.grad = p->grad + p->list[i]->offset;
    }
    return SL_OK;
}

/* log(a), a = hi - (hi - lo) u uniform in (lo, hi] for u in [0, 1): never
 * log(0) even at lo = 0. In double, rounded once. */
static float init_a_log(double lo, double hi, double u) { return (float)log(hi - (hi - lo) * u); }

/* softplus^-1(dt), dt = exp(log lo + u (log hi - log lo)) log-uniform in
 * [lo, hi). softplus(b) = dt <=> b = log(e^dt - 1) = dt + log(1 - e^-dt),
 * the second form (with expm1) exact for small dt. In double, rounded once. */
static float init_dt_bias(double lo, double hi, double u)
{
    double dt = exp(log(lo) + u * (log(hi) - log(lo)));
    return (float)(dt + log(-expm1(-dt)));
}

/* log(a), a log-uniform in [lo, hi). In double, rounded once. */
static float init_log_uniform(double lo, double hi, double u)
{
    return (float)(log(lo) + u * (log(hi) - log(lo)));
}

void sl_params_randomize(sl_params *p, sl_rng *rng)
{
    for (size_t i = 0; i < p->count; i++) {
        sl_param *q = p->list[i];
        float *d = q->t.data;
        for (int64_t j = 0; j < q->t.n; j++) {
            switch (q->init) {
            case SL_INIT_ZEROS: d[j] = 0.0f; break;
            case SL_INIT_ONES: d[j] = 1.0f; break;
            case SL_INIT_NORMAL: d[j] = q->scale * sl_rng_normal(rng); break;
            case SL_INIT_UNIFORM: d[j] = q->scale * (2.0f * sl_rng_uniform(rng) - 1.0f); break;
            case SL_INIT_A_LOG: d[j] = init_a_log(q->lo, q->hi, sl_rng_uniform(rng)); break;
            case SL_INIT_DT_BIAS: d[j] = init_dt_bias(q->lo, q->hi, sl_rng_uniform(rng)); break;
            case SL_INIT_LOG_UNIFORM:
                d[j] = init_log_uniform(q->lo, q->hi, sl_rng_uniform(rng));
                break;
            case SL_INIT_FIXED: d[j] = q->fixed[j]; break;
            case SL_INIT_ONES_SPAN: d[j] = j >= (int64_t)q->lo && j < (int64_t)q->hi; break;
            }
        }
    }
}

sl_param *sl_params_find(const sl_params *p, const char *name)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->list[i]->name, name) == 0) return p->list[i];
    return NULL;
}

size_t sl_params_numel(const sl_params *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++) n += (size_t)p->list[i]->t.n;
    return n;
}

void sl_params_zero_grad(sl_params *p) { memset(p->grad, 0, p->total * sizeof(float)); }
