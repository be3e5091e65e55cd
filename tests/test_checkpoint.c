/* Checkpoint integrity and strict metadata: CRC-32C against its bitwise
 * reference and its speed; a sealed file refuses any changed byte, an
 * unsealed one (another tool's, an older seqlab's) still loads; step, the
 * RNG states and the AdamW moments are checked on load, and a resume from a
 * bad one fails before it writes anything. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/crc32c.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

static char dir[64];
static char ck[600]; /* a 2-step training checkpoint */

static void put(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static void tiny(sl_config *c, const char *out)
{
    sl_config_defaults(c);
    c->d_model = 8;
    c->n_heads = 2;
    c->n_layers = 1;
    c->max_seq_len = 8;
    c->seq_len = 8;
    c->batch_size = 2;
    c->steps = 2;
    c->eval_every = 0;
    c->threads = 1;
    snprintf(c->data, sizeof c->data, "%s/text.txt", dir);
    snprintf(c->out_dir, sizeof c->out_dir, "%s/%s", dir, out);
}

static void test_crc32c(void)
{
    CHECK(sl_crc32c(0, "123456789", 9) == 0xE3069283u, "check value %08x",
          sl_crc32c(0, "123456789", 9));
    CHECK(sl_crc32c_ref(0, "123456789", 9) == 0xE3069283u, "reference check value");
    CHECK(sl_crc32c(0, "", 0) == 0, "empty");
    unsigned char buf[1031];
    sl_rng r;
    sl_rng_seed(&r, 3);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)sl_rng_u64(&r);
    int bad = 0;
    /* Every start alignment, lengths across the 8-byte steps, and chaining. */
    for (size_t at = 0; at < 9; at++)
        for (size_t n = 0; n + at <= sizeof buf; n += 1 + n / 7) {
            uint32_t ref = sl_crc32c_ref(0, buf + at, n);
            bad += sl_crc32c(0, buf + at, n) != ref;
            bad += sl_crc32c(sl_crc32c(0, buf + at, n / 3), buf + at + n / 3, n - n / 3) != ref;
        }
    CHECK(bad == 0, "%d lengths differ from the reference", bad);
}

/* Checkpoints this size (100 MB) must verify in well under a second; the
 * loose floor here only catches a fall back to bitwise speed. */
static void test_crc32c_speed(void)
{
    const size_t n = (size_t)32 << 20;
    unsigned char *p = malloc(n);
    memset(p, 0x5a, n);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    volatile uint32_t crc = sl_crc32c(0, p, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    (void)crc;
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("# crc32c: %.0f MB/s (100 MB in %.3f s)\n", 32 * 1.048576 / s,
           s * 100 / (32 * 1.048576));
    CHECK(s < 0.5, "32 MiB took %.3f s", s);
    free(p);
}

/* Writes dst from ck with metadata key set to value (added when missing,
 * removed when value is NULL) and element 0 of tensor (if any) set to x;
 * sealed, so the strict checks are what must refuse it. */
static void rewrite(const char *dst, const char *key, const char *value, const char *tensor,
                    float x)
{
    sl_st_file f;
    CHECK(sl_st_read(ck, &f) == SL_OK, "%s", sl_errmsg());
    sl_st_meta meta[16];
    size_t nm = 0;
    bool found = false;
    for (size_t i = 0; i < f.nmeta && nm < 15; i++) {
        if (!strcmp(f.meta[i].key, SL_ST_DIGEST_KEY)) continue;
        meta[nm] = f.meta[i];
        if (key && !strcmp(key, f.meta[i].key)) {
            found = true;
            if (!value) continue;
            meta[nm].value = value;
        }
        nm++;
    }
    if (key && value && !found) meta[nm++] = (sl_st_meta){key, value};
    sl_st_tensor *t = malloc(f.ntensors * sizeof *t);
    float *copy = NULL;
    for (size_t i = 0; i < f.ntensors; i++) {
        t[i] = f.tensors[i];
        if (tensor && !strcmp(t[i].name, tensor)) {
            copy = malloc(t[i].nbytes);
            memcpy(copy, t[i].data, t[i].nbytes);
            copy[0] = x;
            t[i].data = copy;
        }
    }
    CHECK(sl_st_write_sealed(dst, t, f.ntensors, meta, nm) == SL_OK, "%s", sl_errmsg());
    free(copy);
    free(t);
    sl_st_close(&f);
}

/* Loading dst for a resume fails with SL_ERR_FORMAT naming dst and what. */
static void expect_refused(const char *dst, const char *what, const char *phrase)
{
    sl_model m;
    sl_train_state ts;
    sl_status st = sl_checkpoint_load(dst, &m, &ts);
    CHECK(st == SL_ERR_FORMAT && strstr(sl_errmsg(), dst) && strstr(sl_errmsg(), what) &&
              (!phrase || strstr(sl_errmsg(), phrase)),
          "%s: status %d: %s", what, st, sl_errmsg());
    if (st == SL_OK) sl_model_free(&m);
}

static void test_strict_step(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/step.safetensors", dir);
    static const char *const bad[] = {"",
                                      "-1",
                                      "+5",
                                      "007",
                                      "1e3",
                                      " 5",
                                      "5 ",
                                      "0x10",
                                      "9223372036854775808",
                                      "99999999999999999999",
                                      "1.0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rewrite(p, "step", bad[i], NULL, 0);
        expect_refused(p, "'step'", "non-negative integer");
    }
    rewrite(p, "step", NULL, NULL, 0);
    expect_refused(p, "'step'", NULL);
    static const struct {
        const char *text;
        int64_t want;
    } good[] = {{"0", 0}, {"9223372036854775807", INT64_MAX}, {"17", 17}};
    for (size_t i = 0; i < 3; i++) {
        rewrite(p, "step", good[i].text, NULL, 0);
        sl_model m;
        sl_train_state ts;
        CHECK(sl_checkpoint_load(p, &m, &ts) == SL_OK && ts.step == good[i].want, "%s: %s",
              good[i].text, sl_errmsg());
        sl_model_free(&m);
    }
}

static void test_strict_rng(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/rng.safetensors", dir);
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    const char *keys[] = {"rng_data", "rng_dropout"};
    for (int k = 0; k < 2; k++) {
        rewrite(p, keys[k], zeros, NULL, 0);
        expect_refused(p, keys[k], "all-zero");
        rewrite(p, keys[k], "00", NULL, 0);
        expect_refused(p, keys[k], "64 hex digits");
    }
    /* splitmix64 is a bijection of its counter, so the four words of a
     * seeded state are distinct and at most one is zero: this seed makes
     * the first word 0, the others not. */
    sl_rng r;
    sl_rng_seed(&r, 0 - 0x9E3779B97F4A7C15ull);
    CHECK(r.s[0] == 0 && r.s[1] && r.s[2] && r.s[3], "one zero word");
    const uint64_t seeds[] = {0, 1, UINT64_MAX, 1337};
    for (int i = 0; i < 4; i++) {
        sl_rng_seed(&r, seeds[i]);
        CHECK(r.s[0] | r.s[1] | r.s[2] | r.s[3], "seed %llu", (unsigned long long)seeds[i]);
    }
}

static void test_strict_moments(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/adam.safetensors", dir);
    static const struct {
        const char *tensor;
        float x;
    } bad[] = {
        {"adam.v.embed.weight", -1e-3f},   {"adam.v.embed.weight", NAN},
        {"adam.v.norm.weight", INFINITY},  {"adam.m.embed.weight", NAN},
        {"adam.m.norm.weight", -INFINITY},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rewrite(p, NULL, NULL, bad[i].tensor, bad[i].x);
        expect_refused(p, bad[i].tensor, "expected a finite value");
    }
    rewrite(p, NULL, NULL, "adam.v.embed.weight", 0);
    sl_model m;
    sl_train_state ts;
    CHECK(sl_checkpoint_load(p, &m, &ts) == SL_OK, "v = 0 is fine: %s", sl_errmsg());
    sl_model_free(&m);
    /* Resuming from a negative second moment fails and writes nothing. */
    rewrite(p, NULL, NULL, "adam.v.embed.weight", -1);
    size_t n0, n1;
    unsigned char *before = (unsigned char *)slurp(p, &n0);
    sl_config c;
    tiny(&c, "resume");
    c.steps = 4;
    CHECK(sl_train(&c, p, NULL) == SL_ERR_FORMAT && strstr(sl_errmsg(), "adam.v.embed.weight"),
          "%s", sl_errmsg());
    unsigned char *after = (unsigned char *)slurp(p, &n1);
    CHECK(n0 == n1 && !memcmp(before, after, n0), "checkpoint untouched");
    char out[700];
    snprintf(out, sizeof out, "%s/resume/checkpoint.safetensors", dir);
    CHECK(access(out, F_OK) != 0, "no checkpoint written");
    free(before);
    free(after);
}

/* The stored config is one object; a BOM before the header is not JSON;
 * a FIFO, a device or a directory is not a checkpoint. */
static void test_strict_config_and_header(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/cfg.safetensors", dir);
    sl_st_file f;
    CHECK(sl_st_read(ck, &f) == SL_OK, "%s", sl_errmsg());
    const char *cfg = sl_st_meta_find(&f, "config");
    static const char *const tails[] = {" xyz", "}", " {}", ",", "\x01"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        char *bad = malloc(strlen(cfg) + 8);
        sprintf(bad, "%s%s", cfg, tails[i]);
        rewrite(p, "config", bad, NULL, 0);
        expect_refused(p, "'config'", "after the JSON object");
        free(bad);
    }
    sl_st_close(&f);
    /* A BOM at the start of the header (sealed or not): the length grows by 3. */
    size_t n;
    unsigned char *raw = (unsigned char *)slurp(ck, &n);
    unsigned char *bom = malloc(n + 3);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)raw[i] << (8 * i);
    hl += 3;
    for (int i = 0; i < 8; i++) bom[i] = (unsigned char)(hl >> (8 * i));
    memcpy(bom + 8, "\xEF\xBB\xBF", 3);
    memcpy(bom + 11, raw + 8, n - 8);
    put(p, bom, n + 3);
    CHECK(sl_st_read(p, &f) == SL_ERR_FORMAT && strstr(sl_errmsg(), "byte order mark") &&
              strstr(sl_errmsg(), p),
          "%s", sl_errmsg());
    /* Not regular files: refused at once (a FIFO is not waited on). */
    char fifo[700];
    snprintf(fifo, sizeof fifo, "%s/ck.fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    const char *odd[] = {fifo, "/dev/zero", dir};
    for (int i = 0; i < 3; i++)
        CHECK(sl_st_read(odd[i], &f) == SL_ERR_IO && strstr(sl_errmsg(), odd[i]), "%s: %s", odd[i],
              sl_errmsg());
    unlink(fifo);
    free(bom);
    free(raw);
}

/* Every byte of a small sealed file, changed in three ways, is refused;
 * the untouched file reads and says it is sealed. */
static void test_sealed_refuses_any_change(void)
{
    char src[700], p[700];
    snprintf(src, sizeof src, "%s/sealed.safetensors", dir);
    snprintf(p, sizeof p, "%s/flip.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6};
    sl_st_tensor t[] = {{.name = "a",
                         .dtype = SL_DT_F32,
                         .ndim = 2,
                         .shape = {2, 3},
                         .data = a,
                         .nbytes = sizeof a}};
    sl_st_meta meta[] = {{"config", "{\"lr\":0.001}"}, {"step", "12"}};
    CHECK(sl_st_write_sealed(src, t, 1, meta, 2) == SL_OK, "%s", sl_errmsg());
    CHECK(sl_st_write_sealed(src, t, 1, (sl_st_meta[]){{SL_ST_DIGEST_KEY, "x"}}, 1) == SL_ERR_ARG,
          "the digest key is the writer's");
    sl_st_file f;
    CHECK(sl_st_read(src, &f) == SL_OK && f.sealed, "sealed: %s", sl_errmsg());
    sl_st_close(&f);
    size_t n;
    unsigned char *good = (unsigned char *)slurp(src, &n);
    unsigned char *mut = malloc(n);
    static const unsigned char masks[] = {0x01, 0x80, 0xff};
    int accepted = 0, cases = 0;
    for (size_t at = 0; at < n; at++)
        for (int k = 0; k < 3; k++) {
            memcpy(mut, good, n);
            mut[at] ^= masks[k];
            put(p, mut, n);
            sl_status st = sl_st_read(p, &f);
            cases++;
            if (st == SL_OK) {
                accepted++;
                sl_st_close(&f);
            } else {
                CHECK(strstr(sl_errmsg(), p) != NULL, "names the file: %s", sl_errmsg());
            }
        }
    CHECK(accepted == 0, "%d of %d changed files accepted", accepted, cases);
    printf("# %d single-byte changes of a %zu-byte sealed file, all refused\n", cases, n);
    free(mut);
    free(good);
}

/* sl_checkpoint_load with stderr captured into note[1024]. */
static sl_status quiet_load(const char *path, sl_model *m, sl_train_state *ts, char *note)
{
    char cap[700];
    snprintf(cap, sizeof cap, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(cap, "w+");
    dup2(fileno(f), 2);
    sl_status st = sl_checkpoint_load(path, m, ts);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t n = fread(note, 1, 1023, f);
    note[n] = '\0';
    fclose(f);
    return st;
}

/* Through sl_checkpoint_open: the header bytes one by one, data bytes at
 * random; then a file without the digest loads, sealed = false. */
static void test_checkpoint_flips_and_unsealed(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/ckflip.safetensors", dir);
    size_t n;
    unsigned char *good = (unsigned char *)slurp(ck, &n);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)good[i] << (8 * i);
    unsigned char *mut = malloc(n);
    sl_rng r;
    sl_rng_seed(&r, 5);
    int accepted = 0, cases = 0;
    for (size_t i = 0; i < 8 + hl + 400; i++) {
        size_t at = i < 8 + hl ? i : 8 + hl + sl_rng_below(&r, n - 8 - hl);
        memcpy(mut, good, n);
        mut[at] ^= (unsigned char)(1u << sl_rng_below(&r, 8));
        put(p, mut, n);
        sl_checkpoint c;
        cases++;
        if (sl_checkpoint_open(&c, p) == SL_OK) {
            accepted++;
            sl_checkpoint_close(&c);
        }
    }
    CHECK(accepted == 0, "%d of %d flipped checkpoints accepted", accepted, cases);
    printf("# %d bit flips of a %zu-byte checkpoint, all refused\n", cases, n);
    free(mut);
    free(good);

    /* The same file written unsealed (as an older seqlab did) still loads. */
    sl_st_file f;
    CHECK(sl_st_read(ck, &f) == SL_OK && f.sealed, "the trainer seals: %s", sl_errmsg());
    sl_st_meta meta[16];
    size_t nm = 0;
    for (size_t i = 0; i < f.nmeta && nm < 16; i++)
        if (strcmp(f.meta[i].key, SL_ST_DIGEST_KEY)) meta[nm++] = f.meta[i];
    CHECK(sl_st_write(p, f.tensors, f.ntensors, meta, nm) == SL_OK, "%s", sl_errmsg());
    sl_model m;
    sl_train_state ts;
    char note[1024];
    CHECK(quiet_load(p, &m, &ts, note) == SL_OK && ts.step == 2, "unsealed loads: %s", sl_errmsg());
    CHECK(strstr(note, "note:") && strstr(note, p) && strstr(note, SL_ST_DIGEST_KEY),
          "a note names the file: '%s'", note);
    sl_model_free(&m);
    CHECK(quiet_load(ck, &m, &ts, note) == SL_OK && note[0] == '\0', "no note when sealed: '%s'",
          note);
    sl_model_free(&m);
    sl_st_file g;
    CHECK(sl_st_read(p, &g) == SL_OK && !g.sealed, "not sealed");
    sl_st_close(&g);
    /* A key one byte from the digest's is damage, not another tool's key. */
    meta[nm++] = (sl_st_meta){"seqlab_crc32d", "00000000"};
    CHECK(sl_st_write(p, f.tensors, f.ntensors, meta, nm) == SL_OK, "%s", sl_errmsg());
    CHECK(sl_st_read(p, &g) == SL_ERR_FORMAT && strstr(sl_errmsg(), "seqlab_crc32d"), "%s",
          sl_errmsg());
    sl_st_close(&f);
}

int main(void)
{
    /* tmpfs where there is one: every checkpoint write fsyncs. */
    snprintf(dir, sizeof dir, "%s/seqlab-test-ck-XXXXXX",
             access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
    if (!mkdtemp(dir)) return 1;
    char text[600];
    snprintf(text, sizeof text, "%s/text.txt", dir);
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 300; i++) fprintf(f, "line %d: and the lord said unto moses\n", i);
    fclose(f);
    sl_config c;
    tiny(&c, "base");
    snprintf(ck, sizeof ck, "%s/base/checkpoint.safetensors", dir);
    if (sl_train(&c, NULL, NULL) != SL_OK) {
        fprintf(stderr, "setup: %s\n", sl_errmsg());
        return 1;
    }
    RUN(test_crc32c);
    RUN(test_crc32c_speed);
    RUN(test_strict_step);
    RUN(test_strict_rng);
    RUN(test_strict_moments);
    RUN(test_strict_config_and_header);
    RUN(test_sealed_refuses_any_change);
    RUN(test_checkpoint_flips_and_unsealed);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return TEST_SUMMARY();
}
