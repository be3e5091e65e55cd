/* Least squares by Householder QR with column pivoting, in double
 * (lstsq.h): the icl least-squares baseline and the timeseries AR fit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/lstsq.h"

/* Pivots whose remaining column norm is at most this times the largest
 * column norm are dropped (the rank of least squares). */
#define RCOND 1e-12

/* A Householder reflection I - tau v v^T (v[0] = 1) mapping a[0..n)
 * (stride s) to (beta, 0, ..., 0): a becomes (beta, v[1..n)); returns tau
 * (0: a was already so, and the reflection is the identity). LAPACK's
 * dlarfg. */
static double house(double *a, int64_t n, int64_t s)
{
    double tail = 0;
    for (int64_t i = 1; i < n; i++) tail += a[i * s] * a[i * s];
    if (tail == 0) return 0;
    const double a0 = a[0], norm = sqrt(a0 * a0 + tail), beta = a0 > 0 ? -norm : norm;
    for (int64_t i = 1; i < n; i++) a[i * s] /= a0 - beta;
    a[0] = beta;
    return (beta - a0) / beta;
}

/* b[0..n) (stride bs) = (I - tau v v^T) b, v[0] = 1 and v[1..n) at stride
 * vs. */
static void reflect(const double *v, int64_t vs, double tau, double *b, int64_t n, int64_t bs)
{
    if (tau == 0) return;
    double s = b[0];
    for (int64_t i = 1; i < n; i++) s += v[i * vs] * b[i * bs];
    s *= tau;
    b[0] -= s;
    for (int64_t i = 1; i < n; i++) b[i * bs] -= s * v[i * vs];
}

/* Column-pivoted QR of a [m, n] (row-major) applied to c [m]: stops at the
 * first pivot whose column norm (rows j.. of the columns left) is at most
 * RCOND times the first's. Then a's rows 0..r-1 hold R (r x n, upper
 * trapezoidal, in pivoted column order), c = Q^T c, perm[j] = the column
 * of X in place j. Returns r. */
static int64_t pivoted_qr(double *a, int64_t m, int64_t n, double *c, int64_t *perm)
{
    for (int64_t j = 0; j < n; j++) perm[j] = j;
    double first = 0;
    int64_t r = 0;
    for (int64_t j = 0; j < m && j < n; j++) {
        int64_t p = j;
        double best = -1;
        for (int64_t col = j; col < n; col++) {
            double s = 0;
            for (int64_t i = j; i < m; i++) s += a[i * n + col] * a[i * n + col];
            if (s > best) best = s, p = col;
        }
        best = sqrt(best);
        if (j == 0) first = best;
        if (best <= RCOND * first || best == 0) break;
        if (p != j) {
            for (int64_t i = 0; i < m; i++) {
                const double t = a[i * n + j];
                a[i * n + j] = a[i * n + p];
                a[i * n + p] = t;
            }
            const int64_t t = perm[j];
            perm[j] = perm[p];
            perm[p] = t;
        }
        double *v = a + j * n + j;
        const double tau = house(v, m - j, n);
        for (int64_t col = j + 1; col < n; col++) reflect(v, n, tau, v + (col - j), m - j, n);
        reflect(v, n, tau, c + j, m - j, 1);
        r = j + 1;
    }
    return r;
}

sl_status sl_lstsq(double *a, double *c, int64_t m, int64_t n, double *w, int64_t *rank)
{
    memset(w, 0, (size_t)n * sizeof *w);
    *rank = 0;
    if (m == 0 || n == 0) return SL_OK;
    /* t [n, min(m, n)], tau [min(m, n)], z [n], perm [n] */
    const int64_t k = m < n ? m : n;
    const size_t bytes = (size_t)(n * k + k + n) * sizeof(double) + (size_t)n * sizeof(int64_t);
    double *t = malloc(bytes);
    if (!t)
        return sl_fail(SL_ERR_OOM, "least squares of %lld rows in %lld columns (%zu bytes)",
                       (long long)m, (long long)n, bytes);
    double *tau = t + n * k, *z = tau + k;
    int64_t *perm = (int64_t *)(z + n);
    const int64_t r = pivoted_qr(a, m, n, c, perm);
    /* R z = c[0..r) with R = [R11 R12] (r x n). Full column rank (r = n):
     * back substitution. Otherwise the min-norm z: R^T = Z [S; 0] (QR of
     * the n x r matrix R^T), so R = S^T Z^T and z = Z [S^-T c; 0]. */
    memset(z, 0, (size_t)n * sizeof *z);
    if (r == n) {
        for (int64_t i = n - 1; i >= 0; i--) {
            double s = c[i];
            for (int64_t l = i + 1; l < n; l++) s -= a[i * n + l] * z[l];
            z[i] = s / a[i * n + i];
        }
    } else if (r > 0) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < r; j++) t[i * r + j] = i >= j ? a[j * n + i] : 0;
        for (int64_t j = 0; j < r; j++) {
            double *v = t + j * r + j;
            tau[j] = house(v, n - j, r);
            for (int64_t col = j + 1; col < r; col++)
                reflect(v, r, tau[j], v + (col - j), n - j, r);
        }
        for (int64_t i = 0; i < r; i++) { /* S^T u = c: S^T is lower triangular */
            double s = c[i];
            for (int64_t l = 0; l < i; l++) s -= t[l * r + i] * z[l];
            z[i] = s / t[i * r + i];
        }
        for (int64_t j = r - 1; j >= 0; j--) reflect(t + j * r + j, r, tau[j], z + j, n - j, 1);
    }
    for (int64_t j = 0; j < n; j++) w[perm[j]] = z[j];
    *rank = r;
    free(t);
    return SL_OK;
}
