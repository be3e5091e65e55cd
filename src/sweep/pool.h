/* Running a sweep: every run not done yet, `jobs` at a time, each as a
 * `seqlab train` child process (continued with --resume when a checkpoint
 * is there) and then a `seqlab eval` of its checkpoint; result.json and the
 * tables are written as each run ends. SIGINT and SIGTERM are passed on to
 * the running children, which save and stop; the sweep then waits for them
 * and leaves every run where the next invocation continues it. */
#ifndef SL_SWEEP_POOL_H
#define SL_SWEEP_POOL_H

#include "sweep/spec.h"

typedef struct sl_sweep_exec {
    const char *exe;       /* this binary */
    const char *base_path; /* the config file each `train` reads */
    int64_t jobs;          /* runs at a time */
    int64_t threads;       /* threads of each run */
} sl_sweep_exec;

typedef struct sl_sweep_outcome {
    int64_t done, failed, left; /* runs by how they stand at the end */
    int64_t skipped;            /* of done: done before this invocation */
    int signal;                 /* the signal that stopped the sweep, or 0 */
} sl_sweep_outcome;

/* Runs s's runs under OUT/runs (which must exist); progress lines go to
 * stderr. Fails only when OUT's tables cannot be written. */
sl_status sl_sweep_run(const sl_sweep *s, const sl_sweep_exec *x, sl_sweep_outcome *out);

#endif
