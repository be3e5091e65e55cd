/* A sweep's spec (docs/sweeps.md): one JSON object naming a base config,
 * an out_dir and a grid of config overrides whose every combination is one
 * training run. This file reads and checks the spec's structure and names
 * the runs; runs.h turns a run into its config and command line. */
#ifndef SL_SWEEP_SPEC_H
#define SL_SWEEP_SPEC_H

#include <cjson/cJSON.h>

#include "model/config.h"

#define SL_SWEEP_MAX_RUNS 10000
#define SL_SWEEP_NAME_LEN 200 /* bytes of a run's name */
#define SL_SWEEP_KEY_LEN 64   /* bytes of an override key, as `seqlab train` takes it */
#define SL_SWEEP_OUT_LEN 256  /* bytes of out_dir: OUT/runs/NAME/... fits a config's out_dir */

/* One override, `--key=value` of `seqlab train`; json: the value as the
 * spec wrote it (for result.json). */
typedef struct sl_sweep_kv {
    char *key, *value;
    const cJSON *json;
} sl_sweep_kv;

/* One value of an axis: the overrides it sets (one for a scalar axis, the
 * object's members for an axis of objects) and its part of a run's name. */
typedef struct sl_sweep_choice {
    sl_sweep_kv *kv;
    int64_t n;
    char token[SL_SWEEP_NAME_LEN + 1];
} sl_sweep_choice;

typedef struct sl_sweep_axis {
    const char *name; /* the grid key; points into the spec's JSON */
    bool objects;     /* an axis of objects: each value sets several keys */
    bool best_over;   /* named in best_over */
    int64_t n;
    sl_sweep_choice *choice;
} sl_sweep_axis;

typedef struct sl_sweep {
    char path[SL_PATH_LEN]; /* the spec file, for messages */
    char *text;             /* its text, copied to OUT/sweep.json */
    cJSON *root;
    char base[SL_PATH_LEN]; /* the base config file; "" when given inline */
    char *base_inline;      /* the inline base object as JSON text, or NULL */
    char out_dir[SL_SWEEP_OUT_LEN];
    sl_sweep_choice set; /* "set": the overrides of every run */
    sl_sweep_axis *axes;
    int64_t n_axes, n_runs;
    char metric[SL_SCORE_NAME]; /* target.metric; "" when no target */
    int direction;              /* sl_metric_direction(metric) */
    bool stop;                  /* target.value given: runs stop early there */
    double stop_at;
    bool best; /* best_over given */
    char eval_split[8];
} sl_sweep;

/* Reads and checks the spec at path: its keys and types, non-empty axes
 * without repeated values, no key set twice, no key the sweep sets itself
 * (out_dir, threads, stop_metric, stop_at), at most SL_SWEEP_MAX_RUNS runs
 * with distinct names. The configs themselves are checked by
 * sl_sweep_check (runs.h). Every message names the file and the key. */
sl_status sl_sweep_load(sl_sweep *s, const char *path);
void sl_sweep_free(sl_sweep *s);
/* Run `run`'s value on each axis: idx[k] indexes axes[k].choice (the first
 * axis varies slowest: every combination in key order, then value order). */
void sl_sweep_indices(const sl_sweep *s, int64_t run, int64_t *idx);
/* Run `run`'s name: its choices' tokens joined by '_'. */
void sl_sweep_name(const sl_sweep *s, int64_t run, char *buf, size_t n);
/* The overrides of run in the order they apply ("set", then the axes);
 * out holds sl_sweep_max_overrides(s) entries. Returns their count. */
int64_t sl_sweep_overrides(const sl_sweep *s, int64_t run, const sl_sweep_kv **out);
int64_t sl_sweep_max_overrides(const sl_sweep *s);
/* A number as an override's text: an integer as one, else the shortest
 * %g form that reads back to the same double. */
void sl_sweep_number(double x, char *buf, size_t n);

#endif
