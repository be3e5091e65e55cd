/* The layers of DESIGN.md: every `#include "dir/..."` in src/ points at
 * its own directory or one below it, so a mixer, an op or a task never
 * sees the run config, the trainer or the CLI. Run from the repository
 * root (tests/run.sh does). */
#include <dirent.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"

/* Each directory and the directories its files may include. */
static const struct {
    const char *dir, *may;
} LAYERS[] = {
    {"core", "core"},
    {"ops", "core ops"},
    {"tasks", "core tasks"},
    {"mixers", "core ops mixers"},
    {"infer", "core ops infer"},
    {"model", "core ops mixers tasks model"},
    {"train", "core ops mixers tasks model train"},
    {"api", "core ops mixers tasks model train infer api"},
    {"report", "core report"},
    {"sweep", "core ops mixers tasks model train sweep"},
    {"cli", "core ops mixers tasks model train infer api report sweep cli"},
};
#define NLAYERS (sizeof LAYERS / sizeof LAYERS[0])

/* Checks every include line of one file. */
static void check_file(const char *dir, const char *may, const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: cannot read", path);
    if (!f) return;
    char line[512];
    for (int n = 1; fgets(line, sizeof line, f); n++) {
        if (strncmp(line, "#include \"", 10) != 0) continue;
        const char *target = line + 10, *slash = strchr(target, '/');
        if (!slash) continue; /* "seqlab.h", or a test's local header */
        char top[64];
        snprintf(top, sizeof top, "%.*s", (int)(slash - target), target);
        char padded[128], tok[80];
        snprintf(padded, sizeof padded, " %s ", may);
        snprintf(tok, sizeof tok, " %s ", top);
        CHECK(strstr(padded, tok), "%s:%d includes %s/: %s/ may include only %s", path, n, top, dir,
              may);
    }
    fclose(f);
}

static void test_includes_point_down(void)
{
    for (size_t i = 0; i < NLAYERS; i++) {
        char dpath[64];
        snprintf(dpath, sizeof dpath, "src/%s", LAYERS[i].dir);
        DIR *d = opendir(dpath);
        CHECK(d, "%s: cannot list", dpath);
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            size_t len = strlen(e->d_name);
            if (len < 3 || (strcmp(e->d_name + len - 2, ".c") && strcmp(e->d_name + len - 2, ".h")))
                continue;
            char path[384];
            snprintf(path, sizeof path, "%s/%s", dpath, e->d_name);
            check_file(LAYERS[i].dir, LAYERS[i].may, path);
        }
        closedir(d);
    }
    DIR *src = opendir("src");
    for (struct dirent *e; src && (e = readdir(src));) {
        if (e->d_name[0] == '.') continue;
        bool known = false;
        for (size_t i = 0; i < NLAYERS; i++) known |= strcmp(e->d_name, LAYERS[i].dir) == 0;
        CHECK(known, "src/%s: a directory this test does not place in a layer", e->d_name);
    }
    if (src) closedir(src);
}

int main(void)
{
    RUN(test_includes_point_down);
    return TEST_SUMMARY();
}
