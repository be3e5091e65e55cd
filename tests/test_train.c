/* Training: resume is bit-exact, NaN losses stop the run without touching
 * the checkpoint, checkpoints round-trip, the schedule and AdamW are right;
 * non-finite updates are skipped and never saved; a run owns its out_dir. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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
    size_t la, lb;
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

/* The lines of path that contain needle. */
static int count_lines(const char *path, const char *needle)
{
    size_t n;
    char *t = slurp(path, &n);
    int k = 0;
    for (char *q = t; q && (q = strstr(q, needle)); q++) k++;
    free(t);
    return k;
}

static bool exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

/* Writes dir/name/checkpoint.safetensors from a fresh 2-step run, then
 * poisons it with poison(m) and saves it again. */
static void poisoned_checkpoint(const char *name, void (*poison)(sl_model *), char *ck, size_t n)
{
    sl_config c;
    tiny(&c, name);
    c.steps = 2;
    CHECK(sl_train(&c, NULL, NULL) == SL_OK, "run: %s", sl_errmsg());
    snprintf(ck, n, "%s/%s/checkpoint.safetensors", dir, name);
    sl_model m;
    sl_checkpoint file;
    sl_train_state ts;
    CHECK(sl_checkpoint_open(&file, ck) == SL_OK && sl_model_create(&m, &file.cfg) == SL_OK &&
              sl_checkpoint_restore(&file, &m, &ts) == SL_OK,
          "load: %s", sl_errmsg());
    const sl_kv vocab = {"vocab_hex", sl_st_meta_find(&file.file, "vocab_hex")};
    poison(&m);
    CHECK(sl_checkpoint_save(ck, &m, &vocab, 1, &ts) == SL_OK, "save poisoned");
    sl_model_free(&m);
    sl_checkpoint_close(&file);
}

static void negative_v(sl_model *m) { m->params.v[5] = -1.0f; }
static void nan_v(sl_model *m) { m->params.v[m->params.total / 2] = NAN; }
static void nan_weight(sl_model *m) { m->params.data[1] = NAN; }
static void nan_embed(sl_model *m) { m->embed->data[3] = NAN; }

/* Resumes the checkpoint poisoned by poison for up to 6 steps (stop_step:
 * -1 or where to stop): the run must fail with status `want_st` and a
 * message holding want, and leave the checkpoint byte for byte as it was. */
static void resume_fails_keeping_checkpoint(const char *name, void (*poison)(sl_model *),
                                            int64_t stop_step, sl_status want_st,
                                            const char *want)
{
    char ck[600];
    poisoned_checkpoint(name, poison, ck, sizeof ck);
    size_t n0 = 0, n1 = 0;
    char *before = slurp(ck, &n0);
    sl_config c;
    tiny(&c, name);
    c.steps = 6;
    c.ckpt_every = 1;
    c.stop_step = stop_step;
    CHECK(sl_train(&c, ck, NULL) == want_st && strstr(sl_errmsg(), want), "%s: %s", name,
          sl_errmsg());
    char *after = slurp(ck, &n1);
    CHECK(n0 == n1 && memcmp(before, after, (size_t)n0) == 0, "%s: checkpoint untouched", name);
    free(before);
    free(after);
}

static void test_nan_loss_stops_and_keeps_checkpoint(void)
{
    resume_fails_keeping_checkpoint("nan", nan_embed, -1, SL_ERR_NUMERIC, "NaN");
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

/* An AdamW update that would leave a NaN or Inf in a weight or a moment is
 * not applied: each case leaves weights and moments bit-identical. */
static void test_adamw_discards_nonfinite_update(void)
{
    struct { const char *why; float v, g, eps; } cases[] = {
        {"negative v (sqrt)", -1.0f, 0.5f, 1e-8f},
        {"g^2 overflows v", 0.0f, 1e30f, 1e-8f},
        {"0 / 0 with adam_eps = 0", 0.0f, 0.0f, 0.0f},
        {"NaN moment", NAN, 0.5f, 1e-8f},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sl_params p;
        sl_params_init(&p);
        sl_tensor *a = SL_PARAM(&p, "a", SL_INIT_ZEROS, 0, true, 40000);
        sl_tensor *b = SL_PARAM(&p, "b", SL_INIT_ZEROS, 0, false, 3);
        sl_params_finalize(&p);
        for (int64_t i = 0; i < a->n; i++) a->grad[i] = 0.25f, a->data[i] = 1.0f;
        b->grad[0] = b->grad[2] = 0.1f;
        b->grad[1] = cases[k].g;
        p.v[b->data - p.data + 1] = cases[k].v;
        size_t n = p.total * sizeof(float);
        float *w0 = malloc(n), *m0 = malloc(n), *v0 = malloc(n);
        memcpy(w0, p.data, n);
        memcpy(m0, p.m, n);
        memcpy(v0, p.v, n);
        sl_config c;
        sl_config_defaults(&c);
        c.adam_eps = cases[k].eps;
        const char *bad = sl_adamw_step(&p, &c, 0, 0.01);
        CHECK(bad && strcmp(bad, "b") == 0, "%s: named %s", cases[k].why, bad ? bad : "nothing");
        CHECK(memcmp(w0, p.data, n) == 0 && memcmp(m0, p.m, n) == 0 && memcmp(v0, p.v, n) == 0,
              "%s: nothing changed", cases[k].why);
        b->grad[1] = 0.1f;
        p.v[b->data - p.data + 1] = 0.0f;
        c.adam_eps = 1e-8;
        CHECK(sl_adamw_step(&p, &c, 0, 0.01) == NULL && a->data[0] != 1.0f,
              "%s: a finite update applies", cases[k].why);
        CHECK(sl_params_nonfinite(&p, NULL) == NULL, "all finite");
        p.m[7] = INFINITY;
        const char *which = NULL;
        CHECK(sl_params_nonfinite(&p, &which) && strcmp(which, "adam.m") == 0, "finds adam.m");
        free(w0);
        free(m0);
        free(v0);
        sl_params_free(&p);
    }
}

/* beta2 = 0 and adam_eps = 0 make 0/0 in the rows of pos.weight that no
 * position reaches (seq_len < max_seq_len): every update is skipped, logged,
 * and the run stops after max_skipped_steps with no checkpoint written
 * (the reported failure wrote NaNs with ckpt_every = 1). */
static void test_nonfinite_updates_are_skipped_then_stop(void)
{
    sl_config c;
    tiny(&c, "skip");
    c.max_seq_len = 32;
    c.beta2 = 0;
    c.adam_eps = 0;
    c.ckpt_every = 1;
    c.max_skipped_steps = 3;
    CHECK(sl_train(&c, NULL, NULL) == SL_ERR_NUMERIC && strstr(sl_errmsg(), "max_skipped_steps") &&
              strstr(sl_errmsg(), "pos.weight") && strstr(sl_errmsg(), "not overwritten"),
          "%s", sl_errmsg());
    char p[600];
    snprintf(p, sizeof p, "%s/skip/checkpoint.safetensors", dir);
    CHECK(!exists(p), "no checkpoint written");
    snprintf(p, sizeof p, "%s/skip/metrics.jsonl", dir);
    CHECK(count_lines(p, "\"skipped\":\"pos.weight\"") == 3 &&
              count_lines(p, "\"skipped_in_a_row\":3,\"skipped_total\":3}") == 1,
          "three skipped lines");
}

/* A resumed checkpoint whose adam.v holds a negative or NaN entry: the
 * loader refuses it, naming the tensor, and the checkpoint stays as it was
 * (it exited 0 and wrote NaN weights). The update's own guard, which would
 * skip such steps, is tested on the optimizer directly. */
static void test_bad_moments_on_resume_stop(void)
{
    resume_fails_keeping_checkpoint("negv", negative_v, -1, SL_ERR_FORMAT,
                                    "'adam.v.embed.weight': element 5 is -1");
    resume_fails_keeping_checkpoint("nanv", nan_v, -1, SL_ERR_FORMAT, "expected a finite value >= 0");
}

/* NaN weights that no update touches (stop_step = the checkpoint's step)
 * are refused at save, and the val line says "loss":null (JSON has no
 * NaN). */
static void test_nonfinite_checkpoint_never_written(void)
{
    resume_fails_keeping_checkpoint("nanw", nan_weight, 2, SL_ERR_NUMERIC, "refusing to write");
    char p[600];
    snprintf(p, sizeof p, "%s/nanw/metrics.jsonl", dir);
    CHECK(count_lines(p, "\"split\":\"val\",\"loss\":null,\"bpc\":null,\"accuracy\":null}") == 1, "null val loss");
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

/* A fresh run refuses an out_dir with a checkpoint unless overwrite; a
 * resume of another checkpoint into it too; the refused runs leave
 * metrics.jsonl as it was and later runs append to it; a held lock keeps a
 * run out, naming the holder's pid, and keeps its temp files; stale temp
 * files go at the next start. */
static void test_out_dir_ownership(void)
{
    sl_config c;
    tiny(&c, "own");
    c.steps = 2;
    CHECK(sl_train(&c, NULL, NULL) == SL_OK, "first run: %s", sl_errmsg());
    char ck[600], metrics[600], lock[600], tmp[700], other[600];
    snprintf(ck, sizeof ck, "%s/own/checkpoint.safetensors", dir);
    snprintf(metrics, sizeof metrics, "%s/own/metrics.jsonl", dir);
    snprintf(lock, sizeof lock, "%s/own/seqlab.lock", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.999999999.3", ck);
    snprintf(other, sizeof other, "%s/split/checkpoint.safetensors", dir);
    int lines = count_lines(metrics, "\"step\"");
    CHECK(lines == 3, "2 train lines and 1 val line, got %d", lines);
    CHECK(sl_train(&c, NULL, NULL) == SL_ERR_IO && strstr(sl_errmsg(), "already holds") &&
              strstr(sl_errmsg(), "--overwrite") && strstr(sl_errmsg(), "--resume"),
          "fresh run refused: %s", sl_errmsg());
    CHECK(sl_train(&c, other, NULL) == SL_ERR_IO && strstr(sl_errmsg(), "already holds"),
          "resume of another checkpoint refused: %s", sl_errmsg());
    CHECK(count_lines(metrics, "\"step\"") == lines, "refused runs leave the metrics");
    /* A live writer: this process holds the lock. */
    int fd = open(lock, O_RDWR);
    char pid[32];
    int np = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && ftruncate(fd, 0) == 0 &&
              pwrite(fd, pid, (size_t)np, 0) == np,
          "hold the lock");
    touch(tmp);
    c.steps = 3;
    pid[np - 1] = '\0';
    CHECK(sl_train(&c, ck, NULL) == SL_ERR_IO && strstr(sl_errmsg(), "in use") &&
              strstr(sl_errmsg(), pid),
          "second writer refused, naming pid %s: %s", pid, sl_errmsg());
    CHECK(exists(tmp), "a live writer's temp file is kept");
    close(fd);
    CHECK(sl_train(&c, ck, NULL) == SL_OK, "resume: %s", sl_errmsg());
    CHECK(!exists(tmp), "stale temp file removed");
    CHECK(count_lines(metrics, "\"step\"") == lines + 2, "resume appends");
    sl_train_opts o = {.overwrite = true};
    CHECK(sl_train_run(&c, &o) == SL_OK, "overwrite: %s", sl_errmsg());
    CHECK(count_lines(metrics, "\"step\"") == lines + 6, "a fresh run appends too");
}

/* Early stop: a validation line whose stop_metric reaches stop_at saves
 * the checkpoint at that step, logs a "stopped" line and ends the run
 * normally; a metric the head lacks is refused before any training, naming
 * the key and the metrics there are. */
static void test_stop_at_target(void)
{
    sl_config c;
    tiny(&c, "stop");
    c.steps = 8;
    c.eval_every = 2;
    snprintf(c.stop_metric, sizeof c.stop_metric, "loss");
    c.stop_at = 100;
    double val = 0;
    CHECK(sl_config_validate(&c) == SL_OK && sl_train(&c, NULL, &val) == SL_OK, "run: %s",
          sl_errmsg());
    char ck[600], metrics[600];
    snprintf(ck, sizeof ck, "%s/stop/checkpoint.safetensors", dir);
    snprintf(metrics, sizeof metrics, "%s/stop/metrics.jsonl", dir);
    sl_model m;
    sl_train_state ts = {0};
    CHECK(sl_checkpoint_load(ck, &m, &ts) == SL_OK && ts.step == 2, "checkpoint at step %lld",
          (long long)ts.step);
    if (ts.step) sl_model_free(&m);
    CHECK(count_lines(metrics, "{\"step\":2,\"stopped\":\"target\",\"metric\":\"loss\",\"value\":") == 1 &&
              count_lines(metrics, "\"split\":\"val\"") == 1 && val > 0 && val <= 100,
          "one val line, then the stopped line");
    /* Higher is better for accuracy: >= 0 holds at once; <= for bpc: 0 never. */
    tiny(&c, "stop_acc");
    c.steps = 4;
    c.eval_every = 1;
    snprintf(c.stop_metric, sizeof c.stop_metric, "accuracy");
    c.stop_at = 0;
    CHECK(sl_train(&c, NULL, NULL) == SL_OK, "accuracy: %s", sl_errmsg());
    snprintf(metrics, sizeof metrics, "%s/stop_acc/metrics.jsonl", dir);
    CHECK(count_lines(metrics, "{\"step\":1,\"stopped\":\"target\",\"metric\":\"accuracy\"") == 1,
          "accuracy >= 0 stops at step 1");
    tiny(&c, "stop_bpc");
    c.steps = 4;
    c.eval_every = 1;
    snprintf(c.stop_metric, sizeof c.stop_metric, "bpc");
    c.stop_at = 0;
    CHECK(sl_train(&c, NULL, NULL) == SL_OK, "bpc: %s", sl_errmsg());
    snprintf(metrics, sizeof metrics, "%s/stop_bpc/metrics.jsonl", dir);
    CHECK(count_lines(metrics, "\"stopped\"") == 0 && count_lines(metrics, "\"split\":\"val\"") == 4,
          "bpc <= 0 never stops");
    /* Refusals: a name of no direction (validate), a metric of another head
     * or a task score the task does not have (before any step). */
    snprintf(c.stop_metric, sizeof c.stop_metric, "perplexity");
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "'stop_metric'") &&
              strstr(sl_errmsg(), "perplexity"),
          "%s", sl_errmsg());
    snprintf(c.stop_metric, sizeof c.stop_metric, "x\"_mse");
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG, "a name JSON would need to escape");
    const char *absent[] = {"mse", "dfa_accuracy"};
    for (int k = 0; k < 2; k++) {
        tiny(&c, "stop_bad");
        snprintf(c.stop_metric, sizeof c.stop_metric, "%s", absent[k]);
        CHECK(sl_config_validate(&c) == SL_OK, "%s validates", absent[k]);
        CHECK(sl_train(&c, NULL, NULL) == SL_ERR_CONFIG && strstr(sl_errmsg(), "'stop_metric'") &&
                  strstr(sl_errmsg(), "has loss, bpc, accuracy"),
              "%s: %s", absent[k], sl_errmsg());
    }
    snprintf(ck, sizeof ck, "%s/stop_bad/checkpoint.safetensors", dir);
    CHECK(!exists(ck), "refused before training");
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
    RUN(test_adamw_discards_nonfinite_update);
    RUN(test_nonfinite_updates_are_skipped_then_stop);
    RUN(test_bad_moments_on_resume_stop);
    RUN(test_nonfinite_checkpoint_never_written);
    RUN(test_out_dir_ownership);
    RUN(test_stop_at_target);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return TEST_SUMMARY();
}
