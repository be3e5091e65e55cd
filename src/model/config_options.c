/* Routing of mixer and task options through the config (model/config.h):
 * settings kept as text from JSON objects, layer entries, flat keys of
 * older checkpoints and --NAME.option / --layers.N.option overrides, each
 * checked against its owner's option table, and resolved per layer. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_options.h"

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
static sl_status sl_setting_check(const char *name, const char *key, const char *text,
                                  sl_opt_from from, const char *src)
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
static sl_status sl_setting_add(sl_config *c, const char *owner, int64_t layer, const char *key,
                                const char *value, sl_opt_from from, const char *src)
{
    if (strlen(owner) >= SL_NAME_LEN || strlen(key) >= SL_NAME_LEN || strlen(value) >= SL_OPT_LEN)
        return sl_fail(SL_ERR_CONFIG, "%s: option '%s' = \"%.40s\": name or value too long", src,
                       key, value);
    int64_t i = 0;
    while (i < c->n_settings &&
           !(c->settings[i].layer == layer && strcmp(c->settings[i].owner, owner) == 0 &&
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
static bool sl_setting_json_text(const cJSON *v, char *buf, size_t size, sl_opt_from *from)
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
    if (d == floor(d) && fabs(d) < 9e15)
        snprintf(buf, size, "%lld", (long long)d);
    else
        snprintf(buf, size, "%.17g", d);
    return true;
}

/* One {"option": value, ...} object for owner (layer -1) or for a layer
 * (owner "", checked against `mixer`, the name the layer's entry gives);
 * `skip` is a key that is not an option ("mixer" in a layer entry). */
sl_status sl_settings_from_json(sl_config *c, const cJSON *obj, const char *owner, int64_t layer,
                                const char *mixer, const char *skip, const char *src)
{
    for (const cJSON *e = obj->child; e; e = e->next) {
        if (skip && strcmp(e->string, skip) == 0) continue;
        char text[SL_OPT_LEN], where[256];
        sl_opt_from from;
        snprintf(where, sizeof where, "%s: %s", src, layer < 0 ? owner : "layer_mixers");
        if (!sl_setting_json_text(e, text, sizeof text, &from))
            return sl_fail(SL_ERR_CONFIG,
                           "%s: option '%s': expected a number, true/false or a "
                           "string of under %d characters",
                           where, e->string, SL_OPT_LEN);
        sl_status st = sl_setting_check(layer < 0 ? owner : mixer, e->string, text, from, where);
        if (!st) st = sl_setting_add(c, owner, layer, e->string, text, from, where);
        if (st) return st;
    }
    return SL_OK;
}

/* "mixer_options" or "task_options": {"NAME": {"option": value}}. */
sl_status sl_settings_from_owner_json(sl_config *c, const cJSON *v, bool mixers, const char *src)
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
        sl_status st = sl_settings_from_json(c, e, e->string, -1, NULL, NULL, src);
        if (st) return st;
    }
    return SL_OK;
}

/* A flat key of a checkpoint written before mixers owned their options:
 * given to every mixer that declares an option of that name. False when
 * none does. */
bool sl_settings_from_flat_key(sl_config *c, const cJSON *v, const char *src, sl_status *st)
{
    char text[SL_OPT_LEN];
    sl_opt_from from;
    bool found = false;
    *st = SL_OK;
    for (size_t i = 0; i < sl_mixer_count() && *st == SL_OK; i++) {
        const sl_mixer_vtable *m = sl_mixer_at(i);
        if (!sl_option_find(m->options, v->string)) continue;
        found = true;
        if (!sl_setting_json_text(v, text, sizeof text, &from))
            *st = sl_fail(SL_ERR_CONFIG, "%s: key '%s': expected a scalar", src, v->string);
        else if (!(*st = sl_setting_check(m->name, v->string, text, from, src)))
            *st = sl_setting_add(c, m->name, -1, v->string, text, from, src);
    }
    return found;
}

/* The names of the mixers declaring option key, for a hint. */
void sl_settings_owners_of(const char *key, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sl_mixer_count() && n < size; i++)
        if (sl_option_find(sl_mixer_at(i)->options, key))
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", sl_mixer_at(i)->name);
}

/* --NAME.option=value (a mixer's or task's) or --layers.N.option=value. */
sl_status sl_settings_from_dotted(sl_config *c, const char *key, const char *value)
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
        return sl_setting_add(c, "", layer, end + 1, value, SL_FROM_TEXT, src);
    }
    sl_status st = sl_setting_check(owner, dot + 1, value, SL_FROM_TEXT, src);
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
    return sl_setting_add(c, owner, -1, dot + 1, value, SL_FROM_TEXT, src);
}

/* Applies the settings of owner at layer (see config.h) to o. */
static sl_status apply_settings(const sl_config *c, const char *owner, int64_t layer,
                                const char *kind, sl_opts *o)
{
    char who[96];
    if (layer < 0)
        snprintf(who, sizeof who, "%s '%s'", kind, owner);
    else
        snprintf(who, sizeof who, "layer %lld's mixer '%s'", (long long)layer, owner);
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
        return sl_fail(SL_ERR_CONFIG,
                       "config key 'task' = \"%s\": unknown task (see `seqlab tasks`)", c->task);
    sl_status st = sl_opts_defaults(opts, (*vt)->options);
    return st ? st : apply_settings(c, c->task, -1, "task", opts);
}

/* o's values as JSON members of obj, typed by their table. */
void sl_opts_to_json(cJSON *obj, const sl_opts *o)
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
