/* A CSV table: a header row, then rows of as many cells (summary.csv and
 * best.csv of a sweep). Cells may be double-quoted ("a,b", "" for a
 * quote, newlines inside); \r\n reads as \n. */
#ifndef SL_REPORT_CSV_H
#define SL_REPORT_CSV_H

#include <stddef.h>

#include "core/status.h"

typedef struct rp_csv {
    size_t ncol, nrow; /* rows after the header */
    char **cell;       /* [(nrow + 1) * ncol]: the header, then the rows */
} rp_csv;

/* Reads path; errors name path and the line (unterminated quote, a row
 * with another number of cells than the header, an empty file). */
sl_status rp_csv_read(rp_csv *t, const char *path);
/* Parses text (path names it in messages). */
sl_status rp_csv_parse(rp_csv *t, const char *text, const char *path);
void rp_csv_free(rp_csv *t);

/* Cell (r, c): r = 0 is the header; "" past the table. */
const char *rp_csv_at(const rp_csv *t, size_t r, size_t c);
/* The column named name, or -1. */
long rp_csv_col(const rp_csv *t, const char *name);

/* Appends a row of ncol cells (copied); the first row appended to an
 * empty table is its header and sets ncol. */
sl_status rp_csv_add(rp_csv *t, const char *const *cells, size_t ncol);

#endif
