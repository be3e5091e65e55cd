/* listops: Long Range Arena's ListOps (docs/tasks.md, "listops"), the
 * recursion of lra_benchmarks/data/listops.py with its input pipeline's
 * tokens (parentheses dropped, `]` kept).
 *
 * A node shallower than max_depth is a digit with probability leaf_p, else
 * an operator over 2 .. max_args nodes one level deeper, drawn after its
 * arguments as LRA draws it. Trees are drawn until one has between
 * min_length and max_length tokens (rejection sampling; a tree is
 * abandoned as soon as it reaches max_length, which changes nothing but
 * the time spent). A row is the class token, then the expression in prefix
 * order ("[MAX 2 9 [MIN 4 7 ] 0 ]"); its class is the value. */
#include <stdlib.h>

#include "tasks/listops.h"
#include "tasks/synth.h"
#include "tasks/task.h"

#define MAX_TRIES (1 << 20)

sl_status sl_listops_check(const sl_listops_opts *o, int64_t T)
{
    if (o->min_length >= o->max_length - 1)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'listops': options min_length = %lld and max_length = %lld: expected "
                       "min_length < max_length - 1 (lengths strictly between them)",
                       (long long)o->min_length, (long long)o->max_length);
    if (T < o->max_length)
        return sl_fail(SL_ERR_CONFIG,
                       "task 'listops': seq_len = %lld: expected at least max_length = %lld (the "
                       "class token and up to max_length - 1 expression tokens)",
                       (long long)T, (long long)o->max_length);
    return SL_OK;
}

/* One tree being drawn: buf receives its tokens in prefix order (op
 * placeholders filled once the op is drawn); n counts them with the
 * closing brackets of the operators still open. */
typedef struct tree {
    const sl_listops_opts *o;
    sl_rng *r;
    int32_t *buf; /* [max_length + 2] */
    int64_t pos, n;
} tree;

/* The value of an operator over digits given as counts (count[d]: how
 * many arguments are d; k in all). */
static int32_t apply(int32_t op, const int64_t count[10], int64_t k)
{
    int32_t lo = 0, hi = 9, sum = 0;
    while (!count[lo]) lo++;
    while (!count[hi]) hi--;
    for (int32_t d = 0; d < 10; d++) sum = (int32_t)((sum + count[d] * d) % 10);
    if (op == SL_LISTOPS_MIN) return lo;
    if (op == SL_LISTOPS_MAX) return hi;
    if (op == SL_LISTOPS_SM) return sum;
    /* MED: the arguments sorted are d repeated count[d] times; the middle
     * one, or the two middle ones' mean rounded down (int(np.median)). */
    int32_t a = -1, b = -1;
    for (int32_t d = 0, seen = 0; d < 10; seen += (int32_t)count[d], d++) {
        if (a < 0 && seen + count[d] > (k - 1) / 2) a = d;
        if (b < 0 && seen + count[d] > k / 2) b = d;
    }
    return (a + b) / 2;
}

/* Draws the node at `depth` and below; its value, or -1 when the tree
 * reached max_length tokens (abandoned: no further draws). */
static int32_t draw_node(tree *t, int64_t depth)
{
    if (t->n >= t->o->max_length) return -1;
    if (depth >= t->o->max_depth || sl_synth_unit(t->r) < t->o->leaf_p) {
        const int32_t d = (int32_t)sl_rng_below(t->r, 10);
        t->buf[t->pos++] = d;
        t->n++;
        return d;
    }
    const int64_t k = 2 + (int64_t)sl_rng_below(t->r, (uint64_t)(t->o->max_args - 1));
    const int64_t at = t->pos++;
    t->n += 2;
    int64_t count[10] = {0};
    for (int64_t i = 0; i < k; i++) {
        const int32_t v = draw_node(t, depth + 1);
        if (v < 0) return -1;
        count[v]++;
    }
    const int32_t op = SL_LISTOPS_MIN + (int32_t)sl_rng_below(t->r, 4);
    t->buf[at] = op;
    t->buf[t->pos++] = SL_LISTOPS_CLOSE;
    return apply(op, count, k);
}

sl_status sl_listops_example(const sl_listops_opts *o, uint64_t seed, int64_t T, int32_t *tokens,
                             int64_t *len, int32_t *label)
{
    sl_status st = sl_listops_check(o, T);
    if (st) return st;
    const size_t bytes = (size_t)(o->max_length + 2) * sizeof(int32_t);
    int32_t *buf = malloc(bytes);
    if (!buf) return sl_fail(SL_ERR_OOM, "task 'listops': a tree's tokens (%zu bytes)", bytes);
    sl_rng r;
    sl_rng_seed(&r, seed);
    tree t = {o, &r, buf, 0, 0};
    int32_t v = -1;
    for (int64_t tries = 0; v < 0 && tries < MAX_TRIES; tries++) {
        t.pos = t.n = 0;
        v = draw_node(&t, 1);
        if (v >= 0 && (t.n <= o->min_length || t.n >= o->max_length)) v = -1;
    }
    if (v < 0) {
        free(buf);
        return sl_fail(SL_ERR_CONFIG,
                       "task 'listops': no expression of min_length = %lld < tokens < max_length = "
                       "%lld turned up in %d trees: the max_depth, max_args and leaf_p options "
                       "make too few that long",
                       (long long)o->min_length, (long long)o->max_length, MAX_TRIES);
    }
    tokens[0] = SL_LISTOPS_CLS;
    for (int64_t i = 0; i < t.n; i++) tokens[1 + i] = buf[i];
    for (int64_t i = t.n + 1; i < T; i++) tokens[i] = 0;
    *len = t.n + 1;
    *label = v;
    free(buf);
    return SL_OK;
}

static int cmp_digit(const void *a, const void *b)
{
    return *(const int32_t *)a - *(const int32_t *)b;
}

/* The value of operator op over its arguments a[0 .. k), as LRA's
 * to_value computes it (MED: int(np.median(a))); sorts a. */
static int32_t reduce(int32_t op, int32_t *a, int64_t k)
{
    qsort(a, (size_t)k, sizeof *a, cmp_digit);
    int64_t sum = 0;
    for (int64_t i = 0; i < k; i++) sum += a[i];
    switch (op) {
    case SL_LISTOPS_MIN: return a[0];
    case SL_LISTOPS_MAX: return a[k - 1];
    case SL_LISTOPS_SM: return (int32_t)(sum % 10);
    default: return k % 2 ? a[k / 2] : (int32_t)((a[k / 2 - 1] + a[k / 2]) / 2.0);
    }
}

int32_t sl_listops_value(const int32_t *tokens, int64_t n)
{
    /* args: the values of the finished subexpressions, in order; op[i] an
     * open operator whose arguments are args[start[i] ..]. A `]` replaces
     * the innermost operator's arguments by its value. */
    const size_t bytes = (size_t)(n + 1) * (2 * sizeof(int32_t) + sizeof(int64_t));
    int64_t *start = malloc(bytes);
    if (!start) sl_out_of_memory("sl_listops_value: its stacks", bytes);
    int32_t *op = (int32_t *)(start + n + 1), *args = op + n + 1;
    int64_t nops = 0, nargs = 0;
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i++) {
        const int32_t x = tokens[i];
        if (x >= 0 && x <= 9) {
            args[nargs++] = x;
        } else if (x >= SL_LISTOPS_MIN && x <= SL_LISTOPS_SM) {
            op[nops] = x;
            start[nops++] = nargs;
        } else if (x == SL_LISTOPS_CLOSE && nops > 0 && nargs > start[nops - 1]) {
            nops--;
            const int32_t v = reduce(op[nops], args + start[nops], nargs - start[nops]);
            nargs = start[nops];
            args[nargs++] = v;
        } else {
            ok = false;
        }
    }
    const int32_t v = ok && nops == 0 && nargs == 1 ? args[0] : -1;
    free(start);
    return v;
}

typedef struct listops {
    sl_listops_opts o;
    sl_synth_split split;
} listops;

static sl_status listops_open(sl_task *t, const sl_task_env *env)
{
    listops *x = calloc(1, sizeof *x);
    if (!x) return sl_fail(SL_ERR_OOM, "task 'listops': out of memory");
    t->impl = x;
    x->o = (sl_listops_opts){.max_depth = sl_opt_int(env->opts, "max_depth"),
                             .max_args = sl_opt_int(env->opts, "max_args"),
                             .leaf_p = sl_opt_float(env->opts, "leaf_p"),
                             .min_length = sl_opt_int(env->opts, "min_length"),
                             .max_length = sl_opt_int(env->opts, "max_length")};
    x->split = sl_synth_split_opts(env->opts);
    t->vocab_size = SL_LISTOPS_VOCAB;
    t->io = (sl_task_io){.input = SL_INPUT_TOKENS, .head = SL_HEAD_CLASSIFY, .n_out = 10,
                         .pool = SL_POOL_FIRST};
    sl_status st = sl_listops_check(&x->o, env->seq_len);
    if (st) return st;
    /* One example of each split, so that options leaving too few trees of
     * an allowed length fail here rather than in a batch. */
    const int64_t T = x->o.max_length;
    int32_t *row = malloc((size_t)T * sizeof *row), label;
    if (!row) return sl_fail(SL_ERR_OOM, "task 'listops': a row of %lld tokens", (long long)T);
    int64_t len;
    for (int s = 0; s < 3 && !st; s++)
        st = sl_listops_example(&x->o, sl_synth_example_seed(x->split.seed, (sl_split)s, 0), T, row,
                                &len, &label);
    free(row);
    return st;
}

/* tokens: [B*T]; lengths, targets: [B]. */
static void listops_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const int64_t B = bt->B, T = bt->T;
    const listops *x = t->impl;
    for (int64_t b = 0; b < B; b++)
        sl_synth_require(sl_listops_example(&x->o, sl_synth_row_seed(&x->split, split, rng, bt, b), T,
                                            bt->tokens + b * T, &bt->lengths[b], &bt->targets[b]));
}

static int64_t listops_split_size(const sl_task *t, sl_split split)
{
    return sl_synth_split_size(&((const listops *)t->impl)->split, split);
}

static void listops_close(sl_task *t)
{
    free(t->impl);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    SL_SYNTH_SPLIT_OPTIONS_N("2000"),
    {"max_depth", SL_OPT_INT, "10", 1, 64, NULL,
     "deepest level of the tree (the root is level 1; level max_depth holds digits only)"},
    {"max_args", SL_OPT_INT, "10", 2, 1 << 20, NULL, "an operator takes 2 .. max_args arguments"},
    {"leaf_p", SL_OPT_FLOAT, "0.75", 0, 1, NULL,
     "probability that a node shallower than max_depth is a digit rather than an operator"},
    {"min_length", SL_OPT_INT, "500", 0, 1 << 24, NULL,
     "expressions have more than min_length tokens (rejection sampling)"},
    {"max_length", SL_OPT_INT, "2000", 2, 1 << 24, NULL,
     "expressions have fewer than max_length tokens; seq_len >= max_length"},
};

const sl_task_vtable sl_task_listops = {
    .name = "listops",
    .desc = "ListOps (Long Range Arena): nested MIN/MAX/MED/SM expressions of 500-2000 tokens, "
            "classified by their value (10 classes)",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = listops_open,
    .batch = listops_batch,
    .split_size = listops_split_size,
    .close = listops_close,
};
