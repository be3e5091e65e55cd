/* Tasks: where batches come from. A task turns its data (a file, or a seeded
 * generator) into batches of input ids and target ids for three splits.
 * Adding a task = one file with a vtable, plus a line in registry.c. */
#ifndef SL_TASK_H
#define SL_TASK_H

#include "core/core.h"
#include "core/kv.h"
#include "core/options.h"
#include "tasks/scores.h"

typedef enum { SL_SPLIT_TRAIN, SL_SPLIT_VAL, SL_SPLIT_TEST } sl_split;

/* What a model reads (docs/formats.md, "Inputs and heads"): token ids
 * through embed.weight, real vectors through in.weight, or both (each
 * position one or the other). */
typedef enum { SL_INPUT_TOKENS, SL_INPUT_VECTORS, SL_INPUT_BOTH } sl_input_kind;
/* What it predicts: next-token logits over the vocabulary (lm), classes at
 * each position (tag), n_out reals at each position (regress, MSE), or one
 * class per sequence from its pooled positions (classify). */
typedef enum { SL_HEAD_LM, SL_HEAD_TAG, SL_HEAD_REGRESS, SL_HEAD_CLASSIFY } sl_head_kind;
typedef enum { SL_POOL_MEAN, SL_POOL_LAST, SL_POOL_FIRST } sl_pool_kind;

/* A task's inputs and outputs, set by its open(). */
typedef struct sl_task_io {
    sl_input_kind input;
    int64_t n_in; /* reals per vector position (vectors, both) */
    sl_head_kind head;
    int64_t n_out;     /* classes (tag, classify) or reals per position (regress) */
    sl_pool_kind pool; /* the task's default pooling (classify) */
} sl_task_io;

/* One batch of B rows of T positions. Which arrays exist follows the io:
 *   tokens   [B*T] ids (input tokens, both); -1 marks a vector position
 *   vectors  [B*T, n_in] (input vectors, both); read at vector positions
 *   targets  [B*T] class ids, -1 = ignored (lm, tag); [B] (classify)
 *   values   [B*T, n_out] and mask [B*T], 1 = counted (regress)
 *   lengths  [B], each in [1, T]: row b holds positions [0, lengths[b]);
 *            the rest is padding that no mixer, pooling, loss or metric
 *            sees (the model packs the rows).
 * step: the optimizer updates done when batch() fills a training batch
 * (the trainer sets it; a curriculum follows it), 0 otherwise. */
typedef struct sl_batch {
    int64_t B, T;
    /* Held-out splits: row b holds example first + b of the split, modulo
     * its held_out_rows, so an evaluation walks the fixed set in order. */
    int64_t first;
    int64_t step;
    int32_t *tokens;
    float *vectors;
    int32_t *targets;
    float *values;
    uint8_t *mask;
    int64_t *lengths;
    /* Only in the rows a model's outputs line up with (model.h,
     * sl_model_batch_loss's *rows): pos[r] = b * T + t, the position of
     * the batch that output row r belongs to; NULL: r itself. */
    int64_t *pos;
} sl_batch;

/* Allocates a batch's arrays for io (every length T); SL_ERR_OOM naming
 * `what`. sl_batch_free releases them. */
sl_status sl_batch_alloc(sl_batch *b, const sl_task_io *io, int64_t B, int64_t T, const char *what);
void sl_batch_free(sl_batch *b);

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
    /* Fills b (its B, T and the arrays of the task's io, allocated by
     * sl_batch_alloc; every length preset to T). */
    void (*batch)(sl_task *t, sl_split split, sl_rng *rng, sl_batch *b);
    /* Tokens (or examples) available in a split. */
    int64_t (*split_size)(const sl_task *t, sl_split split);
    /* Rows of length T in a held-out split's fixed set (what sl_batch's
     * `first` counts); NULL: split_size, the examples of a synthetic
     * task. */
    int64_t (*held_out_rows)(const sl_task *t, sl_split split, int64_t T);
    /* Optional: the task's own metrics of one evaluation batch, added to s
     * (scores.h). b: the batch as batch() filled it, still the last one
     * made; out [R, C]: the model's outputs at the R rows of `rows`
     * (sl_model_batch_loss's), row r at b's position rows->pos[r], or
     * one row per sequence for a classify head. SL_ERR_OOM when s cannot
     * grow. */
    sl_status (*score)(sl_task *t, const sl_batch *b, const sl_tensor *out, const sl_batch *rows,
                       sl_scores *s);
    void (*close)(sl_task *t);
} sl_task_vtable;

struct sl_task {
    const sl_task_vtable *vt;
    void *impl;
    int64_t vocab_size; /* ids the data uses: [0, vocab_size) */
    sl_task_io io;      /* zeroed: tokens in, lm head */
};

/* registry.c */
const sl_task_vtable *sl_task_lookup(const char *name);
size_t sl_task_count(void);
const sl_task_vtable *sl_task_at(size_t i);

sl_status sl_task_open(sl_task *t, const sl_task_vtable *vt, const sl_task_env *env);
void sl_task_close(sl_task *t);

#endif
