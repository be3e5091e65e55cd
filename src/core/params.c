/* Parameters in one flat buffer (plus one each for grads and AdamW moments). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void sl_params_init(sl_params *p) { memset(p, 0, sizeof *p); }

void sl_params_free(sl_params *p)
{
    for (size_t i = 0; i < p->count; i++) free(p->list[i]);
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
        q->t.n *= shape[i];
    }
    q->t.requires_grad = true;
    q->init = init;
    q->scale = scale;
    q->decay = decay;
    p->list[p->count++] = q;
    return &q->t;
}

static float *zeroed(size_t n)
{
    void *ptr = NULL;
    if (posix_memalign(&ptr, 64, (n ? n : 1) * sizeof(float)) != 0) abort();
    memset(ptr, 0, (n ? n : 1) * sizeof(float));
    return ptr;
}

sl_status sl_params_finalize(sl_params *p)
{
    size_t off = 0;
    for (size_t i = 0; i < p->count; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->list[i]->name, p->list[j]->name) == 0)
                return sl_fail(SL_ERR_ARG, "parameter '%s' declared twice", p->list[i]->name);
        p->list[i]->offset = off;
        /* 16-float (64-byte) alignment keeps every tensor SIMD-aligned. */
        off += ((size_t)p->list[i]->t.n + 15) & ~(size_t)15;
    }
    p->total = off;
    p->data = zeroed(off);
    p->grad = zeroed(off);
    p->m = zeroed(off);
    p->v = zeroed(off);
    for (size_t i = 0; i < p->count; i++) {
        p->list[i]->t.data = p->data + p->list[i]->offset;
        p->list[i]->t.grad = p->grad + p->list[i]->offset;
    }
    return SL_OK;
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
