/* RegBench (Akyurek et al. 2024, "In-Context Language Learning:
 * Architectures and Algorithms"): strings of a random DFA's language,
 * "w1 | w2 | ... wk |", next-token prediction; a prediction is correct when
 * the DFA accepts the extended prefix (docs/tasks.md, "regbench").
 *
 * Token ids: letters 0 .. L-1 (L = option letters_max), the separator L,
 * padding L+1. */
#ifndef SL_TASKS_REGBENCH_H
#define SL_TASKS_REGBENCH_H

#include "tasks/task.h"

#define SL_REGBENCH_MAX 64 /* most states, and most letters */

typedef struct sl_regbench_opts {
    int64_t states[2], letters[2], edges[2], strings[2], len[2]; /* [min, max], both included */
} sl_regbench_opts;

/* A DFA; state 0 starts, every state accepts. */
typedef struct sl_regbench_dfa {
    int32_t n_states;
    int32_t n_letters;                            /* L: the separator's id */
    int8_t next[SL_REGBENCH_MAX][SL_REGBENCH_MAX]; /* [state][letter]: the next state, -1 none */
} sl_regbench_dfa;

/* SL_OK when o can make examples of length T; else SL_ERR_CONFIG naming
 * the options and what they need. */
sl_status sl_regbench_check(const sl_regbench_opts *o, int64_t T);
/* Which split d's language belongs to, from a hash of its minimal DFA:
 * the same for every DFA of the same language. */
sl_split sl_regbench_class(const sl_regbench_dfa *d);
/* Example `seed` of a split, of length T. tokens, targets: [T]; targets are
 * the next token of the stream (-1 past its end, where tokens are padding);
 * dfa (may be NULL) receives the example's DFA. Its language belongs to
 * `split` (sl_regbench_class), so no test or validation language is ever
 * trained on. SL_ERR_CONFIG as sl_regbench_check, or when no DFA of the
 * split turns up in 65536 tries (options that allow too few languages). */
sl_status sl_regbench_example(const sl_regbench_opts *o, uint64_t seed, sl_split split, int64_t T,
                              int32_t *tokens, int32_t *targets, sl_regbench_dfa *dfa);

/* The evaluator's question. row: a row's tokens, t: a position in it,
 * next: a predicted token. True when the string in progress at t (the
 * letters after the last separator at or before t) is a word of d's
 * language and stays one after next: next is a letter with an edge from
 * the state the string reaches, or next is the separator and the string is
 * not empty. Padding (or any other id) in the string or as next: false. */
bool sl_regbench_accepts(const sl_regbench_dfa *d, const int32_t *row, int64_t t, int32_t next);
/* The DFA of row b of the last batch an open regbench task made; NULL when
 * t is not regbench or b is not a row of that batch. Valid until the next
 * batch() or close. */
const sl_regbench_dfa *sl_regbench_row_dfa(const sl_task *t, int64_t b);

#endif
