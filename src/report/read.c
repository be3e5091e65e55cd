/* Whole files, JSON files and their error positions (read.h). */
#include "report/read.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/file.h"

size_t rp_line_of(const char *text, size_t at)
{
    size_t line = 1;
    for (size_t i = 0; i < at && text[i]; i++) line += text[i] == '\n';
    return line;
}

sl_status rp_json_file(const char *path, const char *what, cJSON **out)
{
    *out = NULL;
    char *text;
    int64_t len;
    sl_status st = sl_read_text(path, what, (int64_t)64 << 20, &text, &len);
    if (st) return st;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j || !cJSON_IsObject(j)) {
        size_t at = j ? 0 : end ? (size_t)(end - text) : 0;
        const char *line_start = text + at;
        while (line_start > text && line_start[-1] != '\n') line_start--;
        if (j)
            st = sl_fail(SL_ERR_FORMAT, "%s:1: expected a JSON object", path);
        else
            st = sl_fail(SL_ERR_FORMAT, "%s:%zu:%zu: malformed JSON (%s)", path,
                         rp_line_of(text, at), (size_t)(text + at - line_start) + 1,
                         (int64_t)at >= len ? "unexpected end of file" : "unexpected text here");
        cJSON_Delete(j);
        free(text);
        return st;
    }
    free(text);
    *out = j;
    return SL_OK;
}

bool rp_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

bool rp_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

double rp_num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
