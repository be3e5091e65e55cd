/* The icl baselines: exact predictions on hand-made prompts, least squares
 * and ridge against brute-force solves (full rank, k < d, rank-deficient),
 * expected errors over Gaussian prompts against their closed forms, and
 * the curves over a batch. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "icl_check.h"

extern const sl_task_vtable sl_task_icl_regression;

/* Solves a [n, n] u = b by Gaussian elimination with partial pivoting, in
 * place (b becomes u). */
static void gauss(double *a, double *b, int n)
{
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int i = c + 1; i < n; i++)
            if (fabs(a[i * n + c]) > fabs(a[p * n + c])) p = i;
        for (int j = 0; j < n; j++) {
            const double t = a[c * n + j];
            a[c * n + j] = a[p * n + j];
            a[p * n + j] = t;
        }
        const double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (int i = c + 1; i < n; i++) {
            const double f = a[i * n + c] / a[c * n + c];
            for (int j = c; j < n; j++) a[i * n + j] -= f * a[c * n + j];
            b[i] -= f * b[c];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        for (int j = i + 1; j < n; j++) b[i] -= a[i * n + j] * b[j];
        b[i] /= a[i * n + i];
    }
}

/* x . w for w = X^T (X X^T + lambda I)^-1 y (k < d) or
 * (X^T X + lambda I)^-1 X^T y, lambda >= 0, by brute force. */
static double brute(const double *xs, const double *ys, int k, int d, const double *x, double lambda)
{
    const int n = k < d ? k : d;
    double a[64 * 64], b[64], w[64] = {0};
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double s = i == j ? lambda : 0;
            for (int l = 0; l < (k < d ? d : k); l++)
                s += k < d ? xs[i * d + l] * xs[j * d + l] : xs[l * d + i] * xs[l * d + j];
            a[i * n + j] = s;
        }
        b[i] = 0;
        if (k < d) b[i] = ys[i];
        else
            for (int l = 0; l < k; l++) b[i] += xs[l * d + i] * ys[l];
    }
    gauss(a, b, n);
    if (k < d)
        for (int j = 0; j < d; j++)
            for (int i = 0; i < k; i++) w[j] += xs[i * d + j] * b[i];
    else
        memcpy(w, b, sizeof(double) * d);
    double s = 0;
    for (int j = 0; j < d; j++) s += w[j] * x[j];
    return s;
}

static double lsq(const double *xs, const double *ys, int64_t k, int64_t d, const double *x)
{
    double y = NAN;
    CHECK(sl_icl_least_squares(xs, ys, k, d, x, &y) == SL_OK, "%s", sl_errmsg());
    return y;
}

static double ridge(const double *xs, const double *ys, int64_t k, int64_t d, const double *x,
                    double lambda)
{
    double y = NAN;
    CHECK(sl_icl_ridge(xs, ys, k, d, x, lambda, &y) == SL_OK, "%s", sl_errmsg());
    return y;
}

/* A Gaussian prompt of k examples in d dimensions with w ~ N(0, I), its
 * query x and label *yq. xs [k, d], ys [k], x [d]. */
static void gaussian_prompt(sl_rng *r, int k, int d, double *xs, double *ys, double *x, double *yq)
{
    double w[64];
    for (int j = 0; j < d; j++) w[j] = sl_synth_normal(r);
    for (int i = 0; i <= k; i++) {
        double *v = i < k ? xs + i * d : x, y = 0;
        for (int j = 0; j < d; j++) {
            v[j] = sl_synth_normal(r);
            y += w[j] * v[j];
        }
        if (i < k) ys[i] = y;
        else *yq = y;
    }
}

/* Least squares and ridge match brute-force solves for k below, at and
 * above d; least squares recovers w exactly once k >= d. */
static void test_solves(void)
{
    sl_rng r;
    sl_rng_seed(&r, 1);
    double xs[40 * 8], ys[40], x[8], yq;
    for (int trial = 0; trial < 50; trial++)
        for (int k = 0; k <= 40; k += 1 + k / 4) {
            const int d = 1 + trial % 8;
            gaussian_prompt(&r, k, d, xs, ys, x, &yq);
            const double scale = 1 + fabs(yq);
            if (k >= d) CHECK_CLOSE(lsq(xs, ys, k, d, x), yq, 1e-9 * scale, 0, "least squares, k >= d");
            else if (k) CHECK_CLOSE(lsq(xs, ys, k, d, x), brute(xs, ys, k, d, x, 0), 1e-9 * scale, 0,
                                    "min-norm least squares, k < d");
            for (double lambda = 1e-3; lambda < 100; lambda *= 10)
                if (k) CHECK_CLOSE(ridge(xs, ys, k, d, x, lambda), brute(xs, ys, k, d, x, lambda),
                                   1e-9 * scale, 0, "ridge");
        }
    CHECK(lsq(xs, ys, 0, 8, x) == 0 && ridge(xs, ys, 0, 8, x, 1) == 0, "no example, 0");
    double y;
    CHECK(sl_icl_ridge(xs, ys, 3, 8, x, 0, &y) == SL_ERR_ARG && strstr(sl_errmsg(), "lambda"),
          "lambda = 0: %s", sl_errmsg());
}

/* Hand-made prompts. d = 2: x_1 = (1, 0), y_1 = 2 gives the min-norm
 * w = (2, 0); a repeated example changes nothing; an unused coordinate
 * (every x_i[2] = 0) gets w_2 = 0; ridge with lambda shrinks 2 to
 * 2 / (1 + lambda). */
static void test_hand_made(void)
{
    const double one[2] = {1, 0}, y1[1] = {2}, q[2] = {3, 5};
    CHECK_CLOSE(lsq(one, y1, 1, 2, q), 6, 1e-12, 0, "min-norm along x_1");
    CHECK_CLOSE(ridge(one, y1, 1, 2, q, 0.5), 6 / 1.5, 1e-12, 0, "ridge shrinks");
    const double twice[4] = {1, 0, 1, 0}, y2[2] = {2, 2};
    CHECK_CLOSE(lsq(twice, y2, 2, 2, q), 6, 1e-12, 0, "a repeated example (rank 1 of 2)");
    const double clash[4] = {1, 0, 1, 0}, y3[2] = {1, 3};
    CHECK_CLOSE(lsq(clash, y3, 2, 2, q), 6, 1e-12, 0, "inconsistent repeats: their mean");
    /* d = 3, third coordinate never seen: w = (1, -1, 0) from 3 examples. */
    const double flat[9] = {1, 0, 0, 0, 1, 0, 1, 1, 0}, yf[3] = {1, -1, 0}, qf[3] = {2, 1, 7};
    CHECK_CLOSE(lsq(flat, yf, 3, 3, qf), 1, 1e-12, 0, "unseen coordinate gets 0");
    const double zero[6] = {0}, yz[2] = {1, 1};
    CHECK(lsq(zero, yz, 2, 3, qf) == 0, "zero examples: w = 0");
    /* Averaging: w = mean of y_i x_i = (1, 1) / 2 -> 4; gd step: sum
     * (1, 1) / (k + d + 1) = / 5 -> 8 / 5. */
    const double ax[4] = {1, 0, 0, 1}, ay[2] = {1, 1}, aq[2] = {3, 5};
    CHECK_CLOSE(sl_icl_averaging(ax, ay, 2, 2, aq), 4, 1e-15, 0, "averaging");
    CHECK_CLOSE(sl_icl_gd_step(ax, ay, 2, 2, aq), 8.0 / 5, 1e-15, 0, "gd step");
    CHECK(sl_icl_averaging(ax, ay, 0, 2, aq) == 0 && sl_icl_gd_step(ax, ay, 0, 2, aq) == 0, "k = 0");
}

/* Nearest neighbours in one dimension: points 0, 1, 2, 3, 10 with labels
 * 10, 11, 12, 13, 20. */
static void test_nearest(void)
{
    const double xs[5] = {0, 1, 2, 3, 10}, ys[5] = {10, 11, 12, 13, 20};
    const double q0[1] = {0.9}, q1[1] = {9}, q2[1] = {1.5};
    CHECK(sl_icl_nearest(xs, ys, 5, 1, q0, 3) == 11, "0.9: 1, 0, 2 -> 11");
    CHECK(sl_icl_nearest(xs, ys, 5, 1, q1, 3) == (20 + 13 + 12) / 3.0, "9: 10, 3, 2");
    /* 1.5 ties 1 and 2 at 0.25, then 0 and 3 tie at 2.25: the earlier, 0. */
    CHECK(sl_icl_nearest(xs, ys, 5, 1, q2, 3) == (11 + 12 + 10) / 3.0, "ties to the earlier");
    CHECK(sl_icl_nearest(xs, ys, 2, 1, q1, 3) == 10.5, "k = 2: both");
    CHECK(sl_icl_nearest(xs, ys, 1, 1, q1, 3) == 10, "k = 1: the one");
    CHECK(sl_icl_nearest(xs, ys, 0, 1, q1, 3) == 0, "k = 0: 0");
    const double same[3] = {4, 4, 4}, ysame[3] = {1, 2, 3}, q[1] = {4};
    CHECK(sl_icl_nearest(same, ysame, 3, 1, q, 2) == 1.5, "identical points: the first two");
}

/* Over N Gaussian prompts (d = 8), the normalised error of least squares
 * at k is max(0, 1 - k/d), of averaging (d + 1) / k (k >= 1), of the gd
 * step (d + 1) / (k + d + 1): each mean within 5 standard errors (plus
 * 1e-9). */
static void test_expected_errors(void)
{
    enum { N = 6000, D = 8, K = 17 };
    sl_rng r;
    sl_rng_seed(&r, 2);
    static double sum[3][K], sq[3][K];
    double xs[K * D], ys[K], x[D], yq;
    for (int n = 0; n < N; n++) {
        gaussian_prompt(&r, K - 1, D, xs, ys, x, &yq);
        /* The prefixes of one prompt of K - 1 examples: query example k. */
        double all[K * D], ally[K];
        memcpy(all, xs, sizeof xs);
        memcpy(all + (K - 1) * D, x, sizeof x);
        memcpy(ally, ys, sizeof(double) * (K - 1));
        ally[K - 1] = yq;
        for (int k = 0; k < K; k++) {
            const double *q = all + k * D;
            const double pred[3] = {lsq(all, ally, k, D, q), sl_icl_averaging(all, ally, k, D, q),
                                    sl_icl_gd_step(all, ally, k, D, q)};
            for (int b = 0; b < 3; b++) {
                const double e = (pred[b] - ally[k]) * (pred[b] - ally[k]) / D;
                sum[b][k] += e;
                sq[b][k] += e * e;
            }
        }
    }
    static const char *const names[3] = {"least squares", "averaging", "gd step"};
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < K; k++) {
            if (b == 1 && k == 0) continue;
            const double want = b == 0 ? (k < D ? 1 - (double)k / D : 0)
                                : b == 1 ? (D + 1.0) / k
                                         : (D + 1.0) / (k + D + 1.0);
            const double mean = sum[b][k] / N, se = sqrt((sq[b][k] / N - mean * mean) / N);
            CHECK(fabs(mean - want) <= 5 * se + 1e-9, "%s, k = %d: %.4f vs %.4f (se %.4f)", names[b], k,
                  mean, want, se);
        }
}

/* The curves over an icl_regression validation batch: counts, sums equal
 * to the per-prompt calls; a model predicting the targets scores 0, one
 * predicting 0 about 1. */
static void test_batch_curves(void)
{
    enum { B = 64, T = 34, D = 8, P = 17, NB = SL_ICL_BASELINES };
    const char *const kv[] = {"dims", "8", "points", "17", NULL};
    sl_task t;
    CHECK(synth_open(&t, &sl_task_icl_regression, T, kv) == SL_OK, "%s", sl_errmsg());
    sl_icl_shape s;
    CHECK(sl_icl_task_shape(&t, &s) && s.dims == D && s.points == P && s.norm == D, "shape");
    sl_batch b = icl_batch(&t, SL_SPLIT_VAL, 3, 0, B, T);
    double sum[NB * P] = {0}, msum[P] = {0}, zsum[P] = {0};
    int64_t count[P] = {0}, mcount[P] = {0}, zcount[P] = {0};
    CHECK(sl_icl_baseline_errors(&b, &s, 0.1, sum, count) == SL_OK, "%s", sl_errmsg());
    float *zero = calloc(B * T, sizeof(float));
    CHECK(sl_icl_model_errors(&b, &s, b.values, msum, mcount) == SL_OK, "%s", sl_errmsg());
    CHECK(sl_icl_model_errors(&b, &s, zero, zsum, zcount) == SL_OK, "%s", sl_errmsg());
    double direct[NB] = {0}, xs[P * D], ys[P], z = 0;
    for (int64_t r = 0; r < B; r++) {
        for (int i = 0; i < P; i++) {
            for (int j = 0; j < D; j++) xs[i * D + j] = b.vectors[(r * T + 2 * i) * D + j];
            ys[i] = b.values[r * T + 2 * i];
        }
        const int k = 5;
        const double pred[NB] = {lsq(xs, ys, k, D, xs + k * D), ridge(xs, ys, k, D, xs + k * D, 0.1),
                                 sl_icl_nearest(xs, ys, k, D, xs + k * D, 3),
                                 sl_icl_averaging(xs, ys, k, D, xs + k * D),
                                 sl_icl_gd_step(xs, ys, k, D, xs + k * D)};
        for (int i = 0; i < NB; i++) direct[i] += (pred[i] - ys[k]) * (pred[i] - ys[k]) / D;
    }
    for (int i = 0; i < NB; i++)
        CHECK_CLOSE(sum[i * P + 5], direct[i], 1e-9, 1e-12, sl_icl_baseline_name(i));
    for (int k = 0; k < P; k++) {
        CHECK(count[k] == B && mcount[k] == B && zcount[k] == B, "k = %d: counts", k);
        CHECK(msum[k] == 0, "the targets themselves: 0");
        z += zsum[k] / (B * P);
        if (k >= D) CHECK(sum[SL_ICL_LEAST_SQUARES * P + k] < 1e-6, "least squares exact at k = %d", k);
    }
    CHECK(fabs(z - 1) < 0.15, "predicting 0 scores %g", z);
    CHECK(!strcmp(sl_icl_baseline_name(SL_ICL_NEAREST3), "nearest3") && !sl_icl_baseline_name(NB),
          "names");
    /* A row longer than the curve, and lambda 0, are refused. */
    sl_icl_shape small = s;
    small.points = 10;
    CHECK(sl_icl_baseline_errors(&b, &small, 0.1, sum, count) == SL_ERR_ARG &&
              strstr(sl_errmsg(), "points"),
          "%s", sl_errmsg());
    CHECK(sl_icl_model_errors(&b, &small, zero, zsum, zcount) == SL_ERR_ARG, "model: too long");
    CHECK(sl_icl_baseline_errors(&b, &s, 0, sum, count) == SL_ERR_ARG, "lambda 0");
    free(zero);
    sl_batch_free(&b);
    sl_task_close(&t);
}

int main(void)
{
    RUN(test_solves);
    RUN(test_hand_made);
    RUN(test_nearest);
    RUN(test_expected_errors);
    RUN(test_batch_curves);
    return TEST_SUMMARY();
}
