/* The forecast plot's data for `seqlab report`: a timeseries run's model
 * on its first test window. */
#ifndef SL_CLI_REPORT_FORECAST_H
#define SL_CLI_REPORT_FORECAST_H

#include "report/runs.h"

/* When r has a checkpoint whose task is timeseries, fills r->fc: opens
 * the checkpoint and its task as `seqlab eval` does (the data file its
 * config names, scaled with the checkpoint's ts_mean and ts_std), runs
 * the model on test window 0 (a one-row held-out batch, first = 0) and
 * keeps column 0 of the inputs, the true horizon and the prediction, in
 * scaled units (with subtract_last, the window's last input row added
 * back). Leaves r->fc empty for another task. A failure (a data file
 * that moved) is returned for the caller to report. */
sl_status report_forecast(rp_run *r);

#endif
