/* Replays the committed fuzz corpus (tests/fuzz/corpus/NAME/) through the
 * fuzz targets' entry points, built with the project's compiler: no clang
 * needed, and any input that once crashed a target, or broke its oracle,
 * stays fixed (`make fuzz` runs the targets themselves under libFuzzer). */
#include <dirent.h>

#include "check.h"

#define LLVMFuzzerTestOneInput fuzz_safetensors
#include "fuzz/safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config
#include "fuzz/config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_override
#include "fuzz/override.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_text
#include "fuzz/text.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_report_csv
#include "fuzz/report_csv.c"
#undef LLVMFuzzerTestOneInput

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file of tests/fuzz/corpus/name, in name order. */
static void replay(const char *name, int (*target)(const uint8_t *, size_t))
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "%s: cannot open", dir);
    if (!d) return;
    char *files[4096];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (e->d_name[0] != '.') files[n++] = strdup(e->d_name);
    closedir(d);
    qsort(files, n, sizeof *files, cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL, "%s", path);
        uint8_t *buf = malloc(1 << 20);
        size_t len = f ? fread(buf, 1, 1 << 20, f) : 0;
        if (f) fclose(f);
        target(buf, len);
        free(buf);
        free(files[i]);
    }
    CHECK(n > 0, "%s: empty corpus", dir);
    printf("# %s: %zu inputs\n", name, n);
}

int main(void)
{
    RUN_AS("corpus safetensors", replay("safetensors", fuzz_safetensors));
    RUN_AS("corpus config", replay("config", fuzz_config));
    RUN_AS("corpus override", replay("override", fuzz_override));
    RUN_AS("corpus text", replay("text", fuzz_text));
    RUN_AS("corpus report_csv", replay("report_csv", fuzz_report_csv));
    return TEST_SUMMARY();
}
