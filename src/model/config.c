/* Config parsing, driven by one field table. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "core/utf8.h"
#include "model/config_options.h"

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
    F(input, T_STR, "model inputs: tokens | vectors (in.weight) | both; auto = the task's"),
    F(n_in, T_INT, "reals per vector input position; 0 = the task's"),
    F(head, T_STR, "output head: lm | tag | regress | classify; auto = the task's"),
    F(n_out, T_INT, "classes (tag, classify) or reals per position (regress); 0 = the task's"),
    F(pool, T_STR, "classify: the positions pooled: mean | last | first; auto = the task's"),
    M(dropout, T_FLOAT, "dropout on mixer and MLP outputs"),
    M(init_std, T_FLOAT, "std of weight init (output projections scaled by 1/sqrt(2L))"),
    M(chunk_size, T_INT, "recurrent mixers: tokens per chunk of the chunkwise-parallel form"),
    M(conv_size, T_INT, "short causal depthwise conv before q, k, v (delta rule, mamba2); 0 = none"),
    F(recompute_tokens, T_INT,
      "train longer sequences through recurrent mixers in chunks of this many tokens, "
      "recomputing each chunk in the backward (memory of one chunk); 0 = never"),
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
    F(eval_batches, T_INT, "batches per validation run (0: the whole validation set)"),
    F(log_every, T_INT, "steps between metrics lines"),
    F(ckpt_every, T_INT, "steps between checkpoints; 0 = only at the end"),
    F(threads, T_INT, "threads for OpenMP and OpenBLAS; 0 = all cores"),
    F(time_limit, T_FLOAT, "stop after this many seconds (0 = off), saving a checkpoint"),
    F(stop_step, T_INT, "stop after this many updates (-1 = off), keeping the schedule of steps"),
    F(stop_metric, T_STR,
      "stop when a validation line's metric reaches stop_at (\"\" = off): loss, bpc, accuracy, "
      "mse, mae or a task score (*_accuracy, *_mse, *_mae)"),
    F(stop_at, T_FLOAT,
      "target of stop_metric: reached at >= for accuracy and *_accuracy, at <= for the others"),
    F(out_dir, T_STR, "directory for checkpoint.safetensors and metrics.jsonl"),
    F(task, T_STR, "task: text, mqar, selective_copy, ... (see `seqlab tasks`)"),
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
    strcpy(c->input, "auto");
    strcpy(c->head, "auto");
    strcpy(c->pool, "auto");
    c->dropout = 0.0;
    c->init_std = 0.02;
    c->chunk_size = 64;
    c->conv_size = 4;
    c->recompute_tokens = 16384;
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
    c->stop_metric[0] = '\0';
    c->stop_at = 0;
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
        const cJSON *name = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "mixer") : e;
        if (!cJSON_IsString(name) || strlen(name->valuestring) >= SL_NAME_LEN)
            return sl_fail(SL_ERR_CONFIG,
                           "%s: key 'layer_mixers'[%lld]: expected a mixer name or an object "
                           "{\"mixer\": NAME, option: value, ...}",
                           src, (long long)i);
        if (!name->valuestring[0])
            return sl_fail(SL_ERR_CONFIG, "%s: key 'layer_mixers'[%lld]: empty mixer name: expected "
                                          "one of `seqlab mixers`",
                           src, (long long)i);
        strcpy(c->layer_mixers[i], name->valuestring);
        if (e == name) continue;
        if (!sl_mixer_lookup(name->valuestring))
            return sl_fail(SL_ERR_CONFIG, "%s: key 'layer_mixers'[%lld]: unknown mixer \"%s\"",
                           src, (long long)i, name->valuestring);
        sl_status st = sl_settings_from_json(c, e, "", i, name->valuestring, "mixer", src);
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

/* What cJSON takes but JSON (RFC 8259) does not, or what it would read
 * silently wrong: a number with a leading zero (010) and a \u0000 escape,
 * which cuts a key or value short. Strings are skipped as JSON writes them. */
/* p is inside a number past its first digit: a fraction or an exponent
 * (1.05, 1e-05), where zeros may lead. */
static bool number_tail(const char *json, const char *p)
{
    if (p == json) return false;
    if (p[-1] == '-' || p[-1] == '+') return p - 1 > json && (p[-2] == 'e' || p[-2] == 'E');
    return p[-1] && strchr("0123456789.eE", p[-1]);
}

sl_status sl_json_check_lexemes(const char *json, const char *name)
{
    for (const char *p = json; *p; p++) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p != '\\') continue;
                if (strncmp(p, "\\u0000", 6) == 0)
                    return sl_fail(SL_ERR_CONFIG, "%s: offset %lld: a NUL character (\\u0000) in "
                                                  "a string: expected none",
                                   name, (long long)(p - json));
                if (p[1]) p++;
            }
            if (!*p) break;
        } else if (*p == '0' && p[1] >= '0' && p[1] <= '9' && !number_tail(json, p)) {
            return sl_fail(SL_ERR_CONFIG, "%s: offset %lld: a number with a leading zero: "
                                          "expected a JSON number (10, not 010)",
                           name, (long long)(p - json));
        }
    }
    return SL_OK;
}

static sl_status parse(sl_config *c, const char *json, const char *name, bool stored)
{
    sl_status st = sl_json_check_lexemes(json, name);
    if (st) return st;
    /* The whole text is one object: cJSON_Parse would stop after the first
     * value, reading "{...}} xyz" as the part before a stray brace. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, true);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        if (end && *end && at && at == end)
            return sl_fail(SL_ERR_CONFIG, "%s: offset %lld: content after the JSON object "
                                          "(near \"%.20s\"): expected the end of the file",
                           name, (long long)(end - json), end);
        return sl_fail(SL_ERR_CONFIG, "%s: not valid JSON (near \"%.20s\")", name, at ? at : "");
    }
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
            st = sl_settings_from_owner_json(c, e, e->string[0] == 'm', name);
        } else if (!(stored && sl_settings_from_flat_key(c, e, name, &st))) {
            char owners[128];
            sl_settings_owners_of(e->string, owners, sizeof owners);
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

static const char *const INPUTS[] = {"tokens", "vectors", "both", NULL};
static const char *const HEADS[] = {"lm", "tag", "regress", "classify", NULL};
static const char *const POOLS[] = {"mean", "last", "first", NULL};

const char *sl_input_name(sl_input_kind k) { return INPUTS[k]; }
const char *sl_head_name(sl_head_kind k) { return HEADS[k]; }

/* The index of s in names, or -1. */
static int index_of(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

sl_status sl_config_io(const sl_config *c, sl_task_io *io)
{
    const int in = strcmp(c->input, "auto") ? index_of(c->input, INPUTS) : SL_INPUT_TOKENS;
    const int hd = strcmp(c->head, "auto") ? index_of(c->head, HEADS) : SL_HEAD_LM;
    const int pl = strcmp(c->pool, "auto") ? index_of(c->pool, POOLS) : SL_POOL_LAST;
    if (in < 0 || hd < 0 || pl < 0)
        return sl_fail(SL_ERR_CONFIG, "config keys input = \"%s\", head = \"%s\", pool = \"%s\": "
                                      "expected tokens, vectors or both; lm, tag, regress or "
                                      "classify; mean, last or first (or auto)",
                       c->input, c->head, c->pool);
    *io = (sl_task_io){.input = (sl_input_kind)in, .n_in = c->n_in, .head = (sl_head_kind)hd,
                       .n_out = c->n_out, .pool = (sl_pool_kind)pl};
    return SL_OK;
}

sl_status sl_config_adopt_io(sl_config *c, const sl_task_io *io, const char *who)
{
    struct { const char *key; char *v; const char *const *names; int want; bool strict; } s[] = {
        {"input", c->input, INPUTS, (int)io->input, true},
        {"head", c->head, HEADS, (int)io->head, true},
        {"pool", c->pool, POOLS, (int)io->pool, false},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        if (strcmp(s[i].v, "auto") == 0) snprintf(s[i].v, SL_NAME_LEN, "%s", s[i].names[s[i].want]);
        else if (s[i].strict && strcmp(s[i].v, s[i].names[s[i].want]) != 0)
            return sl_fail(SL_ERR_CONFIG, "config key '%s' = \"%s\": %s gives \"%s\"", s[i].key,
                           s[i].v, who, s[i].names[s[i].want]);
    }
    struct { const char *key; int64_t *v, want; } n[] = {{"n_in", &c->n_in, io->n_in},
                                                         {"n_out", &c->n_out, io->n_out}};
    for (size_t i = 0; i < 2; i++) {
        if (*n[i].v == 0) *n[i].v = n[i].want;
        else if (*n[i].v != n[i].want)
            return sl_fail(SL_ERR_CONFIG, "config key '%s' = %lld: %s gives %lld", n[i].key,
                           (long long)*n[i].v, who, (long long)n[i].want);
    }
    return SL_OK;
}

/* Configs are small: anything past this is not one. */
#define MAX_CONFIG_BYTES ((int64_t)16 << 20)

sl_status sl_config_load(sl_config *c, const char *path)
{
    int fd;
    int64_t size;
    sl_status st = sl_open_regular(path, "config", &fd, &size);
    if (st) return st;
    char *buf = NULL;
    if (size > MAX_CONFIG_BYTES)
        st = sl_fail(SL_ERR_CONFIG, "%s: %lld bytes: a config is at most %lld bytes", path,
                     (long long)size, (long long)MAX_CONFIG_BYTES);
    else if (!(buf = malloc((size_t)size + 1)))
        st = sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    int64_t len = 0;
    while (!st && len < size) {
        ssize_t r = read(fd, buf + len, (size_t)(size - len));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) st = sl_fail(SL_ERR_IO, "%s: read error: %s", path, r ? strerror(errno) : "file shrank");
        else len += r;
    }
    close(fd);
    if (!st) {
        buf[len] = '\0';
        const size_t text = strlen(buf);
        if (text != (size_t)len)
            st = sl_fail(SL_ERR_CONFIG, "%s: offset %zu: a NUL byte: expected JSON text", path,
                         text);
        else if (len == 0)
            st = sl_fail(SL_ERR_CONFIG, "%s: empty config file", path);
        else
            st = sl_config_parse(c, buf, path);
    }
    free(buf);
    return st;
}

sl_status sl_config_set(sl_config *c, const char *key, const char *value)
{
    if (strchr(key, '.')) return sl_settings_from_dotted(c, key, value);
    const field *f = find_field(key);
    if (!f) {
        char owners[128];
        sl_settings_owners_of(key, owners, sizeof owners);
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
        /* Empty names stay in, so set_list refuses "a,,b" naming the entry. */
        for (char *tok = buf, *next; tok; tok = next) {
            next = strchr(tok, ',');
            if (next) *next++ = '\0';
            cJSON_AddItemToArray(arr, cJSON_CreateString(tok));
        }
        sl_status st = set_list(c, arr, src);
        cJSON_Delete(arr);
        return st;
    }
    }
    return SL_OK;
}

sl_status sl_config_validate(const sl_config *c)
{
    static const char *const POS[] = {"learned", "rope", "none", NULL};
    static const char *const NORM[] = {"layernorm", "rmsnorm", NULL};
    static const char *const MLP[] = {"gelu", "swiglu", "none", NULL};
    /* Every string reaches the checkpoint's stored config, whose JSON must
     * be UTF-8: a path that is not would fail at the first save. */
    for (size_t i = 0; i < NFIELDS; i++)
        if (FIELDS[i].type == T_STR && !sl_utf8_valid((const char *)c + FIELDS[i].off))
            return sl_fail(SL_ERR_CONFIG, "config key '%s': not valid UTF-8", FIELDS[i].key);
    /* Upper bounds (docs/formats.md, Configs): sizes stay far below what
     * int64_t products of them can hold, and every integer is exact as a
     * JSON number (< 2^53), as the checkpoint's stored config keeps it. */
    const int64_t COUNT = (int64_t)1 << 50, BIG = (int64_t)1 << 53;
    struct { const char *key; int64_t v, lo, hi; } ints[] = {
        {"d_model", c->d_model, 1, 1 << 16},          {"n_layers", c->n_layers, 1, SL_MAX_LAYERS},
        {"n_heads", c->n_heads, 1, 1 << 16},          {"max_seq_len", c->max_seq_len, 1, 1 << 24},
        {"batch_size", c->batch_size, 1, 1 << 20},    {"seq_len", c->seq_len, 1, 1 << 24},
        {"grad_accum", c->grad_accum, 1, 1 << 20},    {"steps", c->steps, 0, COUNT},
        {"vocab_size", c->vocab_size, 0, 1 << 24},    {"d_ff", c->d_ff, 0, 1 << 18},
        {"warmup_steps", c->warmup_steps, 0, COUNT},  {"eval_every", c->eval_every, 0, COUNT},
        {"eval_batches", c->eval_batches, 0, 1 << 20}, {"log_every", c->log_every, 1, COUNT},
        {"ckpt_every", c->ckpt_every, 0, COUNT},      {"threads", c->threads, 0, 4096},
        {"stop_step", c->stop_step, -1, COUNT},       {"chunk_size", c->chunk_size, 1, 1 << 16},
        {"conv_size", c->conv_size, 0, 1 << 10},      {"seed", c->seed, -BIG, BIG},
        {"recompute_tokens", c->recompute_tokens, 0, 1 << 24},
        {"n_in", c->n_in, 0, 1 << 20},                {"n_out", c->n_out, 0, 1 << 24},
        {"max_skipped_steps", c->max_skipped_steps, 1, COUNT},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v < ints[i].lo || ints[i].v > ints[i].hi)
            return sl_fail(SL_ERR_CONFIG, "config key '%s' = %lld: expected an integer in [%lld, %lld]",
                           ints[i].key, (long long)ints[i].v, (long long)ints[i].lo,
                           (long long)ints[i].hi);
    if (c->d_model % c->n_heads != 0)
        return sl_fail(SL_ERR_SHAPE,
                       "config: n_heads = %lld does not divide d_model = %lld",
                       (long long)c->n_heads, (long long)c->d_model);
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
    if (index_of(c->pos, POS) < 0)
        return sl_fail(SL_ERR_CONFIG, "config key 'pos' = \"%s\": expected learned, rope or none", c->pos);
    if (index_of(c->norm, NORM) < 0)
        return sl_fail(SL_ERR_CONFIG, "config key 'norm' = \"%s\": expected layernorm or rmsnorm", c->norm);
    if (index_of(c->mlp, MLP) < 0)
        return sl_fail(SL_ERR_CONFIG, "config key 'mlp' = \"%s\": expected gelu, swiglu or none", c->mlp);
    if (strcmp(c->input, "auto") != 0 && index_of(c->input, INPUTS) < 0)
        return sl_fail(SL_ERR_CONFIG, "config key 'input' = \"%s\": expected auto, tokens, vectors "
                                      "or both", c->input);
    if (strcmp(c->head, "auto") != 0 && index_of(c->head, HEADS) < 0)
        return sl_fail(SL_ERR_CONFIG, "config key 'head' = \"%s\": expected auto, lm, tag, regress "
                                      "or classify", c->head);
    if (strcmp(c->pool, "auto") != 0 && index_of(c->pool, POOLS) < 0)
        return sl_fail(SL_ERR_CONFIG, "config key 'pool' = \"%s\": expected auto, mean, last or "
                                      "first", c->pool);
    if ((strcmp(c->input, "vectors") == 0 || strcmp(c->input, "both") == 0) && c->n_in < 1)
        return sl_fail(SL_ERR_CONFIG, "config key 'n_in' = %lld: input = %s needs n_in >= 1",
                       (long long)c->n_in, c->input);
    if (index_of(c->head, HEADS) > 0 && c->n_out < 1)
        return sl_fail(SL_ERR_CONFIG, "config key 'n_out' = %lld: head = %s needs n_out >= 1",
                       (long long)c->n_out, c->head);
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
    if (c->stop_metric[0] && (!sl_metric_direction(c->stop_metric) ||
                              strspn(c->stop_metric, "abcdefghijklmnopqrstuvwxyz"
                                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                                  strlen(c->stop_metric)))
        return sl_fail(SL_ERR_CONFIG,
                       "config key 'stop_metric' = \"%s\": expected loss, bpc, accuracy, mse, mae or "
                       "a task score whose name ends in _accuracy, _mse or _mae",
                       c->stop_metric);
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
    /* Inputs and head as the model reads them ("auto" is tokens and lm). */
    sl_task_io ia, ib;
    if (sl_config_io(a, &ia) || sl_config_io(b, &ib)) return "input";
    if (ia.input != ib.input) return "input";
    if (ia.n_in != ib.n_in) return "n_in";
    if (ia.head != ib.head) return "head";
    if (ia.n_out != ib.n_out) return "n_out";
    if (ia.pool != ib.pool) return "pool";
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
                sl_opts_to_json(layer, &opts);
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
    sl_opts_to_json(cJSON_AddObjectToObject(tasks, tv->name), &topts);
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
