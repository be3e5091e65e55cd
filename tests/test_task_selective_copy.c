/* The selective_copy task: layout, answer = the data tokens in order,
 * splits, bad options. */
#include <stdlib.h>

#include "check.h"
#include "synth_check.h"
#include "tasks/selective_copy.h"

extern const sl_task_vtable sl_task_selective_copy;

static void test_splits(void)
{
    const uint64_t golden[3] = {0x6efeb0da30e019a3ull, 0xec6e373f9777ab33ull, 0xd8bfb68b2397e473ull};
    synth_check_splits(&sl_task_selective_copy, 64, NULL, golden);
}

/* Noise is 0, the M data tokens are in [1, V-2], the last M tokens are
 * markers V-1 whose targets are the data tokens read left to right; no
 * other targets. */
static void test_answer_is_the_data_in_order(void)
{
    static const struct { int64_t V, M, T; } cases[] = {{16, 16, 4096}, {16, 16, 32}, {5, 3, 10}, {16, 1, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const sl_selcopy_opts o = {cases[c].V, cases[c].M};
        const int64_t V = o.vocab, M = o.num_tokens, T = cases[c].T;
        int32_t *tok = malloc(sizeof(int32_t) * 2 * T), *tgt = tok + T;
        int64_t moved = 0;
        for (uint64_t s = 0; s < 50; s++) {
            CHECK(sl_selcopy_example(&o, s, T, tok, tgt) == SL_OK, "%s", sl_errmsg());
            int64_t j = 0;
            for (int64_t t = 0; t < T - M; t++) {
                CHECK(tgt[t] == -1, "no target before the markers");
                if (tok[t] == 0) continue;
                CHECK(tok[t] >= 1 && tok[t] <= V - 2, "data token %d", tok[t]);
                CHECK(j < M && tgt[T - M + j] == tok[t], "answer %lld", (long long)j);
                moved += t != j;
                j++;
            }
            CHECK(j == M, "%lld data tokens", (long long)j);
            for (int64_t t = T - M; t < T; t++) CHECK(tok[t] == V - 1, "marker");
        }
        if (T >= 4 * M) CHECK(moved > 0, "data tokens spread out, not at the start");
        free(tok);
    }
}

static void test_bad_options(void)
{
    synth_check_rejects(&sl_task_selective_copy, 31, NULL, "num_tokens");
    sl_opts o;
    sl_opts_defaults(&o, sl_task_selective_copy.options);
    CHECK(sl_opts_set(&o, "task 'selective_copy'", "test", "vocab", "2", SL_FROM_TEXT) ==
              SL_ERR_CONFIG,
          "%s", sl_errmsg());
}

int main(void)
{
    RUN(test_splits);
    RUN(test_answer_is_the_data_in_order);
    RUN(test_bad_options);
    return TEST_SUMMARY();
}
