/* The timeseries task's baselines (docs/tasks.md, "timeseries"), scored
 * like the model: MSE and MAE on standard-scaled values, here over every
 * window of a split once (windows x H x c values).
 *
 * - seasonal naive, period P (1 <= P <= L): the window's last P input rows
 *   repeated, pred[h] = z[s - P + (h mod P)] for first target row s; P = 1
 *   is the naive forecast (the last value).
 * - AR(p) (1 <= p <= L), one per column: z_t = b_0 + sum_{i=1..p} b_i
 *   z_{t-i}, fitted by least squares (Householder QR in double) on every
 *   t of the training split with all p lags there (t in [p, n_train)), and
 *   forecast iteratively: each prediction is fed back as the next step's
 *   lag 1, so one fit serves every horizon. */
#ifndef SL_TASKS_TS_BASELINES_H
#define SL_TASKS_TS_BASELINES_H

#include "tasks/timeseries.h"

typedef struct sl_ts_errors {
    double mse, mae; /* means over the counted values */
    int64_t count;   /* values counted: windows x H x c */
} sl_ts_errors;

/* pred [H, c]: the seasonal-naive forecast of the window whose first
 * target row is start. */
void sl_ts_seasonal_naive_forecast(const sl_ts *s, int64_t start, int64_t period, double *pred);
/* Its errors over every window of split; SL_ERR_ARG for a period outside
 * [1, L]. */
sl_status sl_ts_seasonal_naive(const sl_ts *s, sl_split split, int64_t period, sl_ts_errors *out);

/* coef [c, p + 1]: per column, b_0 (intercept), b_1 .. b_p. SL_ERR_ARG for
 * p outside [1, L] or a training split of fewer than 2p + 1 rows;
 * SL_ERR_NUMERIC when a column's least-squares problem is rank-deficient
 * (its training rows follow a linear recurrence of lower order, e.g. a
 * constant or a pure period shorter than p). */
sl_status sl_ts_ar_fit(const sl_ts *s, int64_t p, double *coef);
/* pred [H, c]: the iterated AR(p) forecast from the p input rows before start. */
void sl_ts_ar_forecast(const sl_ts *s, int64_t start, int64_t p, const double *coef,
                       double *pred);
/* Fit and errors over every window of split. */
sl_status sl_ts_ar(const sl_ts *s, sl_split split, int64_t p, sl_ts_errors *out);

/* Both on a split of an open timeseries task, with its options period and
 * ar_order; SL_ERR_ARG for another task. */
sl_status sl_timeseries_baselines(const sl_task *t, sl_split split, sl_ts_errors *naive,
                                  sl_ts_errors *ar);

#endif
