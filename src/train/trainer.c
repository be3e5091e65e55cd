/* The training loop. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/optim.h"
#include "train/outdir.h"
#include "train/trainer.h"

sl_status sl_evaluate(sl_model *m, sl_ctx *ctx, sl_task *task, sl_split split, int64_t batches,
                      int64_t B, int64_t T, sl_metrics *out)
{
    sl_metrics_init(out, m->io.head);
    sl_rng rng;
    sl_rng_seed(&rng, 0x5e91abull + (uint64_t)split);
    int64_t rows_left = INT64_MAX;
    if (split != SL_SPLIT_TRAIN) {
        rows_left = task->vt->held_out_rows ? task->vt->held_out_rows(task, split, T)
                                            : task->vt->split_size(task, split);
        if (rows_left < 1)
            return sl_fail(SL_ERR_CONFIG, "task '%s': the %s split holds no row of %lld positions",
                           task->vt->name, split == SL_SPLIT_VAL ? "validation" : "test",
                           (long long)T);
        if (batches == 0) batches = (rows_left + B - 1) / B;
        else rows_left = INT64_MAX;
    } else if (batches == 0) {
        batches = 1;
    }
    sl_batch b;
    sl_status st = sl_batch_alloc(&b, &m->io, B, T, "an evaluation batch");
    if (st) return st;
    bool grad = ctx->grad_enabled, train = ctx->training;
    ctx->grad_enabled = false;
    ctx->training = false;
    for (int64_t i = 0; i < batches && !st; i++, rows_left -= b.B) {
        b.first = i * B;
        b.B = rows_left < B ? rows_left : B;
        for (int64_t r = 0; b.lengths && r < b.B; r++) b.lengths[r] = T;
        task->vt->batch(task, split, &rng, &b);
        sl_ctx_reset(ctx);
        sl_tensor *y;
        sl_batch rows;
        const double loss = sl_model_batch_loss(m, ctx, &b, &y, &rows)->data[0];
        sl_metrics_add(out, loss, y, &rows);
        out->rows += b.B;
        for (int64_t r = 0; r < b.B; r++) out->positions += b.lengths ? b.lengths[r] : T;
        if (task->vt->score) st = task->vt->score(task, &b, y, &rows, &out->task);
    }
    sl_ctx_reset(ctx);
    ctx->grad_enabled = grad;
    ctx->training = train;
    sl_batch_free(&b);
    return st;
}

static void fmt_duration(double s, char *out, size_t n)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
}

static void progress(int64_t step, int64_t total, double loss, double tok_s, double eta)
{
    char bar[31], e[32];
    int fill = total ? (int)(30 * step / total) : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[30] = '\0';
    fmt_duration(eta, e, sizeof e);
    fprintf(stderr, "\rstep %lld/%lld [%s] loss %.4f | %.1fk tok/s | ETA %s   ",
            (long long)step, (long long)total, bar, loss, tok_s / 1000, e);
}

typedef struct run {
    sl_config cfg;
    sl_model model;
    sl_task task;
    sl_ctx ctx;
    sl_train_state ts;
    sl_outdir dir;
    FILE *log;
    char ckpt[SL_PATH_LEN + 32];
    sl_batch batch;
    bool tty;
    int64_t skipped, in_a_row; /* updates skipped in this process, and in a row */
    int64_t saved_step;        /* step of this run's last checkpoint; -1: none yet */
} run;

sl_status sl_task_from_config(sl_task *t, const sl_config *cfg, const sl_checkpoint *ck)
{
    const sl_task_vtable *vt;
    sl_opts opts;
    sl_status st = sl_config_task(cfg, &vt, &opts);
    if (st) return st;
    const sl_task_env env = {.data = cfg->data,
                             .seq_len = cfg->seq_len,
                             .vocab_size = ck ? cfg->vocab_size : 0,
                             .opts = &opts,
                             .meta = ck ? ck->file.meta : NULL,
                             .n_meta = ck ? ck->file.nmeta : 0,
                             .meta_src = ck ? ck->path : NULL};
    return sl_task_open(t, vt, &env);
}

/* The model of a resumed run: built once, from the checkpoint's config
 * with the run's training keys, then filled from the file. */
static sl_status resume_model(run *r, const sl_checkpoint *ck)
{
    if (r->cfg.vocab_size == 0) r->cfg.vocab_size = ck->cfg.vocab_size;
    sl_task_io io;
    sl_status st = sl_config_io(&ck->cfg, &io);
    if (!st) st = sl_config_adopt_io(&r->cfg, &io, ck->path);
    if (st) return st;
    const char *key = sl_config_model_diff(&ck->cfg, &r->cfg);
    if (key)
        return sl_fail(SL_ERR_CONFIG,
                       "--resume %s: %s differs from the checkpoint's model; a resumed run may "
                       "change training keys only",
                       ck->path, key);
    st = sl_model_create(&r->model, &r->cfg);
    return st ? st : sl_checkpoint_restore(ck, &r->model, &r->ts);
}

/* Fails before any training when stop_metric names no scalar of the run's
 * validation line: the head's metrics follow from the head, a task's
 * scores from one validation batch (evaluation draws no training or
 * dropout randomness, so a resumed run stays bit-exact). */
static sl_status check_stop_metric(run *r)
{
    const sl_config *c = &r->cfg;
    if (!c->stop_metric[0]) return SL_OK;
    sl_metrics mt;
    double v;
    sl_metrics_init(&mt, r->model.io.head);
    if (sl_metrics_value(&mt, c->stop_metric, &v)) return SL_OK;
    sl_status st = sl_evaluate(&r->model, &r->ctx, &r->task, SL_SPLIT_VAL, 1, c->batch_size,
                               c->seq_len, &mt);
    char names[256], why[512];
    sl_metrics_names(&mt, names, sizeof names);
    snprintf(why, sizeof why, "%s", st ? sl_errmsg() : "");
    if (st)
        st = sl_fail(st, "config key 'stop_metric' = \"%s\": cannot read the validation line to "
                         "check it: %s",
                     c->stop_metric, why);
    else if (!sl_metrics_value(&mt, c->stop_metric, &v))
        st = sl_fail(SL_ERR_CONFIG,
                     "config key 'stop_metric' = \"%s\": the validation line of task '%s' (head "
                     "%s) has %s",
                     c->stop_metric, c->task, sl_head_name(r->model.io.head), names);
    sl_metrics_free(&mt);
    return st;
}

static sl_status setup(run *r, const sl_config *cfg, const char *resume, bool overwrite)
{
    r->cfg = *cfg;
    r->saved_step = -1;
    sl_status st = sl_outdir_claim(&r->dir, cfg->out_dir, resume, overwrite);
    if (st) return st;
    if (resume) {
        sl_checkpoint ck;
        st = sl_checkpoint_open(&ck, resume);
        if (st) return st;
        st = resume_model(r, &ck);
        if (!st) st = sl_task_from_config(&r->task, &r->cfg, &ck);
        sl_checkpoint_close(&ck);
    } else {
        st = sl_task_from_config(&r->task, &r->cfg, NULL);
    }
    if (!st) {
        char who[SL_NAME_LEN + 16];
        snprintf(who, sizeof who, "task '%s'", r->cfg.task);
        st = sl_config_adopt_io(&r->cfg, &r->task.io, who);
    }
    if (st) return st;
    if (!resume) {
        if (r->cfg.vocab_size == 0) r->cfg.vocab_size = r->task.vocab_size;
        if (r->cfg.vocab_size < r->task.vocab_size)
            return sl_fail(SL_ERR_CONFIG, "config key 'vocab_size' = %lld: the data has %lld symbols",
                           (long long)r->cfg.vocab_size, (long long)r->task.vocab_size);
        st = sl_model_create(&r->model, &r->cfg);
        if (st) return st;
        sl_model_init_weights(&r->model, (uint64_t)r->cfg.seed);
        sl_rng_seed(&r->ts.data_rng, (uint64_t)r->cfg.seed + 1);
        sl_rng_seed(&r->ts.drop_rng, (uint64_t)r->cfg.seed + 2);
    }
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", r->cfg.out_dir);
    char logpath[SL_PATH_LEN + 32];
    snprintf(logpath, sizeof logpath, "%s/metrics.jsonl", r->cfg.out_dir);
    r->log = fopen(logpath, "a");
    if (!r->log) return sl_fail(SL_ERR_IO, "%s: cannot write: %s", logpath, strerror(errno));
    st = sl_model_plan_batch(&r->cfg, r->cfg.batch_size, r->cfg.seq_len, true,
                             "config key 'batch_size'");
    if (!st) st = sl_batch_alloc(&r->batch, &r->model.io, r->cfg.batch_size, r->cfg.seq_len,
                                 "config key 'batch_size'");
    if (st) return st;
    sl_ctx_init(&r->ctx, 64u << 20);
    r->ctx.rng = r->ts.drop_rng;
    r->tty = isatty(2);
    return check_stop_metric(r);
}

static void teardown(run *r)
{
    if (r->log) fclose(r->log);
    sl_batch_free(&r->batch);
    sl_ctx_free(&r->ctx);
    sl_task_close(&r->task);
    sl_model_free(&r->model);
    sl_outdir_release(&r->dir);
}

/* Writes the checkpoint, never with a NaN or Inf in it. */
static sl_status save(run *r)
{
    const char *which, *bad = sl_params_nonfinite(&r->model.params, &which);
    if (bad)
        return sl_fail(SL_ERR_NUMERIC,
                       "step %lld: %s of '%s' holds NaN/Inf; refusing to write it, %s was not "
                       "overwritten",
                       (long long)r->ts.step, which, bad, r->ckpt);
    r->ts.drop_rng = r->ctx.rng;
    sl_kv meta[8];
    size_t n = r->task.vt->meta ? r->task.vt->meta(&r->task, meta, 8) : 0;
    sl_status st = sl_checkpoint_save(r->ckpt, &r->model, meta, n, &r->ts);
    if (!st) r->saved_step = r->ts.step;
    return st;
}

/* One optimizer step's numbers; skip names what was not finite ("loss",
 * "grad_norm" or a parameter whose update was), NULL when applied. */
typedef struct step_out {
    double loss, gnorm, lr;
    const char *skip;
} step_out;

/* One optimizer update over grad_accum micro-batches, applied only when the
 * loss, the gradient norm and every new weight and moment are finite. */
static step_out update(run *r)
{
    const sl_config *c = &r->cfg;
    float scale = 1.0f / (float)c->grad_accum;
    step_out o = {.loss = 0, .lr = sl_lr_at(c, r->ts.step)};
    sl_params_zero_grad(&r->model.params);
    r->ctx.training = true;
    for (int64_t k = 0; k < c->grad_accum; k++) {
        r->batch.step = r->ts.step;
        r->task.vt->batch(&r->task, SL_SPLIT_TRAIN, &r->ts.data_rng, &r->batch);
        sl_ctx_reset(&r->ctx);
        sl_tensor *l = sl_model_batch_loss(&r->model, &r->ctx, &r->batch, NULL, NULL);
        o.loss += l->data[0] / (double)c->grad_accum;
        sl_backward_with(&r->ctx, l, &scale);
    }
    sl_ctx_reset(&r->ctx);
    o.gnorm = sl_clip_grad(&r->model.params, c->grad_clip);
    if (!isfinite(o.loss)) o.skip = "loss";
    else if (!isfinite(o.gnorm)) o.skip = "grad_norm";
    else o.skip = sl_adamw_step(&r->model.params, c, r->ts.step, o.lr);
    if (!o.skip) r->ts.step++;
    return o;
}

/* x as a JSON number with fmt, or null when it is NaN or Inf. */
static const char *json_num(char *buf, size_t n, const char *fmt, double x)
{
    if (isfinite(x)) snprintf(buf, n, fmt, x);
    else snprintf(buf, n, "null");
    return buf;
}

/* Whether value reaches the config's stop_at in stop_metric's direction
 * (NaN never does). */
static bool reached(const sl_config *c, double value)
{
    return sl_metric_direction(c->stop_metric) > 0 ? value >= c->stop_at : value <= c->stop_at;
}

/* The validation metrics, logged; their mean loss returned (NaN when the
 * evaluation could not run). *target: the value of stop_metric when it
 * reached stop_at, else NaN. */
static double validate(run *r, double *target)
{
    const sl_config *c = &r->cfg;
    sl_metrics mt;
    *target = NAN;
    if (sl_evaluate(&r->model, &r->ctx, &r->task, SL_SPLIT_VAL, c->eval_batches, c->batch_size,
                    c->seq_len, &mt)) {
        fprintf(stderr, "step %lld: validation skipped: %s\n", (long long)r->ts.step, sl_errmsg());
        sl_metrics_free(&mt);
        return NAN;
    }
    double v;
    if (c->stop_metric[0] && sl_metrics_value(&mt, c->stop_metric, &v) && reached(c, v))
        *target = v;
    char json[256], text[160];
    sl_metrics_json(&mt, json, sizeof json);
    sl_metrics_text(&mt, text, sizeof text);
    fprintf(r->log, "{\"step\":%lld,\"split\":\"val\",%s", (long long)r->ts.step, json);
    sl_scores_json(&mt.task, r->log);
    fputs("}\n", r->log);
    fflush(r->log);
    if (r->tty) fprintf(stderr, "\n");
    fprintf(stderr, "step %lld: val %s", (long long)r->ts.step, text);
    sl_scores_text(&mt.task, stderr);
    fputc('\n', stderr);
    const double loss = sl_metrics_loss(&mt);
    sl_metrics_free(&mt);
    return loss;
}

/* Logs a skipped update; fails once max_skipped_steps were skipped in a
 * row. The weights and moments are those of the last applied update. */
static sl_status skipped(run *r, const step_out *o)
{
    const sl_config *c = &r->cfg;
    r->skipped++;
    r->in_a_row++;
    char a[32], b[32];
    fprintf(r->log,
            "{\"step\":%lld,\"skipped\":\"%s\",\"loss\":%s,\"grad_norm\":%s,\"lr\":%.6g,"
            "\"skipped_in_a_row\":%lld,\"skipped_total\":%lld}\n",
            (long long)r->ts.step, o->skip, json_num(a, sizeof a, "%.6f", o->loss),
            json_num(b, sizeof b, "%.6f", o->gnorm), o->lr, (long long)r->in_a_row,
            (long long)r->skipped);
    fflush(r->log);
    if (r->tty) fprintf(stderr, "\n");
    bool param = strcmp(o->skip, "loss") != 0 && strcmp(o->skip, "grad_norm") != 0;
    fprintf(stderr, "step %lld: update skipped: the %s%s became NaN/Inf (%lld in a row)\n",
            (long long)r->ts.step, param ? "update of " : "", o->skip, (long long)r->in_a_row);
    if (r->in_a_row < c->max_skipped_steps) return SL_OK;
    char kept[SL_PATH_LEN + 96];
    if (r->saved_step >= 0)
        snprintf(kept, sizeof kept, "%s holds step %lld", r->ckpt, (long long)r->saved_step);
    else
        snprintf(kept, sizeof kept, "%s was not overwritten", r->ckpt);
    return sl_fail(SL_ERR_NUMERIC,
                   "step %lld: %lld updates in a row skipped (max_skipped_steps): the %s%s "
                   "became NaN/Inf (lr %g); lower lr, check beta2 and adam_eps, or check the "
                   "data; %s",
                   (long long)r->ts.step, (long long)r->in_a_row, param ? "update of " : "",
                   o->skip, o->lr, kept);
}

/* Ends the run at a validation whose stop_metric reached stop_at (value):
 * the checkpoint first, then the line that says so, so a line in the log
 * always has its checkpoint on disk. */
static sl_status stop_at_target(run *r, double value)
{
    sl_status st = save(r);
    if (st) return st;
    const sl_config *c = &r->cfg;
    fprintf(r->log, "{\"step\":%lld,\"stopped\":\"target\",\"metric\":\"%s\",\"value\":%.6g}\n",
            (long long)r->ts.step, c->stop_metric, value);
    fflush(r->log);
    fprintf(stderr, "step %lld: %s %.6g reached stop_at %g; stopping (%s holds it)\n",
            (long long)r->ts.step, c->stop_metric, value, c->stop_at, r->ckpt);
    return SL_OK;
}

/* The signal that asked the run to stop, or 0. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

static sl_status loop(run *r, double *final_val)
{
    const sl_config *c = &r->cfg;
    int64_t end = c->stop_step >= 0 && c->stop_step < c->steps ? c->stop_step : c->steps;
    double t0 = sl_seconds(), tlast = t0, val = NAN;
    int64_t start = r->ts.step, tokens = c->batch_size * c->seq_len * c->grad_accum;
    while (r->ts.step < end && !stop_signal) {
        step_out o = update(r);
        double t = sl_seconds(), tok_s = tokens * (double)(r->ts.step - start) / (t - t0);
        if (o.skip) {
            sl_status st = skipped(r, &o);
            if (st) return st;
            continue;
        }
        r->in_a_row = 0;
        if (r->ts.step % c->log_every == 0 || r->ts.step == end) {
            fprintf(r->log,
                    "{\"step\":%lld,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,"
                    "\"tokens_per_s\":%.1f,\"step_ms\":%.2f,\"elapsed_s\":%.2f}\n",
                    (long long)r->ts.step, o.loss, o.lr, o.gnorm, tok_s, 1000 * (t - tlast),
                    t - t0);
            fflush(r->log);
        }
        tlast = t;
        if (r->tty)
            progress(r->ts.step, end, o.loss, tok_s,
                     (t - t0) / (double)(r->ts.step - start) * (double)(end - r->ts.step));
        if (c->eval_every && r->ts.step % c->eval_every == 0 && r->ts.step < end) {
            double hit;
            val = validate(r, &hit);
            if (!isnan(hit)) {
                if (final_val) *final_val = val;
                return stop_at_target(r, hit);
            }
        }
        if (c->ckpt_every && r->ts.step % c->ckpt_every == 0) {
            sl_status st = save(r);
            if (st) return st;
        }
        if (c->time_limit > 0 && t - t0 >= c->time_limit) {
            if (r->tty) fprintf(stderr, "\n");
            fprintf(stderr, "time limit of %gs reached at step %lld\n", c->time_limit,
                    (long long)r->ts.step);
            break;
        }
    }
    if (r->tty && r->ts.step > start) fprintf(stderr, "\n");
    if (stop_signal) {
        sl_status st = save(r);
        if (st) return st;
        return sl_fail(SL_ERR_STOPPED,
                       "stopped by %s at step %lld; %s holds it; continue with "
                       "`seqlab train --resume %s`",
                       stop_signal == SIGINT ? "SIGINT" : "SIGTERM", (long long)r->ts.step,
                       r->ckpt, r->ckpt);
    }
    /* A target reached here ends the run where it ended anyway: no line. */
    double hit;
    if (r->ts.step > 0) val = validate(r, &hit);
    if (final_val) *final_val = val;
    return save(r);
}

sl_status sl_train_run(const sl_config *cfg, sl_train_opts *o)
{
    run r;
    memset(&r, 0, sizeof r);
    r.dir.lock_fd = -1;
    o->signal = 0;
    sl_set_threads((int)cfg->threads);
    sl_status st = setup(&r, cfg, o->resume, o->overwrite);
    if (st == SL_OK) {
        /* SA_RESETHAND: a second signal ends the process at once; SA_RESTART:
         * a write under way is not cut short. */
        struct sigaction sa = {.sa_handler = on_stop, .sa_flags = SA_RESETHAND | SA_RESTART};
        struct sigaction old_int, old_term;
        sigemptyset(&sa.sa_mask);
        stop_signal = 0;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        st = loop(&r, o->final_val);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        if (st == SL_ERR_STOPPED) o->signal = stop_signal;
    }
    teardown(&r);
    return st;
}

sl_status sl_train(const sl_config *cfg, const char *resume, double *final_val)
{
    sl_train_opts o = {.resume = resume, .final_val = final_val};
    return sl_train_run(cfg, &o);
}
