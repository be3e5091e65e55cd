/* A series' splits, scaling and windows (timeseries.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/timeseries.h"

/* mean, std [c] of rows [0, rows) of raw [n, c]: population deviation,
 * two passes in double; a column whose rows are all equal gets std 1 and
 * its value as the mean, so it scales to exact zeros. */
static void train_stats(const double *raw, int64_t rows, int64_t c, double *mean, double *std)
{
    for (int64_t k = 0; k < c; k++) {
        double sum = 0, ss = 0;
        bool flat = true;
        for (int64_t r = 0; r < rows; r++) {
            sum += raw[r * c + k];
            flat = flat && raw[r * c + k] == raw[k];
        }
        mean[k] = flat ? raw[k] : sum / (double)rows;
        for (int64_t r = 0; r < rows; r++) ss += (raw[r * c + k] - mean[k]) * (raw[r * c + k] - mean[k]);
        std[k] = flat ? 1 : sqrt(ss / (double)rows);
    }
}

static sl_status check_splits(const sl_ts *s, const sl_ts_shape *sh, const char *src)
{
    const long long n = s->n, L = s->L, H = s->H;
    const long long tr = s->hi[SL_SPLIT_TRAIN], va = s->hi[SL_SPLIT_VAL] - s->lo[SL_SPLIT_VAL],
                    te = s->hi[SL_SPLIT_TEST] - s->lo[SL_SPLIT_TEST];
    if (tr < L + H)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: %lld rows after the header: the training split (train_frac = %g of "
                       "them) has %lld, fewer than seq_len + horizon = %lld (one window's inputs "
                       "and targets)",
                       src, n, sh->train_frac, tr, L + H);
    if (va < H)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: %lld rows after the header: the validation split (the rows between "
                       "training and test) has %lld, fewer than horizon = %lld (one window's "
                       "targets)",
                       src, n, va, H);
    if (te < H)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: %lld rows after the header: the test split (test_frac = %g of them) "
                       "has %lld, fewer than horizon = %lld (one window's targets)",
                       src, n, sh->test_frac, te, H);
    return SL_OK;
}

sl_status sl_ts_make(sl_ts *s, const double *raw, int64_t n, int64_t c, const sl_ts_shape *shape,
                     const double *mean, const double *std, const char *src)
{
    memset(s, 0, sizeof *s);
    if (n < 0 || c < 1 || shape->L < 1 || shape->H < 1 || !(shape->train_frac > 0) ||
        !(shape->test_frac > 0) || !(shape->train_frac + shape->test_frac < 1))
        return sl_fail(SL_ERR_ARG,
                       "%s: a series of %lld rows and %lld columns cut with L = %lld, H = %lld, "
                       "train_frac = %g, test_frac = %g: expected c, L, H >= 1 and positive "
                       "fractions with train_frac + test_frac < 1",
                       src, (long long)n, (long long)c, (long long)shape->L,
                       (long long)shape->H, shape->train_frac, shape->test_frac);
    *s = (sl_ts){.n = n, .c = c, .L = shape->L, .H = shape->H, .subtract_last = shape->subtract_last};
    const int64_t n_train = (int64_t)((double)n * shape->train_frac);
    const int64_t n_test = (int64_t)((double)n * shape->test_frac);
    const int64_t bounds[4] = {0, n_train, n - n_test, n};
    for (int i = 0; i < 3; i++) {
        s->lo[i] = bounds[i];
        s->hi[i] = bounds[i + 1];
    }
    sl_status st = check_splits(s, shape, src);
    if (st) return st;
    s->mean = malloc((size_t)(2 * c) * sizeof(double));
    s->z = malloc((size_t)sl_size_mul(n, c) * sizeof(double));
    if (!s->mean || !s->z)
        return sl_fail(SL_ERR_OOM, "%s: out of memory for %lld rows of %lld columns", src,
                       (long long)n, (long long)c);
    s->std = s->mean + c;
    if (mean) {
        memcpy(s->mean, mean, (size_t)c * sizeof(double));
        memcpy(s->std, std, (size_t)c * sizeof(double));
    } else {
        train_stats(raw, n_train, c, s->mean, s->std);
    }
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = 0; k < c; k++) s->z[r * c + k] = (raw[r * c + k] - s->mean[k]) / s->std[k];
    return SL_OK;
}

void sl_ts_free(sl_ts *s)
{
    free(s->mean);
    free(s->z);
    memset(s, 0, sizeof *s);
}

/* The first target row of a split's first window. */
static int64_t first_start(const sl_ts *s, sl_split split)
{
    return s->lo[split] > s->L ? s->lo[split] : s->L;
}

int64_t sl_ts_windows(const sl_ts *s, sl_split split)
{
    return s->hi[split] - s->H - first_start(s, split) + 1;
}

int64_t sl_ts_window_start(const sl_ts *s, sl_split split, int64_t j)
{
    return first_start(s, split) + j;
}

void sl_ts_row(const sl_ts *s, sl_split split, int64_t j, float *vectors, float *values,
               uint8_t *mask)
{
    const int64_t L = s->L, H = s->H, c = s->c, start = sl_ts_window_start(s, split, j);
    const double *in = s->z + (start - L) * c, *out = s->z + start * c, *last = out - c;
    for (int64_t i = 0; i < L * c; i++)
        vectors[i] = (float)(s->subtract_last ? in[i] - last[i % c] : in[i]);
    memset(values, 0, (size_t)(L * H * c) * sizeof *values);
    memset(mask, 0, (size_t)L);
    mask[L - 1] = 1;
    for (int64_t i = 0; i < H * c; i++)
        values[(L - 1) * H * c + i] = (float)(s->subtract_last ? out[i] - last[i % c] : out[i]);
}
