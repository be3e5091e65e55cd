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
    const char *help;
} field;

#define F(key, type, help) {#key, type, offsetof(sl_config, key), sizeof(((sl_config *)0)->key), help}
static const field FIELDS[] = {
    F(vocab_size, T_INT, "vocabulary size; 0 takes it from the data"),
    F(d_model, T_INT, "model width D"),
    F(n_layers, T_INT, "number of blocks"),
    F(n_heads, T_INT, "heads per mixer; must divide d_model"),
    F(d_ff, T_INT, "MLP hidden width; 0 means 4 * d_model"),
    F(max_seq_len, T_INT, "longest sequence (learned positions, KV cache)"),
    F(mixer, T_STR, "sequence mixer of every layer (see `seqlab mixers`)"),
    {"layer_mixers", T_LIST, offsetof(sl_config, layer_mixers), sizeof(((sl_config *)0)->layer_mixers),
     "per-layer mixer names (hybrid stacks); empty: `mixer` everywhere"},
    F(pos, T_STR, "positions: learned | rope | none"),
    F(rope_theta, T_FLOAT, "RoPE base"),
    F(norm, T_STR, "layernorm | rmsnorm"),
    F(norm_eps, T_FLOAT, "norm epsilon"),
    F(mlp, T_STR, "channel MLP: gelu | swiglu | none"),
    F(bias, T_BOOL, "biases in linear layers and layernorms"),
    F(tie_embeddings, T_BOOL, "the output head reuses embed.weight"),
    F(causal, T_BOOL, "causal (decoder) or bidirectional mixing"),
    F(window, T_INT, "attention window; 0 = unlimited"),
    F(dropout, T_FLOAT, "dropout on mixer and MLP outputs"),
    F(init_std, T_FLOAT, "std of weight init (output projections scaled by 1/sqrt(2L))"),
    F(chunk_size, T_INT, "recurrent mixers: tokens per chunk of the chunkwise-parallel form"),
    F(feature_map, T_STR, "linear_attention feature map: elu1 | relu | identity | taylor"),
    F(normalize, T_BOOL, "linear_attention: divide by phi(q) . sum_j phi(k_j)"),
    F(feature_dim, T_INT, "linear_attention: q, k width per head before phi (Based: 16); 0 = D/H"),
    F(conv_size, T_INT, "short causal depthwise conv before q, k, v (delta rule); 0 = none"),
    F(block_size, T_INT, "transnormer: tokens per block of the lower layers' block-local softmax"),
    F(decay, T_BOOL, "transnormer: per-head decay lambda_h in the upper layers (TransNormerLLM)"),
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
    c->window = 0;
    c->dropout = 0.0;
    c->init_std = 0.02;
    c->chunk_size = 64;
    strcpy(c->feature_map, "elu1");
    c->normalize = false;
    c->feature_dim = 0;
    c->conv_size = 4;
    c->block_size = 64;
    c->decay = false;
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

static sl_status set_list(sl_config *c, const cJSON *arr, const char *src)
{
    int64_t n = cJSON_GetArraySize(arr);
    if (n > SL_MAX_LAYERS)
        return sl_fail(SL_ERR_CONFIG, "%s: key 'layer_mixers': at most %d entries, got %lld", src,
                       SL_MAX_LAYERS, (long long)n);
    memset(c->layer_mixers, 0, sizeof c->layer_mixers);
    int64_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e) || strlen(e->valuestring) >= SL_NAME_LEN)
            return sl_fail(SL_ERR_CONFIG,
                           "%s: key 'layer_mixers'[%lld]: expected a mixer name (string)", src,
                           (long long)i);
        strcpy(c->layer_mixers[i], e->valuestring);
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

sl_status sl_config_parse(sl_config *c, const char *json, const char *name)
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
        if (!f) {
            st = sl_fail(SL_ERR_CONFIG, "%s: unknown key '%s' (see `seqlab train --help`)", name,
                         e->string);
            break;
        }
        st = set_json(c, f, e, name);
    }
out:
    cJSON_Delete(root);
    return st;
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
                return sl_fail(SL_ERR_IO, "%s: out of memory", path);
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

sl_status sl_config_set(sl_config *c, const char *key, const char *value)
{
    const field *f = find_field(key);
    if (!f) return sl_fail(SL_ERR_CONFIG, "--%s: unknown key (see `seqlab train --help`)", key);
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
    static const char *const TASK[] = {"text", NULL};
    static const char *const FMAP[] = {"elu1", "relu", "identity", "taylor", NULL};
    struct { const char *key; int64_t v, lo; } pos[] = {
        {"d_model", c->d_model, 1},     {"n_layers", c->n_layers, 1},
        {"n_heads", c->n_heads, 1},     {"max_seq_len", c->max_seq_len, 1},
        {"batch_size", c->batch_size, 1}, {"seq_len", c->seq_len, 1},
        {"grad_accum", c->grad_accum, 1}, {"steps", c->steps, 0},
        {"vocab_size", c->vocab_size, 0}, {"d_ff", c->d_ff, 0},
        {"window", c->window, 0},       {"warmup_steps", c->warmup_steps, 0},
        {"eval_every", c->eval_every, 0}, {"eval_batches", c->eval_batches, 1},
        {"log_every", c->log_every, 1}, {"ckpt_every", c->ckpt_every, 0},
        {"threads", c->threads, 0},     {"stop_step", c->stop_step, -1},
        {"chunk_size", c->chunk_size, 1}, {"conv_size", c->conv_size, 0},
        {"feature_dim", c->feature_dim, 0},
        {"block_size", c->block_size, 1},
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
    if (!one_of(c->feature_map, FMAP))
        return sl_fail(SL_ERR_CONFIG,
                       "config key 'feature_map' = \"%s\": expected elu1, relu, identity or taylor",
                       c->feature_map);
    if (!one_of(c->task, TASK))
        return sl_fail(SL_ERR_CONFIG, "config key 'task' = \"%s\": expected text", c->task);
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
    return SL_OK;
}

const char *sl_config_model_diff(const sl_config *a, const sl_config *b)
{
    for (size_t i = 0; i < NFIELDS && strcmp(FIELDS[i].key, "seed") != 0; i++) {
        const field *f = &FIELDS[i];
        const char *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
        bool same = f->type == T_STR    ? strcmp(pa, pb) == 0
                    : f->type == T_LIST ? a->n_layer_mixers == b->n_layer_mixers
                    : memcmp(pa, pb, f->size) == 0;
        for (int64_t j = 0; f->type == T_LIST && same && j < a->n_layer_mixers; j++)
            same = strcmp(a->layer_mixers[j], b->layer_mixers[j]) == 0;
        if (!same) return f->key;
    }
    return NULL;
}

const char *sl_config_layer_mixer(const sl_config *c, int64_t i)
{
    if (i < c->n_layer_mixers && c->layer_mixers[i][0]) return c->layer_mixers[i];
    return c->mixer;
}

char *sl_config_to_json(const sl_config *c)
{
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
            for (int64_t j = 0; j < c->n_layer_mixers; j++)
                cJSON_AddItemToArray(arr, cJSON_CreateString(c->layer_mixers[j]));
            break;
        }
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
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
}
