/* The icl generators (icl.h; docs/tasks.md, "icl_regression" and
 * "icl_mixture"): a function drawn per prompt, then its points, laid out as
 * x_1, [y_1, 0..0], x_2, ... with the target y_i at x_i. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/icl.h"
#include "tasks/synth.h"

/* The value after n increments from start by inc, at most end. */
static int64_t grown(int64_t start, int64_t inc, int64_t end, int64_t n)
{
    return n >= (end - start + inc - 1) / inc ? end : start + inc * n;
}

void sl_icl_size(const sl_icl_curriculum *c, sl_split split, int64_t step, int64_t *d, int64_t *p)
{
    *d = c->dims;
    *p = c->points;
    if (split != SL_SPLIT_TRAIN || c->every == 0) return;
    const int64_t n = step / c->every;
    *d = grown(c->dims_start, c->dims_inc, c->dims, n);
    *p = grown(c->points_start, c->points_inc, c->points, n);
}

const char *sl_icl_family_name(int family)
{
    static const char *const NAMES[SL_ICL_FAMILIES] = {"linear", "sparse", "relu", "tree"};
    return family >= 0 && family < SL_ICL_FAMILIES ? NAMES[family] : NULL;
}

/* A family drawn with chance weight / sum: the first of nonzero weight
 * whose running sum exceeds unit() * sum, the last such if rounding lets
 * none. */
static int pick_family(const double *weight, sl_rng *r)
{
    double total = 0;
    for (int f = 0; f < SL_ICL_FAMILIES; f++) total += weight[f];
    const double u = sl_synth_unit(r) * total;
    double cum = 0;
    int last = 0;
    for (int f = 0; f < SL_ICL_FAMILIES; f++) {
        if (weight[f] == 0) continue;
        cum += weight[f];
        last = f;
        if (u < cum) return f;
    }
    return last;
}

/* The parameters of a drawn function (in one allocation). */
typedef struct icl_fn {
    int family;
    int64_t d, s, hidden;
    double *w;      /* linear [d]; sparse [s] at coords; relu [hidden, d] then [hidden]; tree leaves */
    int32_t *coord; /* sparse [s]; tree [15] split coordinates, heap order */
} icl_fn;

#define TREE_SPLITS ((1 << SL_ICL_TREE_DEPTH) - 1)
#define TREE_LEAVES (1 << SL_ICL_TREE_DEPTH)

/* Draws f's parameters (docs/tasks.md, step 2 of "icl_mixture"). */
static void draw_fn(icl_fn *f, sl_rng *r)
{
    switch (f->family) {
    case SL_ICL_LINEAR:
        for (int64_t j = 0; j < f->d; j++) f->w[j] = sl_synth_normal(r);
        break;
    case SL_ICL_SPARSE:
        sl_synth_distinct(r, 0, f->d, f->s, f->coord);
        for (int64_t t = 0; t < f->s; t++) f->w[t] = sl_synth_normal(r);
        break;
    case SL_ICL_RELU:
        for (int64_t j = 0; j < f->hidden * (f->d + 1); j++) f->w[j] = sl_synth_normal(r);
        break;
    default:
        for (int n = 0; n < TREE_SPLITS; n++) f->coord[n] = (int32_t)sl_rng_below(r, (uint64_t)f->d);
        for (int l = 0; l < TREE_LEAVES; l++) f->w[l] = sl_synth_normal(r);
    }
}

/* f(x), x [d]; unit: scaled to unit variance (linear: / sqrt(d), sparse:
 * / sqrt(s), relu: sqrt(2 / hidden) of Garg's, then / sqrt(d)). */
static double eval_fn(const icl_fn *f, const double *x, bool unit)
{
    double y = 0;
    switch (f->family) {
    case SL_ICL_LINEAR:
        for (int64_t j = 0; j < f->d; j++) y += f->w[j] * x[j];
        return unit ? y / sqrt((double)f->d) : y;
    case SL_ICL_SPARSE:
        for (int64_t t = 0; t < f->s; t++) y += f->w[t] * x[f->coord[t]];
        return y / sqrt((double)f->s);
    case SL_ICL_RELU: {
        const double *a = f->w + f->hidden * f->d;
        for (int64_t h = 0; h < f->hidden; h++) {
            double z = 0;
            for (int64_t j = 0; j < f->d; j++) z += f->w[h * f->d + j] * x[j];
            if (z > 0) y += a[h] * z;
        }
        return y * sqrt(2.0 / (double)(f->hidden * f->d));
    }
    default: {
        int n = 0;
        while (n < TREE_SPLITS) n = 2 * n + 1 + (x[f->coord[n]] > 0);
        return f->w[n - TREE_SPLITS];
    }
    }
}

sl_status sl_icl_example(const sl_icl_opts *o, uint64_t seed, int64_t d, int64_t p, int64_t T,
                         float *vectors, float *values, uint8_t *mask, int *family)
{
    const int64_t D = o->cur.dims;
    sl_require(d >= 1 && d <= D && p >= 0 && 2 * p <= T, "sl_icl_example", "1 <= d <= dims, 2p <= T");
    sl_rng r;
    sl_rng_seed(&r, seed);
    icl_fn f = {.family = o->unit ? pick_family(o->weight, &r) : SL_ICL_LINEAR, .d = d,
                .s = o->sparsity < d ? o->sparsity : d, .hidden = o->hidden};
    const int64_t nw = f.family == SL_ICL_RELU ? f.hidden * (d + 1) : d > TREE_LEAVES ? d : TREE_LEAVES;
    const size_t bytes = (size_t)(nw + d) * sizeof(double) + (size_t)(d + TREE_SPLITS) * sizeof(int32_t);
    f.w = malloc(bytes);
    if (!f.w)
        return sl_fail(SL_ERR_OOM, "icl task: the function of one prompt (%zu bytes)", bytes);
    double *x = f.w + nw;
    f.coord = (int32_t *)(x + d);
    draw_fn(&f, &r);
    memset(vectors, 0, (size_t)(T * D) * sizeof *vectors);
    memset(values, 0, (size_t)T * sizeof *values);
    memset(mask, 0, (size_t)T);
    for (int64_t i = 0; i < p; i++) {
        float *v = vectors + 2 * i * D;
        for (int64_t j = 0; j < d; j++) {
            v[j] = (float)sl_synth_normal(&r);
            x[j] = v[j];
        }
        const float y = (float)eval_fn(&f, x, o->unit);
        values[2 * i] = y;
        mask[2 * i] = 1;
        v[D] = y;
    }
    if (family) *family = f.family;
    free(f.w);
    return SL_OK;
}
