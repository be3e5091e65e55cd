/* seqlab report RUNS_DIR [--bench FILE ...] [-o FILE] [--threads N] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/report_forecast.h"
#include "core/core.h"
#include "report/page.h"
#include "report/read.h"

#define MAX_BENCH 64

static void help(void)
{
    printf("usage: seqlab report RUNS_DIR [--bench FILE ...] [-o FILE] [--threads N]\n\n"
           "One self-contained HTML page (inline CSS and SVG; no script, font or URL) from\n"
           "training runs: per sweep its summary table and plots chosen by what the runs\n"
           "hold: loss curves; accuracy against d_model per mixer (a d_model grid key); every\n"
           "array-valued score against its index, baselines dashed (in-context error by\n"
           "number of examples); a timeseries model's forecast of its first test window\n"
           "against the truth (the checkpoint and the data file its config names); and,\n"
           "from --bench files (JSON lines of `seqlab bench --mixer`, repeatable), time and\n"
           "peak memory against sequence length, log-log, PyTorch dashed.\n\n"
           "RUNS_DIR is a sweep directory (`seqlab sweep`: sweep.json, summary.csv,\n"
           "best.csv, runs/NAME/), a training out_dir (metrics.jsonl), or a directory of\n"
           "either. -o FILE (default report.html) is written whole or not at all (a\n"
           "temporary file renamed). A bad sweep.json, CSV, result.json or --bench line is\n"
           "an error naming the file and line; a metrics.jsonl line that is not a JSON\n"
           "object with a step is skipped with a warning. Inputs: docs/report.md.\n");
}

typedef struct args {
    const char *dir, *out;
    const char *bench[MAX_BENCH];
    size_t nb;
    int64_t threads;
} args;

static int parse(int argc, char **argv, args *a)
{
    const char *v;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help") || strcmp(argv[i], "-h") == 0) {
            help();
            return 0;
        } else if (cli_opt(argc, argv, &i, "bench", &v)) {
            if (!v) return cli_usage_error("report", "--bench needs a file");
            if (a->nb == MAX_BENCH)
                return cli_usage_error("report", "more than %d --bench files", MAX_BENCH);
            a->bench[a->nb++] = v;
        } else if (strcmp(argv[i], "-o") == 0 || cli_opt(argc, argv, &i, "output", &v)) {
            if (strcmp(argv[i], "-o") == 0) v = i + 1 < argc ? argv[++i] : NULL;
            if (!v || !v[0]) return cli_usage_error("report", "-o needs a file");
            a->out = v;
        } else if (cli_opt(argc, argv, &i, "threads", &v)) {
            if (!cli_int("report", "threads", v, 0, &a->threads)) return 2;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("report", "unknown option %s", argv[i]);
        } else if (!a->dir) {
            a->dir = argv[i];
        } else {
            return cli_usage_error("report", "more than one RUNS_DIR given");
        }
    }
    if (!a->dir) return cli_usage_error("report", "missing RUNS_DIR");
    return -1;
}

/* Forecasts of the runs that may be timeseries runs (a checkpoint and an
 * "mse" score: a regress head); a failure is a warning and no plot. */
static void forecasts(rp_collection *c)
{
    for (size_t k = 0; k < c->n; k++)
        for (size_t i = 0; i < c->sweeps[k].n; i++) {
            rp_run *r = &c->sweeps[k].runs[i];
            const char *split;
            const cJSON *sc = rp_run_scores(r, &split);
            if (!r->has_ckpt || !cJSON_GetObjectItemCaseSensitive(sc, "mse")) continue;
            if (report_forecast(r))
                fprintf(stderr, "seqlab report: warning: %s: no forecast plot: %s\n", r->dir,
                        sl_errmsg());
        }
}

/* Writes the page to out through a temporary file renamed onto it. */
static sl_status write_page(const char *out, const rp_page *pg)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return sl_fail(SL_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    sl_status st = rp_page_write(f, pg);
    if (!st && (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0))
        st = sl_fail(SL_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && !st) st = sl_fail(SL_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (!st && rename(tmp, out) != 0)
        st = sl_fail(SL_ERR_IO, "%s: cannot rename the temporary file onto it: %s", out,
                     strerror(errno));
    if (st) unlink(tmp);
    return st;
}

int cmd_report(int argc, char **argv)
{
    args a = {.out = "report.html"};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    sl_set_threads((int)a.threads);
    rp_bench bench = {0};
    sl_status st = SL_OK;
    for (size_t i = 0; i < a.nb && !st; i++) st = rp_bench_read(&bench, a.bench[i]);
    rp_collection runs = {0};
    if (!st) st = rp_load(&runs, a.dir);
    if (!st) {
        forecasts(&runs);
        const rp_page pg = {.runs_dir = a.dir,
                            .runs = &runs,
                            .bench = &bench,
                            .bench_files = a.bench,
                            .n_bench_files = a.nb};
        st = write_page(a.out, &pg);
    }
    if (!st) {
        size_t n = 0;
        for (size_t k = 0; k < runs.n; k++) n += runs.sweeps[k].n;
        fprintf(stderr, "seqlab report: wrote %s: %zu group%s of runs, %zu run%s, %zu benchmark "
                        "point%s\n",
                a.out, runs.n, runs.n == 1 ? "" : "s", n, n == 1 ? "" : "s", bench.n,
                bench.n == 1 ? "" : "s");
    }
    rp_free(&runs);
    rp_bench_free(&bench);
    return st ? cli_error("report") : 0;
}
