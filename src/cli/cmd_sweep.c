/* seqlab sweep SWEEP.json [--jobs J] [--threads N] [--dry-run] */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/file.h"
#include "sweep/pool.h"
#include "sweep/runs.h"

static void help(void)
{
    printf("usage: seqlab sweep SWEEP.json [--jobs J] [--threads N] [--dry-run]\n\n"
           "Trains every combination of a grid of config overrides (docs/sweeps.md): each\n"
           "run is a `seqlab train` of the spec's base config with its overrides, in\n"
           "OUT/runs/NAME (an ordinary out_dir), then a `seqlab eval` of its checkpoint on\n"
           "eval_split, kept in OUT/runs/NAME/result.json. Every run's config is checked\n"
           "before any starts. OUT/summary.csv has a row per run and, with best_over,\n"
           "OUT/best.csv the best run of each group (Zoology's best over learning rates);\n"
           "both are rewritten after each run. A target stops runs early. Resumable: runs\n"
           "done are skipped, a run with a checkpoint and no result is continued\n"
           "(--resume), a failed run is started again. --jobs runs J at a time with\n"
           "max(1, N / J) threads each (N: --threads, default all cores). SIGINT or\n"
           "SIGTERM is passed on to the running runs, which save a checkpoint; the sweep\n"
           "waits for them and exits with 128 + the signal number. --dry-run checks the\n"
           "spec and prints each run's name and command, writing nothing. Exit status: 0\n"
           "when every run is done, 1 when one failed or the spec is wrong.\n");
}

typedef struct args {
    const char *spec;
    int64_t jobs, threads;
    bool dry_run;
} args;

static int parse(int argc, char **argv, args *a)
{
    const char *v;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "help")) {
            help();
            return 0;
        } else if (cli_flag(argv[i], "dry-run")) {
            a->dry_run = true;
        } else if (cli_opt(argc, argv, &i, "jobs", &v)) {
            if (!cli_int_in("sweep", "jobs", v, 1, 1024, &a->jobs)) return 2;
        } else if (cli_opt(argc, argv, &i, "threads", &v)) {
            if (!cli_int_in("sweep", "threads", v, 1, 4096, &a->threads)) return 2;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("sweep", "unknown option %s", argv[i]);
        } else if (a->spec) {
            return cli_usage_error("sweep", "more than one spec given: %s and %s", a->spec, argv[i]);
        } else {
            a->spec = argv[i];
        }
    }
    if (!a->spec) return cli_usage_error("sweep", "missing SWEEP.json");
    return -1;
}

/* mkdir -p; messages name the spec's key. */
static sl_status make_dirs(const char *path)
{
    char buf[SL_PATH_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        const char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return sl_fail(SL_ERR_IO, "out_dir \"%s\": cannot create %s: %s", path, buf,
                           strerror(errno));
        *p = c;
        if (!c) break;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sl_fail(SL_ERR_IO, "out_dir \"%s\": not a directory", path);
    return SL_OK;
}

/* One sweep per OUT at a time: an flock on OUT/sweep.lock, held until the
 * process ends. */
static sl_status lock_out(const char *out)
{
    char p[SL_PATH_LEN + 32], pid[32] = "";
    snprintf(p, sizeof p, "%s/sweep.lock", out);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return sl_fail(SL_ERR_IO, "%s: cannot open: %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        return sl_fail(SL_ERR_IO, "out_dir %s is in use by another seqlab sweep (pid %s holds %s)",
                       out, pid[0] ? pid : "unknown", p);
    }
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        close(fd);
        return sl_fail(SL_ERR_IO, "%s: cannot write: %s", p, strerror(errno));
    }
    return SL_OK;
}

/* Writes text to OUT/name unless the file already holds it; *changed says
 * whether it held something else. */
static sl_status keep_copy(const char *out, const char *name, const char *text, bool *changed)
{
    char p[SL_PATH_LEN + 32], *old = NULL;
    int64_t len;
    snprintf(p, sizeof p, "%s/%s", out, name);
    const bool had = access(p, F_OK) == 0;
    const bool same = had && !sl_read_text(p, name, 16 << 20, &old, &len) && strcmp(old, text) == 0;
    free(old);
    if (changed) *changed = had && !same;
    return same ? SL_OK : sl_write_atomic(p, text, strlen(text));
}

static void print_runs(const sl_sweep *s, const char *exe, const char *base, int64_t threads)
{
    for (int64_t r = 0; r < s->n_runs; r++) {
        char name[SL_SWEEP_NAME_LEN + 1];
        sl_argv a;
        sl_sweep_name(s, r, name, sizeof name);
        if (sl_sweep_train_argv(s, r, exe, base, threads, false, false, &a)) continue;
        printf("%s: seqlab", name);
        for (int64_t i = 1; i < a.n; i++) printf(" %s", a.v[i]);
        printf("\n");
        sl_argv_free(&a);
    }
}

/* OUT's directories, its lock, the spec's copy and an inline base's file. */
static sl_status prepare_out(const sl_sweep *s, char *base_path, size_t n)
{
    char runs[SL_PATH_LEN];
    snprintf(runs, sizeof runs, "%s/runs", s->out_dir);
    sl_status st = make_dirs(runs);
    if (!st) st = lock_out(s->out_dir);
    bool changed = false;
    if (!st) st = keep_copy(s->out_dir, "sweep.json", s->text, &changed);
    if (!st && changed)
        fprintf(stderr, "seqlab sweep: %s/sweep.json held another spec; runs done under it are "
                        "kept where their names match\n",
                s->out_dir);
    snprintf(base_path, n, "%s", s->base);
    if (!st && s->base_inline) {
        snprintf(base_path, n, "%s/base.json", s->out_dir);
        st = keep_copy(s->out_dir, "base.json", s->base_inline, NULL);
    }
    return st;
}

int cmd_sweep(int argc, char **argv)
{
    args a = {.jobs = 1};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    if (!a.threads) {
        const long cores = sysconf(_SC_NPROCESSORS_ONLN);
        a.threads = cores > 0 ? cores : 1;
    }
    const int64_t per_job = a.threads / a.jobs > 1 ? a.threads / a.jobs : 1;
    char exe[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    snprintf(exe + (n > 0 ? n : 0), sizeof exe - (size_t)(n > 0 ? n : 0), "%s",
             n > 0 ? "" : "/proc/self/exe");
    sl_sweep s;
    sl_config *base = malloc(sizeof *base);
    sl_status st = base ? sl_sweep_load(&s, a.spec) : sl_fail(SL_ERR_OOM, "out of memory");
    if (!st) st = sl_sweep_base(&s, base);
    if (!st) st = sl_sweep_check(&s, base, per_job);
    free(base);
    char base_path[SL_PATH_LEN];
    if (!st && a.dry_run) {
        print_runs(&s, "seqlab", s.base_inline ? "OUT/base.json" : s.base, per_job);
        sl_sweep_free(&s);
        return 0;
    }
    if (!st) st = prepare_out(&s, base_path, sizeof base_path);
    if (st) {
        sl_sweep_free(&s);
        return cli_error("sweep");
    }
    fprintf(stderr, "seqlab sweep: %lld runs in %s/runs, %lld at a time, threads per run: %lld\n",
            (long long)s.n_runs, s.out_dir, (long long)a.jobs, (long long)per_job);
    const sl_sweep_exec x = {.exe = exe, .base_path = base_path, .jobs = a.jobs, .threads = per_job};
    sl_sweep_outcome out;
    st = sl_sweep_run(&s, &x, &out);
    fprintf(stderr, "seqlab sweep: %lld done, %lld failed, %lld left; %s/summary.csv%s\n",
            (long long)out.done, (long long)out.failed, (long long)out.left, s.out_dir,
            s.best ? " and best.csv" : "");
    sl_sweep_free(&s);
    if (st) return cli_error("sweep");
    if (out.signal) {
        fprintf(stderr, "seqlab sweep: stopped by %s; run the same command to continue\n",
                out.signal == SIGINT ? "SIGINT" : "SIGTERM");
        return 128 + out.signal;
    }
    return out.failed || out.left ? 1 : 0;
}
