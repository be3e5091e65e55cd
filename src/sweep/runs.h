/* The runs of a sweep: each one's config, checked before any run starts,
 * its directory, and the command lines that train and evaluate it as child
 * processes (`seqlab train`, `seqlab eval`). */
#ifndef SL_SWEEP_RUNS_H
#define SL_SWEEP_RUNS_H

#include "sweep/spec.h"

/* A NULL-terminated argument vector; every string malloc'd. */
typedef struct sl_argv {
    char **v;
    int64_t n;
} sl_argv;

void sl_argv_free(sl_argv *a);

/* The base config: defaults, then the spec's base file or inline object. */
sl_status sl_sweep_base(const sl_sweep *s, sl_config *base);
/* OUT/runs/NAME, the run's out_dir. */
void sl_sweep_run_dir(const sl_sweep *s, int64_t run, char *buf, size_t n);
/* The run's config as its `seqlab train` builds it: base, the run's
 * overrides, then out_dir, threads and the target's stop_metric and
 * stop_at; validated. */
sl_status sl_sweep_config(const sl_sweep *s, const sl_config *base, int64_t run, int64_t threads,
                          sl_config *cfg);
/* Every run's config (sl_sweep_config); the first that fails is named. */
sl_status sl_sweep_check(const sl_sweep *s, const sl_config *base, int64_t threads);
/* `EXE train BASE_PATH --key=value ... --out_dir=DIR --threads=K`, then
 * --resume DIR/checkpoint.safetensors when resume, --overwrite when
 * overwrite. */
sl_status sl_sweep_train_argv(const sl_sweep *s, int64_t run, const char *exe,
                              const char *base_path, int64_t threads, bool resume, bool overwrite,
                              sl_argv *out);
/* `EXE eval DIR/checkpoint.safetensors --split SPLIT --threads K`. */
sl_status sl_sweep_eval_argv(const sl_sweep *s, int64_t run, const char *exe, int64_t threads,
                             sl_argv *out);

#endif
