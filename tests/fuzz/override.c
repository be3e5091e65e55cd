/* Fuzz target: command-line overrides. The input is lines of "key=value"
 * (a line without '=' is a key with an empty value), applied in order to
 * the defaults as `--key=value` would be; then the same oracle as the
 * config target: a config that validates round-trips through its stored
 * form. */
#include "fuzz/fuzz.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    sl_config c;
    sl_config_defaults(&c);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq) *eq = '\0';
        (void)sl_config_set(&c, line, eq ? eq + 1 : "");
    }
    if (sl_config_validate(&c) == SL_OK) {
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
    free(text);
    return 0;
}
