/* The induction_heads task: one special token early and one last, target
 * the token after the first; any length; splits, bad options. */
#include <stdlib.h>

#include "check.h"
#include "synth_check.h"
#include "tasks/induction_heads.h"

extern const sl_task_vtable sl_task_induction_heads;

static void test_splits(void)
{
    const uint64_t golden[3] = {0x50abbcbd53f4a4a6ull, 0x8e35182b54423b6full, 0x6490c6c5bc332c00ull};
    synth_check_splits(&sl_task_induction_heads, 256, NULL, golden);
}

/* At training length and far past it: the special token V-1 occurs at
 * p < T-3 and at T-1 only; the one target (at T-1) is the token after p;
 * the other tokens are content, in [1, V-2]. */
static void test_target_follows_the_special_token(void)
{
    static const int64_t lengths[] = {4, 5, 64, 256, 4096, 1 << 16};
    const sl_induction_opts o = {16};
    for (size_t c = 0; c < sizeof lengths / sizeof lengths[0]; c++) {
        const int64_t T = lengths[c];
        int32_t *tok = malloc(sizeof(int32_t) * 2 * T), *tgt = tok + T;
        for (uint64_t s = 0; s < 20; s++) {
            CHECK(sl_induction_example(&o, s, T, tok, tgt) == SL_OK, "%s", sl_errmsg());
            int64_t first = -1, specials = 0;
            for (int64_t t = 0; t < T; t++) {
                if (tok[t] == 15) {
                    specials++;
                    if (first < 0) first = t;
                } else {
                    CHECK(tok[t] >= 1 && tok[t] <= 14, "content token %d", tok[t]);
                }
                if (t < T - 1) CHECK(tgt[t] == -1, "one target only");
            }
            CHECK(specials == 2 && first < T - 3 && tok[T - 1] == 15, "layout, T = %lld",
                  (long long)T);
            CHECK(first >= 0 && tgt[T - 1] == tok[first + 1], "target after the special token");
        }
        free(tok);
    }
}

/* The task makes rows of any length asked for, not only its seq_len. */
static void test_longer_rows(void)
{
    sl_task t;
    CHECK(synth_open(&t, &sl_task_induction_heads, 256, NULL) == SL_OK, "%s", sl_errmsg());
    enum { B = 2, T = 1 << 12 };
    int32_t *tok = malloc(sizeof(int32_t) * 2 * B * T), *tgt = tok + B * T;
    synth_batch(&t, SL_SPLIT_TEST, 3, B, T, tok, tgt);
    for (int b = 0; b < B; b++)
        CHECK(tok[b * T + T - 1] == 15 && tgt[b * T + T - 1] >= 1, "row %d", b);
    free(tok);
    sl_task_close(&t);
}

static void test_bad_options(void)
{
    synth_check_rejects(&sl_task_induction_heads, 3, NULL, "seq_len");
    sl_opts o;
    sl_opts_defaults(&o, sl_task_induction_heads.options);
    CHECK(sl_opts_set(&o, "task 'induction_heads'", "test", "vocab", "2", SL_FROM_TEXT) ==
              SL_ERR_CONFIG,
          "%s", sl_errmsg());
}

int main(void)
{
    RUN(test_splits);
    RUN(test_target_follows_the_special_token);
    RUN(test_longer_rows);
    RUN(test_bad_options);
    return TEST_SUMMARY();
}
