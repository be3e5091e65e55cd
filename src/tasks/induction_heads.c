/* induction_heads: Mamba's induction-heads task (docs/tasks.md,
 * "induction_heads"), H3's generator (safari, src/dataloaders/synthetics.py,
 * generate_induction_head with one trigger).
 *
 * T - 1 uniform content tokens, one of them (at p < T - 3) replaced by the
 * special token, then the special token again at T - 1; the target there is
 * the token after the first one. Only that position has a target. Any
 * T >= 4 works, so a model trained at 256 is evaluated at 2^6 .. 2^20 by
 * asking for longer rows. */
#include <stdlib.h>

#include "tasks/induction_heads.h"
#include "tasks/synth.h"

sl_status sl_induction_check(const sl_induction_opts *o, int64_t T)
{
    if (T < 4)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'induction_heads': seq_len = %lld: expected at least 4 (the special "
                       "token, its successor, one more token, the special token again)",
                       (long long)T);
    return SL_OK;
}

sl_status sl_induction_example(const sl_induction_opts *o, uint64_t seed, int64_t T,
                               int32_t *tokens, int32_t *targets)
{
    sl_status st = sl_induction_check(o, T);
    if (st) return st;
    const int32_t special = (int32_t)(o->vocab - 1);
    sl_rng r;
    sl_rng_seed(&r, seed);
    for (int64_t t = 0; t < T - 1; t++) {
        tokens[t] = (int32_t)(1 + sl_rng_below(&r, (uint64_t)(o->vocab - 2)));
        targets[t] = -1;
    }
    int64_t p = (int64_t)sl_rng_below(&r, (uint64_t)(T - 3));
    tokens[p] = special;
    tokens[T - 1] = special;
    targets[T - 1] = tokens[p + 1];
    return SL_OK;
}

typedef struct induction {
    sl_induction_opts o;
    sl_synth_split split;
} induction;

static sl_status induction_open(sl_task *t, const sl_task_env *env)
{
    induction *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task 'induction_heads': out of memory");
    t->impl = x;
    x->o = (sl_induction_opts){.vocab = sl_opt_int(env->opts, "vocab")};
    x->split = sl_synth_split_opts(env->opts);
    t->vocab_size = x->o.vocab;
    return sl_induction_check(&x->o, env->seq_len);
}

/* tokens, targets: [B*T]. */
static void induction_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const int64_t B = bt->B, T = bt->T;
    int32_t *tokens = bt->tokens, *targets = bt->targets;
    const induction *x = t->impl;
    for (int64_t b = 0; b < B; b++)
        sl_synth_require(sl_induction_example(&x->o, sl_synth_row_seed(&x->split, split, rng, bt, b), T,
                                              tokens + b * T, targets + b * T));
}

static int64_t induction_split_size(const sl_task *t, sl_split split)
{
    return sl_synth_split_size(&((const induction *)t->impl)->split, split);
}

static void induction_close(sl_task *t)
{
    free(t->impl);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    SL_SYNTH_SPLIT_OPTIONS,
    {"vocab", SL_OPT_INT, "16", 3, 1 << 24, NULL,
     "vocabulary V: 1..V-2 content tokens, V-1 the special token (0 unused, as in H3)"},
};

const sl_task_vtable sl_task_induction_heads = {
    .name = "induction_heads",
    .desc = "induction heads (Mamba): random tokens with one special token; at the end the "
            "special token again, target the token that followed it",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = induction_open,
    .batch = induction_batch,
    .split_size = induction_split_size,
    .close = induction_close,
};
