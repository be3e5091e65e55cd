/* Checkpoints: safetensors files holding every parameter by its stable name
 * (docs/formats.md), optionally the AdamW moments (adam.m.NAME, adam.v.NAME),
 * and in __metadata__ the config (with every layer's resolved options), the
 * step and RNG states, so that a resumed run continues bit for bit, plus
 * what other components asked to store (the task's vocabulary). */
#ifndef SL_CHECKPOINT_H
#define SL_CHECKPOINT_H

#include "model/model.h"
#include "train/safetensors.h"

typedef struct sl_train_state {
    int64_t step;     /* optimizer updates done */
    sl_rng data_rng;  /* batch sampling */
    sl_rng drop_rng;  /* dropout masks */
} sl_train_state;

/* Writes weights and, when ts != NULL, the optimizer moments and ts.
 * meta[0..n_meta): further metadata from its owners (a task's
 * vocabulary); their keys may not be the checkpoint's own. Atomic (temp +
 * rename). */
sl_status sl_checkpoint_save(const char *path, const sl_model *m, const sl_kv *meta,
                             size_t n_meta, const sl_train_state *ts);

/* An open checkpoint: the file in memory and its stored config. */
typedef struct sl_checkpoint {
    sl_st_file file; /* file.meta[0..file.nmeta): every metadata entry */
    sl_config cfg;   /* the stored config (older flat option keys mapped) */
    const char *path;
} sl_checkpoint;

/* Reads path and its config; nothing is built yet. */
sl_status sl_checkpoint_open(sl_checkpoint *ck, const char *path);
/* Loads the weights into m, a model created from ck->cfg or from a config
 * that describes the same model (sl_config_model_diff: a resumed run with
 * new training keys). When ts != NULL the file must hold optimizer state,
 * which is loaded with ts. Every tensor must match m's names and shapes. */
sl_status sl_checkpoint_restore(const sl_checkpoint *ck, sl_model *m, sl_train_state *ts);
void sl_checkpoint_close(sl_checkpoint *ck);

/* Open, create *m from the stored config, restore, close. */
sl_status sl_checkpoint_load(const char *path, sl_model *m, sl_train_state *ts);

#endif
