/* seqlab: sequence models in C11. The public API: load a checkpoint, map
 * text to token ids and back, score a sequence (per-position
 * log-probabilities) and generate, all in inference mode (no tape, no
 * gradients). Self-contained: a program needs this header and the library
 * only, `cc prog.c $(pkg-config --cflags --libs seqlab)`.
 *
 *   seqlab_model *m;
 *   if (seqlab_load("ckpt.safetensors", &m)) { puts(seqlab_errmsg()); return 1; }
 *   int32_t ids[5]; float lp[5]; double total;
 *   seqlab_encode(m, "hello", 5, ids);
 *   seqlab_logprobs(m, ids, 5, lp, &total);     lp[t] = log p(ids[t] | ids[<t])
 *   seqlab_free(m);
 *
 * Every call that can fail returns a seqlab_status; seqlab_errmsg() says
 * why (the file, the field or the argument, and what was expected). Calls
 * on one model must not overlap; different models may run on different
 * threads. Training, configs and the op library are internal (src/). */
#ifndef SEQLAB_H
#define SEQLAB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum seqlab_status {
    SEQLAB_OK = 0,
    SEQLAB_ERR_IO,      /* missing or unreadable file */
    SEQLAB_ERR_FORMAT,  /* corrupt or truncated file */
    SEQLAB_ERR_CONFIG,  /* a checkpoint's config that seqlab cannot build */
    SEQLAB_ERR_SHAPE,   /* impossible shapes */
    SEQLAB_ERR_NUMERIC, /* NaN or Inf where a number was expected */
    SEQLAB_ERR_ARG,     /* bad argument: an id out of range, a byte outside the vocabulary */
    SEQLAB_ERR_OOM,     /* an allocation failed */
} seqlab_status;

/* A model loaded from a checkpoint, with its vocabulary and metadata. */
typedef struct seqlab_model seqlab_model;

/* "MAJOR.MINOR.PATCH" of the library. */
const char *seqlab_version(void);
/* The message of the last failure on this thread. */
const char *seqlab_errmsg(void);
/* Threads for every later call (OpenMP and OpenBLAS); 0 = all cores. */
void seqlab_set_threads(int n);

/* Reads a checkpoint written by `seqlab train` (docs/formats.md). */
seqlab_status seqlab_load(const char *path, seqlab_model **out);
void seqlab_free(seqlab_model *m);

/* Token ids are 0 .. vocab_size - 1. */
int64_t seqlab_vocab_size(const seqlab_model *m);
/* The longest sequence one forward takes (seqlab_logprobs scores longer
 * ones in windows). */
int64_t seqlab_max_seq_len(const seqlab_model *m);
/* The character vocabulary, NUL-terminated: token id i is the byte
 * vocab[i]. "" when the checkpoint has none (then only ids work). */
const char *seqlab_vocab(const seqlab_model *m);
/* A value of the checkpoint's metadata: "config" (the run config as JSON),
 * "format", "seqlab_version", "step", ...; NULL when absent. Valid until
 * seqlab_free. */
const char *seqlab_metadata(const seqlab_model *m, const char *key);

/* text[0..n) -> ids[0..n), one id per byte. SEQLAB_ERR_ARG names the first
 * byte outside the vocabulary and its offset. */
seqlab_status seqlab_encode(const seqlab_model *m, const char *text, int64_t n, int32_t *ids);
/* ids[0..n) -> text[0..n] (NUL-terminated, n + 1 bytes). */
seqlab_status seqlab_decode(const seqlab_model *m, const int32_t *ids, int64_t n, char *text);

/* Scores ids[0..n), n >= 1: logp[0] = 0 (the first token is given) and
 * logp[t] = log p(ids[t] | ids[0..t)) in nats for t >= 1; *total (may be
 * NULL) = sum of logp. Up to max_seq_len tokens this is one forward. A
 * longer sequence is scored in windows of max_seq_len tokens that advance by
 * h = max_seq_len / 2: the first window scores positions 1 .. max_seq_len - 1,
 * each later one the next h positions, each with at least the max_seq_len - h
 * tokens before it as context. Bidirectional models are refused. */
seqlab_status seqlab_logprobs(seqlab_model *m, const int32_t *ids, int64_t n, float *logp,
                              double *total);

typedef struct seqlab_sampling {
    float temperature; /* 0: greedy (argmax) */
    int64_t top_k;     /* 0: off */
    float top_p;       /* 1: off */
    uint64_t seed;
} seqlab_sampling;

/* Continues prompt[0..n), n >= 1, by max_new tokens written to out[0..max_new)
 * (KV-cached or recurrent-state decoding). A prompt longer than max_seq_len
 * keeps its last max_seq_len tokens; when the context fills, decoding
 * restarts from its last max_seq_len / 2 tokens. s NULL: greedy. */
seqlab_status seqlab_generate(seqlab_model *m, const int32_t *prompt, int64_t n, int64_t max_new,
                              const seqlab_sampling *s, int32_t *out);

#ifdef __cplusplus
}
#endif

#endif
