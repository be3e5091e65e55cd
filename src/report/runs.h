/* What `seqlab report` reads (docs/report.md): sweep directories (`seqlab
 * sweep`'s sweep.json, summary.csv, best.csv and runs/NAME/) and plain
 * training out_dirs (metrics.jsonl, result.json when a sweep wrote one,
 * checkpoint.safetensors). */
#ifndef SL_REPORT_RUNS_H
#define SL_REPORT_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "report/csv.h"

/* y against x, in the order read: a loss against the step. NaN y: a gap. */
typedef struct rp_curve {
    double *x, *y;
    size_t n, cap;
} rp_curve;

sl_status rp_curve_push(rp_curve *c, double x, double y);
void rp_curve_free(rp_curve *c);

/* A forecast of a timeseries run, in scaled units: the L input rows of one
 * test window, its H true rows and the model's H predictions (column 0 of
 * the task's columns). Filled by the CLI, which owns the model. */
typedef struct rp_forecast {
    int64_t L, H;
    int64_t window, start; /* the test window's index and first target row */
    double *input, *truth, *pred;
} rp_forecast;

typedef struct rp_run {
    char *name, *dir;
    cJSON *result;       /* result.json, or NULL */
    const cJSON *params; /* result's "params" object, or NULL */
    const cJSON *test;   /* result's "test" object, or NULL */
    const cJSON *val;    /* result's "val" object, or NULL */
    cJSON *last_val;     /* metrics.jsonl's last "split":"val" line, or NULL */
    rp_curve train;      /* training loss against step */
    rp_curve valid;      /* validation loss against step */
    size_t bad_lines;    /* metrics.jsonl lines skipped */
    bool has_ckpt;
    rp_forecast fc; /* fc.H = 0: none */
} rp_run;

/* A sweep, or a directory of plain runs (spec NULL). */
typedef struct rp_sweep {
    char *name, *dir;
    cJSON *spec;         /* sweep.json, or NULL */
    rp_csv summary;      /* summary.csv (ncol 0 when absent) */
    rp_csv best;         /* best.csv (ncol 0 when absent) */
    rp_run *runs;
    size_t n;
} rp_sweep;

typedef struct rp_collection {
    rp_sweep *sweeps;
    size_t n;
} rp_collection;

/* Reads dir: one sweep directory (it holds sweep.json or summary.csv), a
 * plain out_dir (metrics.jsonl), or a directory of those (every
 * subdirectory that is a sweep, in name order, then the plain out_dirs
 * among them as one group). A bad sweep.json, CSV or result.json is an
 * error naming the file and line; a bad metrics.jsonl line is skipped
 * with a warning on stderr naming the file and line. */
sl_status rp_load(rp_collection *c, const char *dir);
void rp_free(rp_collection *c);

/* The scores a run's plots read: its test object (*split "test"), else
 * its last validation line ("val"), else NULL. */
const cJSON *rp_run_scores(const rp_run *r, const char **split);
/* The value of grid key `key` in a run's params (result.json), or NULL. */
const cJSON *rp_run_param(const rp_run *r, const char *key);

#endif
