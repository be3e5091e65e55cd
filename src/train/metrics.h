/* A split's metrics, accumulated batch by batch: the loss, and what the
 * head makes meaningful: bits per token (lm), accuracy (lm, tag, classify:
 * argmax == target over counted targets), MSE and MAE (regress, over
 * counted positions' values). Ignored targets and padding never count. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdio.h>

#include "model/model.h"

typedef struct sl_metrics {
    sl_head_kind head;
    double loss_sum, weight; /* of the batches' mean losses, each times its counted items */
    int64_t batches, rows, positions; /* the batches' sequences and their positions */
    int64_t counted, correct; /* targets scored, argmax hits */
    double sq_sum, abs_sum;   /* regress: over counted values */
    int64_t values;
    sl_scores task; /* the task's own (its vtable's score) */
} sl_metrics;

void sl_metrics_init(sl_metrics *mt, sl_head_kind head);
void sl_metrics_free(sl_metrics *mt);
/* One batch: its loss, outputs (sl_model_batch_loss's *out) and rows. */
void sl_metrics_add(sl_metrics *mt, double loss, const sl_tensor *out, const sl_batch *rows);
/* The mean loss over every counted item (target or value) of the batches. */
double sl_metrics_loss(const sl_metrics *mt);
/* The metrics as JSON members, no braces: "loss":L,"bpc":B,... (null for
 * a non-finite value). */
void sl_metrics_json(const sl_metrics *mt, char *buf, size_t n);
/* The scalar `name` of the evaluation's JSON: a metric of the head (NaN
 * when it has none yet) or a scalar task score. False when there is none
 * of that name (a curve does not count). */
bool sl_metrics_value(const sl_metrics *mt, const char *name, double *v);
/* The names sl_metrics_value finds, ", "-separated: "loss, bpc, accuracy". */
void sl_metrics_names(const sl_metrics *mt, char *buf, size_t n);
/* One human line: "loss 1.2345, 1.7810 bits/token, accuracy 0.9812" (the
 * task's scores are sl_scores_text's). */
void sl_metrics_text(const sl_metrics *mt, char *buf, size_t n);

#endif
