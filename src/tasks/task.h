/* Tasks: where batches come from. A task turns its data (a file, or a seeded
 * generator) into batches of input ids and target ids for three splits.
 * Adding a task = one file with a vtable, plus a line in registry.c. */
#ifndef SL_TASK_H
#define SL_TASK_H

#include "core/core.h"
#include "core/kv.h"
#include "core/options.h"

typedef enum { SL_SPLIT_TRAIN, SL_SPLIT_VAL, SL_SPLIT_TEST } sl_split;

typedef struct sl_task sl_task;

/* What a task knows of the run: its data, the training length, its own
 * options (declared in its vtable, as a mixer's are) and, when it feeds a
 * trained model, the metadata of that model's checkpoint (where it finds
 * what it wrote there: a vocabulary). */
typedef struct sl_task_env {
    const char *data; /* the config's data file; "" when none */
    int64_t seq_len;  /* tokens per training sequence */
    int64_t vocab_size; /* of the trained model; 0 when training from scratch */
    const sl_opts *opts;
    const sl_kv *meta; /* NULL when training from scratch */
    size_t n_meta;
    const char *meta_src; /* where meta came from (a checkpoint's path), for messages */
} sl_task_env;

typedef struct sl_task_vtable {
    const char *name;
    const char *desc;
    sl_option_table options;
    /* Opens the task's data; with env->meta, in the vocabulary the
     * trained model was trained with. */
    sl_status (*open)(sl_task *t, const sl_task_env *env);
    /* What the task writes into a checkpoint for a later open (its
     * vocabulary): up to max pairs into out, valid while t is open;
     * returns the count. */
    size_t (*meta)(const sl_task *t, sl_kv *out, size_t max);
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
    int64_t vocab_size; /* ids the data uses: [0, vocab_size) */
};

/* registry.c */
const sl_task_vtable *sl_task_lookup(const char *name);
size_t sl_task_count(void);
const sl_task_vtable *sl_task_at(size_t i);

sl_status sl_task_open(sl_task *t, const sl_task_vtable *vt, const sl_task_env *env);
void sl_task_close(sl_task *t);

#endif
