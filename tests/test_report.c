/* seqlab report, driven through the binary as tests/test_cli.c does: a
 * fake sweep (tests/report_fixture.h), a directory of plain out_dirs, a
 * directory of sweeps and a real timeseries run; each plot's <svg> holds
 * the expected series and points, odd names are escaped, the page needs
 * nothing from outside, and bad input is an error naming the file and the
 * line that leaves no file behind. Chromium's check is
 * tests/test_report_chromium.c. */
#include <libgen.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cli_check.h"
#include "report_fixture.h"

static char bin[512], dir[64], err[8192];

/* Runs `seqlab ARGS`, stderr in err; the exit status, -1 on a signal. */
static int run(const char *args) { return cli_check_run(bin, dir, false, args, err, sizeof err); }

static char args[2048];
#define A(...) (snprintf(args, sizeof args, __VA_ARGS__), args)

static char *page(const char *name)
{
    char p[256];
    size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return slurp(p, &n);
}

/* The nth (from 0) plot of a kind: its "<svg" and the end of its "</svg>";
 * NULL when there is none. */
static const char *plot(const char *html, const char *kind, int nth, const char **end)
{
    char tag[96];
    snprintf(tag, sizeof tag, "<svg class=\"plot\" data-plot=\"%s\"", kind);
    const char *p = html;
    for (int i = 0; p && (p = strstr(p, tag)); i++, p++)
        if (i == nth) {
            *end = strstr(p, "</svg>");
            return p;
        }
    return NULL;
}

static int count(const char *from, const char *to, const char *needle)
{
    int n = 0;
    for (const char *p = from; (p = strstr(p, needle)) && (!to || p < to); p++) n++;
    return n;
}

/* An integer attribute of the tag at p. */
static long attr(const char *p, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *a = strstr(p, key), *close = strchr(p, '>');
    return a && a < close ? strtol(a + strlen(key), NULL, 10) : -1;
}

/* data-values of the series named `name` (escaped as in the page) in
 * [svg, end), copied into out; false when absent. */
static bool values(const char *svg, const char *end, const char *name, char *out, size_t n)
{
    char key[256];
    snprintf(key, sizeof key, "<g class=\"series\" data-name=\"%s\"", name);
    const char *s = strstr(svg, key);
    if (!s || s > end) return false;
    const char *v = strstr(s, "data-values=\""), *close = strchr(s, '>');
    if (!v || v > close) return false;
    v += 13;
    snprintf(out, n, "%.*s", (int)(strchr(v, '"') - v), v);
    return true;
}

/* A plot of kind with `series` series and `points` drawn points. */
#define CHECK_PLOT(html, kind, nth, series, points)                                          \
    do {                                                                                     \
        const char *e_, *s_ = plot(html, kind, nth, &e_);                                    \
        CHECK(s_ && e_, "%s plot %d present", kind, nth);                                    \
        if (s_ && e_) {                                                                      \
            CHECK(attr(s_, "data-series") == (series) &&                                     \
                      count(s_, e_, "<g class=\"series\"") == (series),                      \
                  "%s %d: %ld series, %d drawn; want %d", kind, nth, attr(s_, "data-series"), \
                  count(s_, e_, "<g class=\"series\""), (series));                           \
            CHECK(attr(s_, "data-points") == (points), "%s %d: %ld points; want %d", kind,    \
                  nth, attr(s_, "data-points"), (points));                                   \
        }                                                                                    \
    } while (0)

/* Nothing the page needs lies outside it. */
static void check_self_contained(const char *html)
{
    CHECK(!strstr(html, "http://") && !strstr(html, "https://"), "no URL");
    CHECK(!strstr(html, "<script") && !strstr(html, "<link") && !strstr(html, "<img") &&
              !strstr(html, "url(") && !strstr(html, "@import") && !strstr(html, " src="),
          "no script, stylesheet, image or font from elsewhere");
    CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0 && strstr(html, "</html>\n"), "a whole page");
}

static void test_sweep(void)
{
    fx_sweep(dir);
    fx_bench(dir);
    CHECK(run(A("report %s/sw --bench %s/bench.jsonl -o %s/sw.html", dir, dir, dir)) == 0,
          "report: %s", err);
    char *html = page("sw.html");
    CHECK(html, "page written");
    if (!html) return;
    check_self_contained(html);
    /* loss: a training and a validation line per run */
    CHECK_PLOT(html, "loss", 0, 2 * FX_RUNS, FX_RUNS * (FX_TRAIN_LINES + FX_VAL_LINES));
    /* accuracy: one plot per cell, a line per mixer through the widths */
    for (int c = 0; c < FX_CELLS; c++) CHECK_PLOT(html, "accuracy", c, FX_MIXERS, FX_MIXERS * FX_WIDTHS);
    const char *e, *s = plot(html, "accuracy", 2, &e);
    CHECK(!s, "no third accuracy plot");
    s = plot(html, "accuracy", 0, &e);
    char v[512], want[512];
    /* best over lr by validation accuracy (lr 0.003), its test accuracy shown */
    snprintf(want, sizeof want, "16,%g 32,%g", fx_test_acc(0, 0, 1, 0), fx_test_acc(0, 1, 1, 0));
    CHECK(s && values(s, e, "attention", v, sizeof v) && strcmp(v, want) == 0,
          "attention in cell 0: '%s', want '%s'", s ? v : "", want);
    CHECK(s && values(s, e, FX_ODD_MIXER_HTML, v, sizeof v), "the odd mixer, escaped");
    CHECK(s && strstr(s, "seq_len=16, mqar.num_kv_pairs=2"), "cell title");
    /* *_by_k: each run's err_by_k (its null a gap), least_squares_by_k
     * once (the same everywhere), ridge_by_k once per cell */
    CHECK_PLOT(html, "curve", 0, FX_RUNS + 1 + FX_CELLS, FX_RUNS * 4 + 5 + FX_CELLS * 5);
    s = plot(html, "curve", 0, &e);
    CHECK(s && count(s, e, "data-dashed=\"1\"") == 1 + FX_CELLS, "baselines dashed");
    CHECK(s && values(s, e, "least_squares_by_k", v, sizeof v) &&
              strcmp(v, "0,1 1,0.4 2,0.2 3,0.1 4,0.05") == 0,
          "least squares: %s", v);
    /* curve_x: a group of its own */
    CHECK_PLOT(html, "curve", 1, FX_RUNS, FX_RUNS * 3);
    CHECK(!plot(html, "forecast", 0, &e), "no forecast without a timeseries checkpoint");
    /* bench: a, its PyTorch points (2 of 3), b<x>; the repeated point replaced */
    CHECK_PLOT(html, "bench_time", 0, 3, 3 + 2 + 2);
    CHECK_PLOT(html, "bench_memory", 0, 2, 3 + 2);
    s = plot(html, "bench_time", 0, &e);
    CHECK(s && values(s, e, "a", v, sizeof v) && strcmp(v, "1024,10 4096,40 16384,160") == 0,
          "a: %s", v);
    CHECK(s && values(s, e, "a (PyTorch)", v, sizeof v) && strcmp(v, "1024,30 4096,120") == 0,
          "a (PyTorch): %s", v);
    /* tables: best.csv, and summary.csv folded under it */
    CHECK(strstr(html, "<table id=\"best0\">") && strstr(html, "<table id=\"summary0\">") &&
              count(html, NULL, "<tr>") == 2 + (FX_RUNS / FX_LRS) + FX_RUNS,
          "both tables");
    /* escaping: the odd mixer and run 0's name; the byte that is not UTF-8 */
    CHECK(!strstr(html, "<m>") && !strstr(html, "r<0>") && !strstr(html, "b<x>"),
          "no raw odd name");
    CHECK(strstr(html, "r&lt;0&gt; &amp; &#39;x&#39;\xef\xbf\xbd") && strstr(html, "b&lt;x&gt;"),
          "escaped names");
    CHECK(!strchr(html, '\xff'), "no invalid UTF-8 in the page");
    free(html);
}

/* A directory of plain out_dirs: loss curves, the scores of the last
 * validation line; bad lines skipped with a warning naming them; a
 * restarted run's points replace the old ones from its first step. */
static void test_plain_runs(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/plain", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/plain/p1", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/plain/p2", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/plain/notes", dir); /* neither: passed over */
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/plain/p1/metrics.jsonl", dir);
    fx_write(p, "{\"step\":1,\"loss\":3}\n{\"step\":2,\"loss\":2.5}\n{\"step\":3,\"loss\":2}\n"
                "{\"step\":1,\"loss\":3.1}\n{\"step\":2,\"loss\":2.4}\n"
                "{\"step\":2,\"skipped\":\"loss\",\"loss\":null}\n"
                "{\"step\":2,\"split\":\"val\",\"loss\":2.6,\"err_by_k\":[0.9,0.5,0.3],"
                "\"ridge_by_k\":[1,0.6,0.4]}\n");
    snprintf(p, sizeof p, "%s/plain/p2/metrics.jsonl", dir);
    fx_write(p, "{\"step\":1,\"loss\":4}\n{\"step\":2,\"lo\n[1,2]\n\n{\"step\":3,\"loss\":null}\n"
                "{\"step\":4,\"loss\":3}\n");
    CHECK(run(A("report %s/plain -o %s/plain.html", dir, dir)) == 0, "report: %s", err);
    CHECK(strstr(err, "p2/metrics.jsonl:2: skipped: not a JSON line") &&
              strstr(err, "p2/metrics.jsonl:3: skipped: not a JSON object"),
          "warnings name the lines: %s", err);
    CHECK(strstr(err, "notes: skipped") == NULL, "a directory that is no run is passed over: %s",
          err);
    char *html = page("plain.html");
    CHECK(html, "page written");
    if (!html) return;
    check_self_contained(html);
    /* p1: 2 training points (the restart replaced steps 1 to 3) and 1
     * validation point; p2: 2 of its 3 lines (a null loss is a gap) */
    CHECK_PLOT(html, "loss", 0, 3, 2 + 1 + 2);
    const char *e, *s = plot(html, "loss", 0, &e);
    char v[256];
    CHECK(s && values(s, e, "p1", v, sizeof v) && strcmp(v, "1,3.1 2,2.4") == 0, "p1: %s", v);
    CHECK_PLOT(html, "curve", 0, 2, 6);
    CHECK(strstr(html, "<table id=\"runs0\">") && strstr(html, "<th>val_err_by_k</th>") == NULL,
          "a table of the runs, scalars only");
    CHECK(strstr(html, "2 metrics.jsonl lines of 1 run skipped"), "the page says lines were skipped");
    free(html);
}

/* A directory of sweeps (and a plain run beside them): a section each. */
static void test_parent_dir(void)
{
    char p[512];
    const char *const SUB[] = {"par", "par/s1", "par/s1/runs", "par/s1/runs/x", "par/s2",
                               "par/lone"};
    for (size_t i = 0; i < sizeof SUB / sizeof SUB[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, SUB[i]);
        mkdir(p, 0755);
    }
    snprintf(p, sizeof p, "%s/par/s1/summary.csv", dir);
    fx_write(p, "name,status\nx,done\n");
    snprintf(p, sizeof p, "%s/par/s1/runs/x/metrics.jsonl", dir);
    fx_write(p, "{\"step\":1,\"loss\":1}\n{\"step\":2,\"loss\":0.5}\n");
    snprintf(p, sizeof p, "%s/par/s2/sweep.json", dir);
    fx_write(p, "{\"grid\": {\"lr\": [0.1]}}");
    snprintf(p, sizeof p, "%s/par/lone/metrics.jsonl", dir);
    fx_write(p, "{\"step\":5,\"loss\":2}\n");
    CHECK(run(A("report %s/par -o %s/par.html", dir, dir)) == 0, "report: %s", err);
    char *html = page("par.html");
    CHECK(html && strstr(html, "id=\"sweep0\"") && strstr(html, "id=\"sweep1\"") &&
              strstr(html, "id=\"sweep2\"") && !strstr(html, "id=\"sweep3\""),
          "three sections");
    CHECK(html && count(html, NULL, "data-plot=\"loss\"") == 2, "two loss plots (s2 has no run)");
    free(html);
    /* one out_dir alone is a report too */
    CHECK(run(A("report %s/par/lone -o %s/lone.html", dir, dir)) == 0, "report: %s", err);
    html = page("lone.html");
    CHECK(html && count(html, NULL, "data-plot=\"loss\"") == 1, "the lone run's loss");
    free(html);
}

/* A real timeseries run: its forecast of test window 0 (48 input rows,
 * 12 true and 12 predicted), read from its checkpoint and its data. */
static void test_forecast(void)
{
    CHECK(run(A("train configs/timeseries_nottem.json --steps=2 --d_model=8 --n_heads=1 "
                "--n_layers=1 --eval_every=2 --eval_batches=1 --log_every=1 --threads=1 "
                "--out_dir=%s/ts/run",
                dir)) == 0,
          "train: %s", err);
    CHECK(run(A("report %s/ts -o %s/ts.html", dir, dir)) == 0, "report: %s", err);
    char *html = page("ts.html");
    CHECK(html, "page");
    if (!html) return;
    CHECK_PLOT(html, "forecast", 0, 3, 48 + 12 + 12);
    const char *e, *s = plot(html, "forecast", 0, &e);
    char v[2048];
    CHECK(s && values(s, e, "truth", v, sizeof v) && strncmp(v, "0,", 2) == 0, "truth: %s", v);
    CHECK(s && values(s, e, "input", v, sizeof v) && strncmp(v, "-48,", 4) == 0, "input: %s", v);
    free(html);
    /* a data file that moved: a warning, no forecast, still a page */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp data/nottem.csv %s/nottem.csv", dir);
    CHECK(system(cmd) == 0, "copy the data");
    CHECK(run(A("train configs/timeseries_nottem.json --steps=1 --d_model=8 --n_heads=1 "
                "--n_layers=1 --eval_every=1 --eval_batches=1 --threads=1 --data=%s/nottem.csv "
                "--out_dir=%s/ts2/run",
                dir, dir)) == 0,
          "train: %s", err);
    snprintf(cmd, sizeof cmd, "%s/nottem.csv", dir);
    unlink(cmd);
    CHECK(run(A("report %s/ts2 -o %s/ts2.html", dir, dir)) == 0, "report: %s", err);
    CHECK(strstr(err, "no forecast plot") && strstr(err, "nottem.csv"), "warning: %s", err);
    html = page("ts2.html");
    CHECK(html && !plot(html, "forecast", 0, &e) && plot(html, "loss", 0, &e),
          "no forecast, still the loss");
    free(html);
}

#define EXPECT_FAIL(cmd, ...)                                                              \
    do {                                                                                   \
        int rc_ = run(cmd);                                                                \
        CHECK(rc_ == 1 || rc_ == 2, "%s: exit %d", cmd, rc_);                              \
        const char *want_[] = {__VA_ARGS__};                                               \
        for (size_t k_ = 0; k_ < sizeof want_ / sizeof want_[0]; k_++)                     \
            CHECK(strstr(err, want_[k_]) != NULL, "%s: '%s' not in: %s", cmd, want_[k_], err); \
    } while (0)

/* Bad input: an error naming the file and line, the old page untouched,
 * no temporary file. */
static void test_bad_input(void)
{
    char p[512], out[512];
    snprintf(out, sizeof out, "%s/keep.html", dir);
    fx_write(out, "OLD");
    EXPECT_FAIL(A("report %s/nowhere -o %s", dir, out), "nowhere: no such directory");
    EXPECT_FAIL(A("report %s/bench.jsonl -o %s", dir, out), "not a directory");
    snprintf(p, sizeof p, "%s/empty", dir);
    mkdir(p, 0755);
    EXPECT_FAIL(A("report %s/empty -o %s", dir, out), "empty: no sweep");
    EXPECT_FAIL(A("report -o %s", out), "missing RUNS_DIR");
    EXPECT_FAIL(A("report %s/sw --frob", dir), "unknown option --frob");
    EXPECT_FAIL(A("report %s/sw -o", dir), "-o needs a file");
    /* a malformed result.json */
    const char *const SUB[] = {"bad", "bad/runs", "bad/runs/r"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, SUB[i]);
        mkdir(p, 0755);
    }
    snprintf(p, sizeof p, "%s/bad/sweep.json", dir);
    fx_write(p, "{\"grid\": {}}\n");
    snprintf(p, sizeof p, "%s/bad/runs/r/result.json", dir);
    fx_write(p, "{\"name\": \"r\",\n \"test\": {\"loss\": 0.5,\n  \"accuracy\": .5}}\n");
    EXPECT_FAIL(A("report %s/bad -o %s", dir, out), "bad/runs/r/result.json:3:", "malformed JSON");
    fx_write(p, "{\"name\": \"r\", \"test\": [1]}\n");
    EXPECT_FAIL(A("report %s/bad -o %s", dir, out), "result.json", "\"test\": expected an object");
    fx_write(p, "{\"name\": \"r\"}\n");
    /* a malformed CSV */
    snprintf(p, sizeof p, "%s/bad/summary.csv", dir);
    fx_write(p, "name,status,steps\nr,done,3\nr2,done\n");
    EXPECT_FAIL(A("report %s/bad -o %s", dir, out), "bad/summary.csv:3: 2 cells; the header has 3");
    fx_write(p, "name,status\n\"r,done\n");
    EXPECT_FAIL(A("report %s/bad -o %s", dir, out), "summary.csv:2: unterminated quote");
    fx_write(p, "name,status\nr,done\n");
    /* a malformed sweep.json */
    snprintf(p, sizeof p, "%s/bad/sweep.json", dir);
    fx_write(p, "{\"grid\": {}} x\n");
    EXPECT_FAIL(A("report %s/bad -o %s", dir, out), "sweep.json:1:", "malformed JSON");
    fx_write(p, "{\"grid\": {}}\n");
    /* bench files */
    snprintf(p, sizeof p, "%s/b1.jsonl", dir);
    fx_write(p, "{\"mixer\":\"a\",\"seq\":1024,\"ms\":1,\"peak_mb\":1}\n{\"mixer\":\"a\",\"seq\n");
    EXPECT_FAIL(A("report %s/bad --bench %s -o %s", dir, p, out), "b1.jsonl:2:", "not a JSON object");
    fx_write(p, "{\"mixer\":\"a\",\"seq\":1024,\"ms\":1}\n");
    EXPECT_FAIL(A("report %s/bad --bench %s -o %s", dir, p, out), "b1.jsonl:1:", "\"peak_mb\"");
    fx_write(p, "{\"mixer\":\"a\",\"seq\":10.5,\"ms\":1,\"peak_mb\":1}\n");
    EXPECT_FAIL(A("report %s/bad --bench %s -o %s", dir, p, out), "b1.jsonl:1:", "\"seq\"");
    EXPECT_FAIL(A("report %s/bad --bench %s/none.jsonl -o %s", dir, dir, out), "none.jsonl");
    /* the good directory now passes: the same command writes the page */
    CHECK(run(A("report %s/bad -o %s", dir, out)) == 0, "fixed: %s", err);
    size_t n;
    char *html = slurp(out, &n);
    CHECK(html && strstr(html, "<table id=\"summary0\">"), "the page replaced the old file");
    free(html);
    /* an unwritable output: an error, nothing left */
    EXPECT_FAIL(A("report %s/bad -o %s/no/such/dir/x.html", dir, dir), "x.html.tmp.", "cannot write");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q '\\.tmp\\.'", dir);
    CHECK(system(cmd) != 0, "no temporary file left");
}

static void test_help(void)
{
    CHECK(run("report --help") == 0, "help");
    CHECK(run("--help") == 0, "commands");
    char p[256];
    size_t n;
    snprintf(p, sizeof p, "%s/stdout.txt", dir);
    char *out = slurp(p, &n);
    CHECK(out && strstr(out, "report "), "report is a command");
    free(out);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[512];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(bin, sizeof bin, "%s/../seqlab", dirname(self));
    strcpy(dir, "/tmp/seqlab-report-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(test_sweep);
    RUN(test_plain_runs);
    RUN(test_parent_dir);
    RUN(test_forecast);
    RUN(test_bad_input);
    RUN(test_help);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return TEST_SUMMARY();
}
