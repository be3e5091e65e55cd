/* The training loop: batches -> forward (tape) -> loss -> backward ->
 * clip -> AdamW, with periodic evaluation, a JSON Lines metrics log, a
 * progress bar and checkpoints. */
#ifndef SL_TRAINER_H
#define SL_TRAINER_H

#include "model/model.h"
#include "tasks/task.h"
#include "train/checkpoint.h"
#include "train/metrics.h"

typedef struct sl_train_opts {
    const char *resume; /* the checkpoint to continue, or NULL for a fresh run */
    bool overwrite;     /* a fresh run may replace out_dir's checkpoint */
    double *final_val;  /* if not NULL, receives the last validation loss (nats/token) */
    int signal;         /* out: SIGINT or SIGTERM when one stopped the run, else 0 */
} sl_train_opts;

/* Trains from scratch or continues o->resume. cfg: the run's config; on
 * resume it must describe the same model. Owns cfg->out_dir while it runs
 * (train/outdir.h: a lock, and a fresh run refuses an existing checkpoint
 * unless o->overwrite), appends to its metrics.jsonl and writes its
 * checkpoint.safetensors, never with a NaN or Inf in it. An update whose
 * loss, gradient norm or result is not finite is skipped and logged; the
 * run fails (SL_ERR_NUMERIC) when max_skipped_steps were skipped in a row.
 * SIGINT or SIGTERM stops it after the current step with a checkpoint
 * saved: SL_ERR_STOPPED, o->signal set. */
sl_status sl_train_run(const sl_config *cfg, sl_train_opts *o);
/* sl_train_run without overwrite. */
sl_status sl_train(const sl_config *cfg, const char *resume, double *final_val);

/* Opens the config's task with its options; ck: the checkpoint of the
 * trained model the task feeds (its vocabulary), or NULL for a new model. */
sl_status sl_task_from_config(sl_task *t, const sl_config *cfg, const sl_checkpoint *ck);

/* The metrics (train/metrics.h, with the task's scores) of `batches`
 * batches of B x T from a split, so every evaluation of a run sees the
 * same examples: a held-out split's rows in order from its first, wrapping
 * around; training rows drawn with a fixed seed. batches = 0: a held-out
 * split's whole fixed set once (its last batch short), or one batch of
 * the training split. The caller frees *out (sl_metrics_free), also after
 * a failure. SL_ERR_OOM when the batch does not fit. */
sl_status sl_evaluate(sl_model *m, sl_ctx *ctx, sl_task *task, sl_split split, int64_t batches,
                      int64_t B, int64_t T, sl_metrics *out);

#endif
