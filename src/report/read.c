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

sl_status rp_slurp(const char *path, const char *what, size_t max, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd;
    int64_t size;
    sl_status st = sl_open_regular(path, what, &fd, &size);
    if (st) return st;
    if ((uint64_t)size > max) {
        close(fd);
        return sl_fail(SL_ERR_FORMAT, "%s: %lld bytes; a %s is at most %zu", path,
                       (long long)size, what, max);
    }
    char *b = malloc((size_t)size + 1);
    if (!b) {
        close(fd);
        return sl_fail(SL_ERR_OOM, "%s: out of memory reading %lld bytes", path, (long long)size);
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t r = read(fd, b + got, (size_t)size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            st = sl_fail(SL_ERR_IO, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "short file");
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    b[got] = '\0';
    const char *nul = st ? NULL : memchr(b, '\0', got);
    if (nul)
        st = sl_fail(SL_ERR_FORMAT, "%s:%zu: a NUL byte (offset %zu): not a text file", path,
                     rp_line_of(b, (size_t)(nul - b)), (size_t)(nul - b));
    if (st) {
        free(b);
        return st;
    }
    *buf = b;
    *len = got;
    return SL_OK;
}

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
    size_t len;
    sl_status st = rp_slurp(path, what, (size_t)64 << 20, &text, &len);
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
                         at >= len ? "unexpected end of file" : "unexpected text here");
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
