/* The timeseries task: the CSV reader, splits and windows at their
 * borders, scaling from the training rows only, the direct multi-step
 * batch layout, the scaling kept in checkpoint metadata, R's committed
 * series, and bad input refused with the file, line and expectation. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "tasks/timeseries.h"
#include "tasks/ts_csv.h"

extern const sl_task_vtable sl_task_timeseries;

static const char *path = "/tmp/seqlab-test-timeseries.csv";

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* "time,x" then rows t, t for t = 0 .. n-1. */
static void write_ramp(int64_t n)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "time,x\n");
    for (int64_t t = 0; t < n; t++) fprintf(f, "%lld,%lld\n", (long long)t, (long long)t);
    fclose(f);
}

/* The task on `data` at seq_len L with the options in kv ("name",
 * "value", ..., NULL) and checkpoint metadata (NULL: a new model). */
static sl_status open_ts(sl_task *t, const char *data, int64_t L, const char *const *kv,
                         const sl_kv *meta, size_t n_meta)
{
    sl_opts o;
    CHECK(sl_opts_defaults(&o, sl_task_timeseries.options) == SL_OK, "defaults");
    for (; kv && kv[0]; kv += 2)
        CHECK(sl_opts_set(&o, "task 'timeseries'", "test", kv[0], kv[1], SL_FROM_TEXT) == SL_OK,
              "%s: %s", kv[0], sl_errmsg());
    const sl_task_env env = {.data = data, .seq_len = L, .opts = &o, .meta = meta,
                             .n_meta = n_meta, .meta_src = "ck.safetensors"};
    return sl_task_open(t, &sl_task_timeseries, &env);
}

static bool has(const char *needle) { return strstr(sl_errmsg(), needle) != NULL; }

static void test_csv_reader(void)
{
    const char *text = "date,\"a,b\",y\r\n\"2016-07-01 00:00\",1.5, 2 \r\n\"x\"\"y\",-3e2,\"4\"\r\n";
    double *x;
    int64_t rows;
    CHECK(sl_csv_parse_columns(text, strlen(text), "f.csv", 1, 2, &x, &rows) == SL_OK, "%s",
          sl_errmsg());
    CHECK(rows == 2 && x[0] == 1.5 && x[1] == 2 && x[2] == -300 && x[3] == 4,
          "rows %lld: %g %g %g %g", (long long)rows, x[0], x[1], x[2], x[3]);
    free(x);
    CHECK(sl_csv_parse_columns("t\n", 2, "f.csv", 0, 1, &x, &rows) == SL_OK && rows == 0,
          "a header alone: %s", sl_errmsg());
    free(x);
    static const struct {
        const char *text, *want[3];
        int64_t first, count;
        sl_status code;
    } bad[] = {
        {"", {"f.csv: empty file", "header row"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1,2\n3,abc\n", {"f.csv:3:", "column 1 ('x')", "expected a finite number, found 'abc'"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1,\n", {"f.csv:2:", "found ''"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1,inf\n", {"f.csv:2:", "finite number, found 'inf'"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1,2,3\n", {"f.csv:2:", "3 cells, expected 2"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1\n", {"f.csv:2:", "1 cells, expected 2"}, 0, 1, SL_ERR_FORMAT},
        {"t,x\n1,2\n\n3,4\n", {"f.csv:3:", "empty line"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1,\"2\n", {"f.csv:2:", "unterminated quote"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1,\"2\"3\n", {"f.csv:2:", "unterminated quote"}, 1, 1, SL_ERR_FORMAT},
        {"t,x\n1,2\n", {"f.csv:1:", "unknown column 2", "2 columns (0-based 0 .. 1: t, x)"}, 1, 2, SL_ERR_CONFIG},
        {"t,x\n1,2\n", {"f.csv:1:", "unknown column 5"}, 5, 1, SL_ERR_CONFIG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_status st = sl_csv_parse_columns(bad[i].text, strlen(bad[i].text), "f.csv",
                                            bad[i].first, bad[i].count, &x, &rows);
        CHECK(st == bad[i].code && !x, "case %zu: status %d", i, (int)st);
        for (int k = 0; k < 3 && bad[i].want[k]; k++)
            CHECK(has(bad[i].want[k]), "case %zu: '%s' not in: %s", i, bad[i].want[k], sl_errmsg());
    }
    const char nul[] = "t,x\n1,2\n3\0,4\n";
    CHECK(sl_csv_parse_columns(nul, sizeof nul - 1, "f.csv", 1, 1, &x, &rows) == SL_ERR_FORMAT &&
              has("f.csv:3: expected text, found a NUL byte"),
          "%s", sl_errmsg());
}

/* 100 rows, L = 8, H = 3, 70/10/20: train targets start at L and end at
 * row 69; validation's inputs reach back into training and its targets
 * fill [70, 80); test's fill [80, 100). */
static void test_windows_at_borders(void)
{
    enum { N = 100, L = 8, H = 3 };
    write_ramp(N);
    sl_task t;
    const char *const kv[] = {"horizon", "3", NULL};
    CHECK(open_ts(&t, path, L, kv, NULL, 0) == SL_OK, "%s", sl_errmsg());
    const sl_ts *s = sl_timeseries_data(&t);
    if (!s) return;
    static const int64_t lo[3] = {0, 70, 80}, hi[3] = {70, 80, 100}, first[3] = {L, 70, 80},
                         count[3] = {60, 8, 18};
    for (int sp = 0; sp < 3; sp++) {
        CHECK(s->lo[sp] == lo[sp] && s->hi[sp] == hi[sp], "split %d: [%lld, %lld)", sp,
              (long long)s->lo[sp], (long long)s->hi[sp]);
        CHECK(sl_ts_windows(s, sp) == count[sp] && t.vt->split_size(&t, sp) == count[sp],
              "split %d: %lld windows", sp, (long long)sl_ts_windows(s, sp));
        CHECK(sl_ts_window_start(s, sp, 0) == first[sp] &&
                  sl_ts_window_start(s, sp, count[sp] - 1) + H == hi[sp],
              "split %d: first and last windows", sp);
    }
    CHECK(t.io.input == SL_INPUT_VECTORS && t.io.n_in == 1 && t.io.head == SL_HEAD_REGRESS &&
              t.io.n_out == H && t.io.pool == SL_POOL_LAST && t.vocab_size == 0,
          "io");
    /* Batches: recover each row's raw rows from the scaling; every window
     * of each split turns up, and nothing else. */
    enum { B = 400 };
    sl_batch b;
    CHECK(sl_batch_alloc(&b, &t.io, B, L, "test") == SL_OK, "alloc");
    sl_rng r;
    sl_rng_seed(&r, 3);
    for (int sp = 0; sp < 3; sp++) {
        bool seen[N] = {false};
        t.vt->batch(&t, sp, &r, &b);
        for (int64_t row = 0; row < B; row++) {
            const float *v = b.vectors + row * L, *y = b.values + row * L * H;
            const uint8_t *m = b.mask + row * L;
            const int64_t in0 = llround(v[0] * s->std[0] + s->mean[0]);
            const int64_t start = in0 + L;
            bool ok = start >= first[sp] && start + H <= hi[sp] && in0 >= 0;
            for (int64_t i = 0; i < L; i++) {
                ok = ok && llround(v[i] * s->std[0] + s->mean[0]) == in0 + i;
                ok = ok && m[i] == (i == L - 1);
            }
            for (int64_t i = 0; i < (L - 1) * H; i++) ok = ok && y[i] == 0;
            for (int64_t h = 0; h < H; h++)
                ok = ok && llround(y[(L - 1) * H + h] * s->std[0] + s->mean[0]) == start + h;
            CHECK(ok, "split %d row %lld: inputs from %lld", sp, (long long)row, (long long)in0);
            if (ok) seen[start] = true;
        }
        for (int64_t j = 0; j < count[sp]; j++)
            CHECK(seen[first[sp] + j], "split %d: window %lld drawn", sp, (long long)j);
    }
    sl_batch_free(&b);
    sl_task_close(&t);
}

/* subtract_last: rows relative to the window's last input row. On a
 * ramp x_t = t, input i of a window is (i - L + 1) / std and target h is
 * (h + 1) / std, wherever the window lies. */
static void test_subtract_last(void)
{
    enum { L = 8, H = 3 };
    write_ramp(100);
    sl_task t;
    const char *const kv[] = {"horizon", "3", "subtract_last", "true", NULL};
    CHECK(open_ts(&t, path, L, kv, NULL, 0) == SL_OK, "%s", sl_errmsg());
    const sl_ts *s = sl_timeseries_data(&t);
    if (!s) return;
    float vec[L], val[L * H];
    uint8_t mask[L];
    for (int sp = 0; sp < 3; sp++) {
        sl_ts_row(s, sp, sl_ts_windows(s, sp) - 1, vec, val, mask);
        for (int i = 0; i < L; i++)
            CHECK_CLOSE(vec[i] * s->std[0], i - L + 1, 1e-4, 0, "input");
        for (int h = 0; h < H; h++)
            CHECK_CLOSE(val[(L - 1) * H + h] * s->std[0], h + 1, 1e-4, 0, "target");
        CHECK(mask[L - 1] == 1 && mask[0] == 0, "mask");
    }
    sl_task_close(&t);
}

/* The scaling is the training rows' (0 .. 69 of 100) mean and population
 * deviation; changing later rows changes nothing of it. */
static void test_scaling_uses_train_rows(void)
{
    enum { N = 100, TRAIN = 70 };
    double raw[N], mean = 0, var = 0;
    for (int i = 0; i < N; i++) raw[i] = i < TRAIN ? sin(i * 0.7) * 3 + 5 : 1000 + i * i;
    for (int i = 0; i < TRAIN; i++) mean += raw[i] / TRAIN;
    for (int i = 0; i < TRAIN; i++) var += (raw[i] - mean) * (raw[i] - mean) / TRAIN;
    const sl_ts_shape sh = {8, 3, 0.7, 0.2, false};
    sl_ts s;
    CHECK(sl_ts_make(&s, raw, N, 1, &sh, NULL, NULL, "test") == SL_OK, "%s", sl_errmsg());
    CHECK_CLOSE(s.mean[0], mean, 1e-12, 1e-12, "mean");
    CHECK_CLOSE(s.std[0], sqrt(var), 1e-12, 1e-12, "std");
    double zm = 0, zv = 0;
    for (int i = 0; i < TRAIN; i++) zm += s.z[i] / TRAIN;
    for (int i = 0; i < TRAIN; i++) zv += s.z[i] * s.z[i] / TRAIN;
    CHECK(fabs(zm) < 1e-12 && fabs(zv - 1) < 1e-12, "training rows scale to 0, 1: %g %g", zm, zv);
    const double m0 = s.mean[0], s0 = s.std[0];
    sl_ts_free(&s);
    for (int i = TRAIN; i < N; i++) raw[i] = -7e6;
    CHECK(sl_ts_make(&s, raw, N, 1, &sh, NULL, NULL, "test") == SL_OK, "%s", sl_errmsg());
    CHECK(s.mean[0] == m0 && s.std[0] == s0, "validation and test rows are not used");
    sl_ts_free(&s);
    /* A column constant on the training rows scales by 1 (StandardScaler). */
    for (int i = 0; i < TRAIN; i++) raw[i] = 0.1;
    CHECK(sl_ts_make(&s, raw, N, 1, &sh, NULL, NULL, "test") == SL_OK, "%s", sl_errmsg());
    CHECK(s.mean[0] == 0.1 && s.std[0] == 1 && s.z[5] == 0, "flat column: %g %g", s.mean[0],
          s.std[0]);
    sl_ts_free(&s);
}

/* Several columns from a file with a date column; the scaling written as
 * metadata and read back on another file. */
static void test_columns_and_meta(void)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "date,a,b,c\n");
    for (int i = 0; i < 60; i++) fprintf(f, "\"2016-01-%02d\",%d,%g,%d\n", i % 28 + 1, i, 0.5 * i * i, -i);
    fclose(f);
    sl_task t;
    const char *const kv[] = {"column", "2", "columns", "2", "horizon", "4", NULL};
    CHECK(open_ts(&t, path, 6, kv, NULL, 0) == SL_OK, "%s", sl_errmsg());
    CHECK(t.io.n_in == 2 && t.io.n_out == 8, "n_in %lld, n_out %lld", (long long)t.io.n_in,
          (long long)t.io.n_out);
    const sl_ts *s = sl_timeseries_data(&t);
    if (!s) return;
    CHECK(s->c == 2 && s->n == 60, "shape");
    CHECK_CLOSE(s->mean[1], -20.5, 1e-12, 0, "column c's mean over rows 0 .. 41");
    /* values [L, H c]: value h c + k is row s + h, column k */
    float vec[6 * 2], val[6 * 8];
    uint8_t mask[6];
    sl_ts_row(s, SL_SPLIT_VAL, 0, vec, val, mask);
    const int64_t start = sl_ts_window_start(s, SL_SPLIT_VAL, 0);
    CHECK(start == 42, "validation starts at row 42: %lld", (long long)start);
    CHECK(fabsf(val[5 * 8 + 3 * 2 + 1] * (float)s->std[1] + (float)s->mean[1] - (-45.0f)) < 1e-3,
          "row 45, column c");
    CHECK(fabsf(vec[0] * (float)s->std[0] + (float)s->mean[0] - 0.5f * 36 * 36) < 1e-2,
          "row 36, column b");
    sl_kv meta[2];
    CHECK(t.vt->meta(&t, meta, 2) == 2 && strcmp(meta[0].key, "ts_mean") == 0 &&
              strcmp(meta[1].key, "ts_std") == 0,
          "two entries");
    char mean[128], std[128];
    snprintf(mean, sizeof mean, "%s", meta[0].value);
    snprintf(std, sizeof std, "%s", meta[1].value);
    CHECK(strtod(mean, NULL) == s->mean[0] && strtod(strchr(std, ',') + 1, NULL) == s->std[1],
          "exact: %s / %s", mean, std);
    sl_task_close(&t);

    /* Another file, same columns: a trained model's scaling is kept. */
    f = fopen(path, "w");
    fprintf(f, "date,a,b,c\n");
    for (int i = 0; i < 60; i++) fprintf(f, "x,%d,%d,%d\n", i, 3 * i, 7);
    fclose(f);
    const sl_kv good[2] = {{"ts_mean", mean}, {"ts_std", std}};
    CHECK(open_ts(&t, path, 6, kv, good, 2) == SL_OK, "%s", sl_errmsg());
    s = sl_timeseries_data(&t);
    if (!s) return;
    CHECK(s->mean[0] == strtod(mean, NULL) && s->std[1] == strtod(strchr(std, ',') + 1, NULL),
          "stored scaling used");
    sl_task_close(&t);
    static const struct {
        sl_kv kv[2];
        size_t n;
        const char *want;
    } bad[] = {
        {{{"ts_mean", "1,2"}}, 1, "metadata 'ts_std' is missing"},
        {{{"ts_mean", "1"}, {"ts_std", "1,1"}}, 2, "metadata 'ts_mean' = \"1\": expected 2"},
        {{{"ts_mean", "1,2,3"}, {"ts_std", "1,1"}}, 2, "'ts_mean'"},
        {{{"ts_mean", "1,2"}, {"ts_std", "1,0"}}, 2, "above 0"},
        {{{"ts_mean", "1,nan"}, {"ts_std", "1,1"}}, 2, "finite"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(open_ts(&t, path, 6, kv, bad[i].kv, bad[i].n) == SL_ERR_FORMAT && has(bad[i].want) &&
                  has("ck.safetensors"),
              "case %zu: %s", i, sl_errmsg());
        CHECK(t.impl == NULL, "closed after a failure");
    }
}

/* Every refusal names what is wrong and where; none crashes. */
static void test_bad_input(void)
{
    sl_task t;
    CHECK(open_ts(&t, "/nonexistent/x.csv", 8, NULL, NULL, 0) == SL_ERR_IO &&
              has("/nonexistent/x.csv: cannot open data file"),
          "%s", sl_errmsg());
    CHECK(open_ts(&t, "", 8, NULL, NULL, 0) == SL_ERR_CONFIG && has("config key 'data'"), "%s",
          sl_errmsg());
    write_file("time,x\n0,1\n1,2\n2,two\n");
    CHECK(open_ts(&t, path, 8, NULL, NULL, 0) == SL_ERR_FORMAT && has(path) && has(":4:") &&
              has("column 1 ('x'): expected a finite number, found 'two'"),
          "%s", sl_errmsg());
    write_ramp(100);
    const char *const col[] = {"column", "2", NULL};
    CHECK(open_ts(&t, path, 8, col, NULL, 0) == SL_ERR_CONFIG && has(path) &&
              has(":1: unknown column 2"),
          "%s", sl_errmsg());
    /* training: 70 rows < seq_len + horizon = 48 + 24 */
    CHECK(open_ts(&t, path, 48, NULL, NULL, 0) == SL_ERR_FORMAT && has(path) &&
              has("100 rows after the header") &&
              has("training split (train_frac = 0.7 of them) has 70, fewer than seq_len + "
                  "horizon = 72"),
          "%s", sl_errmsg());
    const char *const h12[] = {"horizon", "12", NULL};
    CHECK(open_ts(&t, path, 8, h12, NULL, 0) == SL_ERR_FORMAT &&
              has("validation split (the rows between training and test) has 10, fewer than "
                  "horizon = 12"),
          "%s", sl_errmsg());
    const char *const test_small[] = {"horizon", "6", "test_frac", "0.05", NULL};
    CHECK(open_ts(&t, path, 8, test_small, NULL, 0) == SL_ERR_FORMAT &&
              has("test split (test_frac = 0.05 of them) has 5, fewer than horizon = 6"),
          "%s", sl_errmsg());
    write_file("time,x\n");
    CHECK(open_ts(&t, path, 8, NULL, NULL, 0) == SL_ERR_FORMAT && has("0 rows after the header"),
          "%s", sl_errmsg());
    const char *const fracs[] = {"train_frac", "0.8", "test_frac", "0.2", NULL};
    CHECK(open_ts(&t, path, 8, fracs, NULL, 0) == SL_ERR_CONFIG && has("train_frac = 0.8") &&
              has("sum below 1"),
          "%s", sl_errmsg());
    CHECK(t.impl == NULL, "closed after a failure");
}

/* R's series as committed (tools/export_r_series.sh). */
static void test_committed_series(void)
{
    static const struct {
        const char *file;
        int64_t rows, L, H;
        double first, last;
    } series[] = {
        {"data/sunspot_month.csv", 3177, 96, 24, 58, 37},
        {"data/co2.csv", 468, 96, 24, 315.42, 364.34},
        {"data/nottem.csv", 240, 48, 12, 40.6, 37.8},
    };
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
        char h[16];
        snprintf(h, sizeof h, "%lld", (long long)series[i].H);
        const char *const kv[] = {"horizon", h, NULL};
        sl_task t;
        CHECK(open_ts(&t, series[i].file, series[i].L, kv, NULL, 0) == SL_OK, "%s", sl_errmsg());
        const sl_ts *s = sl_timeseries_data(&t);
        if (!s) continue;
        const int64_t n = s->n;
        CHECK(n == series[i].rows, "%s: %lld rows", series[i].file, (long long)n);
        CHECK_CLOSE(s->z[0] * s->std[0] + s->mean[0], series[i].first, 1e-9, 0, series[i].file);
        CHECK_CLOSE(s->z[n - 1] * s->std[0] + s->mean[0], series[i].last, 1e-9, 0, series[i].file);
        sl_task_close(&t);
    }
}

int main(void)
{
    RUN(test_csv_reader);
    RUN(test_windows_at_borders);
    RUN(test_subtract_last);
    RUN(test_scaling_uses_train_rows);
    RUN(test_columns_and_meta);
    RUN(test_bad_input);
    RUN(test_committed_series);
    remove(path);
    return TEST_SUMMARY();
}
