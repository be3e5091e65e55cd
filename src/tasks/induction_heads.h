/* Induction heads (Mamba, Gu & Dao 2023; H3's generator in the safari
 * repository): the generator as a pure function of a seed (docs/tasks.md,
 * "induction_heads"). */
#ifndef SL_TASKS_INDUCTION_HEADS_H
#define SL_TASKS_INDUCTION_HEADS_H

#include "core/core.h"

typedef struct sl_induction_opts {
    int64_t vocab; /* V: 0 unused, 1 .. V-2 content, V-1 the special token */
} sl_induction_opts;

/* SL_OK when o can make examples of length T; else SL_ERR_CONFIG. */
sl_status sl_induction_check(const sl_induction_opts *o, int64_t T);
/* Example `seed` of length T (any T >= 4: evaluation far past the training
 * length is a longer T). tokens, targets: [T]; the only target is at T-1,
 * the token that followed the special token's first occurrence. */
sl_status sl_induction_example(const sl_induction_opts *o, uint64_t seed, int64_t T,
                               int32_t *tokens, int32_t *targets);

#endif
