/* timeseries: forecasting series from a CSV file (timeseries.h; docs/tasks.md,
 * "timeseries"). The model reads a window of seq_len standard-scaled rows
 * as vectors and predicts the next `horizon` rows at once from its last
 * position (a direct multi-step regress head, n_out = horizon x columns).
 * The scaling goes into the checkpoint (ts_mean, ts_std), so a trained
 * model is evaluated in the scale it was trained in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/ts_baselines.h"
#include "tasks/ts_csv.h"

#define MEAN_KEY "ts_mean"
#define STD_KEY "ts_std"

typedef struct tsk {
    sl_ts s;
    int64_t period, ar_order;
    char *meta[2]; /* the scaling as metadata text: mean, std */
    /* The last batch's split and windows [cap] (ts_score's rows). */
    sl_split split;
    int64_t *win, cap;
    /* The AR baseline's fit [c, ar_order + 1], made by the first score;
     * ar_fit: 0 not yet, 1 made, -1 refused (a warning said why). */
    double *coef;
    int ar_fit;
    bool naive_warned;
} tsk;

/* [c] doubles from metadata key: comma-separated, finite (std: > 0). */
static sl_status meta_doubles(const sl_task_env *env, const char *key, int64_t c, bool positive,
                              double *out)
{
    const char *v = sl_kv_find(env->meta, env->n_meta, key);
    if (!v)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: metadata '%s' is missing (the timeseries task's scaling)",
                       env->meta_src, key);
    for (int64_t k = 0; k < c; k++) {
        char *end;
        out[k] = strtod(v, &end);
        const char want = k + 1 < c ? ',' : '\0';
        if (end == v || *end != want || !isfinite(out[k]) || (positive && !(out[k] > 0)))
            return sl_fail(SL_ERR_FORMAT,
                           "%s: metadata '%s' = \"%.60s\": expected %lld comma-separated finite "
                           "numbers%s, one per column of the task",
                           env->meta_src, key, sl_kv_find(env->meta, env->n_meta, key),
                           (long long)c, positive ? " above 0" : "");
        v = end + (k + 1 < c);
    }
    return SL_OK;
}

/* "x0,x1,..." of c doubles, each exact (%.17g); NULL when out of memory. */
static char *format_doubles(const double *x, int64_t c)
{
    const size_t size = (size_t)c * 26 + 1;
    char *s = malloc(size);
    if (!s) return NULL;
    size_t n = 0;
    for (int64_t k = 0; k < c; k++)
        n += (size_t)snprintf(s + n, size - n, "%s%.17g", k ? "," : "", x[k]);
    return s;
}

/* The option checks that need no data. period and ar_order are checked
 * by the baselines, so that they never stop a training run. */
static sl_status check_options(int64_t H, int64_t C, double train_frac, double test_frac)
{
    if (!(train_frac + test_frac < 1))
        return sl_fail(SL_ERR_CONFIG,
                       "task 'timeseries': options train_frac = %g and test_frac = %g: expected "
                       "a sum below 1 (validation takes the rows between them)",
                       train_frac, test_frac);
    if (H * C > (1 << 24))
        return sl_fail(SL_ERR_CONFIG,
                       "task 'timeseries': options horizon = %lld and columns = %lld: the head "
                       "predicts horizon x columns values, expected at most 2^24",
                       (long long)H, (long long)C);
    return SL_OK;
}

/* Reads the CSV and builds the series, in the checkpoint's scale when
 * there is one. */
static sl_status load(tsk *x, const sl_task_env *env, int64_t column, const sl_ts_shape *shape,
                      int64_t C)
{
    double *raw, *scale = NULL;
    int64_t n;
    sl_status st = sl_csv_read_columns(env->data, column, C, &raw, &n);
    if (st) return st;
    if (env->meta) {
        scale = malloc((size_t)(2 * C) * sizeof *scale);
        st = !scale ? sl_fail(SL_ERR_OOM, "%s: out of memory for the scaling", env->data)
                    : meta_doubles(env, MEAN_KEY, C, false, scale);
        if (!st) st = meta_doubles(env, STD_KEY, C, true, scale + C);
    }
    if (!st)
        st = sl_ts_make(&x->s, raw, n, C, shape, scale, scale ? scale + C : NULL, env->data);
    free(raw);
    free(scale);
    return st;
}

static sl_status ts_open(sl_task *t, const sl_task_env *env)
{
    if (!env->data[0])
        return sl_fail(SL_ERR_CONFIG,
                       "config key 'data': the timeseries task needs a CSV file (R's series: "
                       "data/sunspot_month.csv, data/co2.csv, data/nottem.csv)");
    tsk *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task 'timeseries': out of memory");
    t->impl = x;
    const int64_t L = env->seq_len, H = sl_opt_int(env->opts, "horizon"),
                  C = sl_opt_int(env->opts, "columns");
    const sl_ts_shape shape = {L, H, sl_opt_float(env->opts, "train_frac"),
                               sl_opt_float(env->opts, "test_frac"),
                               sl_opt_bool(env->opts, "subtract_last")};
    x->period = sl_opt_int(env->opts, "period");
    x->ar_order = sl_opt_int(env->opts, "ar_order");
    sl_status st = check_options(H, C, shape.train_frac, shape.test_frac);
    if (!st) st = load(x, env, sl_opt_int(env->opts, "column"), &shape, C);
    if (st) return st;
    x->meta[0] = format_doubles(x->s.mean, C);
    x->meta[1] = format_doubles(x->s.std, C);
    if (!x->meta[0] || !x->meta[1])
        return sl_fail(SL_ERR_OOM, "%s: out of memory for the scaling's metadata", env->data);
    t->vocab_size = 0;
    t->io = (sl_task_io){.input = SL_INPUT_VECTORS, .n_in = C, .head = SL_HEAD_REGRESS,
                         .n_out = H * C, .pool = SL_POOL_LAST};
    return SL_OK;
}

/* vectors [B*T, c], values [B*T, H c], mask [B*T]: training row b is
 * window below(windows of the split), held-out row b window first + b
 * (mod windows), so an evaluation walks the split's windows in order. */
static void ts_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    tsk *x = t->impl;
    const sl_ts *s = &x->s;
    const int64_t T = bt->T, c = s->c, H = s->H;
    sl_require(T == s->L, "timeseries batch",
               "T = the seq_len the task was opened with (the input window)");
    if (bt->B > x->cap) {
        const size_t bytes = (size_t)bt->B * sizeof *x->win;
        int64_t *w = realloc(x->win, bytes);
        if (!w) sl_out_of_memory("task 'timeseries': the windows of a batch", bytes);
        x->win = w;
        x->cap = bt->B;
    }
    x->split = split;
    const int64_t windows = sl_ts_windows(s, split);
    for (int64_t b = 0; b < bt->B; b++) {
        x->win[b] = split == SL_SPLIT_TRAIN ? (int64_t)sl_rng_below(rng, (uint64_t)windows)
                                            : (bt->first + b) % windows;
        sl_ts_row(s, split, x->win[b], bt->vectors + b * T * c, bt->values + b * T * H * c,
                  bt->mask + b * T);
    }
}

/* Adds forecast pred [H, c] of the window whose first target row is start
 * to the scores `name`_mse and `name`_mae, value by value (the model's
 * mse and mae count the same values). */
static sl_status add_errors(sl_scores *sc, const char *name, const sl_ts *s, int64_t start,
                            const double *pred)
{
    char mse[SL_SCORE_NAME], mae[SL_SCORE_NAME];
    snprintf(mse, sizeof mse, "%s_mse", name);
    snprintf(mae, sizeof mae, "%s_mae", name);
    sl_status st = SL_OK;
    for (int64_t i = 0; i < s->H * s->c && !st; i++) {
        const double e = pred[i] - s->z[start * s->c + i];
        st = sl_scores_add(sc, mse, e * e);
        if (!st) st = sl_scores_add(sc, mae, fabs(e));
    }
    return st;
}

/* The baselines on the batch's own windows: naive_mse, naive_mae (seasonal
 * naive, option period) and ar_mse, ar_mae (AR(ar_order) fitted on the
 * training split), beside the model's mse and mae. A baseline the options
 * or the data refuse is left out, with one warning. */
static sl_status ts_score(sl_task *t, const sl_batch *b, const sl_tensor *out, const sl_batch *rows,
                          sl_scores *sc)
{
    tsk *x = t->impl;
    const sl_ts *s = &x->s;
    if (x->ar_fit == 0) {
        x->coef = malloc((size_t)(s->c * (x->ar_order + 1)) * sizeof *x->coef);
        if (!x->coef) return sl_fail(SL_ERR_OOM, "task 'timeseries': out of memory");
        x->ar_fit = sl_ts_ar_fit(s, x->ar_order, x->coef) == SL_OK ? 1 : -1;
        if (x->ar_fit < 0) fprintf(stderr, "seqlab: warning: no AR baseline: %s\n", sl_errmsg());
    }
    double *pred = malloc((size_t)(s->H * s->c) * sizeof *pred);
    if (!pred) return sl_fail(SL_ERR_OOM, "task 'timeseries': out of memory");
    const bool naive = x->period >= 1 && x->period <= s->L;
    if (!naive && !x->naive_warned) {
        fprintf(stderr,
                "seqlab: warning: no seasonal-naive baseline: timeseries.period = %lld exceeds "
                "the input window seq_len = %lld\n",
                (long long)x->period, (long long)s->L);
        x->naive_warned = true;
    }
    sl_status st = SL_OK;
    for (int64_t r = 0; r < b->B && !st; r++) {
        const int64_t start = sl_ts_window_start(s, x->split, x->win[r]);
        if (naive) {
            sl_ts_seasonal_naive_forecast(s, start, x->period, pred);
            st = add_errors(sc, "naive", s, start, pred);
        }
        if (!st && x->ar_fit > 0) {
            sl_ts_ar_forecast(s, start, x->ar_order, x->coef, pred);
            st = add_errors(sc, "ar", s, start, pred);
        }
    }
    free(pred);
    return st;
}

static int64_t ts_split_size(const sl_task *t, sl_split split)
{
    return sl_ts_windows(&((const tsk *)t->impl)->s, split);
}

static size_t ts_meta(const sl_task *t, sl_kv *out, size_t max)
{
    const tsk *x = t->impl;
    if (max < 2) return 0;
    out[0] = (sl_kv){MEAN_KEY, x->meta[0]};
    out[1] = (sl_kv){STD_KEY, x->meta[1]};
    return 2;
}

static void ts_close(sl_task *t)
{
    tsk *x = t->impl;
    sl_ts_free(&x->s);
    free(x->win);
    free(x->coef);
    free(x->meta[0]);
    free(x->meta[1]);
    free(x);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    {"column", SL_OPT_INT, "1", 0, 1 << 20, NULL,
     "first series column of the CSV, 0-based (column 0 of R's series is the time)"},
    {"columns", SL_OPT_INT, "1", 1, 4096, NULL,
     "series: this many columns from `column` on (n_in; n_out = horizon x columns)"},
    {"horizon", SL_OPT_INT, "24", 1, 1 << 20, NULL,
     "rows predicted after each window of seq_len input rows"},
    {"train_frac", SL_OPT_FLOAT, "0.7", 0.01, 0.98, NULL,
     "share of the rows, from the start, for training and the scaling's statistics"},
    {"test_frac", SL_OPT_FLOAT, "0.2", 0.01, 0.98, NULL,
     "share of the rows, at the end, for test; validation is the rest between"},
    {"subtract_last", SL_OPT_BOOL, "false", 0, 0, NULL,
     "inputs and targets minus the window's last input row (NLinear); same errors"},
    {"period", SL_OPT_INT, "12", 1, 1 << 24, NULL,
     "seasonal-naive baseline: repeat the window's last `period` rows (1 = naive)"},
    {"ar_order", SL_OPT_INT, "12", 1, 4096, NULL,
     "AR baseline: lags p of the least-squares autoregression (iterated forecast)"},
};

const sl_task_vtable sl_task_timeseries = {
    .name = "timeseries",
    .desc = "forecasting: a window of seq_len standard-scaled CSV rows in, the next horizon "
            "rows out from the last position (Informer's protocol, 70/10/20 in time order)",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = ts_open,
    .meta = ts_meta,
    .batch = ts_batch,
    .split_size = ts_split_size,
    .score = ts_score,
    .close = ts_close,
};

const sl_ts *sl_timeseries_data(const sl_task *t)
{
    return t->vt == &sl_task_timeseries && t->impl ? &((const tsk *)t->impl)->s : NULL;
}

sl_status sl_timeseries_baselines(const sl_task *t, sl_split split, sl_ts_errors *naive,
                                  sl_ts_errors *ar)
{
    const sl_ts *s = sl_timeseries_data(t);
    if (!s) return sl_fail(SL_ERR_ARG, "timeseries baselines: the task is not an open timeseries");
    const tsk *x = t->impl;
    sl_status st = sl_ts_seasonal_naive(s, split, x->period, naive);
    return st ? st : sl_ts_ar(s, split, x->ar_order, ar);
}
