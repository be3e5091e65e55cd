/* AdamW, learning-rate schedule and gradient clipping. */
#include <math.h>

#include "train/optim.h"

double sl_lr_at(const sl_config *c, int64_t step)
{
    if (step < c->warmup_steps) return c->lr * (double)(step + 1) / (double)c->warmup_steps;
    int64_t span = c->steps - c->warmup_steps;
    double p = (double)(step - c->warmup_steps) / (double)(span > 1 ? span : 1);
    if (p > 1) p = 1;
    return c->min_lr + 0.5 * (c->lr - c->min_lr) * (1.0 + cos(M_PI * p));
}

#define NORM_CHUNKS 256

double sl_grad_norm(const sl_params *p)
{
    double part[NORM_CHUNKS];
    int64_t n = (int64_t)p->total, per = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
    const float *g = p->grad;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < NORM_CHUNKS; c++) {
        double s = 0;
        int64_t lo = c * per, hi = lo + per < n ? lo + per : n;
        for (int64_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (int64_t c = 0; c < NORM_CHUNKS; c++) s += part[c];
    return sqrt(s);
}

double sl_clip_grad(sl_params *p, double max_norm)
{
    double norm = sl_grad_norm(p);
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float k = (float)coef;
            float *g = p->grad;
            int64_t n = (int64_t)p->total;
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < n; i++) g[i] *= k;
        }
    }
    return norm;
}

/* The per-update constants of AdamW. */
typedef struct adamw_k {
    float b1, b2, eps, step_size, rbc2;
} adamw_k;

/* One element's update: m, v advance in place; returns the new weight. */
static inline float adamw_elem(const adamw_k *k, float decay, float w, float g, float *m, float *v)
{
    *m = k->b1 * *m + (1.0f - k->b1) * g;
    *v = k->b2 * *v + (1.0f - k->b2) * g * g;
    return w * decay - k->step_size * *m / (sqrtf(*v) * k->rbc2 + k->eps);
}

/* Whether the update of n elements leaves every weight and moment finite;
 * reads only. x * 0 is 0 for finite x and NaN for Inf or NaN, so one sum
 * says it (a reduction that vectorizes, unlike isfinite). */
static bool update_finite(const adamw_k *k, float decay, const float *w, const float *g,
                          const float *m, const float *v, int64_t n)
{
    float z = 0;
#pragma omp parallel for simd reduction(+ : z) schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
        float mi = m[i], vi = v[i];
        float wi = adamw_elem(k, decay, w[i], g[i], &mi, &vi);
        z += wi * 0.0f + mi * 0.0f + vi * 0.0f;
    }
    return z == 0.0f;
}

const char *sl_adamw_step(sl_params *p, const sl_config *c, int64_t step, double lr)
{
    double t = (double)(step + 1);
    const adamw_k k = {.b1 = (float)c->beta1,
                       .b2 = (float)c->beta2,
                       .eps = (float)c->adam_eps,
                       .step_size = (float)(lr / (1.0 - pow(c->beta1, t))),
                       .rbc2 = (float)(1.0 / sqrt(1.0 - pow(c->beta2, t)))};
    float wd = (float)(1.0 - lr * c->weight_decay);
    for (size_t j = 0; j < p->count; j++) {
        const sl_param *q = p->list[j];
        size_t o = q->offset;
        if (!update_finite(&k, q->decay ? wd : 1.0f, p->data + o, p->grad + o, p->m + o, p->v + o,
                           q->t.n))
            return q->name;
    }
    for (size_t j = 0; j < p->count; j++) {
        const sl_param *q = p->list[j];
        float decay = q->decay ? wd : 1.0f;
        float *w = p->data + q->offset, *g = p->grad + q->offset;
        float *m = p->m + q->offset, *v = p->v + q->offset;
        int64_t n = q->t.n;
#pragma omp parallel for simd schedule(static) if (n > 32768)
        for (int64_t i = 0; i < n; i++) w[i] = adamw_elem(&k, decay, w[i], g[i], &m[i], &v[i]);
    }
    return NULL;
}

/* Whether n floats are all finite (the same x * 0 sum). */
static bool all_finite(const float *x, int64_t n)
{
    float z = 0;
#pragma omp parallel for simd reduction(+ : z) schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) z += x[i] * 0.0f;
    return z == 0.0f;
}

const char *sl_params_nonfinite(const sl_params *p, const char **which)
{
    const char *kind[3] = {"weight", "adam.m", "adam.v"};
    const float *buf[3] = {p->data, p->m, p->v};
    for (size_t j = 0; j < p->count; j++)
        for (int b = 0; b < 3; b++)
            if (!all_finite(buf[b] + p->list[j]->offset, p->list[j]->t.n)) {
                if (which) *which = kind[b];
                return p->list[j]->name;
            }
    return NULL;
}
