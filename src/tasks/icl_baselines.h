/* Exact in-context baselines for the icl tasks (Garg et al. 2022, "What Can
 * Transformers Learn In-Context?"; docs/tasks.md, "icl baselines"): given
 * one prompt's k labelled examples, each predicts the label of a query x.
 *
 * A prompt: xs [k, d] (row-major), ys [k], query x [d], in double. Every
 * baseline predicts 0 from no example (k = 0). */
#ifndef SL_TASKS_ICL_BASELINES_H
#define SL_TASKS_ICL_BASELINES_H

#include "tasks/task.h"

/* Min-norm least squares: x . pinv(X) y, with the pseudo-inverse of rank
 * the number of pivots of a column-pivoted QR of X whose remaining column
 * norm exceeds 1e-12 times the largest column norm (so k < d, or repeated
 * examples, give the min-norm solution). SL_ERR_OOM. */
sl_status sl_icl_least_squares(const double *xs, const double *ys, int64_t k, int64_t d,
                               const double *x, double *y);
/* Ridge: x . (X^T X + lambda I)^-1 X^T y, lambda > 0 (else SL_ERR_ARG),
 * by Cholesky of the smaller Gram matrix (X X^T + lambda I when k < d).
 * SL_ERR_OOM. */
sl_status sl_icl_ridge(const double *xs, const double *ys, int64_t k, int64_t d, const double *x,
                       double lambda, double *y);
/* The mean label of the min(m, k) examples nearest x (Euclidean; ties go
 * to the earlier example). */
double sl_icl_nearest(const double *xs, const double *ys, int64_t k, int64_t d, const double *x,
                      int64_t m);
/* Averaging: x . w with w = (1/k) sum_i y_i x_i. */
double sl_icl_averaging(const double *xs, const double *ys, int64_t k, int64_t d, const double *x);
/* One gradient step from w = 0 on (1/2k) sum_i (w . x_i - y_i)^2 with the
 * step size k / (k + d + 1), the one of least expected error for
 * w ~ N(0, c I) and x ~ N(0, I) (for any c): x . w with
 * w = sum_i y_i x_i / (k + d + 1); normalised error (d + 1) / (k + d + 1). */
double sl_icl_gd_step(const double *xs, const double *ys, int64_t k, int64_t d, const double *x);

typedef enum {
    SL_ICL_LEAST_SQUARES,
    SL_ICL_RIDGE,
    SL_ICL_NEAREST3,
    SL_ICL_AVERAGING,
    SL_ICL_GD_STEP,
    SL_ICL_BASELINES
} sl_icl_baseline;

/* "least_squares", "ridge", "nearest3", "averaging", "gd_step"; NULL out
 * of range. */
const char *sl_icl_baseline_name(int i);

/* What the curves need to know of an icl task's held-out batches
 * (sl_icl_task_shape in tasks/icl.h): a row of p <= points examples holds
 * x_i at position 2i (its first dims of n_in reals) with target y_i
 * (values, mask 1) and y_i at 2i + 1; norm divides squared errors. */
typedef struct sl_icl_shape {
    int64_t n_in, dims, points;
    double norm;
} sl_icl_shape;

/* Curves of normalised squared error against the number of examples k.
 * For every row of b and every k below its examples, each baseline
 * predicts y_k from the row's first k examples; (prediction - y_k)^2 /
 * norm is added to sum[i * points + k] for baseline i, and 1 to count[k].
 * sum: [SL_ICL_BASELINES, points], count: [points], both the caller's
 * (accumulated over batches; the mean is sum / count). SL_ERR_ARG when a
 * row is longer than 2 points or lambda <= 0; SL_ERR_OOM. */
sl_status sl_icl_baseline_errors(const sl_batch *b, const sl_icl_shape *s, double lambda,
                                 double *sum, int64_t *count);
/* The same curve of a model's predictions. pred: [B*T], the regress head's
 * output at each position of b (only the x positions are read). sum,
 * count: [points]. SL_ERR_ARG when a row is longer than 2 points. */
sl_status sl_icl_model_errors(const sl_batch *b, const sl_icl_shape *s, const float *pred,
                              double *sum, int64_t *count);

#endif
