/* Seeds and draws shared by the synthetic tasks (synth.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tasks/synth.h"

sl_synth_split sl_synth_split_opts(const sl_opts *o)
{
    sl_synth_split s = {.seed = (uint64_t)sl_opt_int(o, "seed")};
    s.n[SL_SPLIT_VAL] = sl_opt_int(o, "val_examples");
    s.n[SL_SPLIT_TEST] = sl_opt_int(o, "test_examples");
    return s;
}

uint64_t sl_synth_mix(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* split is 1 for validation, 2 for test (sl_split's values). */
uint64_t sl_synth_example_seed(uint64_t task_seed, sl_split split, uint64_t i)
{
    return sl_synth_mix(sl_synth_mix(sl_synth_mix(task_seed) ^ (uint64_t)split) ^ i);
}

uint64_t sl_synth_row_seed(const sl_synth_split *s, sl_split split, sl_rng *rng,
                           const sl_batch *bt, int64_t b)
{
    if (split == SL_SPLIT_TRAIN) return sl_rng_u64(rng);
    return sl_synth_example_seed(s->seed, split, (uint64_t)((bt->first + b) % s->n[split]));
}

int64_t sl_synth_split_size(const sl_synth_split *s, sl_split split)
{
    return split == SL_SPLIT_TRAIN ? INT64_MAX : s->n[split];
}

double sl_synth_unit(sl_rng *r) { return (double)(sl_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

double sl_synth_normal(sl_rng *r)
{
    const double u1 = sl_synth_unit(r), u2 = sl_synth_unit(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

void sl_synth_distinct(sl_rng *r, int64_t lo, int64_t n, int64_t k, int32_t *out)
{
    for (int64_t j = 0; j < k; j++) {
        bool again;
        do {
            out[j] = (int32_t)(lo + (int64_t)sl_rng_below(r, (uint64_t)n));
            again = false;
            for (int64_t i = 0; i < j && !again; i++) again = out[i] == out[j];
        } while (again);
    }
}

void sl_synth_require(sl_status st)
{
    if (st == SL_ERR_OOM) {
        fprintf(stderr, "seqlab: error: %s\n", sl_errmsg());
        exit(3);
    }
    sl_require(st == SL_OK, sl_errmsg(), "a batch length the task was opened with");
}
