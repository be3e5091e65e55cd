/* Fuzz target: the JSON config parser; oracle in roundtrip.h. */
#include "fuzz/roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_cstr(data, size);
    sl_config c;
    sl_config_defaults(&c);
    if (sl_config_parse(&c, json, "fuzz.json") == SL_OK) fuzz_config_roundtrip(&c);
    free(json);
    return 0;
}
