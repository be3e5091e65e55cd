/* regbench: in-context language learning on random DFAs (Akyurek et al.
 * 2024; docs/tasks.md, "regbench").
 *
 * A row is one problem: a random DFA (states, a random alphabet out of the
 * letters, 1-3 out-edges per state to random states, every state
 * accepting), then 10-19 strings of 1-49 letters, each a uniform random walk
 * from the start state, each followed by the separator, cut or padded to T.
 * Every position's target is the next token, so the model must infer the
 * language from the strings so far.
 *
 * Held-out languages: a language's split is fixed by a hash of its minimal
 * DFA (1 in 20 test, 1 in 20 validation, the rest training), and each
 * split draws DFAs until one of its own turns up, so the paper's disjoint
 * train and test automata hold by construction, up to language
 * equivalence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/regbench.h"
#include "tasks/synth.h"

#define MAX_TRIES 65536

static const char *const NAMES[5] = {"states", "letters", "edges", "strings", "len"};

sl_status sl_regbench_check(const sl_regbench_opts *o, int64_t T)
{
    const int64_t *r[5] = {o->states, o->letters, o->edges, o->strings, o->len};
    for (int i = 0; i < 5; i++)
        if (r[i][0] > r[i][1])
            return sl_fail(SL_ERR_CONFIG,
                           "task 'regbench': options %s_min = %lld and %s_max = %lld: expected "
                           "%s_min <= %s_max",
                           NAMES[i], (long long)r[i][0], NAMES[i], (long long)r[i][1], NAMES[i],
                           NAMES[i]);
    if (o->edges[1] > o->letters[0])
        return sl_fail(SL_ERR_CONFIG,
                       "task 'regbench': option edges_max = %lld: expected at most letters_min = "
                       "%lld (a state's out-edges carry distinct letters)",
                       (long long)o->edges[1], (long long)o->letters[0]);
    if (T < 1) return sl_fail(SL_ERR_CONFIG, "task 'regbench': seq_len = %lld: expected >= 1", (long long)T);
    return SL_OK;
}

static int64_t in_range(sl_rng *r, const int64_t lh[2])
{
    return lh[0] + (int64_t)sl_rng_below(r, (uint64_t)(lh[1] - lh[0] + 1));
}

/* The DFA draws, in order: n states, A letters; the alphabet (A distinct
 * letters of [0, L)); then per state q = 0 .. n-1: k out-edges, k distinct
 * alphabet indices, and for each in that order a target state. */
static void draw_dfa(const sl_regbench_opts *o, sl_rng *r, sl_regbench_dfa *d)
{
    const int64_t L = o->letters[1];
    d->n_states = (int32_t)in_range(r, o->states);
    d->n_letters = (int32_t)L;
    memset(d->next, -1, sizeof d->next);
    int32_t alphabet[SL_REGBENCH_MAX], idx[SL_REGBENCH_MAX];
    const int64_t A = in_range(r, o->letters);
    sl_synth_distinct(r, 0, L, A, alphabet);
    for (int32_t q = 0; q < d->n_states; q++) {
        const int64_t k = in_range(r, o->edges);
        sl_synth_distinct(r, 0, A, k, idx);
        for (int64_t j = 0; j < k; j++)
            d->next[q][alphabet[idx[j]]] = (int8_t)sl_rng_below(r, (uint64_t)d->n_states);
    }
}

/* block[q]: q's class in the coarsest partition where a class's states
 * agree, letter by letter, on having an edge and on the class it leads to
 * (Moore's refinement; every state accepts, a missing edge rejects). Two
 * states share a class iff they accept the same words. Returns the count. */
static int32_t moore_blocks(const sl_regbench_dfa *d, int32_t *block)
{
    const int32_t n = d->n_states, L = d->n_letters;
    int32_t next_block[SL_REGBENCH_MAX], count = 1;
    for (int32_t q = 0; q < n; q++) block[q] = 0;
    for (;;) {
        int32_t c = 0;
        for (int32_t q = 0; q < n; q++) {
            next_block[q] = -1;
            for (int32_t p = 0; p < q && next_block[q] < 0; p++) {
                bool same = block[p] == block[q];
                for (int32_t a = 0; a < L && same; a++) {
                    int32_t x = d->next[p][a], y = d->next[q][a];
                    same = (x < 0) == (y < 0) && (x < 0 || block[x] == block[y]);
                }
                if (same) next_block[q] = next_block[p];
            }
            if (next_block[q] < 0) next_block[q] = c++;
        }
        memcpy(block, next_block, (size_t)n * sizeof *block);
        if (c == count) return c;
        count = c;
    }
}

/* The minimal DFA's classes numbered in breadth-first order from the start
 * (letters in increasing order), each class's row of targets (its number
 * plus 1; 0 for no edge) hashed in that order. */
static uint64_t fingerprint(const sl_regbench_dfa *d)
{
    int32_t block[SL_REGBENCH_MAX], num[SL_REGBENCH_MAX], rep[SL_REGBENCH_MAX];
    const int32_t nb = moore_blocks(d, block);
    for (int32_t b = 0; b < nb; b++) num[b] = -1;
    int32_t seen = 0;
    num[block[0]] = seen;
    rep[seen++] = 0;
    uint64_t h = 0;
    for (int32_t i = 0; i < seen; i++)
        for (int32_t a = 0; a < d->n_letters; a++) {
            int32_t x = d->next[rep[i]][a];
            if (x >= 0 && num[block[x]] < 0) {
                num[block[x]] = seen;
                rep[seen++] = x;
            }
            h = sl_synth_mix(h ^ (uint64_t)(x < 0 ? 0 : num[block[x]] + 1));
        }
    return h;
}

sl_split sl_regbench_class(const sl_regbench_dfa *d)
{
    uint64_t h = fingerprint(d) % 20;
    return h == 0 ? SL_SPLIT_TEST : h == 1 ? SL_SPLIT_VAL : SL_SPLIT_TRAIN;
}

/* The token stream cut to T + 1 tokens: tokens[i] = s[i] for i < T,
 * targets[i] = s[i + 1]. */
typedef struct stream {
    int32_t *tokens, *targets;
    int64_t T, n;
} stream;

static void emit(stream *s, int32_t c)
{
    if (s->n < s->T) s->tokens[s->n] = c;
    if (s->n >= 1 && s->n <= s->T) s->targets[s->n - 1] = c;
    s->n++;
}

/* The string draws, in order: k strings; per string its length, then per
 * letter the index of the out-edge taken among the state's out-edges in
 * increasing letter order. Drawing stops once T + 1 tokens are out. */
static void draw_strings(const sl_regbench_opts *o, sl_rng *r, const sl_regbench_dfa *d,
                         stream *s)
{
    const int64_t k = in_range(r, o->strings);
    int32_t out[SL_REGBENCH_MAX];
    for (int64_t i = 0; i < k && s->n <= s->T; i++) {
        const int64_t len = in_range(r, o->len);
        int32_t q = 0;
        for (int64_t j = 0; j < len && s->n <= s->T; j++) {
            int32_t deg = 0;
            for (int32_t a = 0; a < d->n_letters; a++)
                if (d->next[q][a] >= 0) out[deg++] = a;
            int32_t a = out[sl_rng_below(r, (uint64_t)deg)];
            emit(s, a);
            q = d->next[q][a];
        }
        emit(s, d->n_letters);
    }
}

sl_status sl_regbench_example(const sl_regbench_opts *o, uint64_t seed, sl_split split, int64_t T,
                              int32_t *tokens, int32_t *targets, sl_regbench_dfa *dfa)
{
    sl_status st = sl_regbench_check(o, T);
    if (st) return st;
    sl_regbench_dfa local, *d = dfa ? dfa : &local;
    sl_rng r;
    sl_rng_seed(&r, seed);
    int tries = 0;
    do {
        if (++tries > MAX_TRIES)
            return sl_fail(SL_ERR_CONFIG,
                           "task 'regbench': no DFA of the held-out class turned up in %d tries: "
                           "the states, letters and edges options allow too few languages",
                           MAX_TRIES);
        draw_dfa(o, &r, d);
    } while (sl_regbench_class(d) != split);
    const int32_t pad = d->n_letters + 1;
    for (int64_t t = 0; t < T; t++) {
        tokens[t] = pad;
        targets[t] = -1;
    }
    stream s = {tokens, targets, T, 0};
    draw_strings(o, &r, d, &s);
    return SL_OK;
}

bool sl_regbench_accepts(const sl_regbench_dfa *d, const int32_t *row, int64_t t, int32_t next)
{
    const int32_t sep = d->n_letters;
    int64_t start = t + 1;
    while (start > 0 && row[start - 1] != sep) start--;
    int32_t q = 0;
    for (int64_t i = start; i <= t; i++) {
        if (row[i] < 0 || row[i] >= sep || d->next[q][row[i]] < 0) return false;
        q = d->next[q][row[i]];
    }
    if (next == sep) return t >= start;
    return next >= 0 && next < sep && d->next[q][next] >= 0;
}

typedef struct regbench {
    sl_regbench_opts o;
    sl_synth_split split;
    sl_regbench_dfa *dfa; /* [cap]: the last batch's rows */
    int64_t cap, rows;
} regbench;

extern const sl_task_vtable sl_task_regbench;

const sl_regbench_dfa *sl_regbench_row_dfa(const sl_task *t, int64_t b)
{
    if (t->vt != &sl_task_regbench || !t->impl) return NULL;
    const regbench *x = t->impl;
    return b >= 0 && b < x->rows ? &x->dfa[b] : NULL;
}

static sl_status regbench_open(sl_task *t, const sl_task_env *env)
{
    regbench *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task 'regbench': out of memory");
    t->impl = x;
    int64_t *r[5] = {x->o.states, x->o.letters, x->o.edges, x->o.strings, x->o.len};
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s_min", NAMES[i]);
        r[i][0] = sl_opt_int(env->opts, name);
        snprintf(name, sizeof name, "%s_max", NAMES[i]);
        r[i][1] = sl_opt_int(env->opts, name);
    }
    x->split = sl_synth_split_opts(env->opts);
    t->vocab_size = x->o.letters[1] + 2;
    /* One example of each split, so that options leaving a split without
     * languages fail here rather than in a batch. */
    int32_t tok[1], tgt[1];
    for (int s = 0; s < 3; s++) {
        sl_status st = sl_regbench_example(&x->o, sl_synth_example_seed(x->split.seed, (sl_split)s, 0),
                                           (sl_split)s, 1, tok, tgt, NULL);
        if (st) return st;
    }
    return sl_regbench_check(&x->o, env->seq_len);
}

/* tokens, targets: [B*T]. */
static void regbench_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const int64_t B = bt->B, T = bt->T;
    int32_t *tokens = bt->tokens, *targets = bt->targets;
    regbench *x = t->impl;
    if (B > x->cap) {
        const size_t bytes = (size_t)B * sizeof *x->dfa;
        sl_regbench_dfa *d = realloc(x->dfa, bytes);
        if (!d) sl_out_of_memory("task 'regbench': the DFAs of a batch", bytes);
        x->dfa = d;
        x->cap = B;
    }
    x->rows = B;
    for (int64_t b = 0; b < B; b++)
        sl_synth_require(sl_regbench_example(&x->o, sl_synth_row_seed(&x->split, split, rng, bt, b),
                                             split, T, tokens + b * T, targets + b * T,
                                             &x->dfa[b]));
}

/* "dfa_accuracy": the share of counted positions whose predicted next
 * token the row's DFA accepts (sl_regbench_accepts), the paper's metric;
 * out: [R, V] logits of rows' counted positions. */
static sl_status regbench_score(sl_task *t, const sl_batch *b, const sl_tensor *out,
                                const sl_batch *rows, sl_scores *s)
{
    const int64_t R = sl_rows(out), V = sl_last(out);
    sl_status st = SL_OK;
    for (int64_t r = 0; r < R && !st; r++) {
        if (rows->targets[r] < 0) continue;
        const int64_t p = rows->pos ? rows->pos[r] : r, row = p / b->T;
        const bool ok = sl_regbench_accepts(sl_regbench_row_dfa(t, row), b->tokens + row * b->T,
                                            p % b->T, (int32_t)sl_argmax(out->data + r * V, V));
        st = sl_scores_add(s, "dfa_accuracy", ok);
    }
    return st;
}

static int64_t regbench_split_size(const sl_task *t, sl_split split)
{
    return sl_synth_split_size(&((const regbench *)t->impl)->split, split);
}

static void regbench_close(sl_task *t)
{
    regbench *x = t->impl;
    free(x->dfa);
    free(x);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    SL_SYNTH_SPLIT_OPTIONS,
    {"states_min", SL_OPT_INT, "4", 1, SL_REGBENCH_MAX, NULL, "fewest DFA states"},
    {"states_max", SL_OPT_INT, "12", 1, SL_REGBENCH_MAX, NULL, "most DFA states"},
    {"letters_min", SL_OPT_INT, "4", 1, SL_REGBENCH_MAX, NULL, "smallest alphabet of a DFA"},
    {"letters_max", SL_OPT_INT, "18", 1, SL_REGBENCH_MAX, NULL,
     "largest alphabet; also the letters L of the vocabulary (L letters, separator, padding)"},
    {"edges_min", SL_OPT_INT, "1", 1, SL_REGBENCH_MAX, NULL, "fewest out-edges of a state"},
    {"edges_max", SL_OPT_INT, "3", 1, SL_REGBENCH_MAX, NULL,
     "most out-edges of a state (at most letters_min)"},
    {"strings_min", SL_OPT_INT, "10", 1, 1e6, NULL, "fewest strings per problem"},
    {"strings_max", SL_OPT_INT, "19", 1, 1e6, NULL, "most strings per problem"},
    {"len_min", SL_OPT_INT, "1", 1, 1e6, NULL, "shortest string"},
    {"len_max", SL_OPT_INT, "49", 1, 1e6, NULL, "longest string"},
};

const sl_task_vtable sl_task_regbench = {
    .name = "regbench",
    .desc = "in-context language learning (RegBench): strings of a random DFA, \"w1 | w2 | ...\", "
            "next-token targets; held-out languages by construction",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = regbench_open,
    .batch = regbench_batch,
    .split_size = regbench_split_size,
    .score = regbench_score,
    .close = regbench_close,
};
