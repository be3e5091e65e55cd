/* Checkpoint save and load on top of the safetensors reader and writer. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "train/checkpoint.h"
#include "train/safetensors.h"

#define FORMAT "seqlab/1"

static void hex_encode(const uint8_t *b, size_t n, char *out)
{
    static const char H[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = H[b[i] >> 4];
        out[2 * i + 1] = H[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes exactly n bytes; false when s is not 2n hex digits. */
static bool hex_decode(const char *s, uint8_t *b, size_t n)
{
    if (strlen(s) != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void rng_hex(const sl_rng *r, char out[65])
{
    uint8_t b[32];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) b[8 * i + j] = (uint8_t)(r->s[i] >> (8 * j));
    hex_encode(b, 32, out);
}

static bool rng_unhex(const char *s, sl_rng *r)
{
    uint8_t b[32];
    if (!s || !hex_decode(s, b, 32)) return false;
    for (int i = 0; i < 4; i++) {
        r->s[i] = 0;
        for (int j = 0; j < 8; j++) r->s[i] |= (uint64_t)b[8 * i + j] << (8 * j);
    }
    return true;
}

static sl_st_tensor entry(const char *name, const sl_tensor *t, const float *data)
{
    sl_st_tensor e = {.name = name, .dtype = SL_DT_F32, .ndim = t->ndim, .data = data,
                      .nbytes = (size_t)t->n * sizeof(float)};
    for (int i = 0; i < t->ndim; i++) e.shape[i] = t->shape[i];
    return e;
}

/* Metadata keys the checkpoint itself writes. */
static const char *const OWN_KEYS[] = {"format",   "seqlab_version", "config",        "step",
                                       "rng_data", "rng_dropout",    SL_ST_DIGEST_KEY};
#define N_OWN (sizeof OWN_KEYS / sizeof OWN_KEYS[0])

sl_status sl_checkpoint_save(const char *path, const sl_model *m, const sl_kv *extra,
                             size_t n_extra, const sl_train_state *ts)
{
    for (size_t i = 0; i < n_extra; i++) {
        bool own = sl_kv_find(extra, i, extra[i].key) != NULL;
        for (size_t k = 0; k < N_OWN; k++) own |= strcmp(extra[i].key, OWN_KEYS[k]) == 0;
        if (own) return sl_fail(SL_ERR_ARG, "%s: metadata key '%s' given twice", path, extra[i].key);
    }
    const sl_params *p = &m->params;
    size_t n = p->count * (ts ? 3 : 1);
    sl_st_tensor *t = calloc(n, sizeof *t);
    char(*names)[128] = calloc(2 * p->count, sizeof *names);
    char *config = sl_config_to_json(&m->cfg);
    sl_st_meta *meta = malloc((N_OWN + n_extra) * sizeof *meta);
    if (!t || !names || !config || !meta) {
        free(t);
        free(names);
        free(config);
        free(meta);
        return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < p->count; i++) {
        const sl_param *q = p->list[i];
        t[i] = entry(q->name, &q->t, q->t.data);
        if (!ts) continue;
        snprintf(names[2 * i], 128, "adam.m.%s", q->name);
        snprintf(names[2 * i + 1], 128, "adam.v.%s", q->name);
        t[p->count + 2 * i] = entry(names[2 * i], &q->t, p->m + q->offset);
        t[p->count + 2 * i + 1] = entry(names[2 * i + 1], &q->t, p->v + q->offset);
    }
    char step[32], rd[65], rp[65];
    size_t nm = 0;
    meta[nm++] = (sl_st_meta){"format", FORMAT};
    meta[nm++] = (sl_st_meta){"seqlab_version", SEQLAB_VERSION};
    meta[nm++] = (sl_st_meta){"config", config};
    for (size_t i = 0; i < n_extra; i++) meta[nm++] = extra[i];
    if (ts) {
        snprintf(step, sizeof step, "%" PRId64, ts->step);
        rng_hex(&ts->data_rng, rd);
        rng_hex(&ts->drop_rng, rp);
        meta[nm++] = (sl_st_meta){"step", step};
        meta[nm++] = (sl_st_meta){"rng_data", rd};
        meta[nm++] = (sl_st_meta){"rng_dropout", rp};
    }
    sl_status st = sl_st_write_sealed(path, t, n, meta, nm);
    free(t);
    free(names);
    free(config);
    free(meta);
    return st;
}

static sl_status load_tensor(const sl_st_file *f, const char *name, const sl_tensor *t, float *dst)
{
    const void *data;
    sl_status st = sl_st_expect(f, name, SL_DT_F32, t->ndim, t->shape, &data);
    if (st == SL_OK) memcpy(dst, data, (size_t)t->n * sizeof(float));
    return st;
}

/* A decimal int64 >= 0 with no sign, space or leading zero, as the writer
 * prints it; false for "", "007", "-1", "1e3" or anything past INT64_MAX. */
static bool parse_step(const char *s, int64_t *out)
{
    if (!s || !*s || (s[0] == '0' && s[1])) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = (int64_t)v;
    return true;
}

/* All-zero is xoshiro's fixed point: it yields 0 forever, and rejection
 * sampling (sl_rng_below) would never return. sl_rng_seed never makes it. */
static sl_status load_rng(const char *path, const sl_st_file *f, const char *key, sl_rng *r)
{
    if (!rng_unhex(sl_st_meta_find(f, key), r))
        return sl_fail(SL_ERR_FORMAT, "%s: metadata '%s': expected 64 hex digits", path, key);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        return sl_fail(SL_ERR_FORMAT,
                       "%s: metadata '%s': the all-zero state is not a valid xoshiro256** state",
                       path, key);
    return SL_OK;
}

static sl_status load_state(const char *path, const sl_st_file *f, sl_train_state *ts)
{
    if (!parse_step(sl_st_meta_find(f, "step"), &ts->step))
        return sl_fail(SL_ERR_FORMAT,
                       "%s: metadata 'step': expected a non-negative integer up to %" PRId64
                       " in plain decimal",
                       path, INT64_MAX);
    sl_status st = load_rng(path, f, "rng_data", &ts->data_rng);
    return st ? st : load_rng(path, f, "rng_dropout", &ts->drop_rng);
}

/* AdamW divides by sqrt(v) + eps: a negative or non-finite v, or a
 * non-finite m, turns every weight it touches into NaN on the next step. */
static sl_status check_moments(const char *path, const char *name, const float *x, int64_t n,
                               bool second)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (second && x[i] < 0))
            return sl_fail(SL_ERR_FORMAT, "%s: tensor '%s': element %lld is %g; expected %s", path,
                           name, (long long)i, (double)x[i],
                           second ? "a finite value >= 0 (a second moment)" : "a finite value");
    return SL_OK;
}

/* The stored config is one JSON object and nothing after it. */
static sl_status check_single_object(const char *json, const char *where)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 0);
    bool one = root && cJSON_IsObject(root);
    cJSON_Delete(root);
    if (!one)
        return sl_fail(SL_ERR_FORMAT, "%s: expected a JSON object (error near offset %lld)", where,
                       (long long)(end ? end - json : 0));
    end += strspn(end, " \t\r\n");
    if (*end)
        return sl_fail(SL_ERR_FORMAT, "%s: unexpected content after the JSON object at offset %lld",
                       where, (long long)(end - json));
    return SL_OK;
}

sl_status sl_checkpoint_open(sl_checkpoint *ck, const char *path)
{
    memset(ck, 0, sizeof *ck);
    ck->path = path;
    sl_status st = sl_st_read(path, &ck->file);
    if (st) return st;
    const sl_st_file *f = &ck->file;
    const char *fmt = sl_st_meta_find(f, "format");
    const char *config = sl_st_meta_find(f, "config");
    char where[600];
    snprintf(where, sizeof where, "%s: metadata 'config'", path);
    sl_config_defaults(&ck->cfg);
    if (!fmt || strcmp(fmt, FORMAT) != 0)
        st = sl_fail(SL_ERR_FORMAT,
                     "%s: metadata 'format': expected \"%s\" (not a seqlab checkpoint?)", path,
                     FORMAT);
    else if (!config)
        st = sl_fail(SL_ERR_FORMAT, "%s: metadata 'config' is missing", path);
    else if (!(st = check_single_object(config, where)) &&
             !(st = sl_config_parse_stored(&ck->cfg, config, where)) &&
             (st = sl_config_validate(&ck->cfg))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sl_errmsg());
        st = sl_fail(st, "%s: %s", where, msg);
    }
    if (st)
        sl_checkpoint_close(ck);
    else if (!f->sealed)
        fprintf(stderr,
                "seqlab: note: %s has no '%s' digest (written by another tool or an older "
                "seqlab), so its integrity cannot be checked\n",
                path, SL_ST_DIGEST_KEY);
    return st;
}

void sl_checkpoint_close(sl_checkpoint *ck)
{
    if (ck->file.bytes) sl_st_close(&ck->file);
    memset(ck, 0, sizeof *ck);
}

sl_status sl_checkpoint_restore(const sl_checkpoint *ck, sl_model *m, sl_train_state *ts)
{
    const char *path = ck->path;
    const sl_st_file *f = &ck->file;
    const char *diff = sl_config_model_diff(&ck->cfg, &m->cfg);
    if (diff)
        return sl_fail(SL_ERR_CONFIG, "%s: %s differs from the model the checkpoint holds", path,
                       diff);
    const sl_params *p = &m->params;
    sl_status st = SL_OK;
    for (size_t i = 0; i < p->count && !st; i++) {
        const sl_param *q = p->list[i];
        st = load_tensor(f, q->name, &q->t, q->t.data);
        if (st || !ts) continue;
        char name[128];
        snprintf(name, sizeof name, "adam.m.%s", q->name);
        if (!sl_st_find(f, name)) {
            st = sl_fail(SL_ERR_FORMAT, "%s: holds no optimizer state ('%s'); cannot resume from it",
                         path, name);
            break;
        }
        st = load_tensor(f, name, &q->t, p->m + q->offset);
        if (!st) st = check_moments(path, name, p->m + q->offset, q->t.n, false);
        snprintf(name, sizeof name, "adam.v.%s", q->name);
        if (!st) st = load_tensor(f, name, &q->t, p->v + q->offset);
        if (!st) st = check_moments(path, name, p->v + q->offset, q->t.n, true);
    }
    if (!st && ts) st = load_state(path, f, ts);
    /* A tensor the model does not have means the file and config disagree. */
    for (size_t i = 0; i < f->ntensors && !st; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, "adam.", 5) == 0) continue;
        if (!sl_params_find(p, name))
            st = sl_fail(SL_ERR_FORMAT, "%s: tensor '%s' does not belong to the model its config describes",
                         path, name);
    }
    return st;
}

sl_status sl_checkpoint_load(const char *path, sl_model *m, sl_train_state *ts)
{
    sl_checkpoint ck;
    memset(m, 0, sizeof *m);
    sl_status st = sl_checkpoint_open(&ck, path);
    if (st) return st;
    st = sl_model_create(m, &ck.cfg);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sl_errmsg());
        st = sl_fail(st, "%s: %s", path, msg);
    } else if ((st = sl_checkpoint_restore(&ck, m, ts))) {
        sl_model_free(m);
    }
    sl_checkpoint_close(&ck);
    return st;
}
