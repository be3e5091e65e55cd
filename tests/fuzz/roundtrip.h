/* The config targets' oracle: a config that validates serializes
 * (sl_config_to_json) to a stored config that parses back, validates and
 * describes the same model, as a checkpoint's must. */
#ifndef SL_FUZZ_ROUNDTRIP_H
#define SL_FUZZ_ROUNDTRIP_H

#include "fuzz/fuzz.h"
#include "model/config.h"

static inline void fuzz_config_roundtrip(const sl_config *c)
{
    if (sl_config_validate(c) != SL_OK) return;
    char *stored = sl_config_to_json(c);
    FUZZ_ASSERT(stored != NULL, "a valid config serializes");
    sl_config back;
    sl_config_defaults(&back);
    FUZZ_ASSERT(sl_config_parse_stored(&back, stored, "stored") == SL_OK &&
                    sl_config_validate(&back) == SL_OK,
                "its stored form parses back");
    FUZZ_ASSERT(sl_config_model_diff(c, &back) == NULL, "the same model");
    free(stored);
}

#endif
