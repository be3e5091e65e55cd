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

void sl_adamw_step(sl_params *p, const sl_config *c, int64_t step, double lr)
{
    double t = (double)(step + 1);
    float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->adam_eps;
    float step_size = (float)(lr / (1.0 - pow(c->beta1, t)));
    float rbc2 = (float)(1.0 / sqrt(1.0 - pow(c->beta2, t)));
    for (size_t k = 0; k < p->count; k++) {
        const sl_param *q = p->list[k];
        float decay = q->decay ? (float)(1.0 - lr * c->weight_decay) : 1.0f;
        float *w = p->data + q->offset, *g = p->grad + q->offset;
        float *m = p->m + q->offset, *v = p->v + q->offset;
        int64_t n = q->t.n;
#pragma omp parallel for simd schedule(static) if (n > 32768)
        for (int64_t i = 0; i < n; i++) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            w[i] = w[i] * decay - step_size * m[i] / (sqrtf(v[i]) * rbc2 + eps);
        }
    }
}
