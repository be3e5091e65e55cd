/* The listops task: the reference evaluator on hand-made expressions,
 * every generated row well formed (depth, argument counts, length) with
 * its label the evaluator's value, the label and length distributions
 * docs/tasks.md reports, splits, bad options. */
#include <stdlib.h>

#include "check.h"
#include "synth_batch_check.h"
#include "tasks/listops.h"

extern const sl_task_vtable sl_task_listops;

static const sl_listops_opts LRA = {10, 10, 0.75, 500, 2000};

static void test_splits(void)
{
    const uint64_t golden[3] = {0x163d49f397df3e70ull, 0x4b4ba5c28b50dfd1ull, 0xcc8901060746765cull};
    synth_check_io_splits(&sl_task_listops, 2000, NULL, golden, 2000);
}

/* Text to ids: "[MIN" "[MAX" "[MED" "[SM" "]" and digits, space separated. */
static int64_t parse(const char *s, int32_t *out)
{
    static const char *const ops[] = {"[MIN", "[MAX", "[MED", "[SM", "]", "CLS"};
    int64_t n = 0;
    while (*s) {
        while (*s == ' ') s++;
        if (!*s) break;
        size_t w = strcspn(s, " ");
        int32_t id = -2;
        if (w == 1 && *s >= '0' && *s <= '9') id = *s - '0';
        for (int k = 0; k < 6; k++)
            if (strlen(ops[k]) == w && !strncmp(s, ops[k], w)) id = SL_LISTOPS_MIN + k;
        out[n++] = id;
        s += w;
    }
    return n;
}

static void test_hand_made_trees(void)
{
    static const struct { const char *expr; int32_t value; } cases[] = {
        {"7", 7},
        {"[MAX 2 9 [MIN 4 7 ] 0 ]", 9},
        {"[MIN 2 9 [MIN 4 7 ] 0 ]", 0},
        {"[MED 3 4 ]", 3}, /* int(3.5) */
        {"[MED 0 9 ]", 4},
        {"[MED 9 1 2 ]", 2},
        {"[MED 5 5 1 9 ]", 5},
        {"[MED 8 1 9 2 ]", 5}, /* int((2 + 8) / 2) */
        {"[SM 9 8 7 ]", 4},
        {"[SM 0 0 ]", 0},
        {"[SM [MAX 1 2 ] [MIN 5 6 ] ]", 7},
        {"[MAX [SM 5 5 ] [MED 1 2 3 4 ] ]", 2},
        {"[MIN [MAX 3 [SM 4 4 ] ] [MED 9 [MAX 0 1 ] 9 ] 8 ]", 8},
        {"[SM [SM [SM [SM 9 9 ] 9 ] 9 ] 9 ]", 5},
        {"[MAX 4 ]", 4}, /* one argument: LRA never makes it, but it has a value */
        {"", -1},
        {"[MAX ]", -1},
        {"[MAX 2 3", -1},
        {"2 3", -1},
        {"]", -1},
        {"[MAX 2 ] 3", -1},
        {"[MAX 2 ] ]", -1},
        {"CLS [MAX 2 3 ]", -1},
        {"[MIN", -1},
    };
    int32_t tok[64];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t n = parse(cases[c].expr, tok);
        const int32_t v = sl_listops_value(tok, n);
        CHECK(v == cases[c].value, "\"%s\": %d, expected %d", cases[c].expr, v, cases[c].value);
    }
}

/* Row checks: the class token, then one expression with min < n < max
 * tokens, operators nested at most max_depth - 1 deep and each with 2 ..
 * max_args arguments, value = label; zeros after. */
static void check_row(const sl_listops_opts *o, const int32_t *row, int64_t T, int64_t len,
                      int32_t label)
{
    CHECK(row[0] == SL_LISTOPS_CLS, "class token first");
    const int64_t n = len - 1;
    CHECK(n > o->min_length && n < o->max_length, "length %lld", (long long)n);
    CHECK(sl_listops_value(row + 1, n) == label, "label %d, value %d", label,
          sl_listops_value(row + 1, n));
    int64_t args[64], open = 0, deepest = 0;
    for (int64_t i = 1; i < len; i++) {
        const int32_t x = row[i];
        if (x >= SL_LISTOPS_MIN && x <= SL_LISTOPS_SM) {
            if (open) args[open - 1]++;
            args[open++] = 0;
            deepest = open > deepest ? open : deepest;
        } else if (x == SL_LISTOPS_CLOSE) {
            open--;
            CHECK(args[open] >= 2 && args[open] <= o->max_args, "%lld arguments",
                  (long long)args[open]);
        } else {
            CHECK(x >= 0 && x <= 9, "token %d", x);
            if (open) args[open - 1]++;
        }
    }
    CHECK(deepest <= o->max_depth - 1, "operators %lld deep", (long long)deepest);
    for (int64_t i = len; i < T; i++) CHECK(row[i] == 0, "padding");
}

static void test_rows(void)
{
    const sl_listops_opts small = {3, 4, 0.5, 5, 30};
    const sl_listops_opts *os[2] = {&LRA, &small};
    const int64_t Ts[2] = {2000, 40};
    for (int k = 0; k < 2; k++) {
        int32_t *row = malloc(sizeof(int32_t) * (size_t)Ts[k]);
        for (uint64_t s = 0; s < 300; s++) {
            int64_t len;
            int32_t label;
            CHECK(sl_listops_example(os[k], s * 31 + 1, Ts[k], row, &len, &label) == SL_OK, "%s",
                  sl_errmsg());
            check_row(os[k], row, Ts[k], len, label);
        }
        free(row);
    }
}

/* docs/tasks.md reports the label and length distributions of 20000 rows
 * (from tools/check_tasks_doc.py --stats); 4000 rows here agree with
 * them within 5 standard deviations. */
static void test_distributions(void)
{
    static const double share[10] = {0.1663, 0.0927, 0.0781, 0.0813, 0.0909,
                                     0.0858, 0.0798, 0.0702, 0.0891, 0.1658};
    enum { N = 4000 };
    int64_t count[10] = {0};
    double sum = 0;
    int32_t *row = malloc(sizeof(int32_t) * 2000);
    for (uint64_t s = 0; s < N; s++) {
        int64_t len;
        int32_t label;
        sl_listops_example(&LRA, sl_synth_mix(s), 2000, row, &len, &label);
        count[label]++;
        sum += (double)(len - 1);
    }
    free(row);
    for (int c = 0; c < 10; c++) {
        const double p = share[c], sd = sqrt(N * p * (1 - p));
        CHECK(fabs(count[c] - N * p) <= 5 * sd, "label %d: %lld of %d, expected %.0f", c,
              (long long)count[c], N, N * p);
    }
    CHECK(fabs(sum / N - 1039.3) < 25, "mean length %.1f", sum / N);
}

static void test_bad_options(void)
{
    const char *const close[] = {"min_length", "1999", NULL};
    synth_check_rejects(&sl_task_listops, 2000, close, "min_length");
    synth_check_rejects(&sl_task_listops, 1999, NULL, "seq_len");
    const char *const leaves[] = {"leaf_p", "1", NULL};
    synth_check_rejects(&sl_task_listops, 2000, leaves, "leaf_p");
    const char *const shallow[] = {"max_depth", "2", "max_args", "3", NULL};
    synth_check_rejects(&sl_task_listops, 2000, shallow, "max_depth");
    sl_opts o;
    sl_opts_defaults(&o, sl_task_listops.options);
    CHECK(sl_opts_set(&o, "task 'listops'", "test", "max_args", "1", SL_FROM_TEXT) ==
                  SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "max_args"),
          "%s", sl_errmsg());
    CHECK(sl_opts_set(&o, "task 'listops'", "test", "leaf_p", "1.5", SL_FROM_TEXT) == SL_ERR_CONFIG,
          "%s", sl_errmsg());
    /* Short trees open and run at a short seq_len. */
    const char *const short_rows[] = {"min_length", "10", "max_length", "60", NULL};
    sl_task t;
    CHECK(synth_open(&t, &sl_task_listops, 60, short_rows) == SL_OK, "%s", sl_errmsg());
    CHECK(t.io.head == SL_HEAD_CLASSIFY && t.io.n_out == 10 && t.io.pool == SL_POOL_FIRST &&
              t.vocab_size == SL_LISTOPS_VOCAB,
          "io");
    sl_task_close(&t);
}

int main(void)
{
    RUN(test_splits);
    RUN(test_hand_made_trees);
    RUN(test_rows);
    RUN(test_distributions);
    RUN(test_bad_options);
    return TEST_SUMMARY();
}
