/* text: character-level language modelling on a plain text file (the demo
 * uses the King James Bible). One token per byte; the vocabulary is the
 * sorted set of bytes in the file.
 *
 * Splits are by line (a verse of the Bible): a fixed hash of the line number
 * sends one line in holdout_every (20: 5%) to validation, one to test and
 * the rest to training, so every split samples the whole book and the
 * split never depends on the seed.
 * A batch row is a random window of T+1 consecutive bytes of its split;
 * the target of byte t is byte t+1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/charvocab.h"
#include "tasks/task.h"

typedef struct text {
    uint8_t *ids[3]; /* token ids of each split */
    int64_t len[3];
    sl_charvocab vocab;
} text;

static uint64_t line_hash(uint64_t i)
{
    i += 0x9E3779B97F4A7C15ull;
    i = (i ^ (i >> 30)) * 0xBF58476D1CE4E5B9ull;
    i = (i ^ (i >> 27)) * 0x94D049BB133111EBull;
    return i ^ (i >> 31);
}

static sl_split split_of_line(uint64_t line, uint64_t every)
{
    uint64_t h = line_hash(line) % every;
    return h == 0 ? SL_SPLIT_VAL : h == 1 ? SL_SPLIT_TEST : SL_SPLIT_TRAIN;
}

static sl_status read_file(const char *path, char **out, int64_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sl_fail(SL_ERR_IO, "%s: cannot open data file: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || ftell(f) < 0) {
        fclose(f);
        return sl_fail(SL_ERR_IO, "%s: cannot read data file", path);
    }
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return sl_fail(SL_ERR_IO, "%s: cannot read data file", path);
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SL_OK;
}

static sl_status text_open(sl_task *t, const sl_task_env *env)
{
    const uint64_t every = (uint64_t)sl_opt_int(env->opts, "holdout_every");
    if (!env->data[0])
        return sl_fail(SL_ERR_CONFIG, "config key 'data': the text task needs a data file");
    char *buf = NULL;
    int64_t n = 0;
    sl_status st = read_file(env->data, &buf, &n);
    if (st) return st;
    if (n == 0) {
        free(buf);
        return sl_fail(SL_ERR_FORMAT, "%s: data file is empty", env->data);
    }
    if (memchr(buf, 0, (size_t)n)) {
        free(buf);
        return sl_fail(SL_ERR_FORMAT, "%s: expected text, found a NUL byte", env->data);
    }
    text *x = calloc(1, sizeof *x);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids || !x) {
        free(ids);
        free(x);
        free(buf);
        return sl_fail(SL_ERR_OOM, "%s: out of memory", env->data);
    }
    t->impl = x;
    if (env->meta) {
        st = sl_charvocab_from_meta(&x->vocab, env->meta, env->n_meta, env->vocab_size,
                                    env->meta_src);
        if (!st && sl_charvocab_encode(&x->vocab, buf, n, ids)) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sl_errmsg());
            st = sl_fail(SL_ERR_ARG, "%s: %s of %s", env->data, msg, env->meta_src);
        }
    } else {
        sl_charvocab_from_text(&x->vocab, buf, n);
        sl_charvocab_encode(&x->vocab, buf, n, ids);
    }
    t->vocab_size = x->vocab.n;
    for (int s = 0; s < 3 && !st; s++)
        if (!(x->ids[s] = malloc((size_t)n)))
            st = sl_fail(SL_ERR_OOM, "%s: out of memory", env->data);
    int64_t line = 0;
    for (int64_t i = 0; i < n && !st; i++) {
        sl_split s = split_of_line((uint64_t)line, every);
        x->ids[s][x->len[s]++] = (uint8_t)ids[i];
        if (buf[i] == '\n') line++;
    }
    free(ids);
    free(buf);
    for (int s = 0; s < 3 && !st; s++)
        if (x->len[s] < env->seq_len + 1)
            st = sl_fail(SL_ERR_FORMAT,
                         "%s: the %s split has %lld bytes, fewer than seq_len + 1 = %lld",
                         env->data, s == 0 ? "train" : s == 1 ? "validation" : "test",
                         (long long)x->len[s], (long long)env->seq_len + 1);
    return st;
}

static void text_batch(sl_task *t, sl_split split, sl_rng *rng, int64_t B, int64_t T,
                       int32_t *tokens, int32_t *targets)
{
    const text *x = t->impl;
    const uint8_t *ids = x->ids[split];
    for (int64_t b = 0; b < B; b++) {
        int64_t start = (int64_t)sl_rng_below(rng, (uint64_t)(x->len[split] - T));
        for (int64_t i = 0; i < T; i++) {
            tokens[b * T + i] = ids[start + i];
            targets[b * T + i] = ids[start + i + 1];
        }
    }
}

static int64_t text_split_size(const sl_task *t, sl_split split)
{
    return ((const text *)t->impl)->len[split];
}

static size_t text_meta(const sl_task *t, sl_kv *out, size_t max)
{
    const text *x = t->impl;
    if (max < 1) return 0;
    out[0] = (sl_kv){SL_VOCAB_KEY, x->vocab.hex};
    return 1;
}

static void text_close(sl_task *t)
{
    text *x = t->impl;
    for (int s = 0; s < 3; s++) free(x->ids[s]);
    free(x);
    t->impl = NULL;
}

static const sl_option OPTIONS[] = {
    {"holdout_every", SL_OPT_INT, "20", 3, 1e9, NULL,
     "one line in N goes to validation and one to test, by a fixed hash of its number"},
};

const sl_task_vtable sl_task_text = {
    .name = "text",
    .desc = "character-level language modelling on a text file, split by line (90/5/5 by default)",
    .options = SL_OPTION_TABLE(OPTIONS),
    .open = text_open,
    .meta = text_meta,
    .batch = text_batch,
    .split_size = text_split_size,
    .close = text_close,
};
