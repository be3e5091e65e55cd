/* What a sweep keeps of each run (docs/sweeps.md): OUT/runs/NAME/result.json,
 * made from the run's metrics.jsonl and the JSON line of its final
 * `seqlab eval`, written atomically. */
#ifndef SL_SWEEP_RESULTS_H
#define SL_SWEEP_RESULTS_H

#include "sweep/spec.h"

/* A run's metrics.jsonl, as far as its result needs it. */
typedef struct sl_run_log {
    int64_t steps;   /* the largest step logged (0 without a log) */
    bool stopped;    /* a {"stopped":"target"} line: the run reached its target */
    cJSON *val;      /* the last validation line less "step" and "split", or NULL */
} sl_run_log;

/* Reads DIR/metrics.jsonl; a missing file is an empty log. */
sl_status sl_run_log_read(const char *dir, sl_run_log *log);
void sl_run_log_free(sl_run_log *log);

/* The result of run: {"name", "params", "status", "steps", "wall_s",
 * "stopped_early", "val", "test"} (log->val and test are taken over: the
 * caller's pointers are cleared), plus "error" when error is not NULL
 * (status "failed"). NULL when memory runs out. */
cJSON *sl_sweep_result(const sl_sweep *s, int64_t run, const char *status, sl_run_log *log,
                       double wall_s, cJSON **test, const char *error);
/* Writes DIR/result.json atomically. */
sl_status sl_sweep_result_write(const char *dir, const cJSON *result);
/* DIR/result.json, or NULL when there is none or it does not read as an
 * object. */
cJSON *sl_sweep_result_read(const char *dir);
/* result's status is "done". */
bool sl_sweep_result_done(const cJSON *result);

#endif
