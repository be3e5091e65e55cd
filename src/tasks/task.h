/* Tasks: where batches come from. A task turns its data (a file, or a seeded
 * generator) into batches of input ids and target ids for three splits.
 * Adding a task = one file with a vtable, plus a line in registry.c. */
#ifndef SL_TASK_H
#define SL_TASK_H

#include "core/core.h"
#include "model/config.h"

typedef enum { SL_SPLIT_TRAIN, SL_SPLIT_VAL, SL_SPLIT_TEST } sl_split;

typedef struct sl_task sl_task;

typedef struct sl_task_vtable {
    const char *name;
    const char *desc;
    /* Opens the task's data. vocab: the checkpoint's vocabulary when
     * evaluating a trained model ("" when training from scratch). */
    sl_status (*open)(sl_task *t, const sl_config *cfg, const char *vocab);
    /* tokens, targets: [B*T]; targets are -1 where no loss applies. */
    void (*batch)(sl_task *t, sl_split split, sl_rng *rng, int64_t B, int64_t T, int32_t *tokens,
                  int32_t *targets);
    /* Tokens (or examples) available in a split. */
    int64_t (*split_size)(const sl_task *t, sl_split split);
    void (*close)(sl_task *t);
} sl_task_vtable;

struct sl_task {
    const sl_task_vtable *vt;
    void *impl;
    int64_t vocab_size;
    /* Character vocabulary of byte-level text tasks, id i = vocab[i]; "" for
     * tasks whose ids are not characters. */
    char vocab[257];
};

sl_status sl_task_open(sl_task *t, const sl_config *cfg, const char *vocab);
void sl_task_close(sl_task *t);

/* Character vocabulary: text -> ids [n]. Fails naming the first character
 * outside the vocabulary. */
sl_status sl_vocab_encode(const char *vocab, const char *text, int64_t n, int32_t *ids);

#endif
