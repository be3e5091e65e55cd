/* The icl baselines (icl_baselines.h): small dense solves in double,
 * written out (least squares: lstsq.h; ridge: Cholesky). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/icl_baselines.h"
#include "tasks/lstsq.h"

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

sl_status sl_icl_least_squares(const double *xs, const double *ys, int64_t k, int64_t d,
                               const double *x, double *y)
{
    *y = 0;
    if (k == 0 || d == 0) return SL_OK;
    const size_t bytes = (size_t)(k * d + k + d) * sizeof(double);
    double *a = malloc(bytes);
    if (!a) return sl_fail(SL_ERR_OOM, "least squares of %lld examples in %lld dimensions (%zu bytes)",
                           (long long)k, (long long)d, bytes);
    double *c = a + k * d, *w = c + k;
    memcpy(a, xs, (size_t)(k * d) * sizeof *a);
    memcpy(c, ys, (size_t)k * sizeof *c);
    int64_t r;
    sl_status st = sl_lstsq(a, c, k, d, w, &r);
    if (!st) *y = dot(x, w, d);
    free(a);
    return st;
}

/* Solves (L L^T) u = b in place of b for the symmetric positive definite
 * g [n, n], factored in place (lower triangle). False when g is not
 * numerically positive definite. */
static bool cholesky_solve(double *g, int64_t n, double *b)
{
    for (int64_t j = 0; j < n; j++) {
        double s = g[j * n + j];
        for (int64_t l = 0; l < j; l++) s -= g[j * n + l] * g[j * n + l];
        if (!(s > 0)) return false;
        g[j * n + j] = sqrt(s);
        for (int64_t i = j + 1; i < n; i++) {
            double t = g[i * n + j];
            for (int64_t l = 0; l < j; l++) t -= g[i * n + l] * g[j * n + l];
            g[i * n + j] = t / g[j * n + j];
        }
    }
    for (int64_t i = 0; i < n; i++) {
        for (int64_t l = 0; l < i; l++) b[i] -= g[i * n + l] * b[l];
        b[i] /= g[i * n + i];
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        for (int64_t l = i + 1; l < n; l++) b[i] -= g[l * n + i] * b[l];
        b[i] /= g[i * n + i];
    }
    return true;
}

sl_status sl_icl_ridge(const double *xs, const double *ys, int64_t k, int64_t d, const double *x,
                       double lambda, double *y)
{
    *y = 0;
    if (!(lambda > 0)) return sl_fail(SL_ERR_ARG, "ridge baseline: lambda = %g, expected > 0", lambda);
    if (k == 0 || d == 0) return SL_OK;
    /* Primal (k >= d): (X^T X + lambda I) w = X^T y, prediction x . w.
     * Dual (k < d): (X X^T + lambda I) u = y, prediction (X x) . u. */
    const bool dual = k < d;
    const int64_t n = dual ? k : d;
    const size_t bytes = (size_t)(n * n + n) * sizeof(double);
    double *g = malloc(bytes);
    if (!g) return sl_fail(SL_ERR_OOM, "ridge of %lld examples in %lld dimensions (%zu bytes)",
                           (long long)k, (long long)d, bytes);
    double *b = g + n * n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            if (dual) s = dot(xs + i * d, xs + j * d, d);
            else
                for (int64_t l = 0; l < k; l++) s += xs[l * d + i] * xs[l * d + j];
            g[i * n + j] = g[j * n + i] = s + (i == j ? lambda : 0);
        }
    for (int64_t i = 0; i < n; i++) {
        if (dual) b[i] = ys[i];
        else {
            b[i] = 0;
            for (int64_t l = 0; l < k; l++) b[i] += xs[l * d + i] * ys[l];
        }
    }
    sl_status st = SL_OK;
    if (!cholesky_solve(g, n, b))
        st = sl_fail(SL_ERR_ARG, "ridge baseline: the Gram matrix plus lambda = %g is not "
                     "numerically positive definite (non-finite examples?)", lambda);
    double s = 0;
    for (int64_t i = 0; i < n && !st; i++) s += (dual ? dot(xs + i * d, x, d) : x[i]) * b[i];
    if (!st) *y = s;
    free(g);
    return st;
}

double sl_icl_nearest(const double *xs, const double *ys, int64_t k, int64_t d, const double *x,
                      int64_t m)
{
    /* m passes, each taking the nearest example after the last taken in
     * (distance, index) order. */
    double last = -1, sum = 0;
    int64_t last_i = -1, taken = 0;
    for (; taken < m && taken < k; taken++) {
        double best = INFINITY;
        int64_t bi = -1;
        for (int64_t i = 0; i < k; i++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++) s += (xs[i * d + j] - x[j]) * (xs[i * d + j] - x[j]);
            const bool after = s > last || (s == last && i > last_i);
            if (after && (bi < 0 || s < best)) best = s, bi = i;
        }
        last = best;
        last_i = bi;
        sum += ys[bi];
    }
    return taken ? sum / (double)taken : 0;
}

/* x . sum_i y_i x_i */
static double moment(const double *xs, const double *ys, int64_t k, int64_t d, const double *x)
{
    double s = 0;
    for (int64_t i = 0; i < k; i++) s += ys[i] * dot(xs + i * d, x, d);
    return s;
}

double sl_icl_averaging(const double *xs, const double *ys, int64_t k, int64_t d, const double *x)
{
    return k ? moment(xs, ys, k, d, x) / (double)k : 0;
}

double sl_icl_gd_step(const double *xs, const double *ys, int64_t k, int64_t d, const double *x)
{
    return moment(xs, ys, k, d, x) / (double)(k + d + 1);
}

const char *sl_icl_baseline_name(int i)
{
    static const char *const NAMES[SL_ICL_BASELINES] = {"least_squares", "ridge", "nearest3",
                                                        "averaging", "gd_step"};
    return i >= 0 && i < SL_ICL_BASELINES ? NAMES[i] : NULL;
}

/* *p = the examples of row r of b (half its length); SL_ERR_ARG past
 * the curve's points. */
static sl_status row_points(const sl_batch *b, const sl_icl_shape *s, int64_t r, int64_t *p)
{
    *p = (b->lengths ? b->lengths[r] : b->T) / 2;
    if (*p <= s->points) return SL_OK;
    return sl_fail(SL_ERR_ARG, "icl curves: row %lld holds %lld examples, more than the %lld "
                   "points of the curve", (long long)r, (long long)*p, (long long)s->points);
}

sl_status sl_icl_baseline_errors(const sl_batch *b, const sl_icl_shape *s, double lambda,
                                 double *sum, int64_t *count)
{
    if (!(lambda > 0)) return sl_fail(SL_ERR_ARG, "ridge baseline: lambda = %g, expected > 0", lambda);
    const int64_t d = s->dims, P = s->points, T = b->T;
    const size_t bytes = (size_t)(P * d + P + 1) * sizeof(double);
    double *xs = malloc(bytes);
    if (!xs) return sl_fail(SL_ERR_OOM, "icl curves: %lld examples (%zu bytes)", (long long)P, bytes);
    double *ys = xs + P * d;
    sl_status st = SL_OK;
    for (int64_t r = 0; r < b->B && !st; r++) {
        int64_t p;
        if ((st = row_points(b, s, r, &p))) break;
        for (int64_t i = 0; i < p; i++) {
            const int64_t pos = r * T + 2 * i;
            for (int64_t j = 0; j < d; j++) xs[i * d + j] = b->vectors[pos * s->n_in + j];
            ys[i] = b->values[pos];
        }
        for (int64_t k = 0; k < p && !st; k++) {
            const double *x = xs + k * d;
            double pred[SL_ICL_BASELINES];
            st = sl_icl_least_squares(xs, ys, k, d, x, &pred[SL_ICL_LEAST_SQUARES]);
            if (!st) st = sl_icl_ridge(xs, ys, k, d, x, lambda, &pred[SL_ICL_RIDGE]);
            if (st) break;
            pred[SL_ICL_NEAREST3] = sl_icl_nearest(xs, ys, k, d, x, 3);
            pred[SL_ICL_AVERAGING] = sl_icl_averaging(xs, ys, k, d, x);
            pred[SL_ICL_GD_STEP] = sl_icl_gd_step(xs, ys, k, d, x);
            for (int i = 0; i < SL_ICL_BASELINES; i++)
                sum[i * P + k] += (pred[i] - ys[k]) * (pred[i] - ys[k]) / s->norm;
            count[k]++;
        }
    }
    free(xs);
    return st;
}

sl_status sl_icl_model_errors(const sl_batch *b, const sl_icl_shape *s, const float *pred,
                              double *sum, int64_t *count)
{
    for (int64_t r = 0; r < b->B; r++) {
        int64_t p;
        sl_status st = row_points(b, s, r, &p);
        if (st) return st;
        for (int64_t k = 0; k < p; k++) {
            const int64_t pos = r * b->T + 2 * k;
            const double e = (double)pred[pos] - (double)b->values[pos];
            sum[k] += e * e / s->norm;
            count[k]++;
        }
    }
    return SL_OK;
}
