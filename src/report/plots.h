/* The report's figures, each chosen by what the data hold (docs/report.md):
 * an SVG plot and its caption inside <figure>, appended to f. Each returns
 * SL_ERR_OOM when a plot cannot be built, else SL_OK (also when the data
 * call for no figure). */
#ifndef SL_REPORT_PLOTS_H
#define SL_REPORT_PLOTS_H

#include <stdio.h>

#include "report/bench.h"
#include "report/runs.h"

/* Training loss (solid) and validation loss (dashed) against the step,
 * one color per run. */
sl_status rp_fig_loss(FILE *f, const rp_sweep *s);
/* Accuracy against d_model, one line per mixer, one plot per cell of the
 * other grid keys; the best over the sweep's best_over axes. Needs a
 * d_model grid key and an accuracy. */
sl_status rp_fig_accuracy(FILE *f, const rp_sweep *s);
/* Every array-valued score against its index, grouped by the suffix from
 * the last "_by_" (err_by_k with least_squares_by_k): a run's first array
 * of a group is its own curve (solid), the others baselines (dashed). */
sl_status rp_fig_curves(FILE *f, const rp_sweep *s);
/* Each run's forecast (rp_forecast) against the truth. */
sl_status rp_fig_forecasts(FILE *f, const rp_sweep *s);
/* Time and peak memory against the sequence length, log-log, one line per
 * mixer; PyTorch's time dashed where measured. */
sl_status rp_fig_bench(FILE *f, const rp_bench *b);

#endif
