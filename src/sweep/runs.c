/* A sweep's runs: configs and command lines (runs.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sweep/runs.h"

void sl_argv_free(sl_argv *a)
{
    for (int64_t i = 0; a->v && i < a->n; i++) free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

/* Appends a printf-formatted argument; false when memory runs out. */
static bool push(sl_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool push(sl_argv *a, const char *fmt, ...)
{
    char **v = realloc(a->v, (size_t)(a->n + 2) * sizeof *v);
    if (!v) return false;
    a->v = v;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return false;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    v[a->n++] = s;
    v[a->n] = NULL;
    return true;
}

sl_status sl_sweep_base(const sl_sweep *s, sl_config *base)
{
    sl_config_defaults(base);
    if (!s->base_inline) {
        sl_status st = sl_config_load(base, s->base);
        if (!st) return SL_OK;
        char why[1024];
        snprintf(why, sizeof why, "%s", sl_errmsg());
        return sl_fail(st, "%s: \"base\": %s", s->path, why);
    }
    char name[SL_PATH_LEN + 16];
    snprintf(name, sizeof name, "%s: \"base\"", s->path);
    return sl_config_parse(base, s->base_inline, name);
}

void sl_sweep_run_dir(const sl_sweep *s, int64_t run, char *buf, size_t n)
{
    char name[SL_SWEEP_NAME_LEN + 1];
    sl_sweep_name(s, run, name, sizeof name);
    snprintf(buf, n, "%s/runs/%s", s->out_dir, name);
}

/* The `--key=value` arguments of a run, in the order they apply: its
 * overrides, then what the sweep sets itself. */
static sl_status settings(const sl_sweep *s, int64_t run, int64_t threads, sl_argv *a)
{
    const int64_t most = sl_sweep_max_overrides(s);
    const sl_sweep_kv **kv = malloc((size_t)(most ? most : 1) * sizeof *kv);
    bool ok = kv != NULL;
    const int64_t n = ok ? sl_sweep_overrides(s, run, kv) : 0;
    for (int64_t k = 0; k < n && ok; k++) ok = push(a, "--%s=%s", kv[k]->key, kv[k]->value);
    free(kv);
    char dir[SL_PATH_LEN], at[40];
    sl_sweep_run_dir(s, run, dir, sizeof dir);
    ok = ok && push(a, "--out_dir=%s", dir) && push(a, "--threads=%lld", (long long)threads);
    if (s->stop) {
        sl_sweep_number(s->stop_at, at, sizeof at);
        ok = ok && push(a, "--stop_metric=%s", s->metric) && push(a, "--stop_at=%s", at);
    }
    return ok ? SL_OK : sl_fail(SL_ERR_OOM, "out of memory for a run's command line");
}

sl_status sl_sweep_config(const sl_sweep *s, const sl_config *base, int64_t run, int64_t threads,
                          sl_config *cfg)
{
    sl_argv a = {0};
    sl_status st = settings(s, run, threads, &a);
    *cfg = *base;
    for (int64_t i = 0; i < a.n && !st; i++) {
        char *eq = strchr(a.v[i], '=');
        *eq = '\0';
        st = sl_config_set(cfg, a.v[i] + 2, eq + 1);
    }
    sl_argv_free(&a);
    return st ? st : sl_config_validate(cfg);
}

sl_status sl_sweep_check(const sl_sweep *s, const sl_config *base, int64_t threads)
{
    sl_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return sl_fail(SL_ERR_OOM, "out of memory for a config");
    sl_status st = SL_OK;
    for (int64_t r = 0; r < s->n_runs && !st; r++) {
        st = sl_sweep_config(s, base, r, threads, cfg);
        if (!st && s->stop && cfg->eval_every == 0)
            st = sl_fail(SL_ERR_CONFIG, "\"target\".\"value\" stops runs at evaluations: expected "
                                        "eval_every > 0");
        if (st) {
            char name[SL_SWEEP_NAME_LEN + 1], why[1024];
            sl_sweep_name(s, r, name, sizeof name);
            snprintf(why, sizeof why, "%s", sl_errmsg());
            st = sl_fail(st, "%s: run %lld (%s): %s", s->path, (long long)r + 1, name, why);
        }
    }
    free(cfg);
    return st;
}

sl_status sl_sweep_train_argv(const sl_sweep *s, int64_t run, const char *exe,
                              const char *base_path, int64_t threads, bool resume, bool overwrite,
                              sl_argv *out)
{
    *out = (sl_argv){0};
    char dir[SL_PATH_LEN];
    sl_sweep_run_dir(s, run, dir, sizeof dir);
    bool ok = push(out, "%s", exe) && push(out, "train") && push(out, "%s", base_path);
    sl_status st = ok ? settings(s, run, threads, out) : SL_ERR_OOM;
    if (!st && resume) ok = push(out, "--resume") && push(out, "%s/checkpoint.safetensors", dir);
    if (!st && overwrite) ok = ok && push(out, "--overwrite");
    if (!st && ok) return SL_OK;
    sl_argv_free(out);
    return sl_fail(SL_ERR_OOM, "out of memory for a run's command line");
}

sl_status sl_sweep_eval_argv(const sl_sweep *s, int64_t run, const char *exe, int64_t threads,
                             sl_argv *out)
{
    *out = (sl_argv){0};
    char dir[SL_PATH_LEN];
    sl_sweep_run_dir(s, run, dir, sizeof dir);
    if (push(out, "%s", exe) && push(out, "eval") && push(out, "%s/checkpoint.safetensors", dir) &&
        push(out, "--split") && push(out, "%s", s->eval_split) &&
        push(out, "--threads=%lld", (long long)threads))
        return SL_OK;
    sl_argv_free(out);
    return sl_fail(SL_ERR_OOM, "out of memory for a run's command line");
}
