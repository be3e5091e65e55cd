/* Training: resume is bit-exact, NaN losses stop the run without touching
 * the checkpoint, checkpoints round-trip, the schedule and AdamW are right. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/trainer.h"

static char dir[64];

static void write_text(const char *path)
{
    FILE *f = fopen(path, "w");
    sl_rng r;
    sl_rng_seed(&r, 1);
    const char *words[] = {"and", "the", "lord", "said", "unto", "moses", "light", "was"};
    for (int line = 0; line < 400; line++) {
        for (int w = 0; w < 8; w++) fprintf(f, "%s ", words[sl_rng_below(&r, 8)]);
        fprintf(f, "%d.\n", line);
    }
    fclose(f);
}

static void tiny(sl_config *c, const char *out)
{
    sl_config_defaults(c);
    c->d_model = 16;
    c->n_heads = 2;
    c->n_layers = 2;
    c->max_seq_len = 16;
    c->seq_len = 16;
    c->batch_size = 4;
    c->steps = 8;
    c->warmup_steps = 2;
    c->lr = 3e-3;
    c->dropout = 0.1;
    c->grad_accum = 2;
    c->log_every = 1;
    c->eval_batches = 2;
    c->threads = 1;
    snprintf(c->data, sizeof c->data, "%s/text.txt", dir);
    snprintf(c->out_dir, sizeof c->out_dir, "%s/%s", dir, out);
}

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    char *b = malloc((size_t)*len + 1);
    size_t got = fread(b, 1, (size_t)*len, f);
    fclose(f);
    b[got] = '\0';
    return b;
}

static void test_resume_is_bit_exact(void)
{
    sl_config a, b;
    tiny(&a, "straight");
    tiny(&b, "split");
    CHECK(sl_train(&a, NULL, NULL) == SL_OK, "straight run: %s", sl_errmsg());
    b.stop_step = 4;
    CHECK(sl_train(&b, NULL, NULL) == SL_OK, "first half: %s", sl_errmsg());
    b.stop_step = -1;
    char ck[600];
    snprintf(ck, sizeof ck, "%s/split/checkpoint.safetensors", dir);
    CHECK(sl_train(&b, ck, NULL) == SL_OK, "resumed half: %s", sl_errmsg());
    sl_model ma, mb;
    sl_train_state ta, tb;
    char cka[600];
    snprintf(cka, sizeof cka, "%s/straight/checkpoint.safetensors", dir);
    CHECK(sl_checkpoint_load(cka, &ma, &ta) == SL_OK, "load a: %s", sl_errmsg());
    CHECK(sl_checkpoint_load(ck, &mb, &tb) == SL_OK, "load b: %s", sl_errmsg());
    size_t n = ma.params.total * sizeof(float);
    CHECK(ta.step == 8 && tb.step == 8, "steps %lld %lld", (long long)ta.step, (long long)tb.step);
    CHECK(memcmp(ma.params.data, mb.params.data, n) == 0, "weights bit-identical");
    CHECK(memcmp(ma.params.m, mb.params.m, n) == 0 && memcmp(ma.params.v, mb.params.v, n) == 0,
          "AdamW moments bit-identical");
    CHECK(memcmp(&ta, &tb, sizeof ta) == 0, "RNG states identical");
    sl_model_free(&ma);
    sl_model_free(&mb);
    /* Every logged training loss of steps 1..8 must agree to the last digit. */
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/straight/metrics.jsonl", dir);
    snprintf(pb, sizeof pb, "%s/split/metrics.jsonl", dir);
    long la, lb;
    char *xa = slurp(pa, &la), *xb = slurp(pb, &lb);
    for (int s = 1; s <= 8; s++) {
        char key[32];
        snprintf(key, sizeof key, "{\"step\":%d,\"loss\":", s);
        char *fa = strstr(xa, key), *fb = strstr(xb, key);
        CHECK(fa && fb && strncmp(fa, fb, strcspn(fa, ",") + 20) == 0, "loss of step %d", s);
    }
    free(xa);
    free(xb);
}

static void test_resume_refuses_model_change(void)
{
    sl_config b;
    tiny(&b, "split");
    b.d_model = 32;
    char ck[600];
    snprintf(ck, sizeof ck, "%s/split/checkpoint.safetensors", dir);
    CHECK(sl_train(&b, ck, NULL) == SL_ERR_CONFIG && strstr(sl_errmsg(), "d_model"), "%s",
          sl_errmsg());
}

static void test_nan_loss_stops_and_keeps_checkpoint(void)
{
    sl_config c;
    tiny(&c, "nan");
    c.steps = 2;
    CHECK(sl_train(&c, NULL, NULL) == SL_OK, "run");
    char ck[600];
    snprintf(ck, sizeof ck, "%s/nan/checkpoint.safetensors", dir);
    sl_model m;
    sl_checkpoint file;
    sl_train_state ts;
    CHECK(sl_checkpoint_open(&file, ck) == SL_OK && sl_model_create(&m, &file.cfg) == SL_OK &&
              sl_checkpoint_restore(&file, &m, &ts) == SL_OK,
          "load: %s", sl_errmsg());
    const sl_kv vocab = {"vocab_hex", sl_st_meta_find(&file.file, "vocab_hex")};
    m.embed->data[3] = NAN;
    CHECK(sl_checkpoint_save(ck, &m, &vocab, 1, &ts) == SL_OK, "save poisoned");
    sl_model_free(&m);
    sl_checkpoint_close(&file);
    long n0, n1;
    char *before = slurp(ck, &n0);
    c.steps = 4;
    CHECK(sl_train(&c, ck, NULL) == SL_ERR_NUMERIC && strstr(sl_errmsg(), "NaN"), "NaN: %s",
          sl_errmsg());
    char *after = slurp(ck, &n1);
    CHECK(n0 == n1 && memcmp(before, after, (size_t)n0) == 0, "checkpoint untouched");
    free(before);
    free(after);
}

static void test_empty_and_missing_data(void)
{
    sl_config c;
    tiny(&c, "x");
    snprintf(c.data, sizeof c.data, "%s/empty.txt", dir);
    fclose(fopen(c.data, "w"));
    CHECK(sl_train(&c, NULL, NULL) == SL_ERR_FORMAT && strstr(sl_errmsg(), "empty.txt") &&
              strstr(sl_errmsg(), "empty"),
          "%s", sl_errmsg());
    snprintf(c.data, sizeof c.data, "%s/missing.txt", dir);
    CHECK(sl_train(&c, NULL, NULL) == SL_ERR_IO && strstr(sl_errmsg(), "missing.txt"), "%s",
          sl_errmsg());
}

static void test_schedule(void)
{
    sl_config c;
    sl_config_defaults(&c);
    c.lr = 1.0;
    c.min_lr = 0.1;
    c.warmup_steps = 4;
    c.steps = 14;
    CHECK_CLOSE(sl_lr_at(&c, 0), 0.25, 1e-12, 0, "warmup start");
    CHECK_CLOSE(sl_lr_at(&c, 3), 1.0, 1e-12, 0, "warmup end");
    CHECK_CLOSE(sl_lr_at(&c, 4), 1.0, 1e-12, 0, "cosine start");
    CHECK_CLOSE(sl_lr_at(&c, 9), 0.55, 1e-12, 0, "cosine middle");
    CHECK_CLOSE(sl_lr_at(&c, 14), 0.1, 1e-12, 0, "cosine end");
    CHECK_CLOSE(sl_lr_at(&c, 20), 0.1, 1e-12, 0, "after the end");
}

/* One parameter of each kind against the update written out in double. */
static void test_adamw_and_clip(void)
{
    sl_params p;
    sl_params_init(&p);
    sl_tensor *w = SL_PARAM(&p, "w", SL_INIT_ZEROS, 0, true, 3);
    sl_tensor *b = SL_PARAM(&p, "b", SL_INIT_ZEROS, 0, false, 2);
    sl_params_finalize(&p);
    float w0[3] = {0.5f, -1.0f, 2.0f}, g[5] = {3.0f, 0.0f, -4.0f, 1.0f, 2.0f};
    memcpy(w->data, w0, sizeof w0);
    b->data[0] = 1.0f;
    b->data[1] = -1.0f;
    memcpy(w->grad, g, 3 * sizeof(float));
    memcpy(b->grad, g + 3, 2 * sizeof(float));
    double norm = sl_clip_grad(&p, 2.5);
    CHECK_CLOSE(norm, sqrt(9 + 16 + 1 + 4.0), 1e-6, 0, "norm before clipping");
    CHECK_CLOSE(sl_grad_norm(&p), 2.5, 1e-5, 0, "norm after clipping");
    sl_config c;
    sl_config_defaults(&c);
    c.weight_decay = 0.1;
    double lr = 0.01, k = 2.5 / (norm + 1e-6);
    sl_adamw_step(&p, &c, 0, lr);
    for (int i = 0; i < 5; i++) {
        double gi = g[i] * k, x = i < 3 ? w0[i] : (i == 3 ? 1.0 : -1.0);
        double m = 0.1 * gi, v = 0.05 * gi * gi;
        double mh = m / 0.1, vh = v / 0.05;
        if (i < 3) x *= 1 - lr * 0.1;
        x -= lr * mh / (sqrt(vh) + 1e-8);
        float got = i < 3 ? w->data[i] : b->data[i - 3];
        CHECK_CLOSE(got, x, 1e-6, 1e-5, "adamw element");
    }
    sl_params_free(&p);
}

int main(void)
{
    strcpy(dir, "/tmp/seqlab-train-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char path[128];
    snprintf(path, sizeof path, "%s/text.txt", dir);
    write_text(path);
    RUN(test_resume_is_bit_exact);
    RUN(test_resume_refuses_model_change);
    RUN(test_nan_loss_stops_and_keeps_checkpoint);
    RUN(test_empty_and_missing_data);
    RUN(test_schedule);
    RUN(test_adamw_and_clip);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return TEST_SUMMARY();
}
