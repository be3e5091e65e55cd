/* Config parsing, driven by one field table. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

typedef enum { T_INT, T_FLOAT, T_BOOL, T_STR, T_LIST } field_type;

typedef struct field {
    const char *key;
    field_type type;
    size_t off;
    size_t size; /* T_STR: buffer size */
    bool model;  /* shapes the model: a resumed run may not change it */
    const char *help;
} field;

#define F_(key, type, model, help) \
    {#key, type, offsetof(sl_config, key), sizeof(((sl_config *)0)->key), model, help}
#define M(key, type, help) F_(key, type, true, help)
#define F(key, type, help) F_(key, type, false, help)
static const field FIELDS[] = {
    M(vocab_size, T_INT, "vocabulary size; 0 takes it from the data"),
    M(d_model, T_INT, "model width D"),
    M(n_layers, T_INT, "number of blocks"),
    M(n_heads, T_INT, "heads per mixer; must divide d_model"),
    M(d_ff, T_INT, "MLP hidden width; 0 means 4 * d_model"),
    M(max_seq_len, T_INT, "longest sequence (learned positions, KV cache)"),
    F(mixer, T_STR, "sequence mixer of every layer (see `seqlab mixers`)"),
    F_(layer_mixers, T_LIST, false,
       "per-layer mixers (hybrid stacks), names or {\"mixer\": NAME, option: value}"),
    M(pos, T_STR, "positions: learned | rope | none"),
    M(rope_theta, T_FLOAT, "RoPE base"),
    M(norm, T_STR, "layernorm | rmsnorm"),
    M(norm_eps, T_FLOAT, "norm epsilon"),
    M(mlp, T_STR, "channel MLP: gelu | swiglu | none"),
    M(bias, T_BOOL, "biases in linear layers and layernorms"),
    M(tie_embeddings, T_BOOL, "the output head reuses embed.weight"),
    M(causal, T_BOOL, "causal (decoder) or bidirectional mixing"),
    M(dropout, T_FLOAT, "dropout on mixer and MLP outputs"),
    M(init_std, T_FLOAT, "std of weight init (output projections scaled by 1/sqrt(2L))"),
    M(chunk_size, T_INT, "recurrent mixers: tokens per chunk of the chunkwise-parallel form"),
    M(conv_size, T_INT, "short causal depthwise conv before q, k, v (delta rule, mamba2); 0 = none"),
    F(seed, T_INT, "seed of init, data order and dropout"),
    F(steps, T_INT, "optimizer steps"),
    F(batch_size, T_INT, "sequences per micro-batch"),
    F(seq_len, T_INT, "tokens per training sequence"),
    F(grad_accum, T_INT, "micro-batches per optimizer step"),
    F(lr, T_FLOAT, "peak learning rate"),
    F(min_lr, T_FLOAT, "final learning rate of the cosine schedule"),
    F(warmup_steps, T_INT, "linear warmup steps"),
    F(weight_decay, T_FLOAT, "AdamW decoupled weight decay (not on norms, biases)"),
    F(beta1, T_FLOAT, "AdamW beta1"),
    F(beta2, T_FLOAT, "AdamW beta2"),
    F(adam_eps, T_FLOAT, "AdamW epsilon"),
    F(grad_clip, T_FLOAT, "global gradient-norm clip; 0 = off"),
    F(max_skipped_steps, T_INT,
      "stop after this many updates in a row were skipped for a NaN/Inf loss, gradient or result"),
    F(eval_every, T_INT, "steps between validation runs; 0 = only at the end"),
    F(eval_batches, T_INT, "batches per validation run"),
    F(log_every, T_INT, "steps between metrics lines"),
    F(ckpt_every, T_INT, "steps between checkpoints; 0 = only at the end"),
    F(threads, T_INT, "threads for OpenMP and OpenBLAS; 0 = all cores"),
    F(time_limit, T_FLOAT, "stop after this many seconds (0 = off), saving a checkpoint"),
    F(stop_step, T_INT, "stop after this many updates (-1 = off), keeping the schedule of steps"),
    F(out_dir, T_STR, "directory for checkpoint.safetensors and metrics.jsonl"),
    F(task, T_STR, "task: text"),
    F(data, T_STR, "data file of the task"),
};
#undef F
#undef M
#undef F_
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

void sl_config_defaults(sl_config *c)
{
    memset(c, 0, sizeof *c);
    c->vocab_size = 0;
    c->d_model = 128;
    c->n_layers = 4;
    c->n_heads = 4;
    c->d_ff = 0;
    c->max_seq_len = 256;
    strcpy(c->mixer, "attention");
    strcpy(c->pos, "learned");
    c->rope_theta = 10000.0;
    strcpy(c->norm, "layernorm");
    c->norm_eps = 1e-5;
    strcpy(c->mlp, "gelu");
    c->bias = false;
    c->tie_embeddings = true;
    c->causal = true;
    c->dropout = 0.0;
    c->init_std = 0.02;
    c->chunk_size = 64;
    c->conv_size = 4;
    c->seed = 1337;
    c->steps = 1000;
    c->batch_size = 16;
    c->seq_len = 256;
    c->grad_accum = 1;
    c->lr = 1e-3;
    c->min_lr = 1e-4;
    c->warmup_steps = 100;
    c->weight_decay = 0.1;
    c->beta1 = 0.9;
    c->beta2 = 0.95;
    c->adam_eps = 1e-8;
    c->grad_clip = 1.0;
    c->max_skipped_steps = 5;
    c->eval_every = 0;
    c->eval_batches = 20;
    c->log_every = 10;
    c->ckpt_every = 0;
    c->threads = 0;
    c->time_limit = 0;
    c->stop_step = -1;
    strcpy(c->out_dir, "runs/default");
    strcpy(c->task, "text");
    c->data[0] = '\0';
}

static const field *find_field(const char *key)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(FIELDS[i].key, key) == 0) return &FIELDS[i];
    return NULL;
}

static const char *type_name(field_type t)
{
    switch (t) {
    case T_INT: return "an integer";
    case T_FLOAT: return "a number";
    case T_BOOL: return "true or false";
    case T_STR: return "a string";
    case T_LIST: return "an array of strings";
    }
    return "?";
}

static sl_status set_string(sl_config *c, const field *f, const char *s, const char *src)
{
    if (strlen(s) >= f->size)
        return sl_fail(SL_ERR_CONFIG, "%s: key '%s': string longer than %zu characters", src,
                       f->key, f->size - 1);
    strcpy((char *)c + f->off, s);
    return SL_OK;
}

/* ------------------------------------------------------ option settings */

/* The option table of a mixer or task named `name`; kind says which. */
static bool owner_table(const char *name, sl_option_table *t, const char **kind)
{
    const sl_mixer_vtable *m = sl_mixer_lookup(name);
    if (m) {
        *t = m->options;
        *kind = "mixer";
        return true;
    }
    const sl_task_vtable *k = sl_task_lookup(name);
    if (k) {
        *t = k->options;
        *kind = "task";
        return true;
    }
    return false;
}

/* Checks text against option `key` of `name`'s table. */
static sl_status check_option(const char *name, const char *key, const char *text, sl_opt_from from,
                              const char *src)
{
    sl_option_table t;
    const char *kind;
    if (!owner_table(name, &t, &kind))
        return sl_fail(SL_ERR_CONFIG,
                       "%s: '%s' is neither a mixer nor a task (see `seqlab mixers`)", src, name);
    sl_opts o;
    char owner[64];
    snprintf(owner, sizeof owner, "%s '%s'", kind, name);
    sl_status st = sl_opts_defaults(&o, t);
    return st ? st : sl_opts_set(&o, owner, src, key, text, from);
}

/* Records a setting, replacing an earlier one of the same owner, layer and
 * key. */
static sl_status add_setting(sl_config *c, const char *owner, int64_t layer, const char *key,
                             const char *value, sl_opt_from from, const char *src)
{
    if (strlen(owner) >= SL_NAME_LEN || strlen(key) >= SL_NAME_LEN || strlen(value) >= SL_OPT_LEN)
        return sl_fail(SL_ERR_CONFIG, "%s: option '%s' = \"%.40s\": name or value too long", src,
                       key, value);
    int64_t i = 0;
    while (i < c->n_settings && !(c->settings[i].layer == layer &&
                                  strcmp(c->settings[i].owner, owner) == 0 &&
                                  strcmp(c->settings[i].key, key) == 0))
        i++;
    if (i == SL_MAX_SETTINGS)
        return sl_fail(SL_ERR_CONFIG, "%s: more than %d option settings", src, SL_MAX_SETTINGS);
    if (i == c->n_settings) c->n_settings++;
    sl_setting *e = &c->settings[i];
    snprintf(e->owner, sizeof e->owner, "%s", owner);
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->value, sizeof e->value, "%s", value);
    e->layer = layer;
    e->from = from;
    return SL_OK;
}

/* A JSON scalar as option text, and its JSON type. */
static bool json_text(const cJSON *v, char *buf, size_t size, sl_opt_from *from)
{
    if (cJSON_IsString(v)) {
        *from = SL_FROM_JSON_STRING;
        return (size_t)snprintf(buf, size, "%s", v->valuestring) < size;
    }
    if (cJSON_IsBool(v)) {
        *from = SL_FROM_JSON_BOOL;
        return snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "true" : "false") > 0;
    }
    *from = SL_FROM_JSON_NUMBER;
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9e15) snprintf(buf, size, "%lld", (long long)d);
    else snprintf(buf, size, "%.17g", d);
    return true;
}

/* One {"option": value, ...} object for owner (layer -1) or for a layer
 * (owner "", checked against `mixer`, the name the layer's entry gives);
 * `skip` is a key that is not an option ("mixer" in a layer entry). */
static sl_status set_options(sl_config *c, const cJSON *obj, const char *owner, int64_t layer,
                             const char *mixer, const char *skip, const char *src)
{
    for (const cJSON *e = obj->child; e; e = e->next) {
        if (skip && strcmp(e->string, skip) == 0) continue;
        char text[SL_OPT_LEN], where[256];
        sl_opt_from from;
        snprintf(where, sizeof where, "%s: %s", src, layer < 0 ? owner : "layer_mixers");
        if (!json_text(e, text, sizeof text, &from))
            return sl_fail(SL_ERR_CONFIG, "%s: option '%s': expected a number, true/false or a "
                                          "string of under %d characters", where, e->string,
                           SL_OPT_LEN);
        sl_status st = check_option(layer < 0 ? owner : mixer, e->string, text, from, where);
        if (!st) st = add_setting(c, owner, layer, e->string, text, from, where);
        if (st) return st;
    }
    return SL_OK;
}

/* "mixer_options" or "task_options": {"NAME": {"option": value}}. */
static sl_status set_owner_options(sl_config *c, const cJSON *v, bool mixers, const char *src)
{
    const char *key = mixers ? "mixer_options" : "task_options";
    if (!cJSON_IsObject(v))
        return sl_fail(SL_ERR_CONFIG, "%s: key '%s': expected an object of {\"%s\": {...}}", src,
                       key, mixers ? "MIXER" : "TASK");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (mixers ? !sl_mixer_lookup(e->string) : !sl_task_lookup(e->string))
            return sl_fail(SL_ERR_CONFIG, "%s: key '%s': unknown %s '%s' (see `seqlab %s`)", src,
                           key, mixers ? "mixer" : "task", e->string, mixers ? "mixers" : "tasks");
        if (!cJSON_IsObject(e))
            return sl_fail(SL_ERR_CONFIG, "%s: key '%s.%s': expected an object of options", src,
                           key, e->string);
        sl_status st = set_options(c, e, e->string, -1, NULL, NULL, src);
        if (st) return st;
    }
    return SL_OK;
}

/* A flat key of a checkpoint written before mixers owned their options:
 * given to every mixer that declares an option of that name. False when
 * none does. */
static bool legacy_option(sl_config *c, const cJSON *v, const char *src, sl_status *st)
{
    char text[SL_OPT_LEN];
    sl_opt_from from;
    bool found = false;
    *st = SL_OK;
    for (size_t i = 0; i < sl_mixer_count() && *st == SL_OK; i++) {
        const sl_mixer_vtable *m = sl_mixer_at(i);
        if (!sl_option_find(m->options, v->string)) continue;
        found = true;
        if (!json_text(v, text, sizeof text, &from))
            *st = sl_fail(SL_ERR_CONFIG, "%s: key '%s': expected a scalar", src, v->string);
        else if (!(*st = check_option(m->name, v->string, text, from, src)))
            *st = add_setting(c, m->name, -1, v->string, text, from, src);
    }
    return found;
}

/* The names of the mixers declaring option key, for a hint. */
static void owners_of(const char *key, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sl_mixer_count() && n < size; i++)
        if (sl_option_find(sl_mixer_at(i)->options, key))
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", sl_mixer_at(i)->name);
}

static sl_status set_list(sl_config *c, const cJSON *arr, const char *src)
{
    int64_t n = cJSON_GetArraySize(arr);
    if (n > SL_MAX_LAYERS)
        return sl_fail(SL_ERR_CONFIG, "%s: key 'layer_mixers': at most %d entries, got %lld", src,
                       SL_MAX_LAYERS, (long long)n);
    memset(c->layer_mixers, 0, sizeof c->layer_mixers);
    int64_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        const cJSON *name = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "mixer") : e;
        if (!cJSON_IsString(name) || strlen(name->valuestring) >= SL_NAME_LEN)
            return sl_fail(SL_ERR_CONFIG,
                           "%s: key 'layer_mixers'[%lld]: expected a mixer name or an object "
                           "{\"mixer\": NAME, option: value, ...}",
                           src, (long long)i);
        strcpy(c->layer_mixers[i], name->valuestring);
        if (e == name) continue;
        if (!sl_mixer_lookup(name->valuestring))
            return sl_fail(SL_ERR_CONFIG, "%s: key 'layer_mixers'[%lld]: unknown mixer \"%s\"",
                           src, (long long)i, name->valuestring);
        sl_status st = set_options(c, e, "", i, name->valuestring, "mixer", src);
        if (st) return st;
    }
    c->n_layer_mixers = n;
    return SL_OK;
}

static sl_status set_json(sl_config *c, const field *f, const cJSON *v, const char *src)
{
    void *p = (char *)c + f->off;
    switch (f->type) {
    case T_INT:
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            fabs(v->valuedouble) > 9e15)
            break;
        *(int64_t *)p = (int64_t)v->valuedouble;
        return SL_OK;
    case T_FLOAT:
        if (!cJSON_IsNumber(v)) break;
        *(double *)p = v->valuedouble;
        return SL_OK;
    case T_BOOL:
        if (!cJSON_IsBool(v)) break;
        *(bool *)p = cJSON_IsTrue(v);
        return SL_OK;
    case T_STR:
        if (!cJSON_IsString(v)) break;
        return set_string(c, f, v->valuestring, src);
    case T_LIST:
        if (!cJSON_IsArray(v)) break;
        return set_list(c, v, src);
    }
    return sl_fail(SL_ERR_CONFIG, "%s: key '%s': expected %s", src, f->key, type_name(f->type));
}

static sl_status parse(sl_config *c, const char *json, const char *name, bool stored)
{
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        return sl_fail(SL_ERR_CONFIG, "%s: not valid JSON (near \"%.20s\")", name, at ? at : "");
    }
    sl_status st = SL_OK;
    if (!cJSON_IsObject(root)) {
        st = sl_fail(SL_ERR_CONFIG, "%s: expected a JSON object of settings", name);
        goto out;
    }
    for (const cJSON *e = root->child; e && st == SL_OK; e = e->next) {
        const field *f = find_field(e->string);
        if (f) {
            st = set_json(c, f, e, name);
        } else if (strcmp(e->string, "mixer_options") == 0 ||
                   strcmp(e->string, "task_options") == 0) {
            st = set_owner_options(c, e, e->string[0] == 'm', name);
        } else if (!(stored && legacy_option(c, e, name, &st))) {
            char owners[128];
            owners_of(e->string, owners, sizeof owners);
            if (owners[0])
                st = sl_fail(SL_ERR_CONFIG,
                             "%s: unknown key '%s': it is an option of %s; set it as "
                             "\"mixer_options\": {\"MIXER\": {\"%s\": ...}} or --MIXER.%s=...",
                             name, e->string, owners, e->string, e->string);
            else
                st = sl_fail(SL_ERR_CONFIG, "%s: unknown key '%s' (see `seqlab train --help`)",
                             name, e->string);
        }
    }
out:
    cJSON_Delete(root);
    return st;
}

sl_status sl_config_parse(sl_config *c, const char *json, const char *name)
{
    return parse(c, json, name, false);
}

sl_status sl_config_parse_stored(sl_config *c, const char *json, const char *name)
{
    return parse(c, json, name, true);
}

sl_status sl_config_load(sl_config *c, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return sl_fail(SL_ERR_IO, "%s: cannot open config: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, 4096, fp);
        len += got;
        if (got < 4096) break;
    }
    bool err = ferror(fp);
    fclose(fp);
    buf[len] = '\0';
    sl_status st = err ? sl_fail(SL_ERR_IO, "%s: read error", path) : SL_OK;
    if (st == SL_OK && len == 0) st = sl_fail(SL_ERR_CONFIG, "%s: empty config file", path);
    if (st == SL_OK) st = sl_config_parse(c, buf, path);
    free(buf);
    return st;
}

/* --NAME.option=value (a mixer's or task's) or --layers.N.option=value. */
static sl_status set_dotted(sl_config *c, const char *key, const char *value)
{
    char src[160], owner[SL_NAME_LEN];
    snprintf(src, sizeof src, "--%s=%s", key, value);
    const char *dot = strchr(key, '.');
    if ((size_t)(dot - key) >= sizeof owner)
        return sl_fail(SL_ERR_CONFIG, "%s: name too long", src);
    memcpy(owner, key, (size_t)(dot - key));
    owner[dot - key] = '\0';
    if (strcmp(owner, "layers") == 0) {
        char *end;
        errno = 0;
        long long layer = strtoll(dot + 1, &end, 10);
        if (end == dot + 1 || *end != '.' || errno || layer < 0 || layer >= SL_MAX_LAYERS)
            return sl_fail(SL_ERR_CONFIG, "%s: expected --layers.N.option=value with 0 <= N < %d",
                           src, SL_MAX_LAYERS);
        /* Checked against the layer's mixer by sl_config_validate: a later
         * override may still change which mixer that is. */
        return add_setting(c, "", layer, end + 1, value, SL_FROM_TEXT, src);
    }
    sl_status st = check_option(owner, dot + 1, value, SL_FROM_TEXT, src);
    if (st) return st;
    /* A later override wins over what the config said, per layer too (a
     * stored config spells every layer's options out). */
    int64_t kept = 0;
    for (int64_t i = 0; i < c->n_settings; i++) {
        const sl_setting *e = &c->settings[i];
        if (!(e->layer >= 0 && strcmp(e->key, dot + 1) == 0 &&
              strcmp(sl_config_layer_mixer(c, e->layer), owner) == 0))
            c->settings[kept++] = *e;
    }
    c->n_settings = kept;
    return add_setting(c, owner, -1, dot + 1, value, SL_FROM_TEXT, src);
}

sl_status sl_config_set(sl_config *c, const char *key, const char *value)
{
    if (strchr(key, '.')) return set_dotted(c, key, value);
    const field *f = find_field(key);
    if (!f) {
        char owners[128];
        owners_of(key, owners, sizeof owners);
        if (owners[0])
            return sl_fail(SL_ERR_CONFIG, "--%s: unknown key: it is an option of %s; write "
                                          "--MIXER.%s=%s", key, owners, key, value);
        return sl_fail(SL_ERR_CONFIG, "--%s: unknown key (see `seqlab train --help`)", key);
    }
    void *p = (char *)c + f->off;
    char *end = NULL;
    char src[96];
    snprintf(src, sizeof src, "--%s", key);
    errno = 0;
    switch (f->type) {
    case T_INT: {
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno)
            return sl_fail(SL_ERR_CONFIG, "--%s=%s: expected an integer", key, value);
        *(int64_t *)p = v;
        return SL_OK;
    }
    case T_FLOAT: {
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v))
            return sl_fail(SL_ERR_CONFIG, "--%s=%s: expected a finite number", key, value);
        *(double *)p = v;
        return SL_OK;
    }
    case T_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) *(bool *)p = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) *(bool *)p = false;
        else return sl_fail(SL_ERR_CONFIG, "--%s=%s: expected true or false", key, value);
        return SL_OK;
    case T_STR:
        return set_string(c, f, value, src);
    case T_LIST: {
        /* Comma-separated names: --layer_mixers=attention,deltanet */
        cJSON *arr = cJSON_CreateArray();
        char buf[SL_MAX_LAYERS * SL_NAME_LEN];
        snprintf(buf, sizeof buf, "%s", value);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(arr, cJSON_CreateString(tok));
        sl_status st = set_list(c, arr, src);
        cJSON_Delete(arr);
        return st;
    }
    }
    return SL_OK;
}

static bool one_of(const char *s, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(s, *names) == 0) return true;
    return false;
}

sl_status sl_config_validate(const sl_config *c)
{
    static const char *const POS[] = {"learned", "rope", "none", NULL};
    static const char *const NORM[] = {"layernorm", "rmsnorm", NULL};
    static const char *const MLP[] = {"gelu", "swiglu", "none", NULL};
    struct { const char *key; int64_t v, lo; } pos[] = {
        {"d_model", c->d_model, 1},     {"n_layers", c->n_layers, 1},
        {"n_heads", c->n_heads, 1},     {"max_seq_len", c->max_seq_len, 1},
        {"batch_size", c->batch_size, 1}, {"seq_len", c->seq_len, 1},
        {"grad_accum", c->grad_accum, 1}, {"steps", c->steps, 0},
        {"vocab_size", c->vocab_size, 0}, {"d_ff", c->d_ff, 0},
        {"warmup_steps", c->warmup_steps, 0},
        {"eval_every", c->eval_every, 0}, {"eval_batches", c->eval_batches, 1},
        {"log_every", c->log_every, 1}, {"ckpt_every", c->ckpt_every, 0},
        {"threads", c->threads, 0},     {"stop_step", c->stop_step, -1},
        {"max_skipped_steps", c->max_skipped_steps, 1},
        {"chunk_size", c->chunk_size, 1}, {"conv_size", c->conv_size, 0},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v < pos[i].lo)
            return sl_fail(SL_ERR_CONFIG, "config key '%s' = %lld: expected >= %lld", pos[i].key,
                           (long long)pos[i].v, (long long)pos[i].lo);
    if (c->d_model % c->n_heads != 0)
        return sl_fail(SL_ERR_SHAPE,
                       "config: n_heads = %lld does not divide d_model = %lld",
                       (long long)c->n_heads, (long long)c->d_model);
    if (c->n_layers > SL_MAX_LAYERS)
        return sl_fail(SL_ERR_CONFIG, "config key 'n_layers' = %lld: at most %d",
                       (long long)c->n_layers, SL_MAX_LAYERS);
    if (c->n_layer_mixers && c->n_layer_mixers != c->n_layers)
        return sl_fail(SL_ERR_CONFIG,
                       "config key 'layer_mixers': %lld names for n_layers = %lld",
                       (long long)c->n_layer_mixers, (long long)c->n_layers);
    if (strcmp(c->pos, "rope") == 0 && (c->d_model / c->n_heads) % 2 != 0)
        return sl_fail(SL_ERR_SHAPE, "config: pos = rope needs an even head size, got %lld",
                       (long long)(c->d_model / c->n_heads));
    if (c->seq_len > c->max_seq_len)
        return sl_fail(SL_ERR_SHAPE, "config: seq_len = %lld exceeds max_seq_len = %lld",
                       (long long)c->seq_len, (long long)c->max_seq_len);
    if (!one_of(c->pos, POS))
        return sl_fail(SL_ERR_CONFIG, "config key 'pos' = \"%s\": expected learned, rope or none", c->pos);
    if (!one_of(c->norm, NORM))
        return sl_fail(SL_ERR_CONFIG, "config key 'norm' = \"%s\": expected layernorm or rmsnorm", c->norm);
    if (!one_of(c->mlp, MLP))
        return sl_fail(SL_ERR_CONFIG, "config key 'mlp' = \"%s\": expected gelu, swiglu or none", c->mlp);
    struct { const char *key; double v, lo, hi; } rng[] = {
        {"dropout", c->dropout, 0, 0.999}, {"lr", c->lr, 0, 10},
        {"min_lr", c->min_lr, 0, 10},      {"weight_decay", c->weight_decay, 0, 10},
        {"beta1", c->beta1, 0, 0.999999},  {"beta2", c->beta2, 0, 0.999999999},
        {"adam_eps", c->adam_eps, 0, 1},   {"grad_clip", c->grad_clip, 0, 1e30},
        {"norm_eps", c->norm_eps, 0, 1},   {"init_std", c->init_std, 0, 10},
        {"rope_theta", c->rope_theta, 1, 1e12}, {"time_limit", c->time_limit, 0, 1e12},
    };
    for (size_t i = 0; i < sizeof rng / sizeof rng[0]; i++)
        if (!(rng[i].v >= rng[i].lo && rng[i].v <= rng[i].hi))
            return sl_fail(SL_ERR_CONFIG, "config key '%s' = %g: expected a value in [%g, %g]",
                           rng[i].key, rng[i].v, rng[i].lo, rng[i].hi);
    for (int64_t i = 0; i < c->n_settings; i++) {
        const sl_setting *e = &c->settings[i];
        if (e->layer >= c->n_layers)
            return sl_fail(SL_ERR_CONFIG, "config: option '%s' given for layer %lld of %lld", e->key,
                           (long long)e->layer, (long long)c->n_layers);
    }
    const sl_mixer_vtable *vt;
    const sl_task_vtable *tv;
    sl_mixer_dims dims;
    sl_opts opts;
    for (int64_t i = 0; i < c->n_layers; i++) {
        sl_status st = sl_config_layer(c, i, &vt, &dims, &opts);
        if (st) return st;
    }
    return sl_config_task(c, &tv, &opts);
}

const char *sl_config_layer_mixer(const sl_config *c, int64_t i)
{
    if (i < c->n_layer_mixers && c->layer_mixers[i][0]) return c->layer_mixers[i];
    return c->mixer;
}

/* Applies the settings of owner at layer (see config.h) to o. */
static sl_status apply_settings(const sl_config *c, const char *owner, int64_t layer,
                                const char *kind, sl_opts *o)
{
    char who[96];
    if (layer < 0) snprintf(who, sizeof who, "%s '%s'", kind, owner);
    else snprintf(who, sizeof who, "layer %lld's mixer '%s'", (long long)layer, owner);
    for (int64_t i = 0; i < c->n_settings; i++) {
        const sl_setting *e = &c->settings[i];
        if (e->layer != layer || (layer < 0 && strcmp(e->owner, owner) != 0)) continue;
        sl_status st = sl_opts_set(o, who, "config", e->key, e->value, e->from);
        if (st) return st;
    }
    return SL_OK;
}

sl_status sl_config_layer(const sl_config *c, int64_t i, const sl_mixer_vtable **vt,
                          sl_mixer_dims *dims, sl_opts *opts)
{
    const char *name = sl_config_layer_mixer(c, i);
    *vt = sl_mixer_lookup(name);
    if (!*vt)
        return sl_fail(SL_ERR_CONFIG,
                       "config: layer %lld: unknown mixer \"%s\" (see `seqlab mixers`)",
                       (long long)i, name);
    *dims = (sl_mixer_dims){.d_model = c->d_model,
                            .n_heads = c->n_heads,
                            .n_layers = c->n_layers,
                            .max_seq_len = c->max_seq_len,
                            .chunk_size = c->chunk_size,
                            .conv_size = c->conv_size,
                            .causal = c->causal,
                            .bias = c->bias,
                            .rope = strcmp(c->pos, "rope") == 0,
                            .rope_theta = c->rope_theta,
                            .norm_eps = c->norm_eps,
                            .init_std = c->init_std};
    sl_status st = sl_opts_defaults(opts, (*vt)->options);
    if (!st) st = apply_settings(c, name, -1, "mixer", opts);
    if (!st) st = apply_settings(c, name, i, "mixer", opts);
    return st;
}

sl_status sl_config_task(const sl_config *c, const sl_task_vtable **vt, sl_opts *opts)
{
    *vt = sl_task_lookup(c->task);
    if (!*vt)
        return sl_fail(SL_ERR_CONFIG, "config key 'task' = \"%s\": unknown task (see `seqlab tasks`)",
                       c->task);
    sl_status st = sl_opts_defaults(opts, (*vt)->options);
    return st ? st : apply_settings(c, c->task, -1, "task", opts);
}

/* A field's value equal in a and b. */
static bool field_equal(const field *f, const sl_config *a, const sl_config *b)
{
    const char *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
    return f->type == T_STR ? strcmp(pa, pb) == 0 : memcmp(pa, pb, f->size) == 0;
}

const char *sl_config_model_diff(const sl_config *a, const sl_config *b)
{
    static _Thread_local char what[96];
    for (size_t i = 0; i < NFIELDS; i++)
        if (FIELDS[i].model && !field_equal(&FIELDS[i], a, b)) return FIELDS[i].key;
    for (int64_t i = 0; i < a->n_layers; i++) {
        const sl_mixer_vtable *va, *vb;
        sl_mixer_dims d;
        sl_opts oa, ob;
        if (sl_config_layer(a, i, &va, &d, &oa) || sl_config_layer(b, i, &vb, &d, &ob) || va != vb) {
            snprintf(what, sizeof what, "layer %lld's mixer", (long long)i);
            return what;
        }
        for (size_t k = 0; k < oa.table.n; k++)
            if (strcmp(oa.v[k].s, ob.v[k].s) != 0) {
                snprintf(what, sizeof what, "layer %lld's option '%s'", (long long)i,
                         oa.table.opt[k].name);
                return what;
            }
    }
    return NULL;
}

/* o's values as JSON members of obj, typed by their table. */
static void add_opts_json(cJSON *obj, const sl_opts *o)
{
    for (size_t k = 0; k < o->table.n; k++) {
        const sl_option *op = &o->table.opt[k];
        switch (op->type) {
        case SL_OPT_INT: cJSON_AddNumberToObject(obj, op->name, (double)o->v[k].i); break;
        case SL_OPT_FLOAT: cJSON_AddNumberToObject(obj, op->name, o->v[k].f); break;
        case SL_OPT_BOOL: cJSON_AddBoolToObject(obj, op->name, o->v[k].i != 0); break;
        case SL_OPT_ENUM: cJSON_AddStringToObject(obj, op->name, o->v[k].s); break;
        }
    }
}

char *sl_config_to_json(const sl_config *c)
{
    if (sl_config_validate(c)) return NULL;
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &FIELDS[i];
        const void *p = (const char *)c + f->off;
        switch (f->type) {
        case T_INT: cJSON_AddNumberToObject(o, f->key, (double)*(const int64_t *)p); break;
        case T_FLOAT: cJSON_AddNumberToObject(o, f->key, *(const double *)p); break;
        case T_BOOL: cJSON_AddBoolToObject(o, f->key, *(const bool *)p); break;
        case T_STR: cJSON_AddStringToObject(o, f->key, (const char *)p); break;
        case T_LIST: {
            cJSON *arr = cJSON_AddArrayToObject(o, f->key);
            for (int64_t j = 0; j < c->n_layers; j++) {
                const sl_mixer_vtable *vt;
                sl_mixer_dims d;
                sl_opts opts;
                sl_config_layer(c, j, &vt, &d, &opts);
                cJSON *layer = cJSON_CreateObject();
                cJSON_AddStringToObject(layer, "mixer", vt->name);
                add_opts_json(layer, &opts);
                cJSON_AddItemToArray(arr, layer);
            }
            break;
        }
        }
    }
    const sl_task_vtable *tv;
    sl_opts topts;
    sl_config_task(c, &tv, &topts);
    cJSON *tasks = cJSON_AddObjectToObject(o, "task_options");
    add_opts_json(cJSON_AddObjectToObject(tasks, tv->name), &topts);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) sl_fail(SL_ERR_OOM, "out of memory writing the config");
    return s;
}

void sl_config_print_keys(FILE *f)
{
    sl_config d;
    sl_config_defaults(&d);
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *k = &FIELDS[i];
        const void *p = (const char *)&d + k->off;
        char def[64];
        switch (k->type) {
        case T_INT: snprintf(def, sizeof def, "%lld", (long long)*(const int64_t *)p); break;
        case T_FLOAT: snprintf(def, sizeof def, "%g", *(const double *)p); break;
        case T_BOOL: snprintf(def, sizeof def, "%s", *(const bool *)p ? "true" : "false"); break;
        case T_STR: snprintf(def, sizeof def, "\"%s\"", (const char *)p); break;
        case T_LIST: snprintf(def, sizeof def, "[]"); break;
        }
        fprintf(f, "  --%-15s %-10s %s (default %s)\n", k->key,
                k->type == T_LIST ? "a,b,..." : k->type == T_STR ? "string"
                : k->type == T_BOOL ? "bool" : k->type == T_INT ? "int" : "number",
                k->help, def);
    }
    fprintf(f, "\nmixer options: --MIXER.option=value for every layer of that mixer,\n"
               "--layers.N.option=value for layer N (JSON: \"mixer_options\", or objects in\n"
               "\"layer_mixers\"; see `seqlab mixers NAME`):\n");
    for (size_t i = 0; i < sl_mixer_count(); i++) {
        const sl_mixer_vtable *m = sl_mixer_at(i);
        if (!m->options.n) continue;
        fprintf(f, "  %s\n", m->name);
        sl_option_table_print(f, m->options, "    ", false);
    }
    fprintf(f, "\ntask options: --TASK.option=value (JSON: \"task_options\"; see `seqlab tasks`):\n");
    for (size_t i = 0; i < sl_task_count(); i++) {
        const sl_task_vtable *t = sl_task_at(i);
        if (!t->options.n) continue;
        fprintf(f, "  %s\n", t->name);
        sl_option_table_print(f, t->options, "    ", false);
    }
}
