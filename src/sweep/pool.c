/* The sweep's scheduler (pool.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "core/file.h"
#include "sweep/pool.h"
#include "sweep/procs.h"
#include "sweep/results.h"
#include "sweep/runs.h"
#include "sweep/tables.h"

typedef enum { PENDING, TRAINING, EVALUATING, FINISHED, LEFT } run_state;

typedef struct run {
    run_state state;
    pid_t pid;
    double t0;
    bool resume;    /* continue the checkpoint in its directory */
    bool overwrite; /* a fresh start over a failed attempt's checkpoint */
    bool eval_only; /* the checkpoint reached the target: evaluate it */
    bool retry;     /* its result.json says failed: start afresh */
} run;

typedef struct pool {
    const sl_sweep *s;
    const sl_sweep_exec *x;
    run *runs;
    cJSON **results;
    int64_t active;
    sigset_t child_mask;
    sl_sweep_outcome *out;
} pool;

static volatile sig_atomic_t stop_signal, signals;

static void on_stop(int sig)
{
    stop_signal = sig;
    signals++;
}

/* Only there so that SIGCHLD ends sigsuspend. */
static void on_child(int sig) { (void)sig; }

static void path_in(const pool *p, int64_t r, const char *file, char *buf, size_t n)
{
    char dir[SL_PATH_LEN];
    sl_sweep_run_dir(p->s, r, dir, sizeof dir);
    snprintf(buf, n, "%s/%s", dir, file);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* "[i/N] NAME: " then fmt, on stderr. */
static void say(const pool *p, int64_t r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(const pool *p, int64_t r, const char *fmt, ...)
{
    char name[SL_SWEEP_NAME_LEN + 1], msg[1024];
    sl_sweep_name(p->s, r, name, sizeof name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "seqlab sweep: [%lld/%lld] %s: %s\n", (long long)r + 1,
            (long long)p->s->n_runs, name, msg);
}

/* The last "error: " message of the last process in the run's stderr.log
 * (within its last 64 KiB): the text after the last "== seqlab" line. */
static bool last_error(const pool *p, int64_t r, char *buf, size_t n)
{
    char path[SL_PATH_LEN + 32], text[65537];
    path_in(p, r, "stderr.log", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    off_t size = lseek(fd, 0, SEEK_END);
    ssize_t got = size < 0 ? -1 : pread(fd, text, sizeof text - 1, size > 65536 ? size - 65536 : 0);
    close(fd);
    text[got > 0 ? got : 0] = '\0';
    const char *hit = NULL, *from = text;
    for (const char *q = text; (q = strstr(q, "== seqlab ")); q++)
        if (q == text || q[-1] == '\n') from = q;
    for (const char *q = from; (q = strstr(q, "error: ")); q++) hit = q + 7;
    if (!hit) return false;
    snprintf(buf, n, "%.*s", (int)strcspn(hit, "\n"), hit);
    return true;
}

/* Writes the run's result and the tables; counts and reports it. */
static sl_status finish(pool *p, int64_t r, cJSON *result)
{
    char dir[SL_PATH_LEN];
    sl_sweep_run_dir(p->s, r, dir, sizeof dir);
    p->runs[r].state = FINISHED;
    cJSON_Delete(p->results[r]);
    p->results[r] = result;
    sl_status st = result ? sl_sweep_result_write(dir, result)
                          : sl_fail(SL_ERR_OOM, "%s: out of memory for its result", dir);
    if (st) {
        char why[1024];
        snprintf(why, sizeof why, "%s", sl_errmsg());
        say(p, r, "its result was not saved: %s", why);
    }
    if (sl_sweep_result_done(result)) p->out->done++;
    else p->out->failed++;
    return sl_sweep_tables(p->s, p->results);
}

static sl_status fail(pool *p, int64_t r, const char *what, const char *why)
{
    char dir[SL_PATH_LEN], msg[1536];
    sl_sweep_run_dir(p->s, r, dir, sizeof dir);
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    sl_run_log log;
    if (sl_run_log_read(dir, &log)) log = (sl_run_log){0};
    cJSON *res = sl_sweep_result(p->s, r, "failed", &log, sl_seconds() - p->runs[r].t0, NULL, msg);
    sl_run_log_free(&log);
    say(p, r, "failed: %s (%s/stderr.log)", msg, dir);
    return finish(p, r, res);
}

/* Appends "== COMMAND" to the run's stderr.log, so it says what ran. */
static void log_command(const pool *p, int64_t r, char *const *argv)
{
    char path[SL_PATH_LEN + 32];
    path_in(p, r, "stderr.log", path, sizeof path);
    FILE *f = fopen(path, "a");
    if (!f) return;
    fputs("== seqlab", f);
    for (int i = 1; argv[i]; i++) fprintf(f, " %s", argv[i]);
    fputc('\n', f);
    fclose(f);
}

static sl_status start_eval(pool *p, int64_t r)
{
    sl_argv a;
    char out[SL_PATH_LEN + 32], err[SL_PATH_LEN + 32];
    path_in(p, r, "eval.out", out, sizeof out);
    path_in(p, r, "stderr.log", err, sizeof err);
    sl_status st = sl_sweep_eval_argv(p->s, r, p->x->exe, p->x->threads, &a);
    if (st) return fail(p, r, "seqlab eval", sl_errmsg());
    log_command(p, r, a.v);
    pid_t pid = sl_spawn(a.v, out, false, err, &p->child_mask);
    sl_argv_free(&a);
    if (pid < 0) return fail(p, r, "seqlab eval", sl_errmsg());
    p->runs[r].state = EVALUATING;
    p->runs[r].pid = pid;
    p->active++;
    return SL_OK;
}

static sl_status start(pool *p, int64_t r)
{
    run *u = &p->runs[r];
    u->t0 = sl_seconds();
    char dir[SL_PATH_LEN], path[SL_PATH_LEN + 32];
    sl_sweep_run_dir(p->s, r, dir, sizeof dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        char why[SL_PATH_LEN + 128];
        snprintf(why, sizeof why, "cannot create %s: %s", dir, strerror(errno));
        return fail(p, r, "seqlab sweep", why);
    }
    if (u->eval_only) {
        say(p, r, "evaluating (it reached its target before the sweep stopped)");
        return start_eval(p, r);
    }
    if (u->retry) {
        path_in(p, r, "result.json", path, sizeof path);
        unlink(path);
        cJSON_Delete(p->results[r]);
        p->results[r] = NULL;
    }
    /* A fresh start keeps no log of an attempt that left no checkpoint or
     * failed, so metrics.jsonl is this run's alone. */
    if (!u->resume) {
        path_in(p, r, "metrics.jsonl", path, sizeof path);
        unlink(path);
    }
    sl_argv a;
    sl_status st = sl_sweep_train_argv(p->s, r, p->x->exe, p->x->base_path, p->x->threads,
                                       u->resume, u->overwrite, &a);
    if (st) return fail(p, r, "seqlab train", sl_errmsg());
    path_in(p, r, "stderr.log", path, sizeof path);
    log_command(p, r, a.v);
    pid_t pid = sl_spawn(a.v, path, true, path, &p->child_mask);
    sl_argv_free(&a);
    if (pid < 0) return fail(p, r, "seqlab train", sl_errmsg());
    say(p, r, u->resume ? "continuing from its checkpoint" : u->retry ? "training (again)" : "training");
    u->state = TRAINING;
    u->pid = pid;
    p->active++;
    return SL_OK;
}

/* The line of a finished run: time, steps, and its target metric (or
 * loss) on the evaluated split. */
static void say_done(const pool *p, int64_t r, const cJSON *res)
{
    const char *metric = p->s->metric[0] ? p->s->metric : "loss";
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(res, "steps");
    const cJSON *wall = cJSON_GetObjectItemCaseSensitive(res, "wall_s");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "test"),
                                                      metric);
    char value[40] = "null";
    if (cJSON_IsNumber(m)) snprintf(value, sizeof value, "%.4f", m->valuedouble);
    say(p, r, "done in %.1f s, %lld steps%s; %s %s %s", cJSON_IsNumber(wall) ? wall->valuedouble : 0,
        cJSON_IsNumber(steps) ? (long long)steps->valuedouble : 0LL,
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "stopped_early")) ? " (target reached)"
                                                                             : "",
        p->s->eval_split, metric, value);
}

/* The JSON line `seqlab eval` printed, as the run's "test" object. */
static cJSON *eval_output(const pool *p, int64_t r)
{
    char path[SL_PATH_LEN + 32], *text = NULL;
    int64_t len;
    path_in(p, r, "eval.out", path, sizeof path);
    cJSON *o = sl_read_text(path, "eval output", 64 << 20, &text, &len) ? NULL : cJSON_Parse(text);
    free(text);
    unlink(path);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static sl_status evaluated(pool *p, int64_t r)
{
    char dir[SL_PATH_LEN];
    sl_sweep_run_dir(p->s, r, dir, sizeof dir);
    cJSON *test = eval_output(p, r);
    if (!test) return fail(p, r, "seqlab eval", "printed no JSON object");
    sl_run_log log;
    sl_status st = sl_run_log_read(dir, &log);
    if (st) {
        cJSON_Delete(test);
        return fail(p, r, "metrics.jsonl", sl_errmsg());
    }
    cJSON *res = sl_sweep_result(p->s, r, "done", &log, sl_seconds() - p->runs[r].t0, &test, NULL);
    cJSON_Delete(test);
    sl_run_log_free(&log);
    if (res) say_done(p, r, res);
    return finish(p, r, res);
}

/* A child ended: the next step of its run. */
static sl_status ended(pool *p, pid_t pid, int status)
{
    int64_t r = 0;
    while (r < p->s->n_runs && !(p->runs[r].pid == pid && (p->runs[r].state == TRAINING ||
                                                            p->runs[r].state == EVALUATING)))
        r++;
    if (r == p->s->n_runs) return SL_OK;
    p->active--;
    run *u = &p->runs[r];
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const char *cmd = u->state == TRAINING ? "seqlab train" : "seqlab eval";
    if (u->state == EVALUATING && ok) return evaluated(p, r);
    /* Stopped by SIGINT or SIGTERM, the sweep's or another's: train saved
     * its checkpoint (exit 130, 143), so the run is left to continue. */
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (signals || code == 128 + SIGINT || code == 128 + SIGTERM) {
        u->state = LEFT;
        p->out->left++;
        say(p, r, "stopped; the next `seqlab sweep` continues it");
        return SL_OK;
    }
    if (ok) return start_eval(p, r);
    char how[96], why[1024];
    sl_wait_text(status, how, sizeof how);
    if (!last_error(p, r, why, sizeof why)) snprintf(why, sizeof why, "%s", how);
    char what[128];
    snprintf(what, sizeof what, "%s %s", cmd, how);
    return fail(p, r, what, why);
}

/* How each run stands on disk: done (skipped), failed (retried afresh),
 * a checkpoint (continued, or only evaluated when it reached its target),
 * or nothing yet. */
static void classify(pool *p)
{
    for (int64_t r = 0; r < p->s->n_runs; r++) {
        char dir[SL_PATH_LEN], ck[SL_PATH_LEN + 32];
        sl_sweep_run_dir(p->s, r, dir, sizeof dir);
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
        run *u = &p->runs[r];
        p->results[r] = sl_sweep_result_read(dir);
        if (sl_sweep_result_done(p->results[r])) {
            u->state = FINISHED;
            p->out->done++;
            p->out->skipped++;
            continue;
        }
        u->state = PENDING;
        u->retry = p->results[r] != NULL;
        u->overwrite = u->retry && exists(ck);
        u->resume = !u->retry && exists(ck);
        sl_run_log log;
        if (u->resume && !sl_run_log_read(dir, &log)) {
            u->eval_only = log.stopped;
            sl_run_log_free(&log);
        }
    }
}

/* Sends sig to every running child. */
static void forward(const pool *p, int sig)
{
    for (int64_t r = 0; r < p->s->n_runs; r++)
        if (p->runs[r].state == TRAINING || p->runs[r].state == EVALUATING) kill(p->runs[r].pid, sig);
}

static sl_status loop(pool *p)
{
    sl_status st = SL_OK;
    int64_t next = 0;
    sig_atomic_t forwarded = 0;
    for (;;) {
        int status;
        pid_t pid;
        while (!st && (pid = waitpid(-1, &status, WNOHANG)) > 0) st = ended(p, pid, status);
        if (signals != forwarded) {
            forwarded = signals;
            forward(p, stop_signal);
        }
        while (!st && !signals && p->active < p->x->jobs && next < p->s->n_runs)
            if (p->runs[next++].state == PENDING) st = start(p, next - 1);
        if (st || (p->active == 0 && (signals || next >= p->s->n_runs))) break;
        sigsuspend(&p->child_mask);
    }
    /* The tables failed: stop the children too, and wait for them. */
    if (st) forward(p, SIGTERM);
    while (p->active > 0 && waitpid(-1, NULL, 0) > 0) p->active--;
    return st;
}

sl_status sl_sweep_run(const sl_sweep *s, const sl_sweep_exec *x, sl_sweep_outcome *out)
{
    *out = (sl_sweep_outcome){0};
    pool p = {.s = s, .x = x, .out = out};
    p.runs = calloc((size_t)s->n_runs, sizeof *p.runs);
    p.results = calloc((size_t)s->n_runs, sizeof *p.results);
    if (!p.runs || !p.results) {
        free(p.runs);
        free(p.results);
        return sl_fail(SL_ERR_OOM, "out of memory for %lld runs", (long long)s->n_runs);
    }
    classify(&p);
    if (out->skipped)
        fprintf(stderr, "seqlab sweep: %lld of %lld runs done before; %lld to run\n",
                (long long)out->skipped, (long long)s->n_runs,
                (long long)(s->n_runs - out->skipped));
    sl_status st = sl_sweep_tables(s, p.results);
    /* SIGCHLD, SIGINT and SIGTERM arrive only inside sigsuspend, so none is
     * lost between a check and the wait. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    struct sigaction stop = {.sa_handler = on_stop}, child = {.sa_handler = on_child,
                                                              .sa_flags = SA_NOCLDSTOP};
    struct sigaction old_int, old_term, old_chld;
    sigemptyset(&stop.sa_mask);
    sigemptyset(&child.sa_mask);
    stop_signal = 0;
    signals = 0;
    sigprocmask(SIG_BLOCK, &block, &p.child_mask);
    sigaction(SIGINT, &stop, &old_int);
    sigaction(SIGTERM, &stop, &old_term);
    sigaction(SIGCHLD, &child, &old_chld);
    if (!st) st = loop(&p);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    sigprocmask(SIG_SETMASK, &p.child_mask, NULL);
    out->signal = signals ? stop_signal : 0;
    for (int64_t r = 0; r < s->n_runs; r++) {
        if (p.runs[r].state == PENDING) out->left++;
        cJSON_Delete(p.results[r]);
    }
    free(p.runs);
    free(p.results);
    return st;
}
