/* CSV tables (csv.h). */
#include "report/csv.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/file.h"
#include "report/read.h"

/* A growing row of cells while one is parsed. */
typedef struct row {
    char **cell;
    size_t n, cap;
} row;

static sl_status push(row *r, const char *s, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        char **c = realloc(r->cell, cap * sizeof *c);
        if (!c) return sl_fail(SL_ERR_OOM, "out of memory reading a CSV row");
        r->cell = c;
        r->cap = cap;
    }
    char *d = malloc(len + 1);
    if (!d) return sl_fail(SL_ERR_OOM, "out of memory reading a CSV cell");
    memcpy(d, s, len);
    d[len] = '\0';
    r->cell[r->n++] = d;
    return SL_OK;
}

static void drop(row *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->cell[i]);
    r->n = 0;
}

sl_status rp_csv_add(rp_csv *t, const char *const *cells, size_t ncol)
{
    if (!t->cell) t->ncol = ncol;
    if (ncol != t->ncol)
        return sl_fail(SL_ERR_ARG, "a table row of %zu cells; the header has %zu", ncol, t->ncol);
    const size_t rows = t->cell ? t->nrow + 2 : 1;
    char **c = realloc(t->cell, rows * ncol * sizeof *c);
    if (!c) return sl_fail(SL_ERR_OOM, "out of memory growing a table");
    t->cell = c;
    for (size_t i = 0; i < ncol; i++) {
        size_t len = strlen(cells[i]);
        char *d = malloc(len + 1);
        if (!d) {
            for (size_t k = 0; k < i; k++) free(c[(rows - 1) * ncol + k]);
            return sl_fail(SL_ERR_OOM, "out of memory growing a table");
        }
        memcpy(d, cells[i], len + 1);
        c[(rows - 1) * ncol + i] = d;
    }
    if (rows > 1) t->nrow++;
    return SL_OK;
}

/* One cell at *p (quoted or not) onto r; *p left at its delimiter. */
static sl_status cell(const char **p, row *r, char *tmp, const char *path, size_t line)
{
    const char *s = *p;
    if (*s != '"') {
        size_t n = strcspn(s, ",\r\n");
        if (memchr(s, '"', n))
            return sl_fail(SL_ERR_FORMAT, "%s:%zu: a quote inside an unquoted cell", path, line);
        *p = s + n;
        return push(r, s, n);
    }
    size_t n = 0;
    for (s++;; s++) {
        if (!*s) return sl_fail(SL_ERR_FORMAT, "%s:%zu: unterminated quote", path, line);
        if (*s == '"') {
            if (s[1] != '"') break;
            s++;
        }
        tmp[n++] = *s;
    }
    s++;
    if (*s && *s != ',' && *s != '\n' && *s != '\r')
        return sl_fail(SL_ERR_FORMAT, "%s:%zu: text after a closing quote", path, line);
    *p = s;
    return push(r, tmp, n);
}

sl_status rp_csv_parse(rp_csv *t, const char *text, const char *path)
{
    *t = (rp_csv){0};
    char *tmp = malloc(strlen(text) + 1); /* a quoted cell's unescaped bytes */
    if (!tmp) return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    row r = {0};
    sl_status st = SL_OK;
    size_t line = 1;
    const char *p = text;
    while (*p && !st) {
        const size_t start = line;
        if (*p == '\n' || (*p == '\r' && p[1] == '\n')) {
            p += *p == '\r' ? 2 : 1;
            if (strspn(p, "\r\n") != strlen(p))
                st = sl_fail(SL_ERR_FORMAT, "%s:%zu: an empty line", path, line);
            line++;
            continue;
        }
        drop(&r);
        for (;;) {
            const char *q = p;
            if ((st = cell(&p, &r, tmp, path, line))) break;
            for (; q < p; q++) line += *q == '\n';
            if (*p != ',') break;
            p++;
        }
        if (st) break;
        if (*p == '\r') p++;
        if (*p == '\n') p++, line++;
        else if (*p) st = sl_fail(SL_ERR_FORMAT, "%s:%zu: a stray carriage return", path, line);
        if (!st && t->cell && r.n != t->ncol)
            st = sl_fail(SL_ERR_FORMAT, "%s:%zu: %zu cells; the header has %zu", path, start, r.n,
                         t->ncol);
        if (!st) st = rp_csv_add(t, (const char *const *)r.cell, r.n);
    }
    if (!st && !t->cell) st = sl_fail(SL_ERR_FORMAT, "%s: empty (expected a header row)", path);
    drop(&r);
    free(r.cell);
    free(tmp);
    if (st) rp_csv_free(t);
    return st;
}

sl_status rp_csv_read(rp_csv *t, const char *path)
{
    *t = (rp_csv){0};
    char *text;
    int64_t len;
    sl_status st = sl_read_text(path, "CSV file", (int64_t)256 << 20, &text, &len);
    if (st) return st;
    st = rp_csv_parse(t, text, path);
    free(text);
    return st;
}

void rp_csv_free(rp_csv *t)
{
    if (t->cell)
        for (size_t i = 0; i < (t->nrow + 1) * t->ncol; i++) free(t->cell[i]);
    free(t->cell);
    *t = (rp_csv){0};
}

const char *rp_csv_at(const rp_csv *t, size_t r, size_t c)
{
    if (!t->cell || r > t->nrow || c >= t->ncol) return "";
    return t->cell[r * t->ncol + c];
}

long rp_csv_col(const rp_csv *t, const char *name)
{
    for (size_t c = 0; c < t->ncol; c++)
        if (strcmp(rp_csv_at(t, 0, c), name) == 0) return (long)c;
    return -1;
}
