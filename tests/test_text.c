/* The text task: vocabulary, split by line, batches shifted by one. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    t.vt->batch(&t, SL_SPLIT_VAL, &r, &(sl_batch){.B = 4, .T = 32, .tokens = tok, .targets = tgt});
    for (int b = 0; b < 4; b++)
        for (int i = 0; i + 1 < 32; i++) CHECK(tgt[b * 32 + i] == tok[b * 32 + i + 1], "shifted");
    sl_task_close(&t);
    /* Reopening with the vocabulary of a checkpoint gives the same ids. */
    const sl_kv good = {"vocab_hex", "0a203031323334353637383961626365696c6e7379"};
    CHECK(open_text(&t, 32, &good, 1, NULL) == SL_OK, "reopen: %s", sl_errmsg());
    sl_rng_seed(&r, 1);
    int32_t tok2[4 * 32], tgt2[4 * 32];
    t.vt->batch(&t, SL_SPLIT_VAL, &r, &(sl_batch){.B = 4, .T = 32, .tokens = tok2, .targets = tgt2});
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

/* The loader as it was before it streamed (the whole file in memory): the
 * reference the streaming loader must match id for id, split for split. */
static uint64_t ref_hash(uint64_t i)
{
    i += 0x9E3779B97F4A7C15ull;
    i = (i ^ (i >> 30)) * 0xBF58476D1CE4E5B9ull;
    i = (i ^ (i >> 27)) * 0x94D049BB133111EBull;
    return i ^ (i >> 31);
}

/* ids[s]: [len[s]] each, malloc'd. */
static void ref_splits(const uint8_t *text, int64_t n, uint64_t every, uint8_t *ids[3],
                       int64_t len[3])
{
    sl_charvocab v;
    sl_charvocab_from_text(&v, (const char *)text, n);
    int32_t *all = malloc((size_t)n * sizeof *all);
    sl_charvocab_encode(&v, (const char *)text, n, all);
    for (int s = 0; s < 3; s++) {
        ids[s] = malloc((size_t)n);
        len[s] = 0;
    }
    uint64_t line = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = ref_hash(line) % every;
        int s = h == 0 ? SL_SPLIT_VAL : h == 1 ? SL_SPLIT_TEST : SL_SPLIT_TRAIN;
        ids[s][len[s]++] = (uint8_t)all[i];
        if (text[i] == '\n') line++;
    }
    free(all);
}

/* Files of several sizes around the loader's 1 MiB chunk, with empty lines,
 * long lines and a last line without '\n': the same ids in the same splits
 * as the reference. A whole split comes back as one batch row of T =
 * len - 1 (its only window). */
static void test_streaming_matches_reference(void)
{
    static const int64_t sizes[] = {8191, 65536, (1 << 20) - 1, (1 << 20) + 1, 2621447};
    sl_rng r;
    sl_rng_seed(&r, 9);
    for (int k = 0; k < 5; k++) {
        int64_t n = sizes[k];
        uint8_t *text = malloc((size_t)n);
        for (int64_t i = 0; i < n; i++) {
            uint64_t u = sl_rng_below(&r, 100);
            text[i] = u < 12 ? '\n' : u < 14 ? 0xe9 : (uint8_t)('a' + u % 26);
        }
        FILE *f = fopen(path, "wb");
        fwrite(text, 1, (size_t)n, f);
        fclose(f);
        uint8_t *ids[3];
        int64_t len[3];
        ref_splits(text, n, 20, ids, len);
        sl_task t;
        CHECK(open_text(&t, 4, NULL, 0, NULL) == SL_OK, "%lld bytes: %s", (long long)n,
              sl_errmsg());
        for (int s = 0; s < 3 && t.impl; s++) {
            int64_t m = t.vt->split_size(&t, (sl_split)s);
            CHECK(m == len[s], "%lld bytes, split %d: %lld vs %lld", (long long)n, s, (long long)m,
                  (long long)len[s]);
            if (m != len[s]) continue;
            int32_t *tok = malloc((size_t)m * sizeof *tok), *tgt = malloc((size_t)m * sizeof *tgt);
            sl_rng any;
            sl_rng_seed(&any, 1);
            t.vt->batch(&t, (sl_split)s, &any, &(sl_batch){.B = 1, .T = m - 1, .tokens = tok, .targets = tgt});
            int64_t bad = 0;
            for (int64_t i = 0; i + 1 < m; i++) bad += tok[i] != ids[s][i];
            bad += tgt[m - 2] != ids[s][m - 1];
            CHECK(bad == 0, "%lld bytes, split %d: %lld ids differ", (long long)n, s,
                  (long long)bad);
            free(tok);
            free(tgt);
        }
        sl_task_close(&t);
        for (int s = 0; s < 3; s++) free(ids[s]);
        free(text);
    }
    remove(path);
}

/* Offsets in messages count from the file's start, past the first chunk. */
static void test_bad_bytes_name_offsets(void)
{
    const int64_t at = (1 << 20) + 5;
    char *text = malloc((size_t)at + 8);
    for (int64_t i = 0; i < at; i++) text[i] = i % 50 == 49 ? '\n' : 'a' + (char)(i % 3);
    memcpy(text + at, "x\nabc\n", 6);
    FILE *f = fopen(path, "wb");
    fwrite(text, 1, (size_t)at + 6, f);
    fclose(f);
    sl_task t;
    const sl_kv abc = {"vocab_hex", "0a616263"};
    CHECK(open_text(&t, 8, &abc, 1, NULL) == SL_ERR_ARG && strstr(sl_errmsg(), "'x'") &&
              strstr(sl_errmsg(), "offset 1048581") && strstr(sl_errmsg(), "ck.safetensors"),
          "%s", sl_errmsg());
    text[at] = '\0';
    f = fopen(path, "wb");
    fwrite(text, 1, (size_t)at + 6, f);
    fclose(f);
    CHECK(open_text(&t, 8, NULL, 0, NULL) == SL_ERR_FORMAT && strstr(sl_errmsg(), "NUL") &&
              strstr(sl_errmsg(), "offset 1048581"),
          "%s", sl_errmsg());
    free(text);
    remove(path);
}

/* A directory, a device, a FIFO, a missing or an empty file: refused,
 * saying why. */
static void test_not_a_text_file(void)
{
    static const struct {
        const char *path, *phrase;
    } cases[] = {
        {"/tmp", "is a directory"},
        {"/dev/zero", "not a regular file"},
        {"/dev/null", "not a regular file"},
        {"/nonexistent/seqlab.txt", "No such file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_opts o;
        sl_opts_defaults(&o, sl_task_text.options);
        const sl_task_env env = {.data = cases[i].path, .seq_len = 8, .opts = &o};
        sl_task t;
        CHECK(sl_task_open(&t, &sl_task_text, &env) == SL_ERR_IO &&
                  strstr(sl_errmsg(), cases[i].path) && strstr(sl_errmsg(), cases[i].phrase),
              "%s: %s", cases[i].path, sl_errmsg());
    }
    /* A FIFO with no writer: refused at once, not waited on. */
    const char *fifo = "/tmp/seqlab-test-text.fifo";
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    sl_opts o;
    sl_opts_defaults(&o, sl_task_text.options);
    const sl_task_env env = {.data = fifo, .seq_len = 8, .opts = &o};
    sl_task t;
    CHECK(sl_task_open(&t, &sl_task_text, &env) == SL_ERR_IO &&
              strstr(sl_errmsg(), "not a regular file"),
          "fifo: %s", sl_errmsg());
    unlink(fifo);
    FILE *f = fopen(path, "wb");
    fclose(f);
    CHECK(open_text(&t, 8, NULL, 0, NULL) == SL_ERR_FORMAT && strstr(sl_errmsg(), "empty"), "%s",
          sl_errmsg());
    remove(path);
}

int main(void)
{
    RUN(test_vocab_splits_batches);
    RUN(test_split_fractions);
    RUN(test_encode_reports_character);
    RUN(test_streaming_matches_reference);
    RUN(test_bad_bytes_name_offsets);
    RUN(test_not_a_text_file);
    return TEST_SUMMARY();
}
