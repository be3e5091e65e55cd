/* seqlab score CKPT FILE [--threads N]: per-position log-probabilities of a
 * text file under a checkpoint, as one JSON object on stdout, through the
 * public API (include/seqlab.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "seqlab.h"

static void help(void)
{
    printf("usage: seqlab score CKPT FILE [--threads N]\n\n"
           "Scores the bytes of FILE (one token per byte, through the checkpoint's\n"
           "vocabulary) and prints one JSON object: tokens, predicted (tokens - 1),\n"
           "total_nats (sum of log p(x_t | x_<t) over t >= 1), mean_nats (-total_nats /\n"
           "predicted), bpc (mean_nats / ln 2), context and stride, and logprobs, one per\n"
           "position, null for position 0 (the first byte is given, not predicted).\n"
           "A file longer than max_seq_len is scored in windows of max_seq_len bytes\n"
           "advancing by stride = max_seq_len / 2: every byte past the first window\n"
           "is predicted from at least max_seq_len - stride bytes before it.\n"
           "Errors (exit 1): a missing or unreadable file, fewer than 2 bytes, a byte\n"
           "outside the vocabulary (named with its offset), a bidirectional model.\n");
}

/* Reads path into *buf (n bytes). */
static int read_all(const char *path, char **buf, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sl_fail(SL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    for (size_t got = 1; b && got > 0;) {
        if (len == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
            if (!b) break;
        }
        got = fread(b + len, 1, cap - len, f);
        len += got;
    }
    int err = ferror(f);
    fclose(f);
    if (!b) return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    if (err) {
        free(b);
        return sl_fail(SL_ERR_IO, "%s: read error", path);
    }
    *buf = b;
    *n = (int64_t)len;
    return SL_OK;
}

/* The JSON object of the scores; NULL when out of memory. */
static char *scores_json(const char *file, const float *lp, int64_t n, double total, int64_t L)
{
    cJSON *o = cJSON_CreateObject();
    const double mean = -total / (double)(n - 1);
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddNumberToObject(o, "tokens", (double)n);
    cJSON_AddNumberToObject(o, "predicted", (double)(n - 1));
    cJSON_AddNumberToObject(o, "total_nats", total);
    cJSON_AddNumberToObject(o, "mean_nats", mean);
    cJSON_AddNumberToObject(o, "bpc", mean / log(2.0));
    cJSON_AddNumberToObject(o, "context", (double)L);
    cJSON_AddNumberToObject(o, "stride", (double)(L / 2 > 0 ? L / 2 : 1));
    cJSON *a = cJSON_AddArrayToObject(o, "logprobs");
    cJSON_AddItemToArray(a, cJSON_CreateNull());
    for (int64_t t = 1; t < n; t++) cJSON_AddItemToArray(a, cJSON_CreateNumber(lp[t]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Scores text[0..n) under m and prints the JSON; 0 or the exit code. */
static int score(seqlab_model *m, const char *file, const char *text, int64_t n)
{
    if (n < 2) {
        sl_fail(SL_ERR_ARG, "%s: %s: nothing to score (expected at least 2 bytes)", file,
                n ? "1 byte" : "empty file");
        return cli_error("score");
    }
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    float *lp = malloc((size_t)n * sizeof *lp);
    double total = 0;
    char *json = NULL;
    int rc = 0;
    if (!ids || !lp) {
        sl_fail(SL_ERR_OOM, "out of memory for %lld tokens", (long long)n);
        rc = cli_error("score");
    } else if (seqlab_encode(m, text, n, ids)) {
        char why[512]; /* sl_fail writes over seqlab_errmsg()'s buffer */
        snprintf(why, sizeof why, "%s", seqlab_errmsg());
        sl_fail(SL_ERR_ARG, "%s: %s", file, why);
        rc = cli_error("score");
    } else if (seqlab_logprobs(m, ids, n, lp, &total)) {
        rc = cli_error("score");
    } else if (!(json = scores_json(file, lp, n, total, seqlab_max_seq_len(m)))) {
        sl_fail(SL_ERR_OOM, "out of memory for the JSON of %lld scores", (long long)n);
        rc = cli_error("score");
    } else {
        puts(json);
    }
    free(json);
    free(ids);
    free(lp);
    return rc;
}

int cmd_score(int argc, char **argv)
{
    const char *ckpt = NULL, *file = NULL, *v;
    int64_t threads = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        } else if (cli_opt(argc, argv, &i, "threads", &v)) {
            if (!cli_int("score", "threads", v, 0, &threads)) return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("score", "unknown option %s", argv[i]);
        } else if (!ckpt) {
            ckpt = argv[i];
        } else if (!file) {
            file = argv[i];
        } else {
            return cli_usage_error("score", "expected CKPT FILE, got a third argument %s", argv[i]);
        }
    }
    if (!ckpt || !file) return cli_usage_error("score", "missing %s", ckpt ? "FILE" : "CKPT");
    seqlab_set_threads((int)threads);
    seqlab_model *m;
    if (seqlab_load(ckpt, &m)) return cli_error("score");
    char *text = NULL;
    int64_t n = 0;
    int rc = read_all(file, &text, &n) ? cli_error("score") : score(m, file, text, n);
    free(text);
    seqlab_free(m);
    return rc;
}
