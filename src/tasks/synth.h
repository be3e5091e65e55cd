/* What the synthetic tasks (mqar, selective_copy, induction_heads, regbench,
 * listops, bursty_classification, icl_regression, icl_mixture) share: every
 * example is a pure function of one 64-bit seed, and a split says where the
 * seeds come from (docs/tasks.md, "Splits").
 *
 * - train: each row's seed is the next sl_rng_u64 of the rng batch() is
 *   given, so training draws fresh examples forever;
 * - validation, test: a fixed set of n examples per task seed; example i
 *   has seed sl_synth_example_seed(task seed, split, i), and row b of a
 *   batch takes example (first + b) mod n (sl_batch's first), so an
 *   evaluation walks the set in order. */
#ifndef SL_TASKS_SYNTH_H
#define SL_TASKS_SYNTH_H

#include "tasks/task.h"

/* The options every synthetic task declares first, in this order; n (a
 * string) is the default size of the validation and the test set. */
#define SL_SYNTH_SPLIT_OPTIONS_N(n)                                                            \
    {"seed", SL_OPT_INT, "0", 0, 9007199254740991.0, NULL,                                 \
     "seed of the held-out sets (validation and test); training draws from the run's seed"}, \
        {"val_examples", SL_OPT_INT, n, 1, 1e9, NULL, "examples in the validation set"},       \
        {"test_examples", SL_OPT_INT, n, 1, 1e9, NULL, "examples in the test set"}
/* With Zoology's 3000 held-out examples. */
#define SL_SYNTH_SPLIT_OPTIONS SL_SYNTH_SPLIT_OPTIONS_N("3000")

typedef struct sl_synth_split {
    uint64_t seed;
    int64_t n[3]; /* examples per split; n[SL_SPLIT_TRAIN] unused */
} sl_synth_split;

/* The split options of a synthetic task's resolved options. */
sl_synth_split sl_synth_split_opts(const sl_opts *o);
/* splitmix64's output for counter x: a bijection of 64-bit words. */
uint64_t sl_synth_mix(uint64_t x);
/* The seed of example i of validation or test. */
uint64_t sl_synth_example_seed(uint64_t task_seed, sl_split split, uint64_t i);
/* The seed of row b of batch bt of a split (see above). */
uint64_t sl_synth_row_seed(const sl_synth_split *s, sl_split split, sl_rng *rng,
                           const sl_batch *bt, int64_t b);
/* Tokens (training: unbounded, INT64_MAX) or examples of a split. */
int64_t sl_synth_split_size(const sl_synth_split *s, sl_split split);
/* A uniform double in [0, 1): the top 53 bits of sl_rng_u64 times 2^-53. */
double sl_synth_unit(sl_rng *r);
/* A standard normal draw (Box-Muller, the cosine half): with u1 then u2 two
 * sl_synth_unit draws, sqrt(-2 ln(1 - u1)) cos(2 pi u2); 1 - u1 is in
 * (0, 1], so the log is finite. */
double sl_synth_normal(sl_rng *r);
/* out[0..k): k distinct integers in [lo, lo + n), k <= n, in draw order:
 * each is lo + sl_rng_below(r, n), drawn again while it equals an earlier
 * one. */
void sl_synth_distinct(sl_rng *r, int64_t lo, int64_t n, int64_t k, int32_t *out);
/* batch() returns no status (task.h): a generator's failure there (out of
 * memory: exit 3 with the message; a length open() did not check: a bug)
 * stops the program. */
void sl_synth_require(sl_status st);

#endif
