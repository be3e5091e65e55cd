/* timeseries: forecasting C series read from a CSV file (docs/tasks.md,
 * "timeseries"), Informer's protocol. The rows (time steps) split in time
 * order: training [0, n_train), validation [n_train, n - n_test), test
 * [n - n_test, n), n_train = floor(n train_frac), n_test = floor(n
 * test_frac). Every value is standard-scaled per column with the training
 * rows' mean and standard deviation.
 *
 * Window: L input rows (the run's seq_len) followed by H target rows (the
 * horizon). A split's windows are those whose targets lie inside the split
 * and whose inputs start at row 0 or later: first target row s in
 * [max(lo, L), hi - H], inputs [s - L, s). Validation and test inputs thus
 * reach back up to L rows into the split before (Informer's borders), and
 * no window's inputs or targets reach past its split's end, so validation
 * never sees test rows. */
#ifndef SL_TASKS_TIMESERIES_H
#define SL_TASKS_TIMESERIES_H

#include "tasks/task.h"

/* How a series is cut. */
typedef struct sl_ts_shape {
    int64_t L, H; /* input window, horizon: rows */
    double train_frac, test_frac;
    bool subtract_last; /* rows of a batch minus the window's last input row */
} sl_ts_shape;

/* A series ready for windows. */
typedef struct sl_ts {
    int64_t n, c;         /* rows (time steps), columns (series) */
    int64_t L, H;         /* input window, horizon */
    bool subtract_last;   /* sl_ts_row: relative to the window's last input row */
    int64_t lo[3], hi[3]; /* rows [lo, hi) of each split (sl_split order) */
    double *mean, *std;   /* [c]: the scaling */
    double *z;            /* [n, c]: (raw - mean) / std */
} sl_ts;

/* s from raw [n, c] (row-major, time order). mean, std ([c]) are the
 * scaling to use, or NULL for the training rows' mean and population
 * standard deviation (1 where it is 0, as scikit-learn's StandardScaler
 * has it). Refuses (SL_ERR_FORMAT, naming src and the rows) a split
 * without a window: training needs L + H rows, validation and test H each.
 * sl_ts_free releases s (also after a failure). */
sl_status sl_ts_make(sl_ts *s, const double *raw, int64_t n, int64_t c, const sl_ts_shape *shape,
                     const double *mean, const double *std, const char *src);
void sl_ts_free(sl_ts *s);

/* Windows of a split; window j's first target row (j < windows). */
int64_t sl_ts_windows(const sl_ts *s, sl_split split);
int64_t sl_ts_window_start(const sl_ts *s, sl_split split, int64_t j);

/* One batch row of window j: vectors [L, c], the window's inputs; values
 * [L, H c] and mask [L]: every position 0 but the last (mask 1), whose
 * values are the H target rows, value h c + k = row s + h, column k. With
 * subtract_last, the window's last input row (s - 1) is subtracted from
 * every input and target row (NLinear's normalisation): a prediction plus
 * that row is the forecast of z, with the same error. */
void sl_ts_row(const sl_ts *s, sl_split split, int64_t j, float *vectors, float *values,
               uint8_t *mask);

/* The series of an open timeseries task; NULL for another task. */
const sl_ts *sl_timeseries_data(const sl_task *t);

#endif
