/* Fuzz target: command-line overrides. The input is lines of "key=value"
 * (a line without '=' is a key with an empty value), applied in order to
 * the defaults as `--key=value` would be; oracle in roundtrip.h. */
#include "fuzz/roundtrip.h"

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
    fuzz_config_roundtrip(&c);
    free(text);
    return 0;
}
