/* A task's own metrics of an evaluation (the vtable's `score`): named
 * means, each a scalar (regbench's DFA acceptance) or a curve indexed from
 * 0 (an in-context learner's error by number of examples seen). They follow
 * the head's metrics in `seqlab eval`'s JSON line and the "split":"val"
 * lines of a run: "name":mean, or "name":[mean at 0, mean at 1, ...] with
 * null where nothing was added. */
#ifndef SL_TASKS_SCORES_H
#define SL_TASKS_SCORES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"

#define SL_SCORES_MAX 16
#define SL_SCORE_NAME 40

typedef struct sl_score {
    char name[SL_SCORE_NAME];
    bool curve;
    int64_t n; /* entries: 1 for a scalar, the highest index + 1 of a curve */
    double *sum;
    int64_t *count;
} sl_score;

typedef struct sl_scores {
    size_t n;
    sl_score s[SL_SCORES_MAX];
} sl_scores;

/* Every score's count and sum 0 (no allocation). */
void sl_scores_init(sl_scores *s);
void sl_scores_free(sl_scores *s);
/* Adds value to the scalar `name` (created on first use). SL_ERR_OOM, or
 * SL_ERR_ARG when more than SL_SCORES_MAX names are used or name is a
 * curve. */
sl_status sl_scores_add(sl_scores *s, const char *name, double value);
/* Adds value at index i >= 0 of the curve `name`. */
sl_status sl_scores_add_at(sl_scores *s, const char *name, int64_t i, double value);
/* Adds n values summing to sum at index i of the curve `name` (n = 0:
 * nothing). */
sl_status sl_scores_add_sum(sl_scores *s, const char *name, int64_t i, double sum, int64_t n);
/* The mean of the scalar `name`, or of index i of a curve; NaN when none
 * was added. */
double sl_scores_mean(const sl_scores *s, const char *name, int64_t i);
/* Writes ,"name":value members (no braces), in the order names were first
 * used; a non-finite mean or an empty index reads null. */
void sl_scores_json(const sl_scores *s, FILE *f);
/* The first index of the largest of x[0..n): a class prediction. */
int64_t sl_argmax(const float *x, int64_t n);
/* Writes ", name mean" for the scalars (curves are for the JSON). */
void sl_scores_text(const sl_scores *s, FILE *f);
/* Which way a metric of an evaluation improves, from its name: +1 (higher
 * is better) for accuracy and *_accuracy, -1 for loss, bpc, mse, mae and
 * *_mse, *_mae, 0 for any other name (not known). */
int sl_metric_direction(const char *name);

#endif
