/* Numeric columns of a CSV file, the timeseries task's data (docs/tasks.md,
 * "timeseries"): a header row of column names, then one row per time step,
 * every row with the header's number of comma-separated cells. A cell may
 * be double-quoted ("a,b", "" for a quote inside) on one line; \r\n line
 * ends are read as \n. Only the selected columns must hold numbers (finite,
 * as strtod reads them, spaces around allowed); the others may hold
 * anything, such as a date. */
#ifndef SL_TASKS_TS_CSV_H
#define SL_TASKS_TS_CSV_H

#include "core/core.h"

/* Columns [first, first + count) (0-based) of the text buf[0..len) that
 * came from `path` (named in every message): *x = malloc'd [*rows, count],
 * row-major, in file order; *rows = the data rows after the header (0 for a
 * header alone). Refusals (SL_ERR_FORMAT, "PATH:LINE: ..."): an empty
 * file, a NUL byte, an empty line, a row with another number of cells than
 * the header, an unterminated quote, a selected cell that is not a finite
 * number; SL_ERR_CONFIG when the header has fewer than first + count
 * columns. */
sl_status sl_csv_parse_columns(const char *buf, size_t len, const char *path, int64_t first,
                               int64_t count, double **x, int64_t *rows);

/* The same, reading the regular file at path (SL_ERR_IO when it cannot). */
sl_status sl_csv_read_columns(const char *path, int64_t first, int64_t count, double **x,
                              int64_t *rows);

#endif
