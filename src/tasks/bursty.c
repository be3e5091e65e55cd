/* bursty_classification: Chan et al. 2022's bursty sequences with random
 * prototype vectors for Omniglot classes (docs/tasks.md,
 * "bursty_classification"; bursty.h).
 *
 * Training sequences are bursty with probability p_bursty: `shots`
 * exemplars of the query's class and as many of one other class, the rest
 * of the context iid, all shuffled; else every exemplar is iid. Classes
 * come from a Zipf distribution and keep fixed labels, so a model can
 * answer from its weights or by copying the label of a matching exemplar
 * in the context. Validation and test measure one or the other (`eval`).
 *
 * Built with -ffp-contract=off (Makefile): an exemplar is prototype +
 * noise * z rounded twice, as docs/tasks.md says, not in one fused step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/bursty.h"
#include "tasks/synth.h"
#include "tasks/task.h"

#define MAX_PROTO_VALUES (1ll << 26)

static const char *const MODES = "in_context|in_weights|train_dist";

sl_status sl_bursty_check(const sl_bursty_opts *o, int64_t T)
{
    const long long N = o->context;
    if (2 * o->shots > N)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'bursty_classification': option shots = %lld: expected 2 * shots <= "
                       "context = %lld (a bursty context holds shots exemplars of two classes)",
                       (long long)o->shots, N);
    if (o->eval == SL_BURSTY_IN_CONTEXT && N % 2)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'bursty_classification': option context = %lld: expected an even "
                       "context with eval = in_context (context / 2 exemplars of each of two "
                       "classes)",
                       N);
    if ((o->classes + o->holdout) * o->dim > MAX_PROTO_VALUES)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'bursty_classification': options classes = %lld, holdout_classes = "
                       "%lld, dim = %lld: expected (classes + holdout_classes) * dim <= 2^26 "
                       "prototype values",
                       (long long)o->classes, (long long)o->holdout, (long long)o->dim);
    if (T < 2 * N + 1)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'bursty_classification': seq_len = %lld: expected at least 2 * "
                       "context + 1 = %lld (context exemplar-label pairs, then the query)",
                       (long long)T, 2 * N + 1);
    return SL_OK;
}

sl_status sl_bursty_init(sl_bursty *g, const sl_bursty_opts *o, uint64_t seed)
{
    const int64_t K = o->classes, D = o->dim, P = (K + o->holdout) * D;
    g->o = *o;
    g->proto = malloc((size_t)P * sizeof *g->proto);
    g->cum = malloc((size_t)K * sizeof *g->cum);
    if (!g->proto || !g->cum) {
        sl_bursty_free(g);
        return sl_fail(SL_ERR_OOM, "task 'bursty_classification': %lld prototype values",
                       (long long)P);
    }
    sl_rng r;
    sl_rng_seed(&r, sl_synth_mix(sl_synth_mix(seed) ^ 3));
    for (int64_t i = 0; i < P; i++) g->proto[i] = sl_synth_normal(&r);
    double sum = 0;
    for (int64_t c = 0; c < K; c++) g->cum[c] = sum += pow((double)(c + 1), -o->zipf);
    return SL_OK;
}

void sl_bursty_free(sl_bursty *g)
{
    free(g->proto);
    free(g->cum);
    g->proto = NULL;
    g->cum = NULL;
}

/* A trained class drawn with the Zipf weights: the first c whose running
 * sum exceeds unit() times the total (the last class if rounding lets
 * none). */
static int32_t zipf(const sl_bursty *g, sl_rng *r)
{
    const int64_t K = g->o.classes;
    const double x = sl_synth_unit(r) * g->cum[K - 1];
    int64_t lo = 0, hi = K - 1;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (g->cum[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return (int32_t)lo;
}

/* Fisher-Yates: for i = n-1 down to 1, swap a[i] and a[below(i + 1)]. */
static void shuffle(sl_rng *r, int32_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = (int64_t)sl_rng_below(r, (uint64_t)(i + 1));
        const int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* cls, lab: [N + 1], the query last. */
static void draw_train(const sl_bursty *g, sl_rng *r, int32_t *cls, int32_t *lab)
{
    const int64_t N = g->o.context, s = g->o.shots;
    if (sl_synth_unit(r) < g->o.p_bursty) {
        const int32_t q = zipf(g, r);
        int32_t other;
        do other = zipf(g, r);
        while (other == q);
        for (int64_t i = 0; i < N; i++) cls[i] = i < s ? q : i < 2 * s ? other : zipf(g, r);
        shuffle(r, cls, N);
        cls[N] = q;
    } else {
        for (int64_t i = 0; i <= N; i++) cls[i] = zipf(g, r);
    }
    memcpy(lab, cls, (size_t)(N + 1) * sizeof *lab);
}

static void draw_in_weights(const sl_bursty *g, sl_rng *r, int32_t *cls, int32_t *lab)
{
    const int64_t N = g->o.context;
    const int32_t q = zipf(g, r);
    for (int64_t i = 0; i < N; i++) {
        do cls[i] = zipf(g, r);
        while (cls[i] == q);
    }
    cls[N] = q;
    memcpy(lab, cls, (size_t)(N + 1) * sizeof *lab);
}

static void draw_in_context(const sl_bursty *g, sl_rng *r, int32_t *cls, int32_t *lab)
{
    const int64_t N = g->o.context;
    int32_t h[2], l[2];
    sl_synth_distinct(r, g->o.classes, g->o.holdout, 2, h);
    sl_synth_distinct(r, 0, g->o.classes, 2, l);
    for (int64_t i = 0; i < N; i++) cls[i] = i < N / 2 ? 0 : 1;
    shuffle(r, cls, N);
    cls[N] = (int32_t)sl_rng_below(r, 2);
    for (int64_t i = 0; i <= N; i++) {
        lab[i] = l[cls[i]];
        cls[i] = h[cls[i]];
    }
}

void sl_bursty_example(const sl_bursty *g, sl_bursty_mode mode, uint64_t seed, int64_t T,
                       int32_t *tokens, float *vectors, int32_t *targets, int64_t *len,
                       int32_t *classes)
{
    const int64_t N = g->o.context, D = g->o.dim;
    int32_t *cls = malloc((size_t)(N + 1) * 2 * sizeof *cls);
    if (!cls) sl_out_of_memory("task 'bursty_classification': a sequence's classes",
                               (size_t)(N + 1) * 2 * sizeof *cls);
    int32_t *lab = cls + N + 1;
    sl_rng r;
    sl_rng_seed(&r, seed);
    if (mode == SL_BURSTY_TRAIN_DIST) draw_train(g, &r, cls, lab);
    else if (mode == SL_BURSTY_IN_WEIGHTS) draw_in_weights(g, &r, cls, lab);
    else draw_in_context(g, &r, cls, lab);
    memset(vectors, 0, (size_t)(T * D) * sizeof *vectors);
    for (int64_t t = 0; t < T; t++) {
        tokens[t] = t < 2 * N && t % 2 ? lab[t / 2] : t <= 2 * N ? -1 : 0;
        targets[t] = -1;
    }
    targets[2 * N] = lab[N];
    for (int64_t i = 0; i <= N; i++) {
        const double *p = g->proto + (int64_t)cls[i] * D;
        float *v = vectors + 2 * i * D;
        for (int64_t j = 0; j < D; j++) v[j] = (float)(p[j] + g->o.noise * sl_synth_normal(&r));
    }
    *len = 2 * N + 1;
    if (classes) memcpy(classes, cls, (size_t)(N + 1) * sizeof *classes);
    free(cls);
}

typedef struct bursty {
    sl_bursty g;
    sl_synth_split split;
} bursty;

static sl_status bursty_open(sl_task *t, const sl_task_env *env)
{
    bursty *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task 'bursty_classification': out of memory");
    t->impl = x;
    const char *mode = sl_opt_str(env->opts, "eval");
    const sl_bursty_opts o = {
        .classes = sl_opt_int(env->opts, "classes"),
        .holdout = sl_opt_int(env->opts, "holdout_classes"),
        .dim = sl_opt_int(env->opts, "dim"),
        .context = sl_opt_int(env->opts, "context"),
        .shots = sl_opt_int(env->opts, "shots"),
        .noise = sl_opt_float(env->opts, "noise"),
        .zipf = sl_opt_float(env->opts, "zipf"),
        .p_bursty = sl_opt_float(env->opts, "p_bursty"),
        .eval = strcmp(mode, "in_weights") == 0   ? SL_BURSTY_IN_WEIGHTS
                : strcmp(mode, "train_dist") == 0 ? SL_BURSTY_TRAIN_DIST
                                                  : SL_BURSTY_IN_CONTEXT,
    };
    x->split = sl_synth_split_opts(env->opts);
    t->vocab_size = o.classes;
    t->io = (sl_task_io){.input = SL_INPUT_BOTH, .n_in = o.dim, .head = SL_HEAD_TAG,
                         .n_out = o.classes, .pool = SL_POOL_LAST};
    sl_status st = sl_bursty_check(&o, env->seq_len);
    if (!st) st = sl_bursty_init(&x->g, &o, x->split.seed);
    return st;
}

/* tokens, targets: [B*T]; vectors: [B*T, D]; lengths: [B]. */
static void bursty_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const int64_t B = bt->B, T = bt->T;
    const bursty *x = t->impl;
    const int64_t D = x->g.o.dim;
    const sl_bursty_mode mode = split == SL_SPLIT_TRAIN ? SL_BURSTY_TRAIN_DIST : x->g.o.eval;
    sl_synth_require(sl_bursty_check(&x->g.o, T));
    for (int64_t b = 0; b < B; b++)
        sl_bursty_example(&x->g, mode, sl_synth_row_seed(&x->split, split, rng, bt, b), T,
                          bt->tokens + b * T, bt->vectors + b * T * D, bt->targets + b * T,
                          &bt->lengths[b], NULL);
}

static int64_t bursty_split_size(const sl_task *t, sl_split split)
{
    return sl_synth_split_size(&((const bursty *)t->impl)->split, split);
}

static void bursty_close(sl_task *t)
{
    bursty *x = t->impl;
    sl_bursty_free(&x->g);
    free(x);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    SL_SYNTH_SPLIT_OPTIONS,
    {"classes", SL_OPT_INT, "1600", 2, 1 << 20, NULL,
     "trained classes K, each with its own fixed label (labels are token ids 0 .. K-1)"},
    {"holdout_classes", SL_OPT_INT, "100", 2, 1 << 20, NULL,
     "held-out classes, seen only by the in_context evaluation"},
    {"dim", SL_OPT_INT, "64", 1, 4096, NULL, "reals per exemplar (the model's n_in)"},
    {"noise", SL_OPT_FLOAT, "0.1", 0, 100, NULL,
     "standard deviation of the Gaussian noise added to a prototype's N(0, 1) components"},
    {"zipf", SL_OPT_FLOAT, "1", 0, 10, NULL, "Zipf exponent a: class c drawn with weight (c+1)^-a"},
    {"p_bursty", SL_OPT_FLOAT, "0.9", 0, 1, NULL, "probability that a training sequence is bursty"},
    {"context", SL_OPT_INT, "8", 1, 1 << 16, NULL,
     "exemplar-label pairs before the query (rows of 2 * context + 1 positions)"},
    {"shots", SL_OPT_INT, "3", 1, 1 << 15, NULL,
     "a bursty context's exemplars of the query's class, and of one other class"},
    {"eval", SL_OPT_ENUM, "in_context", 0, 0, MODES,
     "what validation and test draw: in_context (held-out classes, labels assigned per "
     "sequence), in_weights (query's class absent from the context) or train_dist"},
};

const sl_task_vtable sl_task_bursty_classification = {
    .name = "bursty_classification",
    .desc = "bursty few-shot classification (Chan et al. 2022): exemplar vectors and label "
            "tokens, the query's label at the last position; in-context or in-weights evaluation",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = bursty_open,
    .batch = bursty_batch,
    .split_size = bursty_split_size,
    .close = bursty_close,
};
