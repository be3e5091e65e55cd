/* The public API (include/seqlab.h): a checkpoint saved here is loaded
 * through it; its scores equal the model's own cross-entropy (sl_model_loss)
 * on the same ids; scoring records no tape and no gradient; text <-> ids,
 * metadata, windows past max_seq_len and greedy generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "check.h"
#include "train/checkpoint.h"

static const char VOCAB[] = " .abcdeghilmnorstv"; /* sorted bytes, as the text task writes */
static const char TEXT[] = "the cat sat on the mat. the dog did not.";
static char path[256];

/* A small model of the given mixer, random weights, saved to path. */
static void save_checkpoint(const char *mixer, const char *pos, int64_t L)
{
    sl_config c;
    sl_config_defaults(&c);
    c.vocab_size = (int64_t)strlen(VOCAB);
    c.n_layers = 2;
    c.d_model = 16;
    c.n_heads = 2;
    c.max_seq_len = L;
    c.seq_len = L;
    c.chunk_size = 8;
    snprintf(c.mixer, sizeof c.mixer, "%s", mixer);
    snprintf(c.pos, sizeof c.pos, "%s", pos);
    sl_model m;
    CHECK(sl_model_create(&m, &c) == SL_OK, "create: %s", sl_errmsg());
    sl_model_init_weights(&m, 7);
    char dir[] = "/tmp/seqlab-api-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    sl_charvocab v;
    sl_charvocab_from_text(&v, VOCAB, (int64_t)strlen(VOCAB));
    const sl_kv meta = {SL_VOCAB_KEY, v.hex};
    CHECK(sl_checkpoint_save(path, &m, &meta, 1, NULL) == SL_OK, "save: %s", sl_errmsg());
    sl_model_free(&m);
}

static void remove_checkpoint(void)
{
    remove(path);
    *strrchr(path, '/') = '\0';
    rmdir(path);
}

/* total / (n - 1) == -sl_model_loss on targets ids[1..n) (the last row ignored). */
static void check_scores_equal_loss(const char *mixer, const char *pos)
{
    save_checkpoint(mixer, pos, 64);
    seqlab_model *m;
    CHECK(seqlab_load(path, &m) == SEQLAB_OK, "%s: load: %s", mixer, seqlab_errmsg());
    if (!m) return;
    const int64_t n = (int64_t)strlen(TEXT);
    int32_t ids[64], tgt[64];
    float lp[64];
    double total = 0;
    CHECK(seqlab_encode(m, TEXT, n, ids) == SEQLAB_OK, "encode: %s", seqlab_errmsg());
    CHECK(seqlab_logprobs(m, ids, n, lp, &total) == SEQLAB_OK, "logprobs: %s", seqlab_errmsg());
    CHECK(m->ctx.tape_len == 0, "%s: inference mode recorded %zu tape nodes", mixer,
          m->ctx.tape_len);
    size_t nonzero = 0;
    for (size_t i = 0; i < m->model.params.total; i++) nonzero += m->model.params.grad[i] != 0;
    CHECK(nonzero == 0, "%s: %zu gradients written", mixer, nonzero);
    CHECK(lp[0] == 0.0f, "logp[0] = 0");
    double sum = 0;
    for (int64_t t = 1; t < n; t++) {
        CHECK(lp[t] < 0, "%s: logp[%lld] = %g", mixer, (long long)t, (double)lp[t]);
        sum += lp[t];
    }
    CHECK_CLOSE(total, sum, 1e-9, 1e-9, "total = sum of logp");
    for (int64_t t = 0; t < n; t++) tgt[t] = t + 1 < n ? ids[t + 1] : -1;
    sl_ctx ctx;
    sl_ctx_init(&ctx, 0);
    sl_tensor *loss = sl_model_loss(&m->model, &ctx, ids, tgt, 1, n);
    CHECK(ctx.tape_len > 0, "a training context records (the mode is what differs)");
    CHECK_CLOSE(-total / (double)(n - 1), loss->data[0], 1e-6, 1e-5, mixer);
    sl_ctx_free(&ctx);
    seqlab_free(m);
    remove_checkpoint();
}

static void test_scores_equal_model_loss(void)
{
    check_scores_equal_loss("attention", "learned");
    check_scores_equal_loss("attention", "rope");
    check_scores_equal_loss("gated_deltanet", "none");
    check_scores_equal_loss("mamba2", "none");
}

static void test_text_metadata_and_errors(void)
{
    save_checkpoint("attention", "rope", 64);
    seqlab_model *m;
    CHECK(seqlab_load(path, &m) == SEQLAB_OK, "load: %s", seqlab_errmsg());
    if (!m) return;
    CHECK(seqlab_vocab_size(m) == (int64_t)strlen(VOCAB), "vocab_size");
    CHECK(strcmp(seqlab_vocab(m), VOCAB) == 0, "vocab");
    CHECK(seqlab_max_seq_len(m) == 64, "max_seq_len");
    const char *fmt = seqlab_metadata(m, "format"), *cfg = seqlab_metadata(m, "config");
    CHECK(fmt && strcmp(fmt, "seqlab/1") == 0, "format: %s", fmt ? fmt : "(null)");
    CHECK(cfg && strstr(cfg, "\"d_model\"") != NULL, "config");
    CHECK(seqlab_metadata(m, "no such key") == NULL, "absent key");
    const int64_t n = (int64_t)strlen(TEXT);
    int32_t ids[64];
    char back[65];
    CHECK(seqlab_encode(m, TEXT, n, ids) == SEQLAB_OK &&
              ids[0] == (int32_t)(strchr(VOCAB, 't') - VOCAB),
          "token id i is the byte vocab[i]");
    CHECK(seqlab_decode(m, ids, n, back) == SEQLAB_OK && strcmp(back, TEXT) == 0, "round trip");
    CHECK(seqlab_encode(m, "the Cat", 7, ids) == SEQLAB_ERR_ARG && strstr(seqlab_errmsg(), "'C'") &&
              strstr(seqlab_errmsg(), "offset 4"),
          "out of vocabulary: %s", seqlab_errmsg());
    ids[2] = 99;
    float lp[64];
    CHECK(seqlab_logprobs(m, ids, 5, lp, NULL) == SEQLAB_ERR_ARG && strstr(seqlab_errmsg(), "99"),
          "id out of range: %s", seqlab_errmsg());
    CHECK(seqlab_logprobs(m, ids, 0, lp, NULL) == SEQLAB_ERR_ARG, "empty");
    seqlab_free(m);
    seqlab_model *bad = (seqlab_model *)1;
    CHECK(seqlab_load("/nonexistent/ckpt.safetensors", &bad) == SEQLAB_ERR_IO && bad == NULL,
          "missing file: %s", seqlab_errmsg());
    remove_checkpoint();
}

/* Past max_seq_len: the first window equals a short call; a later position
 * equals a forward over the window that scores it. */
static void test_windows(void)
{
    const int64_t L = 16, n = 40; /* windows [0,16), [8,24), [16,32), [24,40) */
    save_checkpoint("attention", "learned", L);
    seqlab_model *m;
    CHECK(seqlab_load(path, &m) == SEQLAB_OK, "load: %s", seqlab_errmsg());
    if (!m) return;
    int32_t ids[40];
    float lp[40], lp_short[16];
    CHECK(seqlab_encode(m, TEXT, n, ids) == SEQLAB_OK, "encode");
    CHECK(seqlab_logprobs(m, ids, n, lp, NULL) == SEQLAB_OK, "long: %s", seqlab_errmsg());
    CHECK(seqlab_logprobs(m, ids, L, lp_short, NULL) == SEQLAB_OK, "short");
    for (int64_t t = 0; t < L; t++)
        CHECK(lp[t] == lp_short[t], "first window, t = %lld", (long long)t);
    /* Position 30 is in the window [16, 32): its logp is the last of a short
     * call on ids[16..31), shifted. */
    CHECK(seqlab_logprobs(m, ids + 16, 15, lp_short, NULL) == SEQLAB_OK, "window");
    CHECK(lp[30] == lp_short[14], "t = 30: %g vs %g", (double)lp[30], (double)lp_short[14]);
    seqlab_free(m);
    remove_checkpoint();
}

/* Greedy generation's first token maximises the next-token log-probability. */
static void test_greedy_generation(void)
{
    save_checkpoint("attention", "rope", 16);
    seqlab_model *m;
    CHECK(seqlab_load(path, &m) == SEQLAB_OK, "load: %s", seqlab_errmsg());
    if (!m) return;
    const int64_t V = seqlab_vocab_size(m), n = 5;
    int32_t ids[8], out[40], again[40];
    float lp[8];
    seqlab_encode(m, "the c", n, ids);
    CHECK(seqlab_generate(m, ids, n, 40, NULL, out) == SEQLAB_OK, "generate: %s", seqlab_errmsg());
    CHECK(seqlab_generate(m, ids, n, 40, NULL, again) == SEQLAB_OK &&
              memcmp(out, again, sizeof out) == 0,
          "deterministic past the context's refill");
    int32_t best = -1;
    float best_lp = -1e30f;
    for (int32_t c = 0; c < V; c++) {
        ids[n] = c;
        seqlab_logprobs(m, ids, n + 1, lp, NULL);
        if (lp[n] > best_lp) best_lp = lp[n], best = c;
    }
    CHECK(out[0] == best, "greedy %d, argmax %d", (int)out[0], (int)best);
    seqlab_sampling s = {.temperature = 1.0f, .top_k = 3, .top_p = 1.0f, .seed = 5};
    CHECK(seqlab_generate(m, ids, n, 10, &s, out) == SEQLAB_OK, "sampled");
    for (int k = 0; k < 10; k++) CHECK(out[k] >= 0 && out[k] < V, "id in range");
    seqlab_free(m);
    remove_checkpoint();
}

int main(void)
{
    RUN(test_scores_equal_model_loss);
    RUN(test_text_metadata_and_errors);
    RUN(test_windows);
    RUN(test_greedy_generation);
    return TEST_SUMMARY();
}
