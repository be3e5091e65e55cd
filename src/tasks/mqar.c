/* mqar: multi-query associative recall, Zoology's generator
 * (zoology/data/multiquery_ar.py; docs/tasks.md, "mqar").
 *
 * K key-value pairs k1 v1 ... kK vK open the sequence; then each key is
 * queried once, on an even slot 2K + 2g of the rest, with the gap g drawn
 * without replacement with weight (g + 1)^(a - 1) (a = 0.01: mostly near
 * the context). The target at a query is its key's value (Zoology's labels
 * shifted by one: the model reads the key and predicts what follows it);
 * every other slot holds a uniform random token (or 0, option `filler`)
 * and no target. Zoology's generator draws random filler by default, but
 * its paper's MQAR sweeps (Figure 2 and the Based figures) set
 * random_non_queries = False: zero filler. Random filler is much harder
 * for a fixed-size state, since every filler pair is written into it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/mqar.h"
#include "tasks/synth.h"

sl_status sl_mqar_check(const sl_mqar_opts *o, int64_t T)
{
    const long long V = o->vocab, K = o->num_kv_pairs, t = T;
    if (K > V / 2 - 1)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'mqar': option num_kv_pairs = %lld: at most vocab / 2 - 1 = %lld "
                       "distinct keys fit in [1, vocab / 2) with vocab = %lld",
                       K, V / 2 - 1, V);
    if (t % 2)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'mqar': seq_len = %lld: expected an even length (queries sit on "
                       "even slots after the context, as in Zoology)",
                       t);
    if (4 * K > t)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'mqar': option num_kv_pairs = %lld needs seq_len >= 4 * num_kv_pairs "
                       "= %lld (2K context tokens, then K queries on distinct even slots); "
                       "seq_len is %lld",
                       K, 4 * K, t);
    return SL_OK;
}

/* The index of a slot drawn with probability w[i] / sum(w) among slots of
 * nonzero weight (taken slots have weight 0): the first i whose running
 * sum, in slot order, exceeds u * sum; the last nonzero slot if rounding
 * lets u * sum reach the total. */
static int64_t weighted_pick(const double *w, int64_t n, sl_rng *r)
{
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += w[i];
    const double target = sl_synth_unit(r) * total;
    double cum = 0;
    int64_t last = -1;
    for (int64_t i = 0; i < n; i++) {
        if (w[i] == 0) continue;
        cum += w[i];
        last = i;
        if (target < cum) return i;
    }
    return last;
}

sl_status sl_mqar_example(const sl_mqar_opts *o, uint64_t seed, int64_t T, int32_t *tokens,
                          int32_t *targets)
{
    sl_status st = sl_mqar_check(o, T);
    if (st) return st;
    const int64_t V = o->vocab, K = o->num_kv_pairs, half = V / 2, ctx = 2 * K;
    const int64_t space = (T - ctx) / 2;
    const size_t bytes = (size_t)space * sizeof(double) + (size_t)ctx * sizeof(int32_t);
    double *w = malloc(bytes);
    if (!w)
        return sl_fail(SL_ERR_OOM, "task 'mqar': the weights of %lld query slots (%zu bytes)",
                       (long long)space, bytes);
    int32_t *keys = (int32_t *)(w + space), *values = keys + K;
    sl_rng r;
    sl_rng_seed(&r, seed);
    sl_synth_distinct(&r, 1, half - 1, K, keys);
    sl_synth_distinct(&r, half, V - half, K, values);
    for (int64_t i = 0; i < space; i++) w[i] = pow((double)(i + 1), o->power_a - 1);
    for (int64_t t = 0; t < T; t++) targets[t] = -1;
    for (int64_t j = 0; j < K; j++) {
        tokens[2 * j] = keys[j];
        tokens[2 * j + 1] = values[j];
    }
    for (int64_t j = 0; j < K; j++) {
        int64_t g = weighted_pick(w, space, &r);
        w[g] = 0;
        tokens[ctx + 2 * g] = keys[j];
        targets[ctx + 2 * g] = values[j];
    }
    for (int64_t t = ctx; t < T; t++)
        if (targets[t] < 0) tokens[t] = o->zero_filler ? 0 : (int32_t)sl_rng_below(&r, (uint64_t)V);
    free(w);
    return SL_OK;
}

typedef struct mqar {
    sl_mqar_opts o;
    sl_synth_split split;
} mqar;

static sl_status mqar_open(sl_task *t, const sl_task_env *env)
{
    mqar *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task 'mqar': out of memory");
    t->impl = x;
    x->o = (sl_mqar_opts){.vocab = sl_opt_int(env->opts, "vocab"),
                          .num_kv_pairs = sl_opt_int(env->opts, "num_kv_pairs"),
                          .power_a = sl_opt_float(env->opts, "power_a"),
                          .zero_filler = !strcmp(sl_opt_str(env->opts, "filler"), "zero")};
    x->split = sl_synth_split_opts(env->opts);
    t->vocab_size = x->o.vocab;
    return sl_mqar_check(&x->o, env->seq_len);
}

/* tokens, targets: [B*T]. */
static void mqar_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const int64_t B = bt->B, T = bt->T;
    int32_t *tokens = bt->tokens, *targets = bt->targets;
    const mqar *x = t->impl;
    for (int64_t b = 0; b < B; b++)
        sl_synth_require(sl_mqar_example(&x->o, sl_synth_row_seed(&x->split, split, rng, bt, b), T,
                                         tokens + b * T, targets + b * T));
}

static int64_t mqar_split_size(const sl_task *t, sl_split split)
{
    return sl_synth_split_size(&((const mqar *)t->impl)->split, split);
}

static void mqar_close(sl_task *t)
{
    free(t->impl);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    SL_SYNTH_SPLIT_OPTIONS,
    {"vocab", SL_OPT_INT, "8192", 4, 1 << 24, NULL,
     "vocabulary V: keys from [1, V/2), values from [V/2, V)"},
    {"num_kv_pairs", SL_OPT_INT, "8", 1, 1 << 22, NULL,
     "key-value pairs K per sequence, each queried once (needs 4K <= seq_len)"},
    {"power_a", SL_OPT_FLOAT, "0.01", 0, 10, NULL,
     "query gap g drawn with weight (g+1)^(a-1); 1 = uniform"},
    {"filler", SL_OPT_ENUM, "random", 0, 0, "random|zero",
     "positions that are neither context nor query: uniform tokens from [0, V) (Zoology's "
     "default) or 0 (random_non_queries = False, its paper's sweeps)"},
};

const sl_task_vtable sl_task_mqar = {
    .name = "mqar",
    .desc = "multi-query associative recall (Zoology): K key-value pairs, then each key "
            "queried once; targets only at the queries",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = mqar_open,
    .batch = mqar_batch,
    .split_size = mqar_split_size,
    .close = mqar_close,
};
