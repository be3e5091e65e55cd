/* A timeseries run's forecast of its first test window (report_forecast.h). */
#include "cli/report_forecast.h"

#include <stdlib.h>
#include <string.h>

#include "tasks/timeseries.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

/* y: [L, H C], the model's outputs on the window's L positions; the
 * forecast is at the last one (value h C + 0: row s + h, column 0). */
static sl_status keep(rp_forecast *fc, const sl_ts *ts, int64_t s, const float *y)
{
    const int64_t L = ts->L, H = ts->H, C = ts->c;
    fc->input = malloc((size_t)L * sizeof *fc->input);
    fc->truth = malloc((size_t)H * sizeof *fc->truth);
    fc->pred = malloc((size_t)H * sizeof *fc->pred);
    if (!fc->input || !fc->truth || !fc->pred)
        return sl_fail(SL_ERR_OOM, "out of memory keeping a forecast");
    const double shift = ts->subtract_last ? ts->z[(s - 1) * C] : 0;
    for (int64_t i = 0; i < L; i++) fc->input[i] = ts->z[(s - L + i) * C];
    for (int64_t h = 0; h < H; h++) {
        fc->truth[h] = ts->z[(s + h) * C];
        fc->pred[h] = (double)y[(L - 1) * H * C + h * C] + shift;
    }
    fc->L = L;
    fc->H = H;
    fc->window = 0;
    fc->start = s;
    return SL_OK;
}

/* The model's outputs on test window 0 of task. */
static sl_status run_window(sl_model *m, sl_task *task, const sl_config *cfg, rp_forecast *fc)
{
    const sl_ts *ts = sl_timeseries_data(task);
    if (sl_ts_windows(ts, SL_SPLIT_TEST) < 1)
        return sl_fail(SL_ERR_CONFIG, "the test split holds no window");
    sl_batch b;
    sl_status st = sl_batch_alloc(&b, &m->io, 1, cfg->seq_len, "a forecast batch");
    if (st) return st;
    sl_rng rng;
    sl_rng_seed(&rng, 0);
    b.first = 0;
    task->vt->batch(task, SL_SPLIT_TEST, &rng, &b);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1u << 20);
    ctx.grad_enabled = false;
    ctx.training = false;
    sl_batch rows;
    const sl_tensor *y = sl_model_forward_batch(m, &ctx, &b, &rows);
    st = keep(fc, ts, sl_ts_window_start(ts, SL_SPLIT_TEST, 0), y->data);
    sl_ctx_free(&ctx);
    sl_batch_free(&b);
    return st;
}

sl_status report_forecast(rp_run *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", r->dir);
    sl_checkpoint ck;
    sl_status st = sl_checkpoint_open(&ck, path);
    if (st) return st;
    if (strcmp(ck.cfg.task, "timeseries") != 0) {
        sl_checkpoint_close(&ck);
        return SL_OK;
    }
    sl_config cfg = ck.cfg;
    sl_model m;
    sl_task task;
    st = sl_model_create(&m, &ck.cfg);
    if (!st && (st = sl_checkpoint_restore(&ck, &m, NULL))) sl_model_free(&m);
    if (!st && (st = sl_task_from_config(&task, &cfg, &ck))) sl_model_free(&m);
    sl_checkpoint_close(&ck);
    if (st) return st;
    st = sl_config_adopt_io(&cfg, &task.io, "task 'timeseries'");
    if (!st) st = run_window(&m, &task, &cfg, &r->fc);
    if (st) {
        free(r->fc.input);
        free(r->fc.truth);
        free(r->fc.pred);
        r->fc = (rp_forecast){0};
    }
    sl_task_close(&task);
    sl_model_free(&m);
    return st;
}
