/* The timeseries baselines: seasonal naive is exact on a periodic series
 * and scores every window of a split; AR(p) recovers the coefficients of
 * synthetic AR(2) series, forecasts a noiseless recurrence exactly, refuses
 * what it cannot fit; the task's entry point; and the errors on R's series
 * agree with numpy (np.linalg.lstsq, the same windows) to 1e-6. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "tasks/ts_baselines.h"

extern const sl_task_vtable sl_task_timeseries, sl_task_mqar;

static bool has(const char *needle) { return strstr(sl_errmsg(), needle) != NULL; }

/* Errors of the seasonal-naive forecast worked out here from the split
 * bounds alone: targets in [lo, hi), inputs from row 0 on. */
static void naive_by_hand(const sl_ts *s, sl_split sp, int64_t P, double *mse, double *mae,
                          int64_t *count)
{
    double se = 0, ae = 0;
    int64_t n = 0;
    const int64_t c = s->c;
    for (int64_t st = s->lo[sp] > s->L ? s->lo[sp] : s->L; st + s->H <= s->hi[sp]; st++)
        for (int64_t h = 0; h < s->H; h++)
            for (int64_t k = 0; k < c; k++) {
                const double d = s->z[(st - P + h % P) * c + k] - s->z[(st + h) * c + k];
                se += d * d;
                ae += fabs(d);
                n++;
            }
    *mse = se / (double)n;
    *mae = ae / (double)n;
    *count = n;
}

static void test_seasonal_naive(void)
{
    enum { N = 300, C = 2 };
    double raw[N * C], season[12];
    sl_rng r;
    sl_rng_seed(&r, 5);
    for (int i = 0; i < 12; i++) season[i] = sl_rng_normal(&r) * 4 + 10;
    for (int t = 0; t < N; t++) {
        raw[t * C] = season[t % 12];
        raw[t * C + 1] = season[(t * 5) % 4] - 3;
    }
    const sl_ts_shape sh = {24, 18, 0.7, 0.2, false};
    sl_ts s;
    CHECK(sl_ts_make(&s, raw, N, C, &sh, NULL, NULL, "periodic") == SL_OK, "%s", sl_errmsg());
    for (int sp = 0; sp < 3; sp++) {
        const int64_t periods[3] = {12, 24, 1};
        for (int i = 0; i < 3; i++) {
            sl_ts_errors e;
            CHECK(sl_ts_seasonal_naive(&s, sp, periods[i], &e) == SL_OK, "%s", sl_errmsg());
            CHECK(e.count == sl_ts_windows(&s, sp) * 18 * C, "count %lld", (long long)e.count);
            if (periods[i] == 1) {
                CHECK(e.mse > 0.1 && e.mae > 0.1, "naive misses: %g %g", e.mse, e.mae);
                continue;
            }
            CHECK(e.mse == 0 && e.mae == 0, "split %d, period %lld: %g %g", sp,
                  (long long)periods[i], e.mse, e.mae);
        }
    }
    sl_ts_free(&s);
    /* Random data, period 5 (horizon 18 wraps it 4 times): the errors are
     * those worked out from the split bounds. */
    for (int i = 0; i < N * C; i++) raw[i] = sl_rng_normal(&r);
    CHECK(sl_ts_make(&s, raw, N, C, &sh, NULL, NULL, "noise") == SL_OK, "%s", sl_errmsg());
    for (int sp = 0; sp < 3; sp++) {
        sl_ts_errors e;
        double mse, mae;
        int64_t count;
        naive_by_hand(&s, sp, 5, &mse, &mae, &count);
        CHECK(sl_ts_seasonal_naive(&s, sp, 5, &e) == SL_OK, "%s", sl_errmsg());
        CHECK(e.count == count, "split %d: count %lld vs %lld", sp, (long long)e.count,
              (long long)count);
        CHECK_CLOSE(e.mse, mse, 0, 1e-12, "mse");
        CHECK_CLOSE(e.mae, mae, 0, 1e-12, "mae");
    }
    sl_ts_errors e;
    CHECK(sl_ts_seasonal_naive(&s, SL_SPLIT_TEST, 0, &e) == SL_ERR_ARG && has("period = 0") &&
              has("expected 1 .. seq_len = 24"),
          "%s", sl_errmsg());
    CHECK(sl_ts_seasonal_naive(&s, SL_SPLIT_TEST, 25, &e) == SL_ERR_ARG && has("period = 25"),
          "%s", sl_errmsg());
    sl_ts_free(&s);
}

/* x_t = 2 + 0.6 x_{t-1} - 0.3 x_{t-2} + e_t, e ~ N(0, 1): the AR(2) fit
 * finds 0.6 and -0.3 (standard error about 0.01 at 14k rows), and an AR(4)
 * fit adds lags of about 0. Scaling does not change AR coefficients. */
static void test_ar_recovers_ar2(void)
{
    enum { N = 20000 };
    double *raw = malloc(N * sizeof *raw);
    sl_rng r;
    sl_rng_seed(&r, 11);
    raw[0] = raw[1] = 5;
    for (int t = 2; t < N; t++) raw[t] = 2 + 0.6 * raw[t - 1] - 0.3 * raw[t - 2] + sl_rng_normal(&r);
    const sl_ts_shape sh = {16, 4, 0.7, 0.2, false};
    sl_ts s;
    CHECK(sl_ts_make(&s, raw, N, 1, &sh, NULL, NULL, "ar2") == SL_OK, "%s", sl_errmsg());
    double b[5];
    CHECK(sl_ts_ar_fit(&s, 2, b) == SL_OK, "%s", sl_errmsg());
    CHECK(fabs(b[1] - 0.6) < 0.03 && fabs(b[2] + 0.3) < 0.03 && fabs(b[0]) < 0.03,
          "b = %g, %g, %g", b[0], b[1], b[2]);
    CHECK(sl_ts_ar_fit(&s, 4, b) == SL_OK, "%s", sl_errmsg());
    CHECK(fabs(b[1] - 0.6) < 0.03 && fabs(b[2] + 0.3) < 0.03 && fabs(b[3]) < 0.03 &&
              fabs(b[4]) < 0.03,
          "b = %g, %g, %g, %g", b[1], b[2], b[3], b[4]);
    /* One step ahead the error is the noise: MSE about 1 / var(x). */
    sl_ts_errors e;
    CHECK(sl_ts_ar(&s, SL_SPLIT_TEST, 2, &e) == SL_OK, "%s", sl_errmsg());
    const double var = 1 / (s.std[0] * s.std[0]);
    CHECK(e.mse > 0.5 * var && e.mse < 1.5, "test mse %g (noise %g)", e.mse, var);
    sl_ts_free(&s);
    free(raw);
}

/* x_t = m + a sin(w t + f) follows x_t = b0 + 2 cos(w) x_{t-1} - x_{t-2}
 * exactly: AR(2) finds it to rounding and its iterated forecast is exact;
 * columns are fitted apart. */
static void test_ar_exact_recurrence(void)
{
    enum { N = 400, C = 2 };
    double raw[N * C];
    const double w[C] = {0.3, 1.1};
    for (int t = 0; t < N; t++) {
        raw[t * C] = 10 + 3 * sin(w[0] * t + 0.4);
        raw[t * C + 1] = -2 + 0.5 * sin(w[1] * t + 2);
    }
    const sl_ts_shape sh = {12, 24, 0.7, 0.2, false};
    sl_ts s;
    CHECK(sl_ts_make(&s, raw, N, C, &sh, NULL, NULL, "sines") == SL_OK, "%s", sl_errmsg());
    double b[C * 3];
    CHECK(sl_ts_ar_fit(&s, 2, b) == SL_OK, "%s", sl_errmsg());
    for (int k = 0; k < C; k++) {
        CHECK_CLOSE(b[k * 3 + 1], 2 * cos(w[k]), 1e-9, 0, "b1");
        CHECK_CLOSE(b[k * 3 + 2], -1, 1e-9, 0, "b2");
    }
    for (int sp = 0; sp < 3; sp++) {
        sl_ts_errors e;
        CHECK(sl_ts_ar(&s, sp, 2, &e) == SL_OK && e.mse < 1e-16 && e.mae < 1e-8,
              "split %d: %g %g", sp, e.mse, e.mae);
        CHECK(e.count == sl_ts_windows(&s, sp) * 24 * C, "count");
    }
    /* The forecast by hand: 24 steps of the recurrence from the window's
     * last two rows. */
    double pred[24 * C];
    const int64_t start = sl_ts_window_start(&s, SL_SPLIT_TEST, 3);
    sl_ts_ar_forecast(&s, start, 2, b, pred);
    for (int h = 0; h < 24; h++)
        CHECK_CLOSE(pred[h * C + 1], s.z[(start + h) * C + 1], 1e-9, 0, "forecast");
    sl_ts_free(&s);
}

static void test_ar_refusals(void)
{
    enum { N = 100 };
    double raw[N];
    for (int t = 0; t < N; t++) raw[t] = t % 3;
    sl_ts_shape sh = {10, 2, 0.7, 0.2, false};
    sl_ts s;
    CHECK(sl_ts_make(&s, raw, N, 1, &sh, NULL, NULL, "period3") == SL_OK, "%s", sl_errmsg());
    double b[64];
    sl_ts_errors e;
    CHECK(sl_ts_ar_fit(&s, 2, b) == SL_OK, "period 3 is an exact AR(2): %s", sl_errmsg());
    CHECK(sl_ts_ar(&s, SL_SPLIT_TEST, 2, &e) == SL_OK && e.mse < 1e-20, "%g", e.mse);
    CHECK(sl_ts_ar_fit(&s, 4, b) == SL_ERR_NUMERIC && has("column 0") &&
              has("rank-deficient") && has("lower ar_order"),
          "%s", sl_errmsg());
    CHECK(sl_ts_ar(&s, SL_SPLIT_TEST, 11, &e) == SL_ERR_ARG && has("ar_order = 11") &&
              has("seq_len = 10"),
          "%s", sl_errmsg());
    CHECK(sl_ts_ar_fit(&s, 0, b) == SL_ERR_ARG, "p = 0");
    sl_ts_free(&s);
    for (int t = 0; t < N; t++) raw[t] = 4;
    CHECK(sl_ts_make(&s, raw, N, 1, &sh, NULL, NULL, "flat") == SL_OK, "%s", sl_errmsg());
    CHECK(sl_ts_ar_fit(&s, 1, b) == SL_ERR_NUMERIC && has("rank-deficient"), "%s", sl_errmsg());
    sl_ts_free(&s);
    /* 12 training rows: AR(10) would fit 11 unknowns to 2 equations. */
    for (int t = 0; t < 20; t++) raw[t] = sin(t);
    sh = (sl_ts_shape){10, 2, 0.6, 0.2, false};
    CHECK(sl_ts_make(&s, raw, 20, 1, &sh, NULL, NULL, "short") == SL_OK, "%s", sl_errmsg());
    CHECK(sl_ts_ar_fit(&s, 10, b) == SL_ERR_ARG && has("at least 2 ar_order + 1 = 21") &&
              has("has 12"),
          "%s", sl_errmsg());
    sl_ts_free(&s);
}

static sl_status open_ts(sl_task *t, const char *data, int64_t L, const char *const *kv)
{
    sl_opts o;
    CHECK(sl_opts_defaults(&o, sl_task_timeseries.options) == SL_OK, "defaults");
    for (; kv && kv[0]; kv += 2)
        CHECK(sl_opts_set(&o, "task 'timeseries'", "test", kv[0], kv[1], SL_FROM_TEXT) == SL_OK,
              "%s: %s", kv[0], sl_errmsg());
    const sl_task_env env = {.data = data, .seq_len = L, .opts = &o};
    return sl_task_open(t, &sl_task_timeseries, &env);
}

/* sl_timeseries_baselines: the task's period and ar_order. */
static void test_task_entry(void)
{
    sl_task t;
    const char *const kv[] = {"horizon", "12", "period", "6", "ar_order", "3", NULL};
    CHECK(open_ts(&t, "data/nottem.csv", 48, kv) == SL_OK, "%s", sl_errmsg());
    sl_ts_errors naive, ar, e;
    CHECK(sl_timeseries_baselines(&t, SL_SPLIT_VAL, &naive, &ar) == SL_OK, "%s", sl_errmsg());
    const sl_ts *s = sl_timeseries_data(&t);
    CHECK(sl_ts_seasonal_naive(s, SL_SPLIT_VAL, 6, &e) == SL_OK && e.mse == naive.mse &&
              e.mae == naive.mae,
          "period 6");
    CHECK(sl_ts_ar(s, SL_SPLIT_VAL, 3, &e) == SL_OK && e.mse == ar.mse && e.mae == ar.mae,
          "ar_order 3");
    /* The score hook, batch by batch over the split in order (the last
     * batch short), sums the same errors. */
    enum { B = 5 };
    sl_batch bt;
    CHECK(sl_batch_alloc(&bt, &t.io, B, 48, "test") == SL_OK, "%s", sl_errmsg());
    sl_scores sc;
    sl_scores_init(&sc);
    const int64_t W = sl_ts_windows(s, SL_SPLIT_VAL);
    for (int64_t first = 0; first < W; first += B) {
        bt.first = first;
        bt.B = W - first < B ? W - first : B;
        t.vt->batch(&t, SL_SPLIT_VAL, NULL, &bt);
        CHECK(t.vt->score(&t, &bt, NULL, NULL, &sc) == SL_OK, "%s", sl_errmsg());
    }
    const double got[4] = {sl_scores_mean(&sc, "naive_mse", 0), sl_scores_mean(&sc, "naive_mae", 0),
                           sl_scores_mean(&sc, "ar_mse", 0), sl_scores_mean(&sc, "ar_mae", 0)},
                 want[4] = {naive.mse, naive.mae, ar.mse, ar.mae};
    for (int i = 0; i < 4; i++)
        CHECK(fabs(got[i] - want[i]) <= 1e-12 * want[i], "score %d: %.15g, whole split %.15g", i,
              got[i], want[i]);
    sl_scores_free(&sc);
    bt.B = B;
    sl_batch_free(&bt);
    sl_task_close(&t);
    const char *const big[] = {"horizon", "12", "period", "49", NULL};
    CHECK(open_ts(&t, "data/nottem.csv", 48, big) == SL_OK, "a baseline option never stops a "
          "run: %s", sl_errmsg());
    CHECK(sl_timeseries_baselines(&t, SL_SPLIT_TEST, &naive, &ar) == SL_ERR_ARG &&
              has("period = 49"),
          "%s", sl_errmsg());
    sl_task_close(&t);
    sl_opts o;
    sl_opts_defaults(&o, sl_task_mqar.options);
    const sl_task_env env = {.data = "", .seq_len = 64, .opts = &o};
    CHECK(sl_task_open(&t, &sl_task_mqar, &env) == SL_OK, "%s", sl_errmsg());
    CHECK(sl_timeseries_data(&t) == NULL &&
              sl_timeseries_baselines(&t, SL_SPLIT_TEST, &naive, &ar) == SL_ERR_ARG,
          "another task");
    sl_task_close(&t);
}

/* R's series with the configs' windows; the numbers come from numpy
 * (np.linalg.lstsq on the same training rows, a Python loop over the same
 * windows), written to 6 decimals. */
static void test_r_series(void)
{
    static const struct {
        const char *file;
        const char *L, *H;
        int64_t period, p;
        double naive[2][2], ar[2][2]; /* validation, test: mse, mae */
    } cases[] = {
        {"data/sunspot_month.csv", "96", "24", 1, 12,
         {{1.720241, 0.984327}, {1.059319, 0.750378}},
         {{1.512789, 0.894096}, {0.852534, 0.679290}}},
        {"data/co2.csv", "96", "24", 12, 12,
         {{0.121607, 0.326193}, {0.063995, 0.226036}},
         {{0.005471, 0.061678}, {0.015797, 0.097406}}},
        {"data/nottem.csv", "48", "12", 12, 24,
         {{0.186585, 0.305270}, {0.133539, 0.270733}},
         {{0.171430, 0.317285}, {0.074070, 0.200431}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_task t;
        const char *const kv[] = {"horizon", cases[i].H, NULL};
        CHECK(open_ts(&t, cases[i].file, atoi(cases[i].L), kv) == SL_OK, "%s", sl_errmsg());
        const sl_ts *s = sl_timeseries_data(&t);
        if (!s) continue;
        for (int k = 0; k < 2; k++) {
            const sl_split sp = k ? SL_SPLIT_TEST : SL_SPLIT_VAL;
            sl_ts_errors n, a;
            CHECK(sl_ts_seasonal_naive(s, sp, cases[i].period, &n) == SL_OK &&
                      sl_ts_ar(s, sp, cases[i].p, &a) == SL_OK,
                  "%s", sl_errmsg());
            CHECK_CLOSE(n.mse, cases[i].naive[k][0], 6e-7, 0, cases[i].file);
            CHECK_CLOSE(n.mae, cases[i].naive[k][1], 6e-7, 0, cases[i].file);
            CHECK_CLOSE(a.mse, cases[i].ar[k][0], 6e-7, 0, cases[i].file);
            CHECK_CLOSE(a.mae, cases[i].ar[k][1], 6e-7, 0, cases[i].file);
        }
        sl_task_close(&t);
    }
}

int main(void)
{
    RUN(test_seasonal_naive);
    RUN(test_ar_recovers_ar2);
    RUN(test_ar_exact_recurrence);
    RUN(test_ar_refusals);
    RUN(test_task_entry);
    RUN(test_r_series);
    return TEST_SUMMARY();
}
