/* Selective copying (Mamba, Gu & Dao 2023; the S4 repository's copying
 * generator with variable spacing): the generator as a pure function of a
 * seed (docs/tasks.md, "selective_copy"). */
#ifndef SL_TASKS_SELECTIVE_COPY_H
#define SL_TASKS_SELECTIVE_COPY_H

#include "core/core.h"

typedef struct sl_selcopy_opts {
    int64_t vocab;      /* V: 0 noise, 1 .. V-2 data, V-1 marker */
    int64_t num_tokens; /* M: data tokens to copy */
} sl_selcopy_opts;

/* SL_OK when o can make examples of length T; else SL_ERR_CONFIG naming
 * the option (or seq_len) and what it needs. */
sl_status sl_selcopy_check(const sl_selcopy_opts *o, int64_t T);
/* Example `seed` of length T. tokens, targets: [T]; the last M tokens are
 * markers and their targets the data tokens in order; other targets -1. */
sl_status sl_selcopy_example(const sl_selcopy_opts *o, uint64_t seed, int64_t T, int32_t *tokens,
                             int32_t *targets);

#endif
