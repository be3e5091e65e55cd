/* Reading a sweep's spec and naming its runs (spec.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "sweep/spec.h"

#define MAX_SPEC_BYTES ((int64_t)16 << 20)

void sl_sweep_number(double x, char *buf, size_t n)
{
    if (x == floor(x) && fabs(x) < 9007199254740992.0) {
        snprintf(buf, n, "%lld", (long long)x);
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) return;
    }
}

/* A value's override text (malloc'd): a number, a string, true/false, or
 * an array of strings joined by ',' (a list key such as layer_mixers).
 * NULL for anything else, or when memory runs out. */
static char *value_text(const cJSON *v)
{
    char buf[40];
    if (cJSON_IsBool(v)) return strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble)) return NULL;
        sl_sweep_number(v->valuedouble, buf, sizeof buf);
        return strdup(buf);
    }
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (!cJSON_IsArray(v)) return NULL;
    size_t len = 1;
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, ',')) return NULL;
        len += strlen(e->valuestring) + 1;
    }
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    *p = '\0';
    for (const cJSON *e = v->child; e; e = e->next)
        p += sprintf(p, "%s%s", e == v->child ? "" : ",", e->valuestring);
    return s;
}

/* A key as `seqlab train --key=value` can carry it. */
static bool key_ok(const char *k)
{
    return k[0] && k[0] != '-' && !strchr(k, '=') && strlen(k) < SL_SWEEP_KEY_LEN;
}

/* Keys the sweep sets on every run itself. */
static const char *reserved(const char *key)
{
    if (strcmp(key, "out_dir") == 0) return "each run's out_dir is OUT/runs/NAME";
    if (strcmp(key, "threads") == 0) return "seqlab sweep --threads and --jobs set it";
    if (strcmp(key, "stop_metric") == 0 || strcmp(key, "stop_at") == 0)
        return "\"target\" sets it";
    return NULL;
}

/* Appends key = v to c; where says where it is in the spec. */
static sl_status add_kv(const sl_sweep *s, sl_sweep_choice *c, const char *key, const cJSON *v,
                        const char *where)
{
    if (!key_ok(key))
        return sl_fail(SL_ERR_CONFIG,
                       "%s: %s: key \"%s\": expected a config key as `seqlab train --KEY=VALUE` "
                       "takes it (no '=', under %d bytes)",
                       s->path, where, key, SL_SWEEP_KEY_LEN);
    const char *why = reserved(key);
    if (why) return sl_fail(SL_ERR_CONFIG, "%s: %s: key '%s' cannot be set: %s", s->path, where, key, why);
    char *text = value_text(v);
    if (!text)
        return sl_fail(SL_ERR_CONFIG,
                       "%s: %s: key '%s': expected a number, a string, true/false or an array of "
                       "names",
                       s->path, where, key);
    sl_sweep_kv *kv = realloc(c->kv, (size_t)(c->n + 1) * sizeof *kv);
    char *k = strdup(key);
    if (!kv || !k) {
        if (kv) c->kv = kv;
        free(text);
        free(k);
        return sl_fail(SL_ERR_OOM, "%s: out of memory", s->path);
    }
    c->kv = kv;
    kv[c->n++] = (sl_sweep_kv){.key = k, .value = text, .json = v};
    return SL_OK;
}

/* The part of a run's name a key's value gives: a short prefix for the
 * usual axes, else the key's last dotted part. */
static const char *name_prefix(const char *key)
{
    static const char *const SHORT[][2] = {
        {"mixer", ""},  {"d_model", "d"}, {"n_layers", "L"},    {"n_heads", "h"},
        {"seq_len", "T"}, {"lr", "lr"},   {"seed", "s"},        {"batch_size", "b"},
    };
    for (size_t i = 0; i < sizeof SHORT / sizeof SHORT[0]; i++)
        if (strcmp(key, SHORT[i][0]) == 0) return SHORT[i][1];
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* Keeps [A-Za-z0-9._+-] and writes '-' for any other byte. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", *s))
            *s = '-';
}

static sl_status set_token(const sl_sweep *s, const sl_sweep_axis *a, int64_t i)
{
    sl_sweep_choice *c = &a->choice[i];
    int n = a->objects ? snprintf(c->token, sizeof c->token, "%s%lld", a->name, (long long)i)
                       : snprintf(c->token, sizeof c->token, "%s%s", name_prefix(a->name),
                                  c->kv[0].value);
    if (n < 0 || n >= (int)sizeof c->token)
        return sl_fail(SL_ERR_CONFIG, "%s: grid axis '%s', value %lld: names a run in more than %d "
                                      "bytes; use shorter values",
                       s->path, a->name, (long long)i, SL_SWEEP_NAME_LEN);
    sanitize(c->token);
    return SL_OK;
}

/* Whether two choices set the same keys to the same texts. */
static bool same_choice(const sl_sweep_choice *a, const sl_sweep_choice *b)
{
    if (a->n != b->n) return false;
    for (int64_t k = 0; k < a->n; k++)
        if (strcmp(a->kv[k].key, b->kv[k].key) || strcmp(a->kv[k].value, b->kv[k].value))
            return false;
    return true;
}

static sl_status read_axis(sl_sweep *s, sl_sweep_axis *a, const cJSON *arr)
{
    char where[128];
    snprintf(where, sizeof where, "grid axis '%.60s'", a->name);
    if (!key_ok(a->name))
        return sl_fail(SL_ERR_CONFIG, "%s: grid axis \"%s\": expected a config key or a name (no "
                                      "'=', not starting with '-', under %d bytes)",
                       s->path, a->name, SL_SWEEP_KEY_LEN);
    if (!cJSON_IsArray(arr) || !arr->child)
        return sl_fail(SL_ERR_CONFIG, "%s: %s: expected a non-empty array of values", s->path,
                       where);
    a->n = cJSON_GetArraySize(arr);
    a->objects = cJSON_IsObject(arr->child);
    a->choice = calloc((size_t)a->n, sizeof *a->choice);
    if (!a->choice) return sl_fail(SL_ERR_OOM, "%s: out of memory", s->path);
    int64_t i = 0;
    for (const cJSON *v = arr->child; v; v = v->next, i++) {
        char at[160];
        snprintf(at, sizeof at, "%s, value %lld", where, (long long)i);
        if (cJSON_IsObject(v) != a->objects)
            return sl_fail(SL_ERR_CONFIG, "%s: %s: expected %s, as the axis's first value", s->path,
                           at, a->objects ? "an object" : "a number, string, true/false or array");
        sl_status st = SL_OK;
        if (a->objects) {
            if (!v->child)
                return sl_fail(SL_ERR_CONFIG, "%s: %s: an empty object: expected keys to set",
                               s->path, at);
            for (const cJSON *m = v->child; m && !st; m = m->next)
                st = add_kv(s, &a->choice[i], m->string, m, at);
        } else {
            st = add_kv(s, &a->choice[i], a->name, v, at);
        }
        if (!st) st = set_token(s, a, i);
        if (st) return st;
        for (int64_t j = 0; j < i; j++)
            if (same_choice(&a->choice[j], &a->choice[i]))
                return sl_fail(SL_ERR_CONFIG, "%s: %s: the same as value %lld: expected distinct "
                                              "values",
                               s->path, at, (long long)j);
    }
    return SL_OK;
}

/* Where a key is set: "set" or a grid axis (its name). */
typedef struct key_use {
    const char *key, *owner;
} key_use;

/* Appends key to u unless owner already set it (the values of one axis set
 * the same keys). */
static void use_key(key_use *u, int64_t *n, const char *key, const char *owner)
{
    for (int64_t i = 0; i < *n; i++)
        if (u[i].owner == owner && strcmp(u[i].key, key) == 0) return;
    u[(*n)++] = (key_use){key, owner};
}

/* A choice (one value, or "set") sets no key twice (cJSON keeps both). */
static sl_status check_choice_once(const sl_sweep *s, const sl_sweep_choice *c, const char *where)
{
    for (int64_t k = 0; k < c->n; k++)
        for (int64_t j = 0; j < k; j++)
            if (strcmp(c->kv[j].key, c->kv[k].key) == 0)
                return sl_fail(SL_ERR_CONFIG, "%s: %s: key '%s' twice", s->path, where,
                               c->kv[k].key);
    return SL_OK;
}

/* No key is set twice in a run: not by "set" and an axis, nor by two axes;
 * an axis of objects's own name is none of the keys either, so the columns
 * of summary.csv are distinct. */
static sl_status check_keys_once(const sl_sweep *s)
{
    static const char SET[] = "\"set\"";
    int64_t cap = s->set.n, n = 0;
    for (int64_t a = 0; a < s->n_axes; a++)
        for (int64_t c = 0; c < s->axes[a].n; c++) cap += 1 + s->axes[a].choice[c].n;
    key_use *u = malloc((size_t)cap * sizeof *u);
    if (!u) return sl_fail(SL_ERR_OOM, "%s: out of memory", s->path);
    sl_status st = check_choice_once(s, &s->set, SET);
    for (int64_t k = 0; k < s->set.n; k++) use_key(u, &n, s->set.kv[k].key, SET);
    for (int64_t a = 0; a < s->n_axes && !st; a++) {
        const sl_sweep_axis *ax = &s->axes[a];
        if (ax->objects) use_key(u, &n, ax->name, ax->name);
        for (int64_t c = 0; c < ax->n && !st; c++) {
            char where[128];
            snprintf(where, sizeof where, "grid axis '%.60s', value %lld", ax->name, (long long)c);
            st = check_choice_once(s, &ax->choice[c], where);
            for (int64_t k = 0; k < ax->choice[c].n && !st; k++) {
                if (ax->objects && strcmp(ax->choice[c].kv[k].key, ax->name) == 0)
                    st = sl_fail(SL_ERR_CONFIG, "%s: %s: key '%s' is the axis's own name: name "
                                                "the axis otherwise",
                                 s->path, where, ax->name);
                use_key(u, &n, ax->choice[c].kv[k].key, ax->name);
            }
        }
    }
    for (int64_t i = 0; i < n && !st; i++)
        for (int64_t j = 0; j < i && !st; j++)
            if (strcmp(u[i].key, u[j].key) == 0)
                st = sl_fail(SL_ERR_CONFIG, "%s: key '%s' is set by both %s%s%s and grid axis "
                                            "'%s': expected each key in one place",
                             s->path, u[i].key, u[j].owner == SET ? "" : "grid axis '",
                             u[j].owner, u[j].owner == SET ? "" : "'", u[i].owner);
    free(u);
    return st;
}

static sl_status read_target(sl_sweep *s, const cJSON *t)
{
    if (!cJSON_IsObject(t))
        return sl_fail(SL_ERR_CONFIG, "%s: \"target\": expected an object {\"metric\": NAME, "
                                      "\"value\": NUMBER}",
                       s->path);
    const cJSON *m = NULL, *v = NULL;
    for (const cJSON *e = t->child; e; e = e->next) {
        if (strcmp(e->string, "metric") == 0 && !m) m = e;
        else if (strcmp(e->string, "value") == 0 && !v) v = e;
        else
            return sl_fail(SL_ERR_CONFIG, "%s: \"target\": unexpected key '%s': expected metric "
                                          "and value, once each",
                           s->path, e->string);
    }
    if (!cJSON_IsString(m) || strlen(m->valuestring) >= sizeof s->metric ||
        !sl_metric_direction(m->valuestring))
        return sl_fail(SL_ERR_CONFIG,
                       "%s: \"target\".\"metric\": expected loss, bpc, accuracy, mse, mae or a "
                       "task score whose name ends in _accuracy, _mse or _mae",
                       s->path);
    snprintf(s->metric, sizeof s->metric, "%s", m->valuestring);
    s->direction = sl_metric_direction(s->metric);
    if (v && (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)))
        return sl_fail(SL_ERR_CONFIG, "%s: \"target\".\"value\": expected a number", s->path);
    s->stop = v != NULL;
    s->stop_at = v ? v->valuedouble : 0;
    return SL_OK;
}

static sl_status read_best_over(sl_sweep *s, const cJSON *b)
{
    if (!cJSON_IsArray(b) || !b->child)
        return sl_fail(SL_ERR_CONFIG, "%s: \"best_over\": expected a non-empty array of grid axes",
                       s->path);
    for (const cJSON *e = b->child; e; e = e->next) {
        sl_sweep_axis *hit = NULL;
        for (int64_t a = 0; cJSON_IsString(e) && a < s->n_axes; a++)
            if (strcmp(s->axes[a].name, e->valuestring) == 0) hit = &s->axes[a];
        if (!hit || hit->best_over)
            return sl_fail(SL_ERR_CONFIG, "%s: \"best_over\": %s%s%s: expected grid axes, once "
                                          "each",
                           s->path, cJSON_IsString(e) ? "\"" : "",
                           cJSON_IsString(e) ? e->valuestring : "a value that is not a string",
                           cJSON_IsString(e) ? "\"" : "");
        hit->best_over = true;
    }
    s->best = true;
    return SL_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Distinct names: two runs differ in some axis's value, but two values
 * may clean up to one token, and '_' may join tokens two ways. */
static sl_status check_names(const sl_sweep *s)
{
    const size_t w = SL_SWEEP_NAME_LEN + 1;
    char *names = malloc((size_t)s->n_runs * w);
    char **p = malloc((size_t)s->n_runs * sizeof *p);
    sl_status st = SL_OK;
    if (!names || !p) st = sl_fail(SL_ERR_OOM, "%s: out of memory", s->path);
    for (int64_t r = 0; !st && r < s->n_runs; r++) {
        p[r] = names + (size_t)r * w;
        sl_sweep_name(s, r, p[r], w);
        if (strlen(p[r]) >= SL_SWEEP_NAME_LEN)
            st = sl_fail(SL_ERR_CONFIG, "%s: run %lld's name is longer than %d bytes; use shorter "
                                        "values",
                         s->path, (long long)r, SL_SWEEP_NAME_LEN - 1);
    }
    if (!st) qsort(p, (size_t)s->n_runs, sizeof *p, cmp_str);
    for (int64_t r = 1; !st && r < s->n_runs; r++)
        if (strcmp(p[r - 1], p[r]) == 0)
            st = sl_fail(SL_ERR_CONFIG, "%s: two runs are both named \"%s\" (names keep "
                                        "[A-Za-z0-9._+-] of the values): make the values differ "
                                        "there",
                         s->path, p[r]);
    free(names);
    free(p);
    return st;
}

/* The top-level members, each at most once. */
static sl_status read_members(sl_sweep *s, const cJSON *root, const cJSON **m)
{
    static const char *const KEYS[] = {"base", "out_dir", "grid", "set", "target", "best_over",
                                       "eval_split"};
    for (const cJSON *e = root->child; e; e = e->next) {
        size_t k = 0;
        while (k < 7 && strcmp(e->string, KEYS[k]) != 0) k++;
        if (k == 7)
            return sl_fail(SL_ERR_CONFIG, "%s: unknown key '%s': expected base, out_dir, grid, set, "
                                          "target, best_over or eval_split (docs/sweeps.md)",
                           s->path, e->string);
        if (m[k]) return sl_fail(SL_ERR_CONFIG, "%s: key '%s' given twice", s->path, e->string);
        m[k] = e;
    }
    return SL_OK;
}

static sl_status read_spec(sl_sweep *s)
{
    const cJSON *m[7] = {0};
    sl_status st = read_members(s, s->root, m);
    if (st) return st;
    const cJSON *base = m[0], *out = m[1], *grid = m[2], *set = m[3], *eval = m[6];
    if (cJSON_IsString(base) && base->valuestring[0] && strlen(base->valuestring) < SL_PATH_LEN) {
        snprintf(s->base, sizeof s->base, "%s", base->valuestring);
    } else if (cJSON_IsObject(base)) {
        if (!(s->base_inline = cJSON_Print(base)))
            return sl_fail(SL_ERR_OOM, "%s: out of memory", s->path);
    } else {
        return sl_fail(SL_ERR_CONFIG, "%s: \"base\": expected a config file's path or a config "
                                      "object",
                       s->path);
    }
    if (!cJSON_IsString(out) || !out->valuestring[0] ||
        strlen(out->valuestring) >= SL_SWEEP_OUT_LEN)
        return sl_fail(SL_ERR_CONFIG, "%s: \"out_dir\": expected a directory (under %d bytes)",
                       s->path, SL_SWEEP_OUT_LEN);
    snprintf(s->out_dir, sizeof s->out_dir, "%s", out->valuestring);
    snprintf(s->eval_split, sizeof s->eval_split, "test");
    if (eval) {
        if (!cJSON_IsString(eval) || (strcmp(eval->valuestring, "test") &&
                                      strcmp(eval->valuestring, "val") &&
                                      strcmp(eval->valuestring, "train")))
            return sl_fail(SL_ERR_CONFIG, "%s: \"eval_split\": expected \"test\", \"val\" or "
                                          "\"train\"",
                           s->path);
        snprintf(s->eval_split, sizeof s->eval_split, "%s", eval->valuestring);
    }
    if (set && !cJSON_IsObject(set))
        return sl_fail(SL_ERR_CONFIG, "%s: \"set\": expected an object of config keys", s->path);
    for (const cJSON *e = set ? set->child : NULL; e && !st; e = e->next)
        st = add_kv(s, &s->set, e->string, e, "\"set\"");
    if (st) return st;
    if (!cJSON_IsObject(grid) || !grid->child)
        return sl_fail(SL_ERR_CONFIG, "%s: \"grid\": expected an object of axes, at least one "
                                      "(\"lr\": [0.001, 0.003])",
                       s->path);
    s->n_axes = cJSON_GetArraySize(grid);
    if (s->n_axes > 64)
        return sl_fail(SL_ERR_CONFIG, "%s: \"grid\": %lld axes: expected at most 64", s->path,
                       (long long)s->n_axes);
    s->axes = calloc((size_t)s->n_axes, sizeof *s->axes);
    if (!s->axes) return sl_fail(SL_ERR_OOM, "%s: out of memory", s->path);
    s->n_runs = 1;
    int64_t a = 0;
    for (const cJSON *e = grid->child; e && !st; e = e->next, a++) {
        s->axes[a].name = e->string;
        st = read_axis(s, &s->axes[a], e);
        if (!st && s->n_runs * s->axes[a].n > SL_SWEEP_MAX_RUNS)
            st = sl_fail(SL_ERR_CONFIG, "%s: \"grid\": more than %d runs", s->path,
                         SL_SWEEP_MAX_RUNS);
        if (!st) s->n_runs *= s->axes[a].n;
    }
    if (!st) st = check_keys_once(s);
    if (!st && m[4]) st = read_target(s, m[4]);
    if (!st && m[5] && !m[4])
        st = sl_fail(SL_ERR_CONFIG, "%s: \"best_over\" needs \"target\": {\"metric\": NAME}, the "
                                    "metric that \"best\" means",
                     s->path);
    if (!st && m[5]) st = read_best_over(s, m[5]);
    return st ? st : check_names(s);
}

sl_status sl_sweep_load(sl_sweep *s, const char *path)
{
    memset(s, 0, sizeof *s);
    if (strlen(path) >= sizeof s->path)
        return sl_fail(SL_ERR_IO, "%.64s...: path longer than %d bytes", path, SL_PATH_LEN - 1);
    snprintf(s->path, sizeof s->path, "%s", path);
    int64_t len;
    sl_status st = sl_read_text(path, "sweep spec", MAX_SPEC_BYTES, &s->text, &len);
    if (!st && len == 0) st = sl_fail(SL_ERR_CONFIG, "%s: empty file: expected a JSON object", path);
    if (!st) st = sl_json_check_lexemes(s->text, path);
    if (st) return st;
    const char *end = NULL;
    s->root = cJSON_ParseWithOpts(s->text, &end, true);
    if (!s->root) {
        const char *at = cJSON_GetErrorPtr();
        if (!at) at = s->text;
        const size_t line = strcspn(at, "\r\n");
        return sl_fail(SL_ERR_CONFIG, "%s: offset %lld: not valid JSON (near \"%.*s\"); a spec is "
                                      "one JSON object, with no comments",
                       path, (long long)(at - s->text), (int)(line < 20 ? line : 20), at);
    }
    if (!cJSON_IsObject(s->root))
        return sl_fail(SL_ERR_CONFIG, "%s: expected a JSON object (docs/sweeps.md)", path);
    return read_spec(s);
}

static void free_choice(sl_sweep_choice *c)
{
    for (int64_t k = 0; k < c->n; k++) {
        free(c->kv[k].key);
        free(c->kv[k].value);
    }
    free(c->kv);
}

void sl_sweep_free(sl_sweep *s)
{
    for (int64_t a = 0; s->axes && a < s->n_axes; a++) {
        for (int64_t c = 0; s->axes[a].choice && c < s->axes[a].n; c++)
            free_choice(&s->axes[a].choice[c]);
        free(s->axes[a].choice);
    }
    free(s->axes);
    free_choice(&s->set);
    free(s->base_inline);
    cJSON_Delete(s->root);
    free(s->text);
    memset(s, 0, sizeof *s);
}

void sl_sweep_indices(const sl_sweep *s, int64_t run, int64_t *idx)
{
    for (int64_t a = s->n_axes - 1; a >= 0; a--) {
        idx[a] = run % s->axes[a].n;
        run /= s->axes[a].n;
    }
}

void sl_sweep_name(const sl_sweep *s, int64_t run, char *buf, size_t n)
{
    int64_t idx[s->n_axes];
    sl_sweep_indices(s, run, idx);
    size_t at = 0;
    buf[0] = '\0';
    for (int64_t a = 0; a < s->n_axes && at < n; a++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s", a ? "_" : "",
                               s->axes[a].choice[idx[a]].token);
    /* Never ".", "..", a hidden file or something read as an option. */
    if (buf[0] == '.' || buf[0] == '-') buf[0] = '_';
}

int64_t sl_sweep_max_overrides(const sl_sweep *s)
{
    int64_t n = s->set.n;
    for (int64_t a = 0; a < s->n_axes; a++) {
        int64_t most = 0;
        for (int64_t c = 0; c < s->axes[a].n; c++)
            if (s->axes[a].choice[c].n > most) most = s->axes[a].choice[c].n;
        n += most;
    }
    return n;
}

int64_t sl_sweep_overrides(const sl_sweep *s, int64_t run, const sl_sweep_kv **out)
{
    int64_t idx[s->n_axes], n = 0;
    sl_sweep_indices(s, run, idx);
    for (int64_t k = 0; k < s->set.n; k++) out[n++] = &s->set.kv[k];
    for (int64_t a = 0; a < s->n_axes; a++) {
        const sl_sweep_choice *c = &s->axes[a].choice[idx[a]];
        for (int64_t k = 0; k < c->n; k++) out[n++] = &c->kv[k];
    }
    return n;
}
