/* selective_copy: Mamba's selective copying task (docs/tasks.md,
 * "selective_copy"), as the S4 repository's copying generator makes it with
 * variable spacing (src/dataloaders/datasets/copying.py, variable=True).
 *
 * The first T - M tokens are noise (0) except M data tokens (uniform in
 * [1, V-2]) at M distinct random positions; the last M tokens are markers
 * (V-1). At the j-th marker the target is the j-th data token: the model
 * must pick out the data tokens in order, skipping the noise, which a
 * time-invariant recurrence cannot do without a content-dependent gate. */
#include <stdlib.h>

#include "tasks/selective_copy.h"
#include "tasks/synth.h"

sl_status sl_selcopy_check(const sl_selcopy_opts *o, int64_t T)
{
    const long long M = o->num_tokens, t = T;
    if (2 * M > t)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'selective_copy': option num_tokens = %lld needs seq_len >= 2 * "
                       "num_tokens = %lld (the data tokens, then as many markers); seq_len is %lld",
                       M, 2 * M, t);
    return SL_OK;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

sl_status sl_selcopy_example(const sl_selcopy_opts *o, uint64_t seed, int64_t T, int32_t *tokens,
                             int32_t *targets)
{
    sl_status st = sl_selcopy_check(o, T);
    if (st) return st;
    const int64_t V = o->vocab, M = o->num_tokens, n = T - M;
    const size_t bytes = (size_t)M * 2 * sizeof(int32_t);
    int32_t *data = malloc(bytes ? bytes : 1);
    if (!data)
        return sl_fail(SL_ERR_OOM, "task 'selective_copy': %lld data tokens (%zu bytes)",
                       (long long)M, bytes);
    int32_t *pos = data + M;
    sl_rng r;
    sl_rng_seed(&r, seed);
    for (int64_t j = 0; j < M; j++) data[j] = (int32_t)(1 + sl_rng_below(&r, (uint64_t)(V - 2)));
    sl_synth_distinct(&r, 0, n, M, pos);
    qsort(pos, (size_t)M, sizeof *pos, cmp_i32);
    for (int64_t t = 0; t < T; t++) {
        tokens[t] = t < n ? 0 : (int32_t)(V - 1);
        targets[t] = -1;
    }
    for (int64_t j = 0; j < M; j++) {
        tokens[pos[j]] = data[j];
        targets[n + j] = data[j];
    }
    free(data);
    return SL_OK;
}

typedef struct selcopy {
    sl_selcopy_opts o;
    sl_synth_split split;
} selcopy;

static sl_status selcopy_open(sl_task *t, const sl_task_env *env)
{
    selcopy *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task 'selective_copy': out of memory");
    t->impl = x;
    x->o = (sl_selcopy_opts){.vocab = sl_opt_int(env->opts, "vocab"),
                             .num_tokens = sl_opt_int(env->opts, "num_tokens")};
    x->split = sl_synth_split_opts(env->opts);
    t->vocab_size = x->o.vocab;
    return sl_selcopy_check(&x->o, env->seq_len);
}

/* tokens, targets: [B*T]. */
static void selcopy_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const int64_t B = bt->B, T = bt->T;
    int32_t *tokens = bt->tokens, *targets = bt->targets;
    const selcopy *x = t->impl;
    for (int64_t b = 0; b < B; b++)
        sl_synth_require(sl_selcopy_example(&x->o, sl_synth_row_seed(&x->split, split, rng, bt, b), T,
                                            tokens + b * T, targets + b * T));
}

static int64_t selcopy_split_size(const sl_task *t, sl_split split)
{
    return sl_synth_split_size(&((const selcopy *)t->impl)->split, split);
}

static void selcopy_close(sl_task *t)
{
    free(t->impl);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    SL_SYNTH_SPLIT_OPTIONS,
    {"vocab", SL_OPT_INT, "16", 3, 1 << 24, NULL,
     "vocabulary V: 0 noise, 1..V-2 data tokens, V-1 marker"},
    {"num_tokens", SL_OPT_INT, "16", 1, 1 << 20, NULL,
     "data tokens M to copy (needs 2M <= seq_len)"},
};

const sl_task_vtable sl_task_selective_copy = {
    .name = "selective_copy",
    .desc = "selective copying (Mamba): M data tokens at random places among noise, then M "
            "markers whose targets are the data tokens in order",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = selcopy_open,
    .batch = selcopy_batch,
    .split_size = selcopy_split_size,
    .close = selcopy_close,
};
