/* Numeric columns of a CSV file (ts_csv.h). The file is small (a series of
 * thousands of rows), so it is read whole and parsed in place. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "tasks/ts_csv.h"

/* Text [p, e). */
typedef struct span {
    const char *p, *e;
} span;

/* The next line from *p on, without its '\n' or the '\r' before it. */
static span next_line(const char **p, const char *end)
{
    const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    if (e > s && e[-1] == '\r') e--;
    return (span){s, e};
}

/* The end of the cell that starts at p in a line ending at e: the ',' after
 * it, or e. NULL when a quoted cell has no closing quote, or text follows
 * its closing quote. */
static const char *cell_end(const char *p, const char *e)
{
    if (p == e || *p != '"') {
        const char *c = memchr(p, ',', (size_t)(e - p));
        return c ? c : e;
    }
    for (const char *q = p + 1; q < e; q++) {
        if (*q != '"') continue;
        if (q + 1 < e && q[1] == '"') {
            q++;
            continue;
        }
        return q + 1 == e || q[1] == ',' ? q + 1 : NULL;
    }
    return NULL;
}

/* A cell's text without its quotes. */
static span unquote(span c)
{
    if (c.e > c.p && *c.p == '"') return (span){c.p + 1, c.e - 1};
    return c;
}

/* Up to 40 bytes of s for a message, '?' for bytes that do not print. */
static void snippet(char *out, size_t size, span s)
{
    size_t n = 0;
    const char *p = s.p;
    for (; p < s.e && n < 40 && n + 4 < size; p++)
        out[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
    if (p < s.e && n + 4 < size) n += (size_t)snprintf(out + n, size - n, "...");
    out[n] = '\0';
}

/* A finite number filling the (unquoted) cell, spaces and tabs around it
 * allowed. */
static bool parse_number(span c, double *out)
{
    c = unquote(c);
    while (c.p < c.e && (*c.p == ' ' || *c.p == '\t')) c.p++;
    while (c.e > c.p && (c.e[-1] == ' ' || c.e[-1] == '\t')) c.e--;
    char tmp[64];
    const size_t n = (size_t)(c.e - c.p);
    if (n == 0 || n >= sizeof tmp) return false;
    memcpy(tmp, c.p, n);
    tmp[n] = '\0';
    char *end;
    const double v = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* The header's cells into names (room for one more than its commas). */
static sl_status read_header(span h, const char *path, span *names, int64_t *hc)
{
    if (h.p == h.e)
        return sl_fail(SL_ERR_FORMAT, "%s:1: empty line; expected a header row of column names",
                       path);
    int64_t k = 0;
    for (const char *c = h.p;;) {
        const char *ce = cell_end(c, h.e);
        if (!ce)
            return sl_fail(SL_ERR_FORMAT,
                           "%s:1: column %lld: unterminated quote (a quoted cell ends with \" "
                           "on its own line, before a comma or the line's end)",
                           path, (long long)k);
        names[k++] = unquote((span){c, ce});
        if (ce == h.e) break;
        c = ce + 1;
    }
    *hc = k;
    return SL_OK;
}

/* "time, co2" for the header's first few names. */
static void list_names(char *out, size_t size, const span *names, int64_t hc)
{
    size_t n = 0;
    out[0] = '\0';
    for (int64_t k = 0; k < hc && k < 8 && n + 50 < size; k++) {
        char s[48];
        snippet(s, sizeof s, names[k]);
        n += (size_t)snprintf(out + n, size - n, "%s%s", k ? ", " : "", s);
    }
    if (hc > 8) snprintf(out + n, size - n, ", ...");
}

/* One data row: its selected cells into x[0..count). */
static sl_status read_row(span l, const char *path, int64_t line, const span *names, int64_t hc,
                          int64_t first, int64_t count, double *x)
{
    if (l.p == l.e)
        return sl_fail(SL_ERR_FORMAT,
                       "%s:%lld: empty line; expected %lld comma-separated cells as in the "
                       "header",
                       path, (long long)line, (long long)hc);
    int64_t k = 0;
    for (const char *c = l.p;; k++) {
        const char *ce = cell_end(c, l.e);
        if (!ce)
            return sl_fail(SL_ERR_FORMAT,
                           "%s:%lld: cell %lld: unterminated quote (a quoted cell ends with \" "
                           "on its own line, before a comma or the line's end)",
                           path, (long long)line, (long long)k);
        if (k >= first && k < first + count && !parse_number((span){c, ce}, &x[k - first])) {
            char name[48], found[48];
            snippet(name, sizeof name, names[k]);
            snippet(found, sizeof found, (span){c, ce});
            return sl_fail(SL_ERR_FORMAT,
                           "%s:%lld: column %lld ('%s'): expected a finite number, found '%s'",
                           path, (long long)line, (long long)k, name, found);
        }
        if (ce == l.e) break;
        c = ce + 1;
    }
    if (k + 1 != hc)
        return sl_fail(SL_ERR_FORMAT, "%s:%lld: %lld cells, expected %lld as in the header",
                       path, (long long)line, (long long)k + 1, (long long)hc);
    return SL_OK;
}

sl_status sl_csv_parse_columns(const char *buf, size_t len, const char *path, int64_t first,
                               int64_t count, double **x, int64_t *rows)
{
    *x = NULL;
    *rows = 0;
    if (first < 0 || count < 1)
        return sl_fail(SL_ERR_ARG, "%s: columns from %lld, %lld of them: expected first >= 0 and "
                       "count >= 1", path, (long long)first, (long long)count);
    if (len == 0)
        return sl_fail(SL_ERR_FORMAT,
                       "%s: empty file; expected a header row of column names, then one row "
                       "per time step",
                       path);
    const char *end = buf + len, *nul = memchr(buf, '\0', len);
    int64_t lines = 1;
    for (const char *q = buf; (q = memchr(q, '\n', (size_t)(end - q))); q++) lines++;
    if (nul) {
        int64_t line = 1;
        for (const char *q = buf; q < nul; q++) line += *q == '\n';
        return sl_fail(SL_ERR_FORMAT, "%s:%lld: expected text, found a NUL byte", path,
                       (long long)line);
    }
    const char *p = buf;
    const span h = next_line(&p, end);
    int64_t commas = 0;
    for (const char *q = h.p; q < h.e; q++) commas += *q == ',';
    span *names = malloc((size_t)(commas + 1) * sizeof *names);
    double *out = malloc((size_t)sl_size_mul(lines, count) * sizeof *out);
    if (!names || !out) {
        free(names);
        free(out);
        return sl_fail(SL_ERR_OOM, "%s: out of memory for %lld lines of %lld columns", path,
                       (long long)lines, (long long)count);
    }
    int64_t hc = 0, r = 0;
    sl_status st = read_header(h, path, names, &hc);
    if (!st && first + count > hc) {
        char list[512];
        list_names(list, sizeof list, names, hc);
        st = sl_fail(SL_ERR_CONFIG,
                     "%s:1: unknown column %lld: the header has %lld columns (0-based 0 .. "
                     "%lld: %s), and options column = %lld, columns = %lld select columns %lld "
                     ".. %lld",
                     path, (long long)(first + count - 1), (long long)hc, (long long)hc - 1,
                     list, (long long)first, (long long)count, (long long)first,
                     (long long)(first + count - 1));
    }
    for (int64_t line = 2; !st && p < end; line++, r++)
        st = read_row(next_line(&p, end), path, line, names, hc, first, count, out + r * count);
    free(names);
    if (st) {
        free(out);
        return st;
    }
    *x = out;
    *rows = r;
    return SL_OK;
}

sl_status sl_csv_read_columns(const char *path, int64_t first, int64_t count, double **x,
                              int64_t *rows)
{
    *x = NULL;
    *rows = 0;
    int fd;
    int64_t size;
    sl_status st = sl_open_regular(path, "data file", &fd, &size);
    if (st) return st;
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        close(fd);
        return sl_fail(SL_ERR_OOM, "%s: out of memory for the file's %lld bytes", path,
                       (long long)size);
    }
    int64_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, (size_t)(size - got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) st = sl_fail(SL_ERR_IO, "%s: cannot read data file: %s", path, strerror(errno));
        if (n <= 0) break;
        got += n;
    }
    close(fd);
    if (!st) st = sl_csv_parse_columns(buf, (size_t)got, path, first, count, x, rows);
    free(buf);
    return st;
}
