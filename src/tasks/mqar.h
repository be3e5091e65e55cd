/* Multi-query associative recall (Zoology, Arora et al. 2024): the
 * generator as a pure function of a seed (docs/tasks.md, "mqar"). */
#ifndef SL_TASKS_MQAR_H
#define SL_TASKS_MQAR_H

#include "core/core.h"

typedef struct sl_mqar_opts {
    int64_t vocab;        /* V: keys in [1, V/2), values in [V/2, V) */
    int64_t num_kv_pairs; /* K */
    double power_a;       /* a: query slot i is drawn with weight (i + 1)^(a - 1) */
    bool zero_filler;     /* positions past the context that are no query hold 0, not a
                           * uniform token (Zoology's random_non_queries = False) */
} sl_mqar_opts;

/* SL_OK when o can make examples of length T; else SL_ERR_CONFIG naming
 * the option (or seq_len) and what it needs. */
sl_status sl_mqar_check(const sl_mqar_opts *o, int64_t T);
/* Example `seed` of length T. tokens, targets: [T]; targets are -1 except
 * at the K query positions, where they hold the queried key's value.
 * SL_ERR_CONFIG as sl_mqar_check; SL_ERR_OOM when the (T - 2K) / 2 slot
 * weights cannot be allocated. */
sl_status sl_mqar_example(const sl_mqar_opts *o, uint64_t seed, int64_t T, int32_t *tokens,
                          int32_t *targets);

#endif
