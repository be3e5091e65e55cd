/* The seqlab binary on bad input: each case must exit with status 1 or 2
 * (never a signal), print one message naming the file or field, and leave
 * no partial file behind. Also the happy paths: train, eval, generate, and
 * a mixer benchmark. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "cli_check.h"
#include "core/crc32c.h"
#include "train/checkpoint.h"

static char bin[512], dir[64], err[4096];

/* Runs `seqlab ARGS`, stderr in err; the exit status, -1 on a signal. */
static int run(const char *args) { return cli_check_run(bin, dir, false, args, err, sizeof err); }

static void write_file(const char *name, const void *data, size_t n)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static bool no_temp_files(const char *sub)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    if (!d) return true;
    bool ok = true;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp")) ok = false;
    closedir(d);
    return ok;
}

#define EXPECT_FAIL(args, ...)                                                        \
    do {                                                                              \
        int rc_ = run(args);                                                          \
        CHECK(rc_ == 1 || rc_ == 2, "%s: exit %d", args, rc_);                        \
        const char *want_[] = {__VA_ARGS__};                                          \
        for (size_t k_ = 0; k_ < sizeof want_ / sizeof want_[0]; k_++)                \
            CHECK(strstr(err, want_[k_]) != NULL, "%s: '%s' not in: %s", args, want_[k_], err); \
    } while (0)

static char args[1024];
#define A(...) (snprintf(args, sizeof args, __VA_ARGS__), args)

static void test_train_eval_generate(void)
{
    char text[8192];
    size_t n = 0;
    for (int i = 0; i < 200; i++) n += (size_t)sprintf(text + n, "verse %d: light.\n", i % 37);
    write_file("text.txt", text, n);
    CHECK(run(A("train --data=%s/text.txt --d_model=16 --n_heads=2 --n_layers=1 --seq_len=16 "
                "--max_seq_len=32 --batch_size=2 --steps=3 --eval_batches=1 --out_dir=%s/run",
                dir, dir)) == 0,
          "train: %s", err);
    CHECK(strchr(err, '\r') == NULL, "no progress bar when stderr is not a terminal");
    CHECK(run(A("eval %s/run/checkpoint.safetensors --batches 2", dir)) == 0, "eval: %s", err);
    CHECK(run(A("generate %s/run/checkpoint.safetensors --prompt verse --max-new 40 --top-k 3", dir)) == 0,
          "generate: %s", err);
    char out[256], p[128];
    snprintf(p, sizeof p, "%s/stdout.txt", dir);
    FILE *f = fopen(p, "r");
    size_t got = fread(out, 1, sizeof out - 1, f);
    fclose(f);
    out[got] = '\0';
    /* the prompt, 40 characters (past max_seq_len = 32, which restarts the
     * context from its last half), a newline */
    CHECK(strncmp(out, "verse", 5) == 0 && strlen(out) == 5 + 40 + 1, "output '%s'", out);
    CHECK(run("--help") == 0 && run("train --help") == 0 && run("mixers") == 0, "help");
    CHECK(run("frobnicate") == 2, "unknown command");
}

/* seqlab score: JSON whose total is the sum of its per-position scores,
 * past max_seq_len too (windows), and a clear error for bad input. */
static void test_score(void)
{
    char text[4096];
    size_t n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)sprintf(text + n, "verse %d: light.\n", i % 37);
    write_file("score.txt", text, n);
    CHECK(run(A("train --data=%s/score.txt --d_model=16 --n_heads=2 --n_layers=1 --seq_len=16 "
                "--max_seq_len=32 --batch_size=2 --steps=2 --eval_batches=1 --out_dir=%s/score",
                dir, dir)) == 0,
          "train: %s", err);
    CHECK(run(A("score %s/score/checkpoint.safetensors %s/score.txt", dir, dir)) == 0,
          "score: %s", err);
    char p[128], *out = malloc(1 << 20);
    snprintf(p, sizeof p, "%s/stdout.txt", dir);
    FILE *f = fopen(p, "r");
    size_t got = fread(out, 1, (1 << 20) - 1, f);
    fclose(f);
    out[got] = '\0';
    cJSON *o = cJSON_Parse(out), *lp = cJSON_GetObjectItem(o, "logprobs");
    CHECK(o && cJSON_IsArray(lp) && cJSON_GetArraySize(lp) == (int)n, "JSON with %zu logprobs", n);
    if (o && cJSON_IsArray(lp)) {
        double sum = 0;
        int bad = 0;
        for (int t = 1; t < cJSON_GetArraySize(lp); t++) {
            double v = cJSON_GetArrayItem(lp, t)->valuedouble;
            bad += !(v < 0);
            sum += v;
        }
        double total = cJSON_GetObjectItem(o, "total_nats")->valuedouble;
        CHECK(cJSON_IsNull(cJSON_GetArrayItem(lp, 0)) && bad == 0, "first null, others < 0");
        CHECK_CLOSE(sum, total, 1e-6, 1e-6, "total_nats = sum of logprobs");
        CHECK_CLOSE(cJSON_GetObjectItem(o, "mean_nats")->valuedouble, -total / (double)(n - 1),
                    1e-9, 1e-9, "mean_nats");
        CHECK(cJSON_GetObjectItem(o, "tokens")->valuedouble == (double)n &&
                  cJSON_GetObjectItem(o, "stride")->valuedouble == 16,
              "tokens, stride");
    }
    cJSON_Delete(o);
    free(out);
    write_file("oov.txt", "verse X", 7);
    write_file("one.txt", "v", 1);
    write_file("empty.txt", "", 0);
    char c[128];
    snprintf(c, sizeof c, "%s/score/checkpoint.safetensors", dir);
    EXPECT_FAIL(A("score %s %s/oov.txt", c, dir), "oov.txt", "'X'", "offset 6");
    EXPECT_FAIL(A("score %s %s/one.txt", c, dir), "one.txt", "nothing to score");
    EXPECT_FAIL(A("score %s %s/empty.txt", c, dir), "empty.txt", "empty file");
    EXPECT_FAIL(A("score %s %s/missing.txt", c, dir), "missing.txt");
    EXPECT_FAIL(A("score %s/none.safetensors %s/score.txt", dir, dir), "none.safetensors");
    CHECK(run(A("score %s", c)) == 2 && strstr(err, "missing FILE"), "usage: %s", err);
    CHECK(run("score --help") == 0, "help");
}

static void test_bad_checkpoints(void)
{
    EXPECT_FAIL(A("generate %s/none.safetensors --prompt a", dir), "none.safetensors");
    write_file("empty.safetensors", "", 0);
    EXPECT_FAIL(A("eval %s/empty.safetensors", dir), "empty.safetensors");
    /* A truncated copy of a real checkpoint. */
    char p[256];
    snprintf(p, sizeof p, "%s/run/checkpoint.safetensors", dir);
    FILE *f = fopen(p, "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file("trunc.safetensors", buf, n / 2);
    EXPECT_FAIL(A("generate %s/trunc.safetensors --prompt a", dir), "trunc.safetensors");
    /* Header length far past the end of the file. */
    unsigned char hdr[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_file("long.safetensors", hdr, 10);
    EXPECT_FAIL(A("eval %s/long.safetensors", dir), "long.safetensors", "header");
    /* A valid safetensors file that is not a seqlab checkpoint. */
    unsigned char other[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    write_file("other.safetensors", other, 16);
    EXPECT_FAIL(A("eval %s/other.safetensors", dir), "other.safetensors", "format");
    /* Corrupt header JSON of the right length. */
    memcpy(buf + 8, "[garbage", 8);
    write_file("corrupt.safetensors", buf, n);
    EXPECT_FAIL(A("eval %s/corrupt.safetensors", dir), "corrupt.safetensors");
}

static void test_bad_configs_and_data(void)
{
    const char *unknown = "{\"d_model\": 16, \"heads\": 2}";
    write_file("unknown.json", unknown, strlen(unknown));
    EXPECT_FAIL(A("train %s/unknown.json", dir), "unknown.json", "'heads'");
    const char *types = "{\"d_model\": \"sixteen\"}";
    write_file("types.json", types, strlen(types));
    EXPECT_FAIL(A("train %s/types.json", dir), "types.json", "'d_model'", "integer");
    EXPECT_FAIL(A("train --data=%s/text.txt --d_model=30 --n_heads=4", dir), "n_heads", "d_model");
    EXPECT_FAIL(A("train --data=%s/text.txt --n_layers=x", dir), "--n_layers");
    write_file("empty.txt", "", 0);
    EXPECT_FAIL(A("train --data=%s/empty.txt --out_dir=%s/e", dir, dir), "empty.txt", "empty");
    EXPECT_FAIL(A("train --data=%s/nope.txt --out_dir=%s/e", dir, dir), "nope.txt");
    EXPECT_FAIL(A("generate %s/run/checkpoint.safetensors --prompt 'Zebra'", dir), "'Z'",
                "vocabulary", "checkpoint.safetensors");
    EXPECT_FAIL(A("generate %s/run/checkpoint.safetensors --prompt a --top-p 2", dir), "--top-p");
}

/* Sizes past their bounds, from every way in: overrides, command-line
 * flags and a checkpoint's stored config, each a message naming the key
 * (issue 9: each of these aborted, wrapped or segfaulted). */
static void test_size_bounds(void)
{
    const char *keys[][2] = {{"d_model", "1000000000000000"}, {"d_ff", "1099511627776"},
                             {"max_seq_len", "9223372036854775807"},
                             {"vocab_size", "9223372036854775807"},
                             {"batch_size", "9223372036854775807"},
                             {"seq_len", "9223372036854775807"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EXPECT_FAIL(A("train --data=%s/text.txt --%s=%s --out_dir=%s/b", dir, keys[i][0],
                      keys[i][1], dir),
                    keys[i][0], "expected an integer in [");
    char ck[256];
    snprintf(ck, sizeof ck, "%s/run/checkpoint.safetensors", dir);
    EXPECT_FAIL(A("eval %s --batch-size 1000000000000", ck), "--batch-size", "[1, 1048576]");
    EXPECT_FAIL("bench --mixer attention --seq 1000000000000", "--seq", "[1, 16777216]");
    CHECK(run("bench --mixer attention --seq 16777216 --d-model 65536 --heads 1") == 3 &&
              strstr(err, "--seq 16777216") && strstr(err, "physical memory"),
          "bench planned: %s", err);
    /* Memory does not grow with --max-new: the stream runs until its reader stops. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s generate %s --prompt verse --max-new 1000000000000000 2>%s/e.txt"
             " | head -c 3000 | wc -c", bin, ck, dir);
    FILE *p = popen(cmd, "r");
    long got = 0;
    CHECK(p && fscanf(p, "%ld", &got) == 1 && got == 3000, "streamed %ld characters", got);
    if (p) pclose(p);
    /* The same sizes inside a checkpoint's stored config are refused at load. */
    FILE *f = fopen(ck, "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint64_t hl;
    memcpy(&hl, buf, 8);
    char *at = strstr(buf + 8, "\\\"max_seq_len\\\":32");
    CHECK(at && at < buf + 8 + hl, "stored max_seq_len");
    if (!at) return;
    static char out[1 << 20];
    const char *big = "\\\"max_seq_len\\\":1099511627776";
    size_t pre = (size_t)(at - buf), old = strlen("\\\"max_seq_len\\\":32");
    size_t nl = hl + strlen(big) - old, pad = (8 - nl % 8) % 8;
    memcpy(out, buf, pre);
    memcpy(out + pre, big, strlen(big));
    size_t o = pre + strlen(big);
    memcpy(out + o, at + old, 8 + hl - pre - old);
    o += 8 + hl - pre - old;
    memset(out + o - 0, ' ', pad); /* after the header's closing brace */
    o += pad;
    memcpy(out + o, buf + 8 + hl, n - 8 - hl);
    uint64_t nh = nl + pad;
    memcpy(out, &nh, 8);
    size_t total = o + n - 8 - hl;
    /* Sealed again (docs/formats.md): the CRC-32C of the file with its own
     * eight digits read as "00000000", so only the size check refuses it. */
    char *dg = strstr(out + 8, "\"" SL_ST_DIGEST_KEY "\":\"");
    CHECK(dg, "the checkpoint is sealed");
    if (!dg) return;
    dg += strlen("\"" SL_ST_DIGEST_KEY "\":\"");
    memset(dg, '0', 8);
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)sl_crc32c(0, out, total));
    memcpy(dg, hex, 8);
    write_file("huge.safetensors", out, total);
    EXPECT_FAIL(A("eval %s/huge.safetensors", dir), "huge.safetensors", "'max_seq_len'",
                "expected an integer in [");
    EXPECT_FAIL(A("generate %s/huge.safetensors --prompt verse", dir), "'max_seq_len'");
    EXPECT_FAIL(A("train --resume %s/huge.safetensors --steps=5", dir), "'max_seq_len'");
}

/* seqlab bench --mixer on a tiny layer: one JSON line per length with the
 * rounds asked for, and clear errors for an unknown mixer and bad rounds. */
static void test_bench_mixer(void)
{
    CHECK(run("bench --mixer linear_attention --seq 64,128 --d-model 32 --heads 2 --reps 1 "
              "--rounds 2 --threads 1") == 0,
          "bench --mixer: %s", err);
    char p[256], out[4096];
    snprintf(p, sizeof p, "%s/stdout.txt", dir);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f) fclose(f);
    int lines = 0;
    for (const char *q = out; (q = strstr(q, "\"rounds\":2,")); q++) lines++;
    CHECK(lines == 2, "two JSON lines with rounds 2 in: %s", out);
    CHECK(strstr(out, "\"seq\":128") && strstr(out, "time ~ T^"), "lengths and exponent: %s", out);
    EXPECT_FAIL("bench --mixer nope --seq 64 --d-model 32 --heads 2", "unknown mixer \"nope\"");
    EXPECT_FAIL("bench --mixer linear_attention --rounds 0", "--rounds", ">= 1");
}

/* The text of file p (up to 64 KiB). */
static const char *out_text_of(const char *p)
{
    static char out[1 << 16];
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f) fclose(f);
    return out;
}

/* The stdout of the last run. */
static const char *out_text(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/stdout.txt", dir);
    return out_text_of(p);
}

/* seqlab eval on a synthetic task: the whole held-out set by default (the
 * last batch short), the task's own scores, another length, task options
 * changed, and refusals of what the model cannot take. */
static void test_eval_tasks(void)
{
    CHECK(run(A("train --task=regbench --d_model=16 --n_heads=2 --n_layers=1 --seq_len=64 "
                "--max_seq_len=64 --batch_size=4 --steps=2 --eval_batches=0 "
                "--regbench.val_examples=10 --regbench.test_examples=10 --out_dir=%s/rb",
                dir)) == 0,
          "train regbench: %s", err);
    CHECK(strstr(out_text_of(A("%s/rb/metrics.jsonl", dir)), "\"dfa_accuracy\":"),
          "val lines carry the task's score");
    CHECK(run(A("eval %s/rb/checkpoint.safetensors", dir)) == 0, "eval: %s", err);
    CHECK(strstr(out_text(), "\"dfa_accuracy\":") && strstr(out_text(), "\"tokens\":640}"),
          "10 rows of 64, one score: %s", out_text());
    CHECK(run(A("eval %s/rb/checkpoint.safetensors --batches 1", dir)) == 0 &&
              strstr(out_text(), "\"tokens\":256}"),
          "one batch of 4 rows: %s", out_text());

    CHECK(run(A("train --task=induction_heads --pos=rope --d_model=16 --n_heads=2 --n_layers=1 "
                "--seq_len=32 --max_seq_len=32 --batch_size=4 --steps=2 --eval_batches=1 "
                "--induction_heads.test_examples=6 --out_dir=%s/ih",
                dir)) == 0,
          "train induction_heads: %s", err);
    CHECK(run(A("eval %s/ih/checkpoint.safetensors --seq-len 256", dir)) == 0 && strstr(out_text(), "\"tokens\":1536}"),
          "eval past the training length: %s %s", err, out_text());
    CHECK(run(A("eval %s/ih/checkpoint.safetensors --induction_heads.test_examples=2 --batch-size 1", dir)) == 0 &&
              strstr(out_text(), "\"tokens\":64}"),
          "a task option changed: %s %s", err, out_text());
    EXPECT_FAIL(A("eval %s/ih/checkpoint.safetensors --induction_heads.vocab=64", dir), "64 token ids", "embeds 16");
    EXPECT_FAIL(A("eval %s/ih/checkpoint.safetensors --attention.window=4", dir), "--attention.window",
                "only the checkpoint's task options");
    EXPECT_FAIL(A("eval %s/ih/checkpoint.safetensors --induction_heads.bogus=1", dir), "bogus");
    CHECK(run(A("train --task=induction_heads --pos=learned --d_model=16 --n_heads=2 "
                "--n_layers=1 --seq_len=32 --max_seq_len=32 --batch_size=4 --steps=1 "
                "--eval_batches=1 --out_dir=%s/ihl",
                dir)) == 0,
          "train learned positions: %s", err);
    EXPECT_FAIL(A("eval %s/ihl/checkpoint.safetensors --seq-len 64", dir), "--seq-len 64",
                "max_seq_len = 32");
}

static void test_nan_loss_exits_nonzero(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/run/checkpoint.safetensors", dir);
    sl_model m;
    sl_checkpoint file;
    sl_train_state ts;
    CHECK(sl_checkpoint_open(&file, p) == SL_OK && sl_model_create(&m, &file.cfg) == SL_OK &&
              sl_checkpoint_restore(&file, &m, &ts) == SL_OK,
          "load: %s", sl_errmsg());
    const sl_kv vocab = {"vocab_hex", sl_st_meta_find(&file.file, "vocab_hex")};
    for (int64_t i = 0; i < m.embed->n; i++) m.embed->data[i] = INFINITY;
    snprintf(p, sizeof p, "%s/nan/checkpoint.safetensors", dir);
    char d[128];
    snprintf(d, sizeof d, "mkdir -p %s/nan", dir);
    CHECK(system(d) == 0, "mkdir");
    CHECK(sl_checkpoint_save(p, &m, &vocab, 1, &ts) == SL_OK, "save");
    sl_model_free(&m);
    sl_checkpoint_close(&file);
    EXPECT_FAIL(A("train --resume %s --steps=10 --out_dir=%s/nan", p, dir), "NaN", "step",
                "max_skipped_steps");
    /* eval of NaN weights: valid JSON with null, and a failure status */
    EXPECT_FAIL(A("eval %s --batches 1", p), "not finite", "nan/checkpoint.safetensors");
    cJSON *o = cJSON_Parse(out_text());
    CHECK(o && cJSON_IsNull(cJSON_GetObjectItem(o, "loss")) &&
              cJSON_IsNull(cJSON_GetObjectItem(o, "bpc")),
          "eval prints JSON with null: %s", out_text());
    cJSON_Delete(o);
    CHECK(no_temp_files("nan") && no_temp_files("run") && no_temp_files("e"), "no partial files");
}

/* Mixer and task options through the binary: a hybrid stack with
 * per-mixer and per-layer options trains, its checkpoint stores the
 * resolved options, eval reads them back, and resume refuses a changed
 * option; bad options name the mixer, the option and what it expects;
 * `seqlab mixers NAME` and `seqlab tasks` print the tables. */
static void test_options(void)
{
    const char *cfg = "{\"d_model\": 16, \"n_heads\": 2, \"n_layers\": 2, \"seq_len\": 16,"
                      " \"max_seq_len\": 32, \"batch_size\": 2, \"steps\": 2, \"eval_batches\": 1,"
                      " \"layer_mixers\": [\"attention\", {\"mixer\": \"linear_attention\","
                      " \"feature_map\": \"relu\"}], \"mixer_options\": {\"attention\": {\"window\": 4}}}";
    write_file("hybrid.json", cfg, strlen(cfg));
    CHECK(run(A("train %s/hybrid.json --data=%s/text.txt --linear_attention.normalize=true "
                "--text.holdout_every=10 --out_dir=%s/hybrid",
                dir, dir, dir)) == 0,
          "train: %s", err);
    char ck[256];
    snprintf(ck, sizeof ck, "%s/hybrid/checkpoint.safetensors", dir);
    sl_checkpoint file;
    CHECK(sl_checkpoint_open(&file, ck) == SL_OK, "open: %s", sl_errmsg());
    const char *stored = sl_st_meta_find(&file.file, "config");
    CHECK(stored && strstr(stored, "{\"mixer\":\"attention\",\"window\":4,\"n_kv_heads\":0}") &&
              strstr(stored, "{\"mixer\":\"linear_attention\",\"feature_map\":\"relu\","
                             "\"normalize\":true,\"feature_dim\":0}") &&
              strstr(stored, "\"task_options\":{\"text\":{\"holdout_every\":10}}"),
          "resolved options stored: %s", stored ? stored : "none");
    sl_checkpoint_close(&file);
    CHECK(run(A("eval %s --batches 1", ck)) == 0, "eval: %s", err);
    CHECK(run(A("train --resume %s --steps=3", ck)) == 0, "resume: %s", err);
    EXPECT_FAIL(A("train --resume %s --steps=4 --attention.window=8", ck), "layer 0", "'window'",
                "training keys only");
    EXPECT_FAIL(A("train --data=%s/text.txt --attention.window=-2", dir), "--attention.window=-2",
                "mixer 'attention'", "an integer in [0, ");
    EXPECT_FAIL(A("train --data=%s/text.txt --attention.heads=2", dir), "no option 'heads'",
                "window");
    EXPECT_FAIL(A("train --data=%s/text.txt --mixer=retnet --layers.0.window=2", dir), "layer 0",
                "retnet", "'window'");
    EXPECT_FAIL(A("train --data=%s/text.txt --window=4", dir), "option of attention");
    CHECK(run("mixers linear_attention") == 0 && strstr(out_text(), "feature_map") &&
              strstr(out_text(), "one of elu1, relu, identity, taylor") &&
              strstr(out_text(), "S_t = S_{t-1} + phi(k_t) v_t^T"),
          "mixers NAME: %s", out_text());
    CHECK(run("tasks") == 0 && strstr(out_text(), "holdout_every"), "tasks: %s", out_text());
    EXPECT_FAIL("mixers nope", "unknown mixer \"nope\"");
}

/* The `--key value` form works wherever `--key=value` does (it was read
 * as a config path: "10: cannot open config"); a missing value, an
 * unknown short option and an empty out_dir name the argument and say
 * what was expected. */
static void test_option_forms(void)
{
    CHECK(run(A("train --data %s/text.txt --d_model 16 --n_heads 2 --n_layers 1 --seq_len 16 "
                "--max_seq_len 32 --batch_size 2 --steps 2 --eval_batches 1 --out_dir %s/kv",
                dir, dir)) == 0,
          "train --key value: %s", err);
    CHECK(run(A("train --resume %s/kv/checkpoint.safetensors --steps 3 --stop_step -1", dir)) == 0,
          "train --resume CK --steps 3: %s", err);
    CHECK(run(A("eval %s/kv/checkpoint.safetensors --split val --batches 1", dir)) == 0 &&
              strstr(out_text(), "\"split\":\"val\""),
          "eval --split val: %s", err);
    EXPECT_FAIL(A("train --data=%s/text.txt --bias", dir), "--bias needs a value",
                "--bias=VALUE");
    EXPECT_FAIL(A("train --data=%s/text.txt --bias --steps=2", dir), "--bias needs a value");
    EXPECT_FAIL(A("train --data=%s/text.txt -s 2", dir), "unknown option -s", "--key=value");
    EXPECT_FAIL(A("train --data=%s/text.txt --out_dir=", dir), "'out_dir'", "empty");
    EXPECT_FAIL(A("train --data=%s/text.txt --overwrite=yes", dir), "--overwrite takes no value");
    EXPECT_FAIL("train --resume", "--resume needs a checkpoint path");
    EXPECT_FAIL("train a.json b.json", "more than one config", "a.json", "b.json");
    EXPECT_FAIL(A("train --data=%s/text.txt --max_skipped_steps=0", dir), "'max_skipped_steps'",
                "an integer in [1, ");
    EXPECT_FAIL(A("eval %s/kv/checkpoint.safetensors --batches --split val", dir), "--batches",
                "integer");
    EXPECT_FAIL(A("generate %s/kv/checkpoint.safetensors --prompt --top-k 2", dir),
                "--prompt needs a text", "--prompt=TEXT");
    EXPECT_FAIL("bench --mixer --seq 64", "--mixer needs a name");
    EXPECT_FAIL(A("score --threads %s/kv/checkpoint.safetensors x", dir), "--threads", "integer");
}

/* A fresh run refuses an out_dir that holds a checkpoint unless
 * --overwrite (it silently replaced it). */
static void test_overwrite(void)
{
    const char *base = "--d_model=16 --n_heads=2 --n_layers=1 --seq_len=16 --max_seq_len=32 "
                       "--batch_size=2 --steps=2 --eval_batches=1";
    EXPECT_FAIL(A("train --data=%s/text.txt %s --out_dir=%s/kv", dir, base, dir), "already holds",
                "--overwrite", "--resume");
    CHECK(run(A("train --data=%s/text.txt %s --out_dir=%s/kv --overwrite", dir, base, dir)) == 0,
          "--overwrite: %s", err);
}

/* Starts `seqlab train ARGS` (split at spaces) with stdout and stderr in
 * dir/bg.txt; returns its pid. */
static pid_t start_train(char *args)
{
    char *argv[64] = {bin, "train"};
    int n = 2;
    for (char *save = NULL, *t = strtok_r(args, " ", &save); t && n < 63;
         t = strtok_r(NULL, " ", &save))
        argv[n++] = t;
    argv[n] = NULL;
    char out[128];
    snprintf(out, sizeof out, "%s/bg.txt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Whether file holds needle within 60 s. */
static bool wait_for(const char *file, const char *needle)
{
    static char buf[1 << 16];
    for (int k = 0; k < 6000; k++) {
        FILE *f = fopen(file, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = '\0';
        if (strstr(buf, needle)) return true;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return false;
}

/* A run stopped by SIGTERM (then SIGINT, resumed) saves a checkpoint at the
 * step it logged last and exits 128 + the signal with a message; while it
 * runs, a second trainer on its out_dir is refused, naming its pid (both
 * exited 0 and the last rename won). */
static void test_signals_and_second_writer(void)
{
    int sigs[2] = {SIGTERM, SIGINT};
    char ck[256], metrics[256], bg[256];
    snprintf(ck, sizeof ck, "%s/sig/checkpoint.safetensors", dir);
    snprintf(metrics, sizeof metrics, "%s/sig/metrics.jsonl", dir);
    snprintf(bg, sizeof bg, "%s/bg.txt", dir);
    int64_t last = 0;
    for (int k = 0; k < 2; k++) {
        char a[1024];
        if (k == 0)
            snprintf(a, sizeof a,
                     "--data=%s/text.txt --d_model=16 --n_heads=2 --n_layers=1 --seq_len=16 "
                     "--max_seq_len=32 --batch_size=2 --steps=100000000 --log_every=1 "
                     "--eval_batches=1 --out_dir=%s/sig",
                     dir, dir);
        else
            snprintf(a, sizeof a, "--resume %s", ck);
        pid_t pid = start_train(a);
        char want[64];
        snprintf(want, sizeof want, "{\"step\":%lld,", (long long)last + 1);
        CHECK(pid > 0 && wait_for(metrics, want), "run %d logged a step", k);
        if (k == 0) {
            EXPECT_FAIL(A("train --data=%s/text.txt --out_dir=%s/sig --overwrite", dir, dir),
                        "in use", "sig/seqlab.lock");
            char p[32];
            snprintf(p, sizeof p, "pid %ld", (long)pid);
            CHECK(strstr(err, p) != NULL, "names the holder's %s: %s", p, err);
        }
        kill(pid, sigs[k]);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                  WEXITSTATUS(status) == 128 + sigs[k],
              "run %d: exit status %d", k, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        CHECK(wait_for(bg, k ? "stopped by SIGINT" : "stopped by SIGTERM") &&
                  wait_for(bg, "--resume"),
              "message");
        sl_checkpoint file;
        sl_model m;
        sl_train_state ts = {0};
        CHECK(sl_checkpoint_open(&file, ck) == SL_OK && sl_model_create(&m, &file.cfg) == SL_OK &&
                  sl_checkpoint_restore(&file, &m, &ts) == SL_OK,
              "checkpoint loads: %s", sl_errmsg());
        sl_model_free(&m);
        sl_checkpoint_close(&file);
        snprintf(want, sizeof want, "{\"step\":%lld,\"loss\"", (long long)ts.step);
        char after[64];
        snprintf(after, sizeof after, "{\"step\":%lld,", (long long)ts.step + 1);
        CHECK(ts.step > last && wait_for(metrics, want) && !strstr(out_text_of(metrics), after),
              "run %d: saved at its last logged step %lld", k, (long long)ts.step);
        last = ts.step;
    }
    CHECK(no_temp_files("sig"), "no temp files");
}

/* docs/cli.md is generated from the binary (tools/gen_cli_md.sh): it must
 * be what the code prints now. */
static void test_cli_doc_is_current(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tools/gen_cli_md.sh %s > %s/cli.md && cmp -s %s/cli.md docs/cli.md",
             bin, dir, dir);
    CHECK(system(cmd) == 0,
          "docs/cli.md is stale: run tools/gen_cli_md.sh build/seqlab > docs/cli.md");
}

/* Config files that are not regular files or too large, strings that are
 * not UTF-8 (they would fail the checkpoint's header at the first save),
 * an empty name in --layer_mixers, and activations that outgrow a memory
 * limit the plan cannot see (ulimit -v): each a message and exit 1 or 3,
 * never a hang or a crash. */
static void test_inputs_that_are_not_what_they_seem(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/fifo.json", dir);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo");
    EXPECT_FAIL(A("train %s", p), "fifo.json", "not a regular file");
    EXPECT_FAIL(A("train %s", dir), "is a directory");
    snprintf(p, sizeof p, "%s/big.json", dir);
    FILE *f = fopen(p, "w");
    CHECK(f && ftruncate(fileno(f), (off_t)17 << 20) == 0, "sparse file");
    if (f) fclose(f);
    EXPECT_FAIL(A("train %s", p), "big.json", "a config is at most");
    EXPECT_FAIL(A("train --data=%s/text.txt --out_dir=%s/\xff", dir, dir), "'out_dir'",
                "not valid UTF-8");
    EXPECT_FAIL(A("train --data=%s/text.txt --n_layers=3 --layer_mixers=attention,,attention",
                  dir),
                "'layer_mixers'[1]");
#if !defined(__SANITIZE_ADDRESS__) /* ASan's shadow memory cannot live under ulimit -v */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "ulimit -v 600000; %s train --data=%s/text.txt --d_model=64 --n_heads=2 "
             "--n_layers=2 --seq_len=128 --max_seq_len=128 --batch_size=1024 --steps=1 "
             "--threads=1 --out_dir=%s/oom 2>%s/oom.txt",
             bin, dir, dir, dir);
    int st = system(cmd);
    size_t len;
    snprintf(p, sizeof p, "%s/oom.txt", dir);
    char *msg = slurp(p, &len);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3 && msg && strstr(msg, "out of memory"),
          "activations past ulimit -v: exit %d, %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
          msg ? msg : "");
    free(msg);
#endif
}

/* A disk that fills during a save (RLIMIT_FSIZE: writes past 50 KB fail
 * with EFBIG, SIGXFSZ ignored): the run fails naming the checkpoint, the
 * previous checkpoint stays byte for byte, no temp file is left. */
static void test_full_disk_keeps_checkpoint(void)
{
    CHECK(run(A("train --data=%s/text.txt --d_model=32 --n_heads=2 --n_layers=1 --seq_len=16 "
                "--max_seq_len=32 --batch_size=2 --steps=2 --eval_batches=1 --out_dir=%s/full",
                dir, dir)) == 0,
          "train: %s", err);
    char ck[256], cmd[1024];
    snprintf(ck, sizeof ck, "%s/full/checkpoint.safetensors", dir);
    size_t n0 = 0, n1 = 0;
    char *before = slurp(ck, &n0);
    snprintf(cmd, sizeof cmd,
             "trap '' XFSZ; ulimit -f 100; %s train --resume %s --steps=4 --eval_batches=1 "
             "2>%s/full.txt",
             bin, ck, dir);
    int st = system(cmd);
    char p[256];
    size_t len;
    snprintf(p, sizeof p, "%s/full.txt", dir);
    char *msg = slurp(p, &len);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && msg && strstr(msg, "checkpoint.safetensors") &&
              strstr(msg, "write failed"),
          "exit %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, msg ? msg : "");
    free(msg);
    char *after = slurp(ck, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, (size_t)n0) == 0,
          "the previous checkpoint is intact");
    CHECK(no_temp_files("full"), "no temp file left");
    free(before);
    free(after);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[512];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(bin, sizeof bin, "%s/../seqlab", dirname(self));
    strcpy(dir, "/tmp/seqlab-cli-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(test_train_eval_generate);
    RUN(test_eval_tasks);
    RUN(test_score);
    RUN(test_bad_checkpoints);
    RUN(test_bad_configs_and_data);
    RUN(test_inputs_that_are_not_what_they_seem);
    RUN(test_full_disk_keeps_checkpoint);
    RUN(test_nan_loss_exits_nonzero);
    RUN(test_bench_mixer);
    RUN(test_size_bounds);
    RUN(test_options);
    RUN(test_option_forms);
    RUN(test_overwrite);
    RUN(test_signals_and_second_writer);
    RUN(test_cli_doc_is_current);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return TEST_SUMMARY();
}
