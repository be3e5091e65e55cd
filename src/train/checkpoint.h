/* Checkpoints: safetensors files holding every parameter by its stable name
 * (docs/formats.md), optionally the AdamW moments (adam.m.NAME, adam.v.NAME),
 * and in __metadata__ the config, step, vocabulary and RNG states, so that a
 * resumed run continues bit for bit. */
#ifndef SL_CHECKPOINT_H
#define SL_CHECKPOINT_H

#include "model/model.h"

typedef struct sl_train_state {
    int64_t step;     /* optimizer updates done */
    sl_rng data_rng;  /* batch sampling */
    sl_rng drop_rng;  /* dropout masks */
} sl_train_state;

/* Writes weights and, when ts != NULL, the optimizer moments and ts.
 * vocab: the character vocabulary ("" if none). Atomic (temp + rename). */
sl_status sl_checkpoint_save(const char *path, const sl_model *m, const char *vocab,
                             const sl_train_state *ts);

/* Creates *m from the checkpoint's config and loads its weights; vocab
 * (257 bytes) receives the vocabulary. When ts != NULL the file must hold
 * optimizer state, which is loaded with ts. Every tensor must match the
 * model's names and shapes exactly. */
sl_status sl_checkpoint_load(const char *path, sl_model *m, char *vocab, sl_train_state *ts);

#endif
