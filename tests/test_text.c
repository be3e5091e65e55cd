/* The text task: vocabulary, split by line, batches shifted by one. */
#include <string.h>

#include "check.h"
#include "tasks/charvocab.h"
#include "tasks/task.h"

extern const sl_task_vtable sl_task_text;

static const char *path = "/tmp/seqlab-test-text.txt";

/* The text task on path with default options, seq_len T, and the given
 * checkpoint metadata (NULL: a new model). */
static sl_status open_text(sl_task *t, int64_t T, const sl_kv *meta, size_t n_meta,
                           const char *every)
{
    sl_opts o;
    CHECK(sl_opts_defaults(&o, sl_task_text.options) == SL_OK, "defaults");
    if (every) CHECK(sl_opts_set(&o, "task 'text'", "test", "holdout_every", every, SL_FROM_TEXT) == SL_OK,
                     "%s", sl_errmsg());
    const sl_task_env env = {.data = path, .seq_len = T, .vocab_size = 21, .opts = &o,
                             .meta = meta, .n_meta = n_meta, .meta_src = "ck.safetensors"};
    return sl_task_open(t, &sl_task_text, &env);
}

static void test_vocab_splits_batches(void)
{
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 2000; i++) fprintf(f, "line %d says abc\n", i);
    fclose(f);
    sl_task t;
    CHECK(open_text(&t, 32, NULL, 0, NULL) == SL_OK, "%s", sl_errmsg());
    sl_kv meta[2];
    CHECK(t.vt->meta(&t, meta, 2) == 1 && strcmp(meta[0].key, "vocab_hex") == 0, "one entry");
    /* "\n 0123456789abceilnsy" */
    CHECK(strcmp(meta[0].value, "0a203031323334353637383961626365696c6e7379") == 0,
          "sorted byte vocabulary: %s", meta[0].value);
    CHECK(t.vocab_size == 21, "size %lld", (long long)t.vocab_size);
    sl_rng r;
    sl_rng_seed(&r, 1);
    int32_t tok[4 * 32], tgt[4 * 32];
    t.vt->batch(&t, SL_SPLIT_VAL, &r, 4, 32, tok, tgt);
    for (int b = 0; b < 4; b++)
        for (int i = 0; i + 1 < 32; i++) CHECK(tgt[b * 32 + i] == tok[b * 32 + i + 1], "shifted");
    sl_task_close(&t);
    /* Reopening with the vocabulary of a checkpoint gives the same ids. */
    const sl_kv good = {"vocab_hex", "0a203031323334353637383961626365696c6e7379"};
    CHECK(open_text(&t, 32, &good, 1, NULL) == SL_OK, "reopen: %s", sl_errmsg());
    sl_rng_seed(&r, 1);
    int32_t tok2[4 * 32], tgt2[4 * 32];
    t.vt->batch(&t, SL_SPLIT_VAL, &r, 4, 32, tok2, tgt2);
    CHECK(memcmp(tok, tok2, sizeof tok) == 0, "same ids");
    sl_task_close(&t);
    const sl_kv abc = {"vocab_hex", "616263"};
    CHECK(open_text(&t, 32, &abc, 1, NULL) == SL_ERR_ARG && strstr(sl_errmsg(), path) &&
              strstr(sl_errmsg(), "not in the vocabulary") && strstr(sl_errmsg(), "ck.safetensors"),
          "%s", sl_errmsg());
    /* A checkpoint without a vocabulary, or a corrupt one, names the key. */
    const sl_kv bad[] = {{"other", "x"}, {"vocab_hex", "6g"}, {"vocab_hex", "0061"}};
    for (int i = 0; i < 3; i++)
        CHECK(open_text(&t, 32, &bad[i], 1, NULL) == SL_ERR_FORMAT &&
                  strstr(sl_errmsg(), "vocab_hex") && strstr(sl_errmsg(), "ck.safetensors"),
              "bad %d: %s", i, sl_errmsg());
}

static void test_split_fractions(void)
{
    /* Lines are sent to splits by a fixed hash: ~90/5/5 with the default
     * holdout_every = 20, ~80/10/10 with 10. */
    static const struct { const char *every; double held; } cases[] = {{NULL, 0.05}, {"10", 0.1}};
    for (int i = 0; i < 2; i++) {
        sl_task t;
        CHECK(open_text(&t, 8, NULL, 0, cases[i].every) == SL_OK, "open");
        int64_t len[3];
        for (int k = 0; k < 3; k++) len[k] = t.vt->split_size(&t, (sl_split)k);
        double total = (double)(len[0] + len[1] + len[2]), h = cases[i].held;
        CHECK(fabs(len[0] / total - (1 - 2 * h)) < 0.04, "train %g", len[0] / total);
        CHECK(fabs(len[1] / total - h) < 0.02, "val %g", len[1] / total);
        CHECK(fabs(len[2] / total - h) < 0.02, "test %g", len[2] / total);
        sl_task_close(&t);
    }
    remove(path);
}

static void test_encode_reports_character(void)
{
    int32_t ids[8];
    sl_charvocab v;
    sl_charvocab_from_text(&v, "cabbage", 7);
    CHECK(v.n == 5 && strcmp(v.bytes, "abceg") == 0 && strcmp(v.hex, "6162636567") == 0,
          "sorted distinct bytes: %s", v.bytes);
    CHECK(sl_charvocab_encode(&v, "gaba", 4, ids) == SL_OK && ids[0] == 4 && ids[3] == 0, "ok");
    CHECK(sl_charvocab_encode(&v, "abxa", 4, ids) == SL_ERR_ARG && strstr(sl_errmsg(), "'x'") &&
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
