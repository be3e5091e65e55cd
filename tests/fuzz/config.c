/* Fuzz target: the JSON config parser. Oracle: a config that parses and
 * validates serializes (sl_config_to_json) to a stored config that parses
 * back, validates and describes the same model. */
#include "fuzz/fuzz.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_cstr(data, size);
    sl_config c;
    sl_config_defaults(&c);
    if (sl_config_parse(&c, json, "fuzz.json") == SL_OK && sl_config_validate(&c) == SL_OK) {
        char *stored = sl_config_to_json(&c);
        FUZZ_ASSERT(stored != NULL, "a valid config serializes");
        sl_config back;
        sl_config_defaults(&back);
        FUZZ_ASSERT(sl_config_parse_stored(&back, stored, "stored") == SL_OK &&
                        sl_config_validate(&back) == SL_OK,
                    "its stored form parses back");
        FUZZ_ASSERT(sl_config_model_diff(&c, &back) == NULL, "the same model");
        free(stored);
    }
    free(json);
    return 0;
}
