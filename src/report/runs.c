/* Sweep directories and training out_dirs (runs.h). */
#include "report/runs.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/file.h"
#include "report/read.h"

sl_status rp_curve_push(rp_curve *c, double x, double y)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        double *nx = realloc(c->x, cap * sizeof *nx);
        if (!nx) return sl_fail(SL_ERR_OOM, "out of memory reading a curve");
        c->x = nx;
        double *ny = realloc(c->y, cap * sizeof *ny);
        if (!ny) return sl_fail(SL_ERR_OOM, "out of memory reading a curve");
        c->y = ny;
        c->cap = cap;
    }
    c->x[c->n] = x;
    c->y[c->n++] = y;
    return SL_OK;
}

void rp_curve_free(rp_curve *c)
{
    free(c->x);
    free(c->y);
    *c = (rp_curve){0};
}

static char *join(const char *a, const char *b)
{
    char *p;
    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

static char *copy_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

static const char *base(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t i = n;
    while (i > 0 && path[i - 1] != '/') i--;
    static _Thread_local char b[512];
    snprintf(b, sizeof b, "%.*s", (int)(n - i), path + i);
    return b;
}

/* dir/name exists. */
static bool has(const char *dir, const char *name)
{
    char *p = join(dir, name);
    bool ok = p && rp_exists(p);
    free(p);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's subdirectories (no dot names), sorted. */
static sl_status subdirs(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sl_fail(SL_ERR_IO, "%s: cannot list the directory", dir);
    size_t cap = 0;
    sl_status st = SL_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *p = join(dir, e->d_name);
        bool is = p && rp_is_dir(p);
        free(p);
        if (!is) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **g = realloc(*out, cap * sizeof *g);
            if (!g) {
                st = sl_fail(SL_ERR_OOM, "%s: out of memory listing", dir);
                break;
            }
            *out = g;
        }
        if (!((*out)[*n] = copy_str(e->d_name))) st = sl_fail(SL_ERR_OOM, "%s: out of memory", dir);
        else (*n)++;
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof **out, cmp_str);
    return st;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Adds (step, loss) to c after dropping its points at step or later: a
 * run restarted in the same out_dir (--overwrite) or resumed from an
 * earlier checkpoint appends from a step already logged, and its points
 * replace the old ones from there. */
static sl_status add_point(rp_curve *c, double step, double loss)
{
    while (c->n && c->x[c->n - 1] >= step) c->n--;
    return rp_curve_push(c, step, loss);
}

/* One metrics.jsonl line into r: training loss, validation loss and the
 * last validation line. Lines of skipped updates and stop notes are not
 * points of a curve. */
static sl_status metrics_line(rp_run *r, cJSON *j, bool *keep)
{
    *keep = false;
    if (cJSON_GetObjectItemCaseSensitive(j, "skipped") ||
        cJSON_GetObjectItemCaseSensitive(j, "stopped"))
        return SL_OK;
    const double step = rp_num(j, "step"), loss = rp_num(j, "loss");
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(j, "split");
    if (cJSON_IsString(split)) {
        if (strcmp(split->valuestring, "val") != 0) return SL_OK;
        *keep = true;
        return add_point(&r->valid, step, loss);
    }
    return cJSON_GetObjectItemCaseSensitive(j, "loss") ? add_point(&r->train, step, loss) : SL_OK;
}

static sl_status read_metrics(rp_run *r, const char *path)
{
    int fd;
    int64_t size;
    sl_status st = sl_open_regular(path, "metrics file", &fd, &size);
    if (st) return st;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return sl_fail(SL_ERR_IO, "%s: cannot read", path);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (size_t no = 1; !st && (len = getline(&line, &cap, f)) >= 0; no++) {
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        cJSON *j = memchr(line, '\0', (size_t)len) ? NULL : cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (!cJSON_IsObject(j) || !cJSON_IsNumber(step)) {
            fprintf(stderr, "seqlab report: warning: %s:%zu: skipped: %s\n", path, no,
                    !j ? "not a JSON line" : !cJSON_IsObject(j) ? "not a JSON object"
                                                                : "no number \"step\"");
            r->bad_lines++;
            cJSON_Delete(j);
            continue;
        }
        bool keep;
        st = metrics_line(r, j, &keep);
        if (keep) {
            cJSON_Delete(r->last_val);
            r->last_val = j;
        } else {
            cJSON_Delete(j);
        }
    }
    free(line);
    fclose(f);
    return st;
}

/* result.json: an object with "params", "val" and "test" objects where
 * present. */
static sl_status read_result(rp_run *r, const char *path)
{
    sl_status st = rp_json_file(path, "result.json", &r->result);
    if (st) return st;
    static const char *const OBJ[] = {"params", "val", "test"};
    const cJSON *o[3];
    for (int k = 0; k < 3; k++) {
        o[k] = cJSON_GetObjectItemCaseSensitive(r->result, OBJ[k]);
        if (o[k] && !cJSON_IsObject(o[k]) && !cJSON_IsNull(o[k]))
            return sl_fail(SL_ERR_FORMAT, "%s: \"%s\": expected an object", path, OBJ[k]);
        if (!cJSON_IsObject(o[k])) o[k] = NULL;
    }
    r->params = o[0];
    r->val = o[1];
    r->test = o[2];
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(r->result, "name");
    if (name && !cJSON_IsString(name))
        return sl_fail(SL_ERR_FORMAT, "%s: \"name\": expected a string", path);
    if (cJSON_IsString(name) && name->valuestring[0]) {
        char *n = copy_str(name->valuestring);
        if (!n) return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
        free(r->name);
        r->name = n;
    }
    return SL_OK;
}

static void free_run(rp_run *r)
{
    free(r->name);
    free(r->dir);
    cJSON_Delete(r->result);
    cJSON_Delete(r->last_val);
    rp_curve_free(&r->train);
    rp_curve_free(&r->valid);
    free(r->fc.input);
    free(r->fc.truth);
    free(r->fc.pred);
}

/* Reads the out_dir `dir` into r; *found false when it holds neither
 * metrics.jsonl nor result.json. */
static sl_status load_run(rp_run *r, const char *dir, bool *found)
{
    *r = (rp_run){0};
    r->dir = copy_str(dir);
    r->name = copy_str(base(dir));
    if (!r->dir || !r->name) return sl_fail(SL_ERR_OOM, "%s: out of memory", dir);
    char *res = join(dir, "result.json"), *met = join(dir, "metrics.jsonl"),
         *ck = join(dir, "checkpoint.safetensors");
    sl_status st = res && met && ck ? SL_OK : sl_fail(SL_ERR_OOM, "%s: out of memory", dir);
    *found = !st && (rp_exists(res) || rp_exists(met));
    if (!st && rp_exists(res)) st = read_result(r, res);
    if (!st && rp_exists(met)) st = read_metrics(r, met);
    r->has_ckpt = !st && rp_exists(ck);
    free(res);
    free(met);
    free(ck);
    return st;
}

static sl_status add_run(rp_sweep *s, const char *dir, size_t *cap)
{
    if (s->n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        rp_run *g = realloc(s->runs, *cap * sizeof *g);
        if (!g) return sl_fail(SL_ERR_OOM, "out of memory reading runs");
        s->runs = g;
    }
    bool found = false;
    sl_status st = load_run(&s->runs[s->n], dir, &found);
    if (!st && !found) {
        fprintf(stderr, "seqlab report: warning: %s: skipped: no metrics.jsonl or result.json\n",
                dir);
        free_run(&s->runs[s->n]);
        return SL_OK;
    }
    if (st) free_run(&s->runs[s->n]);
    else s->n++;
    return st;
}

static bool is_sweep(const char *dir)
{
    return has(dir, "sweep.json") || has(dir, "summary.csv");
}

static void free_sweep(rp_sweep *s)
{
    for (size_t i = 0; i < s->n; i++) free_run(&s->runs[i]);
    free(s->runs);
    free(s->name);
    free(s->dir);
    cJSON_Delete(s->spec);
    rp_csv_free(&s->summary);
    rp_csv_free(&s->best);
}

/* runs/NAME/ in summary.csv's order, then the rest in name order. */
static sl_status sweep_runs(rp_sweep *s, const char *runs_dir)
{
    char **names;
    size_t n, cap = 0;
    sl_status st = subdirs(runs_dir, &names, &n);
    bool *used = calloc(n + 1, 1);
    if (!st && !used) st = sl_fail(SL_ERR_OOM, "%s: out of memory", runs_dir);
    const long name_col = rp_csv_col(&s->summary, "name");
    for (size_t r = 1; !st && name_col >= 0 && r <= s->summary.nrow; r++)
        for (size_t i = 0; i < n; i++)
            if (!used[i] && strcmp(names[i], rp_csv_at(&s->summary, r, (size_t)name_col)) == 0) {
                used[i] = true;
                char *p = join(runs_dir, names[i]);
                st = p ? add_run(s, p, &cap) : sl_fail(SL_ERR_OOM, "out of memory");
                free(p);
                break;
            }
    for (size_t i = 0; !st && i < n; i++)
        if (!used[i]) {
            char *p = join(runs_dir, names[i]);
            st = p ? add_run(s, p, &cap) : sl_fail(SL_ERR_OOM, "out of memory");
            free(p);
        }
    free(used);
    free_names(names, n);
    return st;
}

static sl_status load_sweep(rp_sweep *s, const char *dir)
{
    *s = (rp_sweep){0};
    s->dir = copy_str(dir);
    s->name = copy_str(base(dir));
    if (!s->dir || !s->name) return sl_fail(SL_ERR_OOM, "%s: out of memory", dir);
    char *spec = join(dir, "sweep.json"), *sum = join(dir, "summary.csv"),
         *best = join(dir, "best.csv"), *runs = join(dir, "runs");
    sl_status st = spec && sum && best && runs ? SL_OK : sl_fail(SL_ERR_OOM, "out of memory");
    if (!st && rp_exists(spec)) st = rp_json_file(spec, "sweep.json", &s->spec);
    if (!st && rp_exists(sum)) st = rp_csv_read(&s->summary, sum);
    if (!st && rp_exists(best)) st = rp_csv_read(&s->best, best);
    if (!st && rp_is_dir(runs)) st = sweep_runs(s, runs);
    free(spec);
    free(sum);
    free(best);
    free(runs);
    return st;
}

static sl_status grow(rp_collection *c, size_t *cap)
{
    if (c->n < *cap) return SL_OK;
    *cap = *cap ? 2 * *cap : 4;
    rp_sweep *g = realloc(c->sweeps, *cap * sizeof *g);
    if (!g) return sl_fail(SL_ERR_OOM, "out of memory reading sweeps");
    c->sweeps = g;
    return SL_OK;
}

/* dir's subdirectories: each sweep, then the plain out_dirs as one group
 * named after dir. */
static sl_status load_parent(rp_collection *c, const char *dir, size_t *cap)
{
    char **names;
    size_t n;
    sl_status st = subdirs(dir, &names, &n);
    rp_sweep plain = {0};
    size_t pcap = 0;
    for (size_t i = 0; !st && i < n; i++) {
        char *p = join(dir, names[i]);
        if (!p) {
            st = sl_fail(SL_ERR_OOM, "out of memory");
        } else if (is_sweep(p)) {
            if (!(st = grow(c, cap))) {
                st = load_sweep(&c->sweeps[c->n], p);
                if (st) free_sweep(&c->sweeps[c->n]);
                else c->n++;
            }
        } else if (has(p, "metrics.jsonl") || has(p, "result.json")) {
            st = add_run(&plain, p, &pcap);
        }
        free(p);
    }
    free_names(names, n);
    if (!st && plain.n) {
        plain.dir = copy_str(dir);
        plain.name = copy_str(base(dir));
        if (!plain.dir || !plain.name) st = sl_fail(SL_ERR_OOM, "out of memory");
        if (!st && !(st = grow(c, cap))) {
            c->sweeps[c->n++] = plain;
            return SL_OK;
        }
    }
    free_sweep(&plain);
    return st;
}

sl_status rp_load(rp_collection *c, const char *dir)
{
    *c = (rp_collection){0};
    if (!rp_exists(dir)) return sl_fail(SL_ERR_IO, "%s: no such directory", dir);
    if (!rp_is_dir(dir)) return sl_fail(SL_ERR_IO, "%s: not a directory", dir);
    size_t cap = 0;
    sl_status st = SL_OK;
    if (is_sweep(dir)) {
        if (!(st = grow(c, &cap))) {
            st = load_sweep(&c->sweeps[0], dir);
            if (st) free_sweep(&c->sweeps[0]);
            else c->n = 1;
        }
    } else if (has(dir, "metrics.jsonl") || has(dir, "result.json")) {
        rp_sweep one = {.dir = copy_str(dir), .name = copy_str(base(dir))};
        size_t rcap = 0;
        st = one.dir && one.name ? add_run(&one, dir, &rcap) : sl_fail(SL_ERR_OOM, "out of memory");
        if (!st) st = grow(c, &cap);
        if (!st) c->sweeps[c->n++] = one;
        else free_sweep(&one);
    } else {
        st = load_parent(c, dir, &cap);
    }
    if (!st && c->n == 0)
        st = sl_fail(SL_ERR_IO,
                     "%s: no sweep (sweep.json or summary.csv) and no run (metrics.jsonl or "
                     "result.json) in it or in its subdirectories",
                     dir);
    if (st) rp_free(c);
    return st;
}

void rp_free(rp_collection *c)
{
    for (size_t i = 0; i < c->n; i++) free_sweep(&c->sweeps[i]);
    free(c->sweeps);
    *c = (rp_collection){0};
}

const cJSON *rp_run_scores(const rp_run *r, const char **split)
{
    if (r->test) {
        *split = "test";
        return r->test;
    }
    *split = "val";
    return r->last_val;
}

const cJSON *rp_run_param(const rp_run *r, const char *key)
{
    return r->params ? cJSON_GetObjectItemCaseSensitive(r->params, key) : NULL;
}
