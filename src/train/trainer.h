/* The training loop: batches -> forward (tape) -> loss -> backward ->
 * clip -> AdamW, with periodic evaluation, a JSON Lines metrics log, a
 * progress bar and checkpoints. */
#ifndef SL_TRAINER_H
#define SL_TRAINER_H

#include "model/model.h"
#include "tasks/task.h"
#include "train/checkpoint.h"

/* Trains from scratch (resume == NULL) or continues the checkpoint resume.
 * cfg: the run's config; on resume it must describe the same model.
 * Writes cfg->out_dir/checkpoint.safetensors and metrics.jsonl.
 * final_val: if not NULL, receives the last validation loss (nats/token). */
sl_status sl_train(const sl_config *cfg, const char *resume, double *final_val);

/* Opens the config's task with its options; ck: the checkpoint of the
 * trained model the task feeds (its vocabulary), or NULL for a new model. */
sl_status sl_task_from_config(sl_task *t, const sl_config *cfg, const sl_checkpoint *ck);

/* Mean loss over `batches` batches of a split, drawn with a fixed seed so
 * every evaluation of a run sees the same text. */
double sl_evaluate(sl_model *m, sl_ctx *ctx, sl_task *task, sl_split split, int64_t batches,
                   int64_t B, int64_t T);

#endif
