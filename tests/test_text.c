/* The text task: vocabulary, split by line, batches shifted by one. */
#include <string.h>

#include "check.h"
#include "tasks/task.h"

static const char *path = "/tmp/seqlab-test-text.txt";

static void test_vocab_splits_batches(void)
{
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 2000; i++) fprintf(f, "line %d says abc\n", i);
    fclose(f);
    sl_config c;
    sl_config_defaults(&c);
    snprintf(c.data, sizeof c.data, "%s", path);
    c.seq_len = 32;
    sl_task t;
    CHECK(sl_task_open(&t, &c, "") == SL_OK, "%s", sl_errmsg());
    CHECK(strcmp(t.vocab, "\n 0123456789abceilnsy") == 0, "sorted byte vocabulary: %s", t.vocab);
    CHECK(t.vocab_size == 21, "size");
    sl_rng r;
    sl_rng_seed(&r, 1);
    int32_t tok[4 * 32], tgt[4 * 32];
    t.vt->batch(&t, SL_SPLIT_VAL, &r, 4, 32, tok, tgt);
    for (int b = 0; b < 4; b++)
        for (int i = 0; i + 1 < 32; i++) CHECK(tgt[b * 32 + i] == tok[b * 32 + i + 1], "shifted");
    sl_task_close(&t);
    /* Reopening with the vocabulary of a checkpoint gives the same ids. */
    CHECK(sl_task_open(&t, &c, "\n 0123456789abceilnsy") == SL_OK, "reopen");
    sl_task_close(&t);
    CHECK(sl_task_open(&t, &c, "abc") == SL_ERR_ARG && strstr(sl_errmsg(), path) &&
              strstr(sl_errmsg(), "not in the vocabulary"),
          "%s", sl_errmsg());
}

static void test_split_fractions(void)
{
    /* Lines are sent to splits by a fixed hash: ~90/5/5. */
    sl_config c;
    sl_config_defaults(&c);
    snprintf(c.data, sizeof c.data, "%s", path);
    c.seq_len = 8;
    sl_task t;
    CHECK(sl_task_open(&t, &c, "") == SL_OK, "open");
    int64_t len[3];
    for (int k = 0; k < 3; k++) len[k] = t.vt->split_size(&t, (sl_split)k);
    double total = (double)(len[0] + len[1] + len[2]);
    CHECK(len[0] / total > 0.86 && len[0] / total < 0.94, "train %g", len[0] / total);
    CHECK(len[1] / total > 0.03 && len[1] / total < 0.07, "val %g", len[1] / total);
    CHECK(len[2] / total > 0.03 && len[2] / total < 0.07, "test %g", len[2] / total);
    sl_task_close(&t);
    remove(path);
}

static void test_encode_reports_character(void)
{
    int32_t ids[8];
    CHECK(sl_vocab_encode("abc", "abca", 4, ids) == SL_OK && ids[3] == 0, "ok");
    CHECK(sl_vocab_encode("abc", "abxa", 4, ids) == SL_ERR_ARG && strstr(sl_errmsg(), "'x'") &&
              strstr(sl_errmsg(), "offset 2"),
          "%s", sl_errmsg());
}

int main(void)
{
    RUN(test_vocab_splits_batches);
    RUN(test_split_fractions);
    RUN(test_encode_reports_character);
    return TEST_SUMMARY();
}
