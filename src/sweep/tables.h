/* A sweep's tables (docs/sweeps.md): OUT/summary.csv, one row per run, and
 * OUT/best.csv, the best run of each group that differs only in the
 * best_over axes. Both are rewritten whole and atomically. */
#ifndef SL_SWEEP_TABLES_H
#define SL_SWEEP_TABLES_H

#include "sweep/spec.h"

/* results[r]: run r's result.json, or NULL while it has none (a pending
 * row). Writes OUT/summary.csv, and OUT/best.csv when best_over is set. */
sl_status sl_sweep_tables(const sl_sweep *s, cJSON *const *results);
/* The number a run's result gives its target metric: from "test" when it
 * has it, else "val"; false when neither does or the run is not done. */
bool sl_sweep_result_metric(const cJSON *result, const char *metric, double *v);

#endif
