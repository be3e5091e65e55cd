/* The regbench task: strings accepted by their DFA, the acceptance
 * function against a brute-force simulation, held-out languages, splits,
 * bad options. */
#include <stdlib.h>

#include "check.h"
#include "synth_check.h"
#include "tasks/regbench.h"

extern const sl_task_vtable sl_task_regbench;

static const sl_regbench_opts DEFAULTS = {{4, 12}, {4, 18}, {1, 3}, {10, 19}, {1, 49}};

static void test_splits(void)
{
    const uint64_t golden[3] = {0x01e7908324ee46baull, 0x74ddb69a6e7b04e0ull, 0xe00b6308f6a3b629ull};
    synth_check_splits(&sl_task_regbench, 256, NULL, golden);
}

/* Acceptance by brute force: the DFA as a list of edges (q, a, q'), the
 * set of states the word reaches simulated edge by edge. */
static bool brute_accepts(const sl_regbench_dfa *d, const int32_t *w, int64_t n)
{
    int32_t from[SL_REGBENCH_MAX * SL_REGBENCH_MAX], by[SL_REGBENCH_MAX * SL_REGBENCH_MAX],
        to[SL_REGBENCH_MAX * SL_REGBENCH_MAX], m = 0;
    for (int32_t q = 0; q < d->n_states; q++)
        for (int32_t a = 0; a < d->n_letters; a++)
            if (d->next[q][a] >= 0) from[m] = q, by[m] = a, to[m] = d->next[q][a], m++;
    bool cur[SL_REGBENCH_MAX] = {true}, nxt[SL_REGBENCH_MAX];
    for (int64_t i = 0; i < n; i++) {
        memset(nxt, 0, sizeof nxt);
        bool any = false;
        for (int32_t e = 0; e < m; e++)
            if (cur[from[e]] && by[e] == w[i]) nxt[to[e]] = any = true;
        if (!any) return false;
        memcpy(cur, nxt, sizeof cur);
    }
    return true;
}

/* Every row: its stream is strings of letters each closed by the
 * separator, then padding; every string is accepted by the row's DFA;
 * targets are the next token; and sl_regbench_accepts agrees with the
 * brute force at every position for every candidate token. */
static void test_strings_and_acceptance(void)
{
    sl_task t;
    CHECK(synth_open(&t, &sl_task_regbench, 512, NULL) == SL_OK, "%s", sl_errmsg());
    CHECK(t.vocab_size == 20, "18 letters, separator, padding: %lld", (long long)t.vocab_size);
    enum { B = 8, T = 512 };
    int32_t *tok = malloc(sizeof(int32_t) * 2 * B * T), *tgt = tok + B * T;
    const int32_t sep = 18, pad = 19;
    for (int s = 0; s < 3; s++) {
        synth_batch(&t, (sl_split)s, 11, B, T, tok, tgt);
        CHECK(!sl_regbench_row_dfa(&t, B), "no row B");
        for (int b = 0; b < B; b++) {
            const sl_regbench_dfa *d = sl_regbench_row_dfa(&t, b);
            const int32_t *row = tok + b * T, *trow = tgt + b * T;
            CHECK(d && sl_regbench_class(d) == (sl_split)s, "row %d: a DFA of split %d", b, s);
            if (!d) continue;
            int64_t start = 0, n = T, strings = 0;
            for (int64_t i = 0; i < T; i++) {
                if (row[i] == pad) {
                    if (n == T) n = i;
                    continue;
                }
                CHECK(n == T, "nothing after padding");
                if (i + 1 < T) CHECK(trow[i] == (row[i + 1] == pad ? -1 : row[i + 1]), "next token");
                if (row[i] != sep) continue;
                CHECK(i > start && i - start <= 49, "string of 1..49 letters");
                CHECK(brute_accepts(d, row + start, i - start), "string accepted");
                strings++;
                start = i + 1;
            }
            CHECK(strings >= 1 && (n == T || strings >= 10), "%lld strings", (long long)strings);
            if (n < T) CHECK(strings <= 19 && trow[n - 1] == -1, "complete problem");
            for (int64_t i = 0; i < T; i++) {
                int64_t s0 = i + 1;
                while (s0 > 0 && row[s0 - 1] != sep) s0--;
                int32_t w[T + 1];
                int64_t len = 0;
                bool ok = true;
                for (int64_t k = s0; k <= i; k++) {
                    ok = ok && row[k] < sep;
                    w[len++] = row[k];
                }
                for (int32_t c = -1; c <= pad; c++) {
                    bool want = ok && c >= 0 && c != pad &&
                                (c == sep ? len > 0 : brute_accepts(d, (w[len] = c, w), len + 1));
                    CHECK(sl_regbench_accepts(d, row, i, c) == want, "row %d t %lld next %d", b,
                          (long long)i, c);
                }
                if (trow[i] >= 0)
                    CHECK(sl_regbench_accepts(d, row, i, trow[i]), "the true next token");
            }
        }
    }
    free(tok);
    sl_task_close(&t);
}

/* Each split draws only its own languages; a language's class does not
 * depend on how its DFA is drawn: renumbered states, an unreachable state
 * and a duplicate of the start state give the same class. */
static void test_language_classes(void)
{
    for (uint64_t s = 0; s < 3000; s++) {
        sl_regbench_dfa d, e;
        int32_t tok[1], tgt[1];
        const sl_split split = (sl_split)(s % 3);
        CHECK(sl_regbench_example(&DEFAULTS, s, split, 1, tok, tgt, &d) == SL_OK, "%s",
              sl_errmsg());
        CHECK(sl_regbench_class(&d) == split, "seed %llu: a language of its split",
              (unsigned long long)s);
        /* d's state q becomes 0 (q = 0) or S + 1 - q, leaving 1 and S + 1
         * free: 1 unreachable, S + 1 a copy of the start state that one of
         * the start state's self-loops (if any) now enters. */
        const int32_t S = d.n_states;
        memset(&e, -1, sizeof e);
        e.n_states = S + 2;
        e.n_letters = d.n_letters;
        int32_t map[SL_REGBENCH_MAX];
        for (int32_t q = 0; q < S; q++) map[q] = q == 0 ? 0 : S + 1 - q;
        for (int32_t q = 0; q < S; q++)
            for (int32_t a = 0; a < d.n_letters; a++)
                e.next[map[q]][a] = d.next[q][a] < 0 ? -1 : (int8_t)map[d.next[q][a]];
        e.next[1][0] = 1;
        memcpy(e.next[S + 1], e.next[0], sizeof e.next[0]);
        for (int32_t a = 0; a < d.n_letters; a++)
            if (e.next[0][a] == 0) {
                e.next[0][a] = (int8_t)(S + 1);
                break;
            }
        CHECK(sl_regbench_class(&e) == split, "seed %llu: same language, same class",
              (unsigned long long)s);
    }
}

static void test_bad_options(void)
{
    const char *const states[] = {"states_min", "13", NULL};
    synth_check_rejects(&sl_task_regbench, 64, states, "states_min");
    const char *const edges[] = {"edges_max", "5", NULL};
    synth_check_rejects(&sl_task_regbench, 64, edges, "edges_max");
    /* one state, one letter: a single language, so two splits have none */
    const char *const tiny[] = {"states_min", "1", "states_max", "1", "letters_min", "1",
                                "letters_max", "1", "edges_max", "1", NULL};
    synth_check_rejects(&sl_task_regbench, 64, tiny, "languages");
}

int main(void)
{
    RUN(test_splits);
    RUN(test_strings_and_acceptance);
    RUN(test_language_classes);
    RUN(test_bad_options);
    return TEST_SUMMARY();
}
