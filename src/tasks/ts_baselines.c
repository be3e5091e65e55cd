/* Seasonal-naive and AR(p) forecasts and their errors (ts_baselines.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/lstsq.h"
#include "tasks/ts_baselines.h"

void sl_ts_seasonal_naive_forecast(const sl_ts *s, int64_t start, int64_t period, double *pred)
{
    const int64_t c = s->c;
    for (int64_t h = 0; h < s->H; h++)
        memcpy(pred + h * c, s->z + (start - period + h % period) * c, (size_t)c * sizeof *pred);
}

void sl_ts_ar_forecast(const sl_ts *s, int64_t start, int64_t p, const double *coef,
                       double *pred)
{
    const int64_t c = s->c;
    for (int64_t h = 0; h < s->H; h++)
        for (int64_t k = 0; k < c; k++) {
            const double *b = coef + k * (p + 1);
            double y = b[0];
            /* lag i of step h: an earlier prediction, or an input row */
            for (int64_t i = 1; i <= p; i++)
                y += b[i] * (h - i >= 0 ? pred[(h - i) * c + k] : s->z[(start + h - i) * c + k]);
            pred[h * c + k] = y;
        }
}

/* Errors of a forecast over every window of a split. */
typedef struct forecaster {
    int64_t order; /* period, or p */
    const double *coef; /* NULL: seasonal naive */
} forecaster;

static sl_status score(const sl_ts *s, sl_split split, const forecaster *f, sl_ts_errors *out)
{
    const int64_t c = s->c, H = s->H, windows = sl_ts_windows(s, split);
    double *pred = malloc((size_t)(H * c) * sizeof *pred);
    if (!pred)
        return sl_fail(SL_ERR_OOM, "timeseries baseline: out of memory for a forecast of %lld x "
                       "%lld", (long long)H, (long long)c);
    double se = 0, ae = 0;
    for (int64_t j = 0; j < windows; j++) {
        const int64_t start = sl_ts_window_start(s, split, j);
        if (f->coef) sl_ts_ar_forecast(s, start, f->order, f->coef, pred);
        else sl_ts_seasonal_naive_forecast(s, start, f->order, pred);
        for (int64_t i = 0; i < H * c; i++) {
            const double d = pred[i] - s->z[start * c + i];
            se += d * d;
            ae += fabs(d);
        }
    }
    free(pred);
    out->count = windows * H * c;
    out->mse = se / (double)out->count;
    out->mae = ae / (double)out->count;
    return SL_OK;
}

sl_status sl_ts_seasonal_naive(const sl_ts *s, sl_split split, int64_t period, sl_ts_errors *out)
{
    if (period < 1 || period > s->L)
        return sl_fail(SL_ERR_ARG,
                       "seasonal-naive baseline: period = %lld: expected 1 .. seq_len = %lld "
                       "(it repeats the window's last period rows)",
                       (long long)period, (long long)s->L);
    return score(s, split, &(forecaster){period, NULL}, out);
}

sl_status sl_ts_ar_fit(const sl_ts *s, int64_t p, double *coef)
{
    const int64_t c = s->c, rows = s->hi[SL_SPLIT_TRAIN], m = rows - p, q = p + 1;
    if (p < 1 || p > s->L)
        return sl_fail(SL_ERR_ARG,
                       "AR baseline: ar_order = %lld: expected 1 .. seq_len = %lld (its lags "
                       "come from the window's inputs)",
                       (long long)p, (long long)s->L);
    if (m < q)
        return sl_fail(SL_ERR_ARG,
                       "AR baseline: ar_order = %lld needs at least 2 ar_order + 1 = %lld "
                       "training rows for its least-squares fit; the training split has %lld",
                       (long long)p, (long long)(2 * p + 1), (long long)rows);
    double *A = malloc((size_t)((q + 1) * m) * sizeof *A), *y = A + q * m; /* A [m, q] */
    if (!A)
        return sl_fail(SL_ERR_OOM, "AR baseline: out of memory for a %lld x %lld fit",
                       (long long)m, (long long)q);
    sl_status st = SL_OK;
    for (int64_t k = 0; k < c && !st; k++) {
        for (int64_t i = 0; i < m; i++) {
            const int64_t t = p + i;
            A[i * q] = 1;
            for (int64_t l = 1; l <= p; l++) A[i * q + l] = s->z[(t - l) * c + k];
            y[i] = s->z[t * c + k];
        }
        int64_t rank;
        st = sl_lstsq(A, y, m, q, coef + k * q, &rank);
        if (!st && rank < q)
            st = sl_fail(SL_ERR_NUMERIC,
                         "AR baseline: column %lld: the AR(%lld) least-squares problem on the "
                         "training split is rank-deficient (its rows follow a linear recurrence "
                         "of lower order, such as a constant or a period below %lld); lower "
                         "ar_order",
                         (long long)k, (long long)p, (long long)p + 1);
    }
    free(A);
    return st;
}

sl_status sl_ts_ar(const sl_ts *s, sl_split split, int64_t p, sl_ts_errors *out)
{
    double *coef = malloc((size_t)(s->c * (p > 0 ? p + 1 : 1)) * sizeof *coef);
    if (!coef) return sl_fail(SL_ERR_OOM, "AR baseline: out of memory for its coefficients");
    sl_status st = sl_ts_ar_fit(s, p, coef);
    if (!st) st = score(s, split, &(forecaster){p, coef}, out);
    free(coef);
    return st;
}
