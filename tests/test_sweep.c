/* seqlab sweep, through the built binary: a small grid writes every
 * result.json, summary.csv and best.csv; a second invocation skips every
 * run and rewrites nothing but the tables; a run with a checkpoint and no
 * result, or one whose sweep was stopped by a signal, continues with
 * --resume; a failed run is recorded, then started again; targets stop runs
 * early; bad specs fail before anything is written. Also the spec's run
 * names and override order, in-process. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "cli_check.h"
#include "core/file.h"
#include "sweep/spec.h"

static char bin[PATH_MAX + 16], dir[64], err[8192];

/* Runs `seqlab ARGS` in dir, stderr in err; the exit status, -1 on a signal. */
static int run(const char *args) { return cli_check_run(bin, dir, true, args, err, sizeof err); }

static char *slurp_in(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *t = NULL;
    int64_t n;
    return sl_read_text(p, name, 1 << 26, &t, &n) ? NULL : t;
}

static void write_in(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static bool exists_in(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* A file's identity and time: a rewrite (a rename over it) changes them. */
static void stamp(const char *name, struct stat *sb)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    memset(sb, 0, sizeof *sb);
    stat(p, sb);
}

static bool same_stamp(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_size == b->st_size;
}

static int count(const char *text, const char *needle)
{
    int k = 0;
    for (const char *q = text; q && (q = strstr(q, needle)); q++) k++;
    return k;
}

/* A tiny MQAR model: a run trains and evaluates in well under a second. */
static const char *BASE = "{\"task\": \"mqar\", \"d_model\": 16, \"n_layers\": 1, \"n_heads\": 1, "
                          "\"seq_len\": 32, \"max_seq_len\": 32, \"mlp\": \"none\", "
                          "\"batch_size\": 8, \"warmup_steps\": 0, \"eval_batches\": 2, "
                          "\"log_every\": 1, \"task_options\": {\"mqar\": {\"num_kv_pairs\": 2, "
                          "\"vocab\": 64, \"val_examples\": 16, \"test_examples\": 24}}}";

static const char *RUNS[] = {"attention_lr0.001", "attention_lr0.003", "hyena_lr0.001",
                             "hyena_lr0.003"};

static void write_grid_spec(const char *name, const char *out, const char *set)
{
    char spec[2048];
    snprintf(spec, sizeof spec,
             "{\"base\": \"base.json\", \"out_dir\": \"%s\",\n"
             " \"grid\": {\"mixer\": [\"attention\", \"hyena\"], \"lr\": [1e-3, 3e-3]},\n"
             " \"set\": %s,\n"
             " \"target\": {\"metric\": \"accuracy\"}, \"best_over\": [\"lr\"]}\n",
             out, set);
    write_in(name, spec);
}

static void test_grid_writes_results_and_tables(void)
{
    write_grid_spec("grid.json", "g", "{\"steps\": 4, \"eval_every\": 2}");
    CHECK(run("sweep grid.json --jobs 2 --threads 2") == 0, "sweep: %s", err);
    for (int r = 0; r < 4; r++) {
        char p[256];
        snprintf(p, sizeof p, "g/runs/%s/result.json", RUNS[r]);
        char *t = slurp_in(p);
        cJSON *o = t ? cJSON_Parse(t) : NULL;
        const cJSON *params = cJSON_GetObjectItem(o, "params"), *test = cJSON_GetObjectItem(o, "test");
        const cJSON *val = cJSON_GetObjectItem(o, "val");
        CHECK(o && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "name")), RUNS[r]) &&
                  !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")), "done") &&
                  cJSON_GetObjectItem(o, "steps")->valuedouble == 4 &&
                  cJSON_IsNumber(cJSON_GetObjectItem(o, "wall_s")) &&
                  cJSON_IsFalse(cJSON_GetObjectItem(o, "stopped_early")),
              "%s: %s", p, t ? t : "missing");
        CHECK(cJSON_GetObjectItem(params, "lr")->valuedouble == (r % 2 ? 3e-3 : 1e-3) &&
                  !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(params, "mixer")),
                          r < 2 ? "attention" : "hyena"),
              "%s: params", p);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(val, "accuracy")) &&
                  !cJSON_GetObjectItem(val, "step") &&
                  !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(test, "split")), "test") &&
                  cJSON_GetObjectItem(test, "tokens")->valuedouble == 24 * 32,
              "%s: val and test (the whole test split)", p);
        cJSON_Delete(o);
        free(t);
        snprintf(p, sizeof p, "g/runs/%s/checkpoint.safetensors", RUNS[r]);
        CHECK(exists_in(p), "%s", p);
    }
    char *sum = slurp_in("g/summary.csv"), *best = slurp_in("g/best.csv");
    const char *head = "name,mixer,lr,status,steps,wall_s,stopped_early,val_loss,val_bpc,"
                       "val_accuracy,test_loss,test_bpc,test_accuracy";
    CHECK(sum && !strncmp(sum, head, strlen(head)) && sum[strlen(head)] == '\n' &&
              count(sum, "\n") == 5 && strstr(sum, "\nhyena_lr0.003,hyena,0.003,done,4,"),
          "summary.csv: %s", sum ? sum : "missing");
    CHECK(best && !strncmp(best, head, strlen(head)) && !strncmp(best + strlen(head), ",best_of\n", 9) &&
              count(best, "\n") == 3 && count(best, ",2\n") == 2 && strstr(best, "\nattention_lr") &&
              strstr(best, "\nhyena_lr"),
          "best.csv: one row per mixer, best of 2: %s", best ? best : "missing");
    free(sum);
    free(best);
    char *copy = slurp_in("g/sweep.json"), *spec = slurp_in("grid.json");
    CHECK(copy && spec && !strcmp(copy, spec), "the spec is copied to OUT/sweep.json");
    free(copy);
    free(spec);
}

/* Everything done: nothing runs, nothing but the tables is rewritten. */
static void test_second_invocation_skips(void)
{
    const char *files[] = {"result.json", "checkpoint.safetensors", "metrics.jsonl", "stderr.log"};
    struct stat before[4][4], after;
    for (int r = 0; r < 4; r++)
        for (int f = 0; f < 4; f++) {
            char p[256];
            snprintf(p, sizeof p, "g/runs/%s/%s", RUNS[r], files[f]);
            stamp(p, &before[r][f]);
        }
    struct stat spec0;
    stamp("g/sweep.json", &spec0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(run("sweep grid.json --jobs 2 --threads 2") == 0 && strstr(err, "4 of 4 runs done before") &&
              !strstr(err, "training"),
          "second sweep: %s", err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(b.tv_sec - a.tv_sec < 5, "skipping is fast");
    for (int r = 0; r < 4; r++)
        for (int f = 0; f < 4; f++) {
            char p[256];
            snprintf(p, sizeof p, "g/runs/%s/%s", RUNS[r], files[f]);
            stamp(p, &after);
            CHECK(same_stamp(&before[r][f], &after), "%s untouched", p);
        }
    stamp("g/sweep.json", &after);
    CHECK(same_stamp(&spec0, &after), "sweep.json untouched");
}

/* A checkpoint and no result (a sweep killed between the two): the run
 * continues from the checkpoint, and only it runs. */
static void test_missing_result_continues(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/g/runs/%s/result.json", dir, RUNS[2]);
    unlink(p);
    CHECK(run("sweep grid.json --threads 1") == 0 && strstr(err, "3 of 4 runs done before") &&
              strstr(err, "hyena_lr0.001: continuing from its checkpoint") &&
              count(err, "continuing") == 1,
          "continued: %s", err);
    snprintf(p, sizeof p, "g/runs/%s/stderr.log", RUNS[2]);
    char *log = slurp_in(p);
    CHECK(log && count(log, "== seqlab train") == 2 && strstr(log, "--resume g/runs/hyena_lr0.001/"),
          "the second train was a --resume: %s", log ? log : "");
    free(log);
    snprintf(p, sizeof p, "g/runs/%s/result.json", RUNS[2]);
    char *t = slurp_in(p);
    CHECK(t && strstr(t, "\"status\":\"done\"") && strstr(t, "\"steps\":4,"), "%s", t ? t : "");
    free(t);
}

/* Waits up to 60 s for name to hold needle. */
static bool wait_for(const char *name, const char *needle)
{
    for (int k = 0; k < 6000; k++) {
        char *t = exists_in(name) ? slurp_in(name) : NULL;
        bool hit = t && strstr(t, needle);
        free(t);
        if (hit) return true;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return false;
}

/* SIGTERM to a sweep mid-run: its running runs save and stop, the sweep
 * exits 143 with no result written; the next invocation continues them
 * (here with fewer steps than they reached, so they end at once). */
static void test_stopped_sweep_continues(void)
{
    write_grid_spec("long.json", "k", "{\"steps\": 100000000, \"eval_every\": 0}");
    char out[128];
    snprintf(out, sizeof out, "%s/k.txt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        int fd = open("k.txt", O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(fd, 2);
        execl(bin, bin, "sweep", "long.json", "--jobs", "2", "--threads", "2", (char *)NULL);
        _exit(127);
    }
    CHECK(wait_for("k/runs/attention_lr0.001/metrics.jsonl", "{\"step\":3,") &&
              wait_for("k/runs/attention_lr0.003/metrics.jsonl", "{\"step\":3,"),
          "both runs trained");
    kill(pid, SIGTERM);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 143,
          "exit status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    char *msg = slurp_in("k.txt");
    CHECK(msg && count(msg, "stopped; the next `seqlab sweep` continues it") == 2 &&
              strstr(msg, "stopped by SIGTERM"),
          "%s", msg ? msg : "");
    free(msg);
    CHECK(exists_in("k/runs/attention_lr0.001/checkpoint.safetensors") &&
              !exists_in("k/runs/attention_lr0.001/result.json") &&
              !exists_in("k/runs/hyena_lr0.001"),
          "checkpoints, no results, later runs not started");
    char *sum = slurp_in("k/summary.csv");
    CHECK(sum && count(sum, ",pending,") == 4, "summary: %s", sum ? sum : "");
    free(sum);
    write_grid_spec("long.json", "k", "{\"steps\": 2, \"eval_every\": 0}");
    CHECK(run("sweep long.json --jobs 2 --threads 2") == 0 && count(err, "continuing") == 2 &&
              count(err, ": training") == 2,
          "continued: %s", err);
    char *t = slurp_in("k/runs/attention_lr0.003/result.json");
    CHECK(t && strstr(t, "\"status\":\"done\""), "%s", t ? t : "");
    free(t);
}

/* Whether the lock of a run directory is free: its trainer has ended. */
static bool lock_free(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/seqlab.lock", dir, name);
    int fd = open(p, O_RDWR);
    bool free_ = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0) close(fd);
    return free_;
}

/* A sweep killed outright (SIGKILL): its run gets SIGTERM from the kernel
 * (PR_SET_PDEATHSIG), saves and stops; the next invocation continues it. */
static void test_killed_sweep_continues(void)
{
    write_in("kill.json", "{\"base\": \"base.json\", \"out_dir\": \"x\", \"grid\": {\"seed\": [7]},"
                          " \"set\": {\"steps\": 100000000}}");
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        int fd = open("x.txt", O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(fd, 2);
        execl(bin, bin, "sweep", "kill.json", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    CHECK(wait_for("x/runs/s7/metrics.jsonl", "{\"step\":3,"), "the run trained");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    bool ended = false;
    for (int k = 0; k < 6000 && !ended; k++) {
        ended = lock_free("x/runs/s7");
        if (!ended) nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    CHECK(ended && exists_in("x/runs/s7/checkpoint.safetensors") && !exists_in("x/runs/s7/result.json"),
          "the orphaned run saved and stopped");
    char *log = slurp_in("x/runs/s7/stderr.log");
    CHECK(log && strstr(log, "stopped by SIGTERM"), "%s", log ? log : "");
    free(log);
    write_in("kill.json", "{\"base\": \"base.json\", \"out_dir\": \"x\", \"grid\": {\"seed\": [7]},"
                          " \"set\": {\"steps\": 2}}");
    CHECK(run("sweep kill.json --threads 1") == 0 && strstr(err, "s7: continuing from its checkpoint"),
          "%s", err);
}

/* A target reached at the first evaluation stops the run there; the
 * result says so. */
static void test_target_stops_early(void)
{
    write_in("stop.json", "{\"base\": \"base.json\", \"out_dir\": \"s\", \"grid\": {\"seed\": [1]},"
                          " \"set\": {\"steps\": 1000, \"eval_every\": 2},"
                          " \"target\": {\"metric\": \"loss\", \"value\": 100}}");
    CHECK(run("sweep stop.json --threads 1") == 0 && strstr(err, "target reached"), "%s", err);
    char *t = slurp_in("s/runs/s1/result.json"), *m = slurp_in("s/runs/s1/metrics.jsonl");
    CHECK(t && strstr(t, "\"steps\":2,") && strstr(t, "\"stopped_early\":true"), "%s", t ? t : "");
    CHECK(m && strstr(m, "{\"step\":2,\"stopped\":\"target\",\"metric\":\"loss\""), "%s", m ? m : "");
    free(t);
    free(m);
}

/* A run whose train fails is recorded (status failed, the error), the
 * sweep exits 1, and the next invocation starts it again. */
static void test_failed_run_recorded_and_retried(void)
{
    write_in("fail.json", "{\"base\": \"base.json\", \"out_dir\": \"f\","
                          " \"grid\": {\"mqar.num_kv_pairs\": [2, 100]}, \"set\": {\"steps\": 2}}");
    CHECK(run("sweep fail.json --threads 1") == 1 && strstr(err, "num_kv_pairs100: failed") &&
              strstr(err, "1 done, 1 failed"),
          "%s", err);
    char *t = slurp_in("f/runs/num_kv_pairs100/result.json"), *sum = slurp_in("f/summary.csv");
    CHECK(t && strstr(t, "\"status\":\"failed\"") && strstr(t, "\"error\":\"seqlab train exited with status 1: ") &&
              strstr(t, "num_kv_pairs"),
          "%s", t ? t : "");
    CHECK(sum && strstr(sum, "\nnum_kv_pairs100,100,failed,0,"), "%s", sum ? sum : "");
    free(t);
    free(sum);
    CHECK(run("sweep fail.json --threads 1") == 1 && strstr(err, "num_kv_pairs100: training (again)") &&
              strstr(err, "1 of 2 runs done before"),
          "%s", err);
}

/* Bad specs: exit 1 (2 for the command line) with a message naming the
 * key, and no out_dir made. */
static void test_bad_specs(void)
{
    static const struct {
        const char *spec, *want;
    } CASES[] = {
        {"\"grid\": {\"lr\": []}", "grid axis 'lr': expected a non-empty array"},
        {"\"grid\": {\"lr\": [0.001, 1e-3]}", "value 1: the same as value 0"},
        {"\"grid\": {\"d_model\": [16, 16.5]}", "run 2 (d16.5): --d_model=16.5: expected an integer"},
        {"\"grid\": {\"mixer\": [\"attention\", \"nope\"]}", "run 2 (nope)"},
        {"\"grid\": {\"lr\": [0.1]}, \"sets\": {}", "unknown key 'sets'"},
        {"\"grid\": {\"lr\": [0.1]}, \"set\": {\"lr\": 3}", "key 'lr' is set by both \"set\" and grid axis 'lr'"},
        {"\"grid\": {\"lr\": [0.1]}, \"set\": {\"threads\": 3}", "key 'threads' cannot be set"},
        {"\"grid\": {\"lr\": [0.1]}, \"set\": {\"stop_at\": 3}", "key 'stop_at' cannot be set"},
        {"\"grid\": {\"c\": [{\"lr\": 0.1}], \"lr\": [0.2]}", "key 'lr' is set by both grid axis 'c' and grid axis 'lr'"},
        {"\"grid\": {\"lr\": [null]}", "key 'lr': expected a number"},
        {"\"grid\": {\"lr\": [0.1]}, \"best_over\": [\"lr\"]", "\"best_over\" needs \"target\""},
        {"\"grid\": {\"lr\": [0.1]}, \"target\": {\"metric\": \"loss\"}, \"best_over\": [\"seed\"]", "\"best_over\": \"seed\""},
        {"\"grid\": {\"lr\": [0.1]}, \"target\": {\"metric\": \"perplexity\"}", "\"target\".\"metric\""},
        {"\"grid\": {\"lr\": [0.1]}, \"eval_split\": \"dev\"", "\"eval_split\""},
        {"\"grid\": {\"bogus_key\": [1]}", "--bogus_key: unknown key"},
        {"\"grid\": {\"a\": [\"x y\", \"x/y\"]}", "both named"},
        {"\"grid\": {\"lr\": [0.1]}, \"target\": {\"metric\": \"loss\", \"value\": 1}",
         "run 1 (lr0.1): \"target\".\"value\" stops runs at evaluations: expected eval_every > 0"},
    };
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        char spec[1024];
        snprintf(spec, sizeof spec, "{\"base\": \"base.json\", \"out_dir\": \"bad\", %s}",
                 CASES[k].spec);
        write_in("bad.json", spec);
        int rc = run("sweep bad.json");
        CHECK(rc == 1 && strstr(err, "bad.json") && strstr(err, CASES[k].want), "case %zu: exit %d: %s",
              k, rc, err);
    }
    write_in("bad.json", "{\"base\": \"nope.json\", \"out_dir\": \"bad\", \"grid\": {\"lr\": [1]}}");
    CHECK(run("sweep bad.json") == 1 && strstr(err, "\"base\": nope.json"), "%s", err);
    write_in("bad.json", "{\"base\": \"base.json\", \"out_dir\": \"bad\", // no\n\"grid\": {}}");
    CHECK(run("sweep bad.json") == 1 && strstr(err, "not valid JSON"), "%s", err);
    write_in("bad.json", "{\"base\": \"base.json\", \"out_dir\": \"bad\", \"grid\": {\"lr\": [010]}}");
    CHECK(run("sweep bad.json") == 1 && strstr(err, "leading zero"), "%s", err);
    CHECK(run("sweep") == 2 && strstr(err, "missing SWEEP.json"), "%s", err);
    CHECK(run("sweep grid.json --jobs 0") == 2 && strstr(err, "--jobs"), "%s", err);
    CHECK(run("sweep missing.json") == 1 && strstr(err, "missing.json"), "%s", err);
    CHECK(!exists_in("bad"), "no out_dir made by a refused spec");
}

/* --dry-run: names and commands in grid order, nothing written. */
static void test_dry_run(void)
{
    write_in("dry.json", "{\"base\": \"base.json\", \"out_dir\": \"dry\", \"set\": {\"eval_every\": 5}, \"grid\": {"
                         "\"cell\": [{\"seq_len\": 32}, {\"seq_len\": 16, \"max_seq_len\": 16}],"
                         "\"mixer\": [\"attention\"], \"d_model\": [8, 16], \"seed\": [-1]},"
                         "\"target\": {\"metric\": \"accuracy\", \"value\": 0.99}}");
    CHECK(run("sweep dry.json --dry-run --jobs 2 --threads 4") == 0, "%s", err);
    char *o = slurp_in("stdout.txt");
    CHECK(o && strstr(o, "cell0_attention_d8_s-1: seqlab train base.json --eval_every=5 --seq_len=32 "
                         "--mixer=attention --d_model=8 --seed=-1 --out_dir=dry/runs/cell0_attention_d8_s-1 "
                         "--threads=2 --stop_metric=accuracy --stop_at=0.99\n") &&
              strstr(o, "\ncell1_attention_d16_s-1: seqlab train base.json --eval_every=5 --seq_len=16 --max_seq_len=16 ") &&
              count(o, "\n") == 4,
          "%s", o ? o : "");
    free(o);
    CHECK(!exists_in("dry"), "nothing written");
}

/* In-process: indices, names and the order overrides apply in. */
static void test_spec_names_and_overrides(void)
{
    write_in("names.json", "{\"base\": {\"task\": \"mqar\"}, \"out_dir\": \"n\", \"set\": {\"steps\": 3},"
                           "\"grid\": {\"mixer\": [\"attention\", \"linear_attention\"],"
                           "\"layers.0.window\": [0, 8], \"lr\": [0.0003]}}");
    char p[256];
    snprintf(p, sizeof p, "%s/names.json", dir);
    sl_sweep s;
    CHECK(sl_sweep_load(&s, p) == SL_OK, "%s", sl_errmsg());
    if (check_failures) return;
    char name[256];
    sl_sweep_name(&s, 3, name, sizeof name);
    CHECK(s.n_runs == 4 && !strcmp(name, "linear_attention_window8_lr0.0003"), "%s", name);
    const sl_sweep_kv *kv[8];
    int64_t n = sl_sweep_overrides(&s, 1, kv);
    CHECK(n == 4 && !strcmp(kv[0]->key, "steps") && !strcmp(kv[1]->value, "attention") &&
              !strcmp(kv[2]->key, "layers.0.window") && !strcmp(kv[2]->value, "8") &&
              !strcmp(kv[3]->value, "0.0003"),
          "overrides of run 1");
    char num[40];
    sl_sweep_number(0.1 + 0.2, num, sizeof num);
    CHECK(strtod(num, NULL) == 0.1 + 0.2 && !strcmp(num, "0.30000000000000004"), "%s", num);
    sl_sweep_number(-3, num, sizeof num);
    CHECK(!strcmp(num, "-3"), "%s", num);
    sl_sweep_free(&s);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* The binary runs from dir: its path must be absolute. */
    char self[512], real[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    if (!realpath(dirname(self), real)) return 1;
    snprintf(bin, sizeof bin, "%s/../seqlab", real);
    strcpy(dir, "/tmp/seqlab-sweep-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    write_in("base.json", BASE);
    RUN(test_spec_names_and_overrides);
    RUN(test_grid_writes_results_and_tables);
    RUN(test_second_invocation_skips);
    RUN(test_missing_result_continues);
    RUN(test_stopped_sweep_continues);
    RUN(test_killed_sweep_continues);
    RUN(test_target_stops_early);
    RUN(test_failed_run_recorded_and_retried);
    RUN(test_bad_specs);
    RUN(test_dry_run);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return TEST_SUMMARY();
}
