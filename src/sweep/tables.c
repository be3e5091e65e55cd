/* summary.csv and best.csv of a sweep (tables.h). */
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "sweep/results.h"
#include "sweep/tables.h"

/* The columns of a table: names, and where a metric column reads. */
typedef struct columns {
    const char **name; /* metric columns: the member's name in "val" or "test" */
    const char **from; /* "val", "test", or NULL for the other columns */
    int64_t n, cap;
} columns;

static bool add_column(columns *c, const char *name, const char *from)
{
    for (int64_t i = 0; i < c->n; i++)
        if (strcmp(c->name[i], name) == 0 && ((!from && !c->from[i]) ||
                                              (from && c->from[i] && !strcmp(from, c->from[i]))))
            return true;
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 32;
        const char **n = realloc(c->name, (size_t)cap * sizeof *n);
        if (n) c->name = n;
        const char **f = n ? realloc(c->from, (size_t)cap * sizeof *f) : NULL;
        if (!f) return false;
        c->from = f;
        c->cap = cap;
    }
    c->name[c->n] = name;
    c->from[c->n++] = from;
    return true;
}

/* A metric member worth a column: a number or null, not a count. */
static bool metric_member(const cJSON *m)
{
    return (cJSON_IsNumber(m) || cJSON_IsNull(m)) && strcmp(m->string, "tokens") != 0 &&
           strcmp(m->string, "step") != 0;
}

/* The metric columns: every "val" then every "test" member of the results,
 * in the order they first appear. */
static bool metric_columns(const sl_sweep *s, cJSON *const *results, columns *c)
{
    static const char *const FROM[] = {"val", "test"};
    for (int f = 0; f < 2; f++)
        for (int64_t r = 0; r < s->n_runs; r++) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(results[r], FROM[f]);
            for (const cJSON *m = cJSON_IsObject(o) ? o->child : NULL; m; m = m->next)
                if (metric_member(m) && !add_column(c, m->string, FROM[f])) return false;
        }
    return true;
}

/* One CSV field, quoted when it holds a comma, quote or line break. */
static void field(FILE *f, const char *s, bool first)
{
    if (!first) fputc(',', f);
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void number_field(FILE *f, const cJSON *v)
{
    char buf[40] = "";
    if (cJSON_IsNumber(v)) snprintf(buf, sizeof buf, "%.10g", v->valuedouble);
    field(f, buf, false);
}

/* The keys an axis of objects sets, over all its values, in first order. */
static bool axis_keys(const sl_sweep_axis *ax, columns *keys)
{
    for (int64_t c = 0; c < ax->n; c++)
        for (int64_t k = 0; k < ax->choice[c].n; k++)
            if (!add_column(keys, ax->choice[c].kv[k].key, NULL)) return false;
    return true;
}

static bool header(FILE *f, const sl_sweep *s, const columns *metrics, bool best)
{
    field(f, "name", true);
    for (int64_t a = 0; a < s->n_axes; a++) {
        field(f, s->axes[a].name, false);
        if (!s->axes[a].objects) continue;
        columns keys = {0};
        bool ok = axis_keys(&s->axes[a], &keys);
        for (int64_t k = 0; k < keys.n; k++) field(f, keys.name[k], false);
        free(keys.name);
        free(keys.from);
        if (!ok) return false;
    }
    fputs(",status,steps,wall_s,stopped_early", f);
    for (int64_t i = 0; i < metrics->n; i++) {
        char col[SL_SCORE_NAME + 64];
        snprintf(col, sizeof col, "%s_%s", metrics->from[i], metrics->name[i]);
        field(f, col, false);
    }
    if (best) fputs(",best_of", f);
    fputc('\n', f);
    return true;
}

/* Run r's row; best_of > 0 adds that column. */
static bool row(FILE *f, const sl_sweep *s, int64_t r, const cJSON *res, const columns *metrics,
                int64_t best_of)
{
    char name[SL_SWEEP_NAME_LEN + 1], idx_s[24];
    int64_t idx[s->n_axes];
    sl_sweep_name(s, r, name, sizeof name);
    sl_sweep_indices(s, r, idx);
    field(f, name, true);
    for (int64_t a = 0; a < s->n_axes; a++) {
        const sl_sweep_axis *ax = &s->axes[a];
        const sl_sweep_choice *c = &ax->choice[idx[a]];
        if (!ax->objects) {
            field(f, c->kv[0].value, false);
            continue;
        }
        snprintf(idx_s, sizeof idx_s, "%lld", (long long)idx[a]);
        field(f, idx_s, false);
        columns keys = {0};
        bool ok = axis_keys(ax, &keys);
        for (int64_t k = 0; k < keys.n; k++) {
            const char *v = "";
            for (int64_t j = 0; j < c->n; j++)
                if (strcmp(c->kv[j].key, keys.name[k]) == 0) v = c->kv[j].value;
            field(f, v, false);
        }
        free(keys.name);
        free(keys.from);
        if (!ok) return false;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "status");
    field(f, cJSON_IsString(st) ? st->valuestring : "pending", false);
    number_field(f, cJSON_GetObjectItemCaseSensitive(res, "steps"));
    number_field(f, cJSON_GetObjectItemCaseSensitive(res, "wall_s"));
    const cJSON *early = cJSON_GetObjectItemCaseSensitive(res, "stopped_early");
    field(f, cJSON_IsBool(early) ? (cJSON_IsTrue(early) ? "true" : "false") : "", false);
    for (int64_t i = 0; i < metrics->n; i++)
        number_field(f, cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(res, metrics->from[i]),
                            metrics->name[i]));
    if (best_of > 0) fprintf(f, ",%lld", (long long)best_of);
    fputc('\n', f);
    return true;
}

bool sl_sweep_result_metric(const cJSON *result, const char *metric, double *v)
{
    if (!sl_sweep_result_done(result)) return false;
    static const char *const FROM[] = {"test", "val"};
    for (int i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(result, FROM[i]), metric);
        if (cJSON_IsNumber(m)) {
            *v = m->valuedouble;
            return true;
        }
    }
    return false;
}

/* The group of run r: its index over the axes not in best_over. */
static int64_t group_of(const sl_sweep *s, int64_t r)
{
    int64_t idx[s->n_axes], g = 0;
    sl_sweep_indices(s, r, idx);
    for (int64_t a = 0; a < s->n_axes; a++)
        if (!s->axes[a].best_over) g = g * s->axes[a].n + idx[a];
    return g;
}

/* Each group's best run (best[g], -1 when none has the metric) and how
 * many of its runs had it (count[g]); ties keep the first run. */
static void pick_best(const sl_sweep *s, cJSON *const *results, int64_t *best, int64_t *count,
                      int64_t groups)
{
    double *val = malloc((size_t)groups * sizeof *val);
    for (int64_t g = 0; g < groups; g++) best[g] = -1, count[g] = 0;
    for (int64_t r = 0; val && r < s->n_runs; r++) {
        double v;
        if (!sl_sweep_result_metric(results[r], s->metric, &v)) continue;
        const int64_t g = group_of(s, r);
        count[g]++;
        if (best[g] < 0 || (s->direction > 0 ? v > val[g] : v < val[g])) {
            best[g] = r;
            val[g] = v;
        }
    }
    free(val);
}

/* Writes one table to OUT/name. */
static sl_status write_table(const sl_sweep *s, const char *name, const char *buf, size_t n)
{
    char path[SL_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/%s", s->out_dir, name);
    return sl_write_atomic(path, buf, n);
}

static sl_status best_table(const sl_sweep *s, cJSON *const *results, const columns *metrics)
{
    int64_t groups = 1;
    for (int64_t a = 0; a < s->n_axes; a++)
        if (!s->axes[a].best_over) groups *= s->axes[a].n;
    int64_t *best = malloc((size_t)groups * sizeof *best);
    int64_t *count = malloc((size_t)groups * sizeof *count);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = best && count ? open_memstream(&buf, &n) : NULL;
    bool ok = f != NULL;
    if (ok) {
        pick_best(s, results, best, count, groups);
        ok = header(f, s, metrics, true);
        for (int64_t g = 0; g < groups && ok; g++)
            if (best[g] >= 0) ok = row(f, s, best[g], results[best[g]], metrics, count[g]);
    }
    if (f && fclose(f) != 0) ok = false;
    sl_status st = ok ? write_table(s, "best.csv", buf, n)
                      : sl_fail(SL_ERR_OOM, "%s/best.csv: out of memory", s->out_dir);
    free(buf);
    free(best);
    free(count);
    return st;
}

sl_status sl_sweep_tables(const sl_sweep *s, cJSON *const *results)
{
    columns metrics = {0};
    char *buf = NULL;
    size_t n = 0;
    bool ok = metric_columns(s, results, &metrics);
    FILE *f = ok ? open_memstream(&buf, &n) : NULL;
    ok = f && header(f, s, &metrics, false);
    for (int64_t r = 0; r < s->n_runs && ok; r++) ok = row(f, s, r, results[r], &metrics, 0);
    if (f && fclose(f) != 0) ok = false;
    sl_status st = ok ? write_table(s, "summary.csv", buf, n)
                      : sl_fail(SL_ERR_OOM, "%s/summary.csv: out of memory", s->out_dir);
    free(buf);
    if (!st && s->best) st = best_table(s, results, &metrics);
    free(metrics.name);
    free(metrics.from);
    return st;
}
