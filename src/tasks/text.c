/* text: character-level language modelling on a plain text file (the demo
 * uses the King James Bible). One token per byte; the vocabulary is the
 * sorted set of bytes in the file.
 *
 * Splits are by line (a verse of the Bible): a fixed hash of the line number
 * sends one line in holdout_every (20: 5%) to validation, one to test and
 * the rest to training, so every split samples the whole book and the
 * split never depends on the seed.
 * A batch row is a random window of T+1 consecutive bytes of its split
 * (its lines' bytes, concatenated in file order);
 * the target of byte t is byte t+1. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "tasks/charvocab.h"
#include "tasks/task.h"

typedef struct text {
    uint8_t *ids[3]; /* token ids of each split */
    int64_t len[3];
    sl_charvocab vocab;
} text;

static const char *const SPLIT_NAMES[3] = {"train", "validation", "test"};

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

/* The file is read twice in CHUNK-byte pieces, never whole: the first pass
 * learns the vocabulary and each split's length, the second writes each
 * byte's id straight into its split. Peak memory is the file's size (the
 * three splits) plus one chunk (docs/formats.md, "Text data"). */
#define CHUNK ((size_t)1 << 20)

/* What the first pass learns. first[c]: offset of byte c's first occurrence
 * or -1; len[s]: bytes of split s. */
typedef struct scan {
    int64_t n, len[3], first[256];
} scan;

/* Reads the chunk at off into buf; *got = 0 at the end of the file. */
static sl_status read_chunk(int fd, const char *path, uint8_t *buf, int64_t off, size_t *got)
{
    ssize_t r;
    do r = pread(fd, buf, CHUNK, (off_t)off);
    while (r < 0 && errno == EINTR);
    if (r < 0) return sl_fail(SL_ERR_IO, "%s: cannot read data file: %s", path, strerror(errno));
    *got = (size_t)r;
    return SL_OK;
}

/* Pass 1. The byte ending a line (its '\n') belongs to that line. */
static sl_status scan_file(int fd, const char *path, uint64_t every, uint8_t *buf, scan *sc)
{
    memset(sc, 0, sizeof *sc);
    memset(sc->first, -1, sizeof sc->first);
    uint64_t line = 0;
    sl_split s = split_of_line(0, every);
    for (;;) {
        size_t got = 0;
        sl_status st = read_chunk(fd, path, buf, sc->n, &got);
        if (st || !got) return st;
        for (size_t i = 0; i < got; i++) {
            if (sc->first[buf[i]] < 0) sc->first[buf[i]] = sc->n + (int64_t)i;
            sc->len[s]++;
            if (buf[i] == '\n') s = split_of_line(++line, every);
        }
        sc->n += (int64_t)got;
    }
}

/* Pass 2: ids of each split, in file order; x->ids[s] holds sc->len[s]. */
static sl_status fill_splits(int fd, const char *path, uint64_t every, uint8_t *buf, const scan *sc,
                             text *x)
{
    int16_t index[256];
    sl_charvocab_index(&x->vocab, index);
    uint64_t line = 0;
    sl_split s = split_of_line(0, every);
    int64_t off = 0;
    for (;;) {
        size_t got = 0;
        sl_status st = read_chunk(fd, path, buf, off, &got);
        if (st) return st;
        if (!got) break;
        off += (int64_t)got;
        for (size_t i = 0; i < got; i++) {
            if (index[buf[i]] < 0 || x->len[s] == sc->len[s])
                return sl_fail(SL_ERR_IO, "%s: data file changed while being read", path);
            x->ids[s][x->len[s]++] = (uint8_t)index[buf[i]];
            if (buf[i] == '\n') s = split_of_line(++line, every);
        }
    }
    if (off != sc->n) return sl_fail(SL_ERR_IO, "%s: data file changed while being read", path);
    return SL_OK;
}

static sl_status text_load(text *x, int fd, const sl_task_env *env, uint64_t every, uint8_t *buf)
{
    const char *path = env->data;
    scan sc;
    sl_status st = scan_file(fd, path, every, buf, &sc);
    if (st) return st;
    if (sc.n == 0) return sl_fail(SL_ERR_FORMAT, "%s: data file is empty", path);
    if (sc.first[0] >= 0)
        return sl_fail(SL_ERR_FORMAT, "%s: expected text, found a NUL byte at offset %lld", path,
                       (long long)sc.first[0]);
    if (env->meta) {
        st = sl_charvocab_from_meta(&x->vocab, env->meta, env->n_meta, env->vocab_size,
                                    env->meta_src);
        if (!st && sl_charvocab_check(&x->vocab, sc.first)) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sl_errmsg());
            st = sl_fail(SL_ERR_ARG, "%s: %s of %s", path, msg, env->meta_src);
        }
        if (st) return st;
    } else {
        sl_charvocab_from_first(&x->vocab, sc.first);
    }
    for (int s = 0; s < 3; s++)
        if (!(x->ids[s] = malloc(sc.len[s] ? (size_t)sc.len[s] : 1)))
            return sl_fail(SL_ERR_OOM, "%s: out of memory for %lld bytes of the %s split", path,
                           (long long)sc.len[s], SPLIT_NAMES[s]);
    return fill_splits(fd, path, every, buf, &sc, x);
}

static sl_status text_open(sl_task *t, const sl_task_env *env)
{
    const uint64_t every = (uint64_t)sl_opt_int(env->opts, "holdout_every");
    if (!env->data[0])
        return sl_fail(SL_ERR_CONFIG, "config key 'data': the text task needs a data file");
    int fd;
    int64_t size;
    sl_status st = sl_open_regular(env->data, "data file", &fd, &size);
    if (st) return st;
    text *x = calloc(1, sizeof *x);
    uint8_t *buf = malloc(CHUNK);
    if (!x || !buf)
        st = sl_fail(SL_ERR_OOM, "%s: out of memory", env->data);
    else
        st = text_load(x, fd, env, every, buf);
    close(fd);
    free(buf);
    if (x) t->impl = x;
    if (st) return st;
    t->vocab_size = x->vocab.n;
    for (int s = 0; s < 3; s++)
        if (x->len[s] < env->seq_len + 1)
            return sl_fail(
                SL_ERR_FORMAT, "%s: the %s split has %lld bytes, fewer than seq_len + 1 = %lld",
                env->data, SPLIT_NAMES[s], (long long)x->len[s], (long long)env->seq_len + 1);
    return SL_OK;
}

/* A held-out split's fixed rows: its windows of T tokens end to end (each
 * with the next token as the last target). */
static int64_t text_held_out_rows(const sl_task *t, sl_split split, int64_t T)
{
    return (((const text *)t->impl)->len[split] - 1) / T;
}

/* tokens, targets: [B*T]. Training rows start anywhere; held-out row b is
 * window first + b, so an evaluation reads the split in order. */
static void text_batch(sl_task *t, sl_split split, sl_rng *rng, sl_batch *bt)
{
    const text *x = t->impl;
    const uint8_t *ids = x->ids[split];
    const int64_t B = bt->B, T = bt->T;
    int32_t *tokens = bt->tokens, *targets = bt->targets;
    for (int64_t b = 0; b < B; b++) {
        int64_t start = split == SL_SPLIT_TRAIN
                            ? (int64_t)sl_rng_below(rng, (uint64_t)(x->len[split] - T))
                            : (bt->first + b) % text_held_out_rows(t, split, T) * T;
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
    .held_out_rows = text_held_out_rows,
    .close = text_close,
};
