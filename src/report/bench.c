/* Benchmark points (bench.h). */
#include "report/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/core.h"
#include "core/file.h"
#include "report/read.h"

/* One point from the object j of path:line. */
static sl_status point(const cJSON *j, const char *path, size_t line, rp_bench_point *pt)
{
    const cJSON *mixer = cJSON_GetObjectItemCaseSensitive(j, "mixer");
    if (!cJSON_IsString(mixer) || !mixer->valuestring[0] ||
        strlen(mixer->valuestring) >= RP_MIXER_NAME)
        return sl_fail(SL_ERR_FORMAT, "%s:%zu: \"mixer\": expected a name (1 to %d bytes)", path,
                       line, RP_MIXER_NAME - 1);
    const double seq = rp_num(j, "seq");
    if (!(seq >= 1 && seq <= 9007199254740992.0 && seq == floor(seq)))
        return sl_fail(SL_ERR_FORMAT, "%s:%zu: \"seq\": expected an integer >= 1", path, line);
    static const char *const NUM[] = {"ms", "peak_mb"};
    for (int k = 0; k < 2; k++)
        if (!isfinite(rp_num(j, NUM[k])) || rp_num(j, NUM[k]) < 0)
            return sl_fail(SL_ERR_FORMAT, "%s:%zu: \"%s\": expected a number >= 0", path, line,
                           NUM[k]);
    const cJSON *torch = cJSON_GetObjectItemCaseSensitive(j, "torch_ms");
    if (torch && !cJSON_IsNull(torch) && !(cJSON_IsNumber(torch) && isfinite(torch->valuedouble)))
        return sl_fail(SL_ERR_FORMAT, "%s:%zu: \"torch_ms\": expected a number", path, line);
    snprintf(pt->mixer, sizeof pt->mixer, "%s", mixer->valuestring);
    pt->seq = (int64_t)seq;
    pt->ms = rp_num(j, "ms");
    pt->peak_mb = rp_num(j, "peak_mb");
    pt->torch_ms = cJSON_IsNumber(torch) && torch->valuedouble > 0 ? torch->valuedouble : 0;
    return SL_OK;
}

static sl_status add(rp_bench *b, const rp_bench_point *pt)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->p[i].seq == pt->seq && strcmp(b->p[i].mixer, pt->mixer) == 0) {
            b->p[i] = *pt;
            return SL_OK;
        }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        rp_bench_point *g = realloc(b->p, cap * sizeof *g);
        if (!g) return sl_fail(SL_ERR_OOM, "out of memory reading benchmark points");
        b->p = g;
        b->cap = cap;
    }
    b->p[b->n++] = *pt;
    return SL_OK;
}

sl_status rp_bench_read(rp_bench *b, const char *path)
{
    char *text;
    int64_t len;
    sl_status st = sl_read_text(path, "benchmark file", (int64_t)256 << 20, &text, &len);
    if (st) return st;
    size_t line = 1;
    for (char *p = text; *p && !st; line++) {
        char *end = strchr(p, '\n');
        if (end) *end = '\0';
        p += strspn(p, " \t");
        if (*p == '{') {
            cJSON *j = cJSON_Parse(p);
            if (!cJSON_IsObject(j)) {
                st = sl_fail(SL_ERR_FORMAT, "%s:%zu: a line that starts with '{' is not a JSON "
                                            "object",
                             path, line);
            } else {
                rp_bench_point pt;
                st = point(j, path, line, &pt);
                if (!st) st = add(b, &pt);
            }
            cJSON_Delete(j);
        }
        if (!end) break;
        p = end + 1;
    }
    free(text);
    return st;
}

void rp_bench_free(rp_bench *b)
{
    free(b->p);
    *b = (rp_bench){0};
}
