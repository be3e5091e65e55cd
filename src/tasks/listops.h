/* ListOps (Long Range Arena, Tay et al. 2021; Nangia and Bowman 2018):
 * nested MIN / MAX / MED / SM expressions over the digits 0-9, classified
 * by their value (docs/tasks.md, "listops").
 *
 * Token ids: digits 0 .. 9, then the operators, the closing bracket and
 * the class token every row starts with. */
#ifndef SL_TASKS_LISTOPS_H
#define SL_TASKS_LISTOPS_H

#include "core/core.h"

enum {
    SL_LISTOPS_MIN = 10, /* [MIN */
    SL_LISTOPS_MAX,      /* [MAX */
    SL_LISTOPS_MED,      /* [MED: the median, rounded down (the mean of the middle two when even) */
    SL_LISTOPS_SM,       /* [SM: the sum mod 10 */
    SL_LISTOPS_CLOSE,    /* ] */
    SL_LISTOPS_CLS,      /* the class token at position 0, pooled (`first`) */
    SL_LISTOPS_VOCAB
};

typedef struct sl_listops_opts {
    int64_t max_depth;  /* the root is at depth 1; a node at max_depth is a digit */
    int64_t max_args;   /* an operator takes 2 .. max_args arguments */
    double leaf_p;      /* a node shallower than max_depth is a digit with this probability */
    int64_t min_length; /* expressions keep min_length < tokens < max_length */
    int64_t max_length;
} sl_listops_opts;

/* SL_OK when o can make rows of length T (T >= max_length: the class token
 * and up to max_length - 1 expression tokens); else SL_ERR_CONFIG naming
 * the option (or seq_len) and what it needs. */
sl_status sl_listops_check(const sl_listops_opts *o, int64_t T);
/* Example `seed` in a row of T tokens: the class token, then an expression
 * of min_length < n < max_length tokens; *len = n + 1, the rest of the row
 * is 0 (padding, never read); *label = its value. SL_ERR_CONFIG as
 * sl_listops_check, or when no tree of an allowed length turns up in 2^20
 * tries (options that make too few); SL_ERR_OOM. tokens: [T]. */
sl_status sl_listops_example(const sl_listops_opts *o, uint64_t seed, int64_t T, int32_t *tokens,
                             int64_t *len, int32_t *label);
/* The reference evaluator, independent of the generator: the value of the
 * expression tokens[0 .. n) (no class token), read left to right with a
 * stack of open operators; -1 unless it is exactly one well-formed
 * expression (each operator with at least one argument). */
int32_t sl_listops_value(const int32_t *tokens, int64_t n);

#endif
