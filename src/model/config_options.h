/* Option settings inside config.c's parser (config_options.c); the
 * public face is sl_config_layer / sl_config_task in model/config.h. */
#ifndef SL_CONFIG_OPTIONS_H
#define SL_CONFIG_OPTIONS_H

#include <cjson/cJSON.h>

#include "model/config.h"

/* One {"option": value, ...} object for owner (layer -1) or for a layer
 * (owner "", checked against `mixer`, the name the layer's entry gives);
 * `skip` is a key that is not an option ("mixer" in a layer entry). */
sl_status sl_settings_from_json(sl_config *c, const cJSON *obj, const char *owner, int64_t layer,
                                const char *mixer, const char *skip, const char *src);
/* "mixer_options" or "task_options": {"NAME": {"option": value}}. */
sl_status sl_settings_from_owner_json(sl_config *c, const cJSON *v, bool mixers, const char *src);
/* A flat key of a checkpoint written before mixers owned their options,
 * given to every mixer that declares it; false when none does. */
bool sl_settings_from_flat_key(sl_config *c, const cJSON *v, const char *src, sl_status *st);
/* --NAME.option=value or --layers.N.option=value. */
sl_status sl_settings_from_dotted(sl_config *c, const char *key, const char *value);
/* The names of the mixers declaring option key, comma-separated, for a
 * hint ("" when none). */
void sl_settings_owners_of(const char *key, char *buf, size_t size);
/* o's values as JSON members of obj, typed by their table. */
void sl_opts_to_json(cJSON *obj, const sl_opts *o);

#endif
