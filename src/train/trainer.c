/* The training loop. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/optim.h"
#include "train/trainer.h"

/* mkdir -p */
static sl_status make_dirs(const char *path)
{
    char buf[SL_PATH_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return sl_fail(SL_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return SL_OK;
}

double sl_evaluate(sl_model *m, sl_ctx *ctx, sl_task *task, sl_split split, int64_t batches,
                   int64_t B, int64_t T)
{
    sl_rng rng;
    sl_rng_seed(&rng, 0x5e91abull + (uint64_t)split);
    int32_t *tok = malloc((size_t)(B * T) * 2 * sizeof *tok), *tgt = tok + B * T;
    bool grad = ctx->grad_enabled, train = ctx->training;
    ctx->grad_enabled = false;
    ctx->training = false;
    double sum = 0;
    for (int64_t i = 0; i < batches; i++) {
        task->vt->batch(task, split, &rng, B, T, tok, tgt);
        sl_ctx_reset(ctx);
        sum += sl_model_loss(m, ctx, tok, tgt, B, T)->data[0];
    }
    sl_ctx_reset(ctx);
    ctx->grad_enabled = grad;
    ctx->training = train;
    free(tok);
    return sum / (double)batches;
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
    FILE *log;
    char ckpt[SL_PATH_LEN + 32];
    int32_t *tok, *tgt;
    bool tty;
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
    const char *key = sl_config_model_diff(&ck->cfg, &r->cfg);
    if (key)
        return sl_fail(SL_ERR_CONFIG,
                       "--resume %s: %s differs from the checkpoint's model; a resumed run may "
                       "change training keys only",
                       ck->path, key);
    sl_status st = sl_model_create(&r->model, &r->cfg);
    return st ? st : sl_checkpoint_restore(ck, &r->model, &r->ts);
}

static sl_status setup(run *r, const sl_config *cfg, const char *resume)
{
    r->cfg = *cfg;
    sl_status st;
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
    st = make_dirs(r->cfg.out_dir);
    if (st) return st;
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", r->cfg.out_dir);
    char logpath[SL_PATH_LEN + 32];
    snprintf(logpath, sizeof logpath, "%s/metrics.jsonl", r->cfg.out_dir);
    r->log = fopen(logpath, resume ? "a" : "w");
    if (!r->log) return sl_fail(SL_ERR_IO, "%s: cannot write: %s", logpath, strerror(errno));
    int64_t n = r->cfg.batch_size * r->cfg.seq_len;
    st = sl_model_plan_batch(&r->cfg, r->cfg.batch_size, r->cfg.seq_len, true,
                             "config key 'batch_size'");
    if (st) return st;
    r->tok = malloc((size_t)n * 2 * sizeof *r->tok);
    if (!r->tok) return sl_fail(SL_ERR_OOM, "out of memory for batches");
    r->tgt = r->tok + n;
    sl_ctx_init(&r->ctx, 64u << 20);
    r->ctx.rng = r->ts.drop_rng;
    r->tty = isatty(2);
    return SL_OK;
}

static void teardown(run *r)
{
    if (r->log) fclose(r->log);
    free(r->tok);
    sl_ctx_free(&r->ctx);
    sl_task_close(&r->task);
    sl_model_free(&r->model);
}

static sl_status save(run *r)
{
    r->ts.drop_rng = r->ctx.rng;
    sl_kv meta[8];
    size_t n = r->task.vt->meta ? r->task.vt->meta(&r->task, meta, 8) : 0;
    return sl_checkpoint_save(r->ckpt, &r->model, meta, n, &r->ts);
}

/* One optimizer update over grad_accum micro-batches; returns the mean loss
 * or NaN. */
static double update(run *r, double *gnorm, double *lr)
{
    const sl_config *c = &r->cfg;
    int64_t B = c->batch_size, T = c->seq_len;
    float scale = 1.0f / (float)c->grad_accum;
    double loss = 0;
    sl_params_zero_grad(&r->model.params);
    r->ctx.training = true;
    for (int64_t k = 0; k < c->grad_accum; k++) {
        r->task.vt->batch(&r->task, SL_SPLIT_TRAIN, &r->ts.data_rng, B, T, r->tok, r->tgt);
        sl_ctx_reset(&r->ctx);
        sl_tensor *l = sl_model_loss(&r->model, &r->ctx, r->tok, r->tgt, B, T);
        loss += l->data[0] / (double)c->grad_accum;
        sl_backward_with(&r->ctx, l, &scale);
    }
    sl_ctx_reset(&r->ctx);
    *gnorm = sl_clip_grad(&r->model.params, c->grad_clip);
    if (!isfinite(loss) || !isfinite(*gnorm)) return NAN;
    *lr = sl_lr_at(c, r->ts.step);
    sl_adamw_step(&r->model.params, c, r->ts.step, *lr);
    r->ts.step++;
    return loss;
}

static double validate(run *r)
{
    const sl_config *c = &r->cfg;
    double v = sl_evaluate(&r->model, &r->ctx, &r->task, SL_SPLIT_VAL, c->eval_batches,
                           c->batch_size, c->seq_len);
    fprintf(r->log, "{\"step\":%lld,\"split\":\"val\",\"loss\":%.6f,\"bpc\":%.6f}\n",
            (long long)r->ts.step, v, v / M_LN2);
    fflush(r->log);
    if (r->tty) fprintf(stderr, "\n");
    fprintf(stderr, "step %lld: val loss %.4f, %.4f bits/token\n", (long long)r->ts.step, v,
            v / M_LN2);
    return v;
}

static sl_status loop(run *r, double *final_val)
{
    const sl_config *c = &r->cfg;
    int64_t end = c->stop_step >= 0 && c->stop_step < c->steps ? c->stop_step : c->steps;
    double t0 = sl_seconds(), tlast = t0, val = NAN;
    int64_t start = r->ts.step, tokens = c->batch_size * c->seq_len * c->grad_accum;
    while (r->ts.step < end) {
        double gnorm = 0, lr = 0, loss = update(r, &gnorm, &lr);
        if (isnan(loss)) {
            if (r->tty) fprintf(stderr, "\n");
            return sl_fail(SL_ERR_NUMERIC,
                           "step %lld: the training loss or gradient became NaN/Inf (lr %g); "
                           "lower lr or check the data; %s was not overwritten",
                           (long long)r->ts.step, sl_lr_at(c, r->ts.step), r->ckpt);
        }
        double t = sl_seconds(), tok_s = tokens * (double)(r->ts.step - start) / (t - t0);
        if (r->ts.step % c->log_every == 0 || r->ts.step == end) {
            fprintf(r->log,
                    "{\"step\":%lld,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,"
                    "\"tokens_per_s\":%.1f,\"step_ms\":%.2f,\"elapsed_s\":%.2f}\n",
                    (long long)r->ts.step, loss, lr, gnorm, tok_s, 1000 * (t - tlast), t - t0);
            fflush(r->log);
        }
        tlast = t;
        if (r->tty)
            progress(r->ts.step, end, loss, tok_s,
                     (t - t0) / (double)(r->ts.step - start) * (double)(end - r->ts.step));
        if (c->eval_every && r->ts.step % c->eval_every == 0 && r->ts.step < end) val = validate(r);
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
    if (r->ts.step > 0) val = validate(r);
    if (final_val) *final_val = val;
    return save(r);
}

sl_status sl_train(const sl_config *cfg, const char *resume, double *final_val)
{
    run r;
    memset(&r, 0, sizeof r);
    sl_set_threads((int)cfg->threads);
    sl_status st = setup(&r, cfg, resume);
    if (st == SL_OK) st = loop(&r, final_val);
    teardown(&r);
    return st;
}
