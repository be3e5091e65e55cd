/* The tasks icl_regression and icl_mixture (icl.h; docs/tasks.md): real
 * vectors in, one regressed value out at each x position; the curriculum
 * follows the training step the trainer puts in sl_batch.step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/icl.h"
#include "tasks/synth.h"

typedef struct icl {
    const char *name;
    sl_icl_opts o;
    double ridge; /* the ridge baseline's lambda */
    sl_synth_split split;
    int *family; /* [cap]: the families of the last batch's rows */
    int64_t rows, cap;
} icl;

/* SL_ERR_CONFIG naming the option when o cannot make rows of length T. */
static sl_status check(const icl *x, int64_t T)
{
    const sl_icl_curriculum *c = &x->o.cur;
    if (c->every && c->dims_start > c->dims)
        return sl_fail(SL_ERR_CONFIG,
                       "task '%s': option dims_start = %lld: expected at most dims = %lld", x->name,
                       (long long)c->dims_start, (long long)c->dims);
    if (c->every && c->points_start > c->points)
        return sl_fail(SL_ERR_CONFIG,
                       "task '%s': option points_start = %lld: expected at most points = %lld",
                       x->name, (long long)c->points_start, (long long)c->points);
    if (T < 2 * c->points)
        return sl_fail(SL_ERR_CONFIG,
                       "task '%s': option points = %lld needs seq_len >= 2 * points = %lld (each "
                       "example is an x position and a y position); seq_len is %lld",
                       x->name, (long long)c->points, (long long)(2 * c->points), (long long)T);
    double total = 0;
    for (int f = 0; f < SL_ICL_FAMILIES; f++) total += x->o.weight[f];
    if (!(total > 0))
        return sl_fail(SL_ERR_CONFIG,
                       "task '%s': options linear, sparse, relu, tree (the family "
                       "weights) are all 0: expected at least one > 0",
                       x->name);
    return SL_OK;
}

static sl_status icl_open(sl_task *t, const sl_task_env *env, const char *name, bool mixture)
{
    icl *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task '%s': out of memory", name);
    t->impl = x;
    x->name = name;
    const sl_opts *o = env->opts;
    x->o.cur = (sl_icl_curriculum){.dims_start = sl_opt_int(o, "dims_start"),
                                   .dims_inc = sl_opt_int(o, "dims_inc"),
                                   .dims = sl_opt_int(o, "dims"),
                                   .points_start = sl_opt_int(o, "points_start"),
                                   .points_inc = sl_opt_int(o, "points_inc"),
                                   .points = sl_opt_int(o, "points"),
                                   .every = sl_opt_int(o, "curriculum_every")};
    x->o.unit = mixture;
    x->o.weight[SL_ICL_LINEAR] = 1;
    if (mixture) {
        for (int f = 0; f < SL_ICL_FAMILIES; f++)
            x->o.weight[f] = sl_opt_float(o, sl_icl_family_name(f));
        x->o.sparsity = sl_opt_int(o, "sparsity");
        x->o.hidden = sl_opt_int(o, "hidden");
    }
    x->ridge = sl_opt_float(o, "ridge");
    x->split = sl_synth_split_opts(o);
    t->io = (sl_task_io){
        .input = SL_INPUT_VECTORS, .n_in = x->o.cur.dims, .head = SL_HEAD_REGRESS, .n_out = 1};
    return check(x, env->seq_len);
}

static sl_status regression_open(sl_task *t, const sl_task_env *env)
{
    return icl_open(t, env, "icl_regression", false);
}

static sl_status mixture_open(sl_task *t, const sl_task_env *env)
{
    return icl_open(t, env, "icl_mixture", true);
}

/* vectors [B*T, dims], values and mask [B*T], lengths [B]. */
static void icl_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const int64_t B = bt->B, T = bt->T, D = t->io.n_in;
    icl *x = t->impl;
    if (B > x->cap) {
        const size_t bytes = (size_t)B * sizeof *x->family;
        int *f = realloc(x->family, bytes);
        if (!f) sl_out_of_memory("an icl task: the families of a batch", bytes);
        x->family = f;
        x->cap = B;
    }
    x->rows = B;
    int64_t d, p;
    sl_icl_size(&x->o.cur, split, bt->step, &d, &p);
    for (int64_t b = 0; b < B; b++) {
        sl_synth_require(sl_icl_example(&x->o, sl_synth_row_seed(&x->split, split, rng, bt, b), d,
                                        p, T, bt->vectors + b * T * D, bt->values + b * T,
                                        bt->mask + b * T, &x->family[b]));
        bt->lengths[b] = 2 * p;
    }
}

/* Adds the curve sum [points] / count [points] to the score `name`. */
static sl_status add_curve(sl_scores *sc, const char *name, const double *sum, const int64_t *count,
                           int64_t points)
{
    sl_status st = SL_OK;
    for (int64_t k = 0; k < points && !st; k++)
        st = sl_scores_add_sum(sc, name, k, sum[k], count[k]);
    return st;
}

/* Curves of normalised squared error by the number k of examples before
 * each x position: the model's ("err_by_k"; for icl_mixture also
 * "err_by_k_FAMILY" per function family) and every baseline's on the same
 * prompts ("least_squares_by_k", "ridge_by_k", "nearest3_by_k",
 * "averaging_by_k", "gd_step_by_k"). out [R, 1]: the regress head at
 * rows' positions (rows->pos into b). */
static sl_status icl_score(sl_task *t, const sl_batch *b, const sl_tensor *out,
                           const sl_batch *rows, sl_scores *sc)
{
    const icl *x = t->impl;
    sl_icl_shape sh = {0};
    sl_icl_task_shape(t, &sh);
    const int64_t P = sh.points, n = b->B * b->T, R = sl_rows(out);
    float *pred = calloc((size_t)n, sizeof *pred);
    double *sum = calloc((size_t)((SL_ICL_BASELINES + 1) * P), sizeof *sum);
    int64_t *count = calloc((size_t)P, sizeof *count);
    sl_status st =
        pred && sum && count ? SL_OK : sl_fail(SL_ERR_OOM, "task '%s': out of memory", x->name);
    for (int64_t r = 0; r < R && !st; r++) pred[rows->pos ? rows->pos[r] : r] = out->data[r];
    if (!st) st = sl_icl_model_errors(b, &sh, pred, sum, count);
    if (!st) st = add_curve(sc, "err_by_k", sum, count, P);
    for (int f = 0; x->o.unit && f < SL_ICL_FAMILIES && !st; f++) {
        sl_batch one = *b;
        one.B = 1;
        char name[SL_SCORE_NAME];
        snprintf(name, sizeof name, "err_by_k_%s", sl_icl_family_name(f));
        for (int64_t r = 0; r < b->B && !st; r++) {
            if (sl_icl_row_family(t, r) != f) continue;
            one.vectors = b->vectors + r * b->T * sh.n_in;
            one.values = b->values + r * b->T;
            one.mask = b->mask + r * b->T;
            one.lengths = b->lengths + r;
            memset(sum, 0, (size_t)P * sizeof *sum);
            memset(count, 0, (size_t)P * sizeof *count);
            st = sl_icl_model_errors(&one, &sh, pred + r * b->T, sum, count);
            if (!st) st = add_curve(sc, name, sum, count, P);
        }
    }
    if (!st) {
        memset(sum, 0, (size_t)(SL_ICL_BASELINES * P) * sizeof *sum);
        memset(count, 0, (size_t)P * sizeof *count);
        st = sl_icl_baseline_errors(b, &sh, x->ridge, sum, count);
    }
    for (int i = 0; i < SL_ICL_BASELINES && !st; i++) {
        char name[SL_SCORE_NAME];
        snprintf(name, sizeof name, "%s_by_k", sl_icl_baseline_name(i));
        st = add_curve(sc, name, sum + i * P, count, P);
    }
    free(pred);
    free(sum);
    free(count);
    return st;
}

static int64_t icl_split_size(const sl_task *t, sl_split split)
{
    return sl_synth_split_size(&((const icl *)t->impl)->split, split);
}

static void icl_close(sl_task *t)
{
    icl *x = t->impl;
    free(x->family);
    free(x);
    t->impl = NULL;
}

extern const sl_task_vtable sl_task_icl_regression, sl_task_icl_mixture;

static bool is_icl(const sl_task *t)
{
    return t->impl && (t->vt == &sl_task_icl_regression || t->vt == &sl_task_icl_mixture);
}

bool sl_icl_task_shape(const sl_task *t, sl_icl_shape *out)
{
    if (!is_icl(t)) return false;
    const icl *x = t->impl;
    *out = (sl_icl_shape){.n_in = x->o.cur.dims,
                          .dims = x->o.cur.dims,
                          .points = x->o.cur.points,
                          .norm = x->o.unit ? 1 : (double)x->o.cur.dims};
    return true;
}

int sl_icl_row_family(const sl_task *t, int64_t b)
{
    if (!is_icl(t)) return -1;
    const icl *x = t->impl;
    return b >= 0 && b < x->rows ? x->family[b] : -1;
}

/* Garg et al.'s curriculum: d from 5 by 1 to 20, points from 11 by 2 to
 * 41, every 2000 steps. */
#define ICL_OPTIONS                                                                                 \
    SL_SYNTH_SPLIT_OPTIONS,                                                                         \
        {"dims",                                                                                    \
         SL_OPT_INT,                                                                                \
         "20",                                                                                      \
         1,                                                                                         \
         1024,                                                                                      \
         NULL,                                                                                      \
         "dimension d of x at the curriculum's end, in validation and test, and the model's "       \
         "n_in"},                                                                                   \
        {"dims_start", SL_OPT_INT, "5", 1, 1024, NULL, "d at training step 0"},                     \
        {"dims_inc", SL_OPT_INT, "1", 1, 1024, NULL, "d's increment every curriculum_every steps"}, \
        {"points",                                                                                  \
         SL_OPT_INT,                                                                                \
         "41",                                                                                      \
         1,                                                                                         \
         1 << 22,                                                                                   \
         NULL,                                                                                      \
         "examples per prompt at the curriculum's end and held out (seq_len >= 2 points)"},         \
        {"points_start", SL_OPT_INT, "11", 1, 1 << 22, NULL, "examples per prompt at step 0"},      \
        {"points_inc",                                                                              \
         SL_OPT_INT,                                                                                \
         "2",                                                                                       \
         1,                                                                                         \
         1 << 22,                                                                                   \
         NULL,                                                                                      \
         "the examples' increment every curriculum_every steps"},                                   \
        {"curriculum_every",                                                                        \
         SL_OPT_INT,                                                                                \
         "2000",                                                                                    \
         0,                                                                                         \
         1e15,                                                                                      \
         NULL,                                                                                      \
         "training steps between increments; 0: no curriculum (dims and points from step 0)"},      \
    {                                                                                               \
        "ridge", SL_OPT_FLOAT, "0.1", 1e-12, 1e12, NULL,                                            \
            "lambda of the ridge baseline that evaluation scores beside the model"                  \
    }

static const sl_option REGRESSION_OPTIONS[] = {ICL_OPTIONS};

static const sl_option MIXTURE_OPTIONS[] = {
    ICL_OPTIONS,
    {"linear", SL_OPT_FLOAT, "1", 0, 1e6, NULL, "weight of dense linear functions (0: none)"},
    {"sparse", SL_OPT_FLOAT, "1", 0, 1e6, NULL, "weight of sparse linear functions"},
    {"relu", SL_OPT_FLOAT, "1", 0, 1e6, NULL, "weight of two-layer ReLU networks"},
    {"tree", SL_OPT_FLOAT, "1", 0, 1e6, NULL, "weight of depth-4 decision trees"},
    {"sparsity", SL_OPT_INT, "3", 1, 1024, NULL, "nonzero coordinates of a sparse w (at most d)"},
    {"hidden", SL_OPT_INT, "100", 1, 4096, NULL, "hidden units of a ReLU network"},
};

const sl_task_vtable sl_task_icl_regression = {
    .name = "icl_regression",
    .desc = "in-context linear regression (Garg et al. 2022): prompts x1, y1, x2, y2, ... with "
            "y = w.x, w and x ~ N(0, I); regress y_i at x_i",
    .options = SL_OPTION_TABLE(REGRESSION_OPTIONS),
    .open = regression_open,
    .batch = icl_batch,
    .score = icl_score,
    .split_size = icl_split_size,
    .close = icl_close,
};

const sl_task_vtable sl_task_icl_mixture = {
    .name = "icl_mixture",
    .desc = "in-context model selection: each prompt's function is dense or sparse linear, a ReLU "
            "network or a decision tree (Garg et al. 2022; Bai et al. 2023), targets of unit "
            "variance",
    .options = SL_OPTION_TABLE(MIXTURE_OPTIONS),
    .open = mixture_open,
    .batch = icl_batch,
    .score = icl_score,
    .split_size = icl_split_size,
    .close = icl_close,
};
