/* Reading the report's inputs (whole files: core/file.h's sl_read_text): JSON files whose errors name
 * the line, and the lines of a JSON Lines file. */
#ifndef SL_REPORT_READ_H
#define SL_REPORT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "core/status.h"

/* Parses path as one JSON object (nothing after it). Errors name path, the
 * line and the column where cJSON stopped. The caller deletes *out. */
sl_status rp_json_file(const char *path, const char *what, cJSON **out);

/* The 1-based line of byte offset `at` in text. */
size_t rp_line_of(const char *text, size_t at);

/* True when path exists (any kind of file). */
bool rp_exists(const char *path);
/* True when path is a directory. */
bool rp_is_dir(const char *path);

/* A number member of obj: NaN when absent, null or not a number. */
double rp_num(const cJSON *obj, const char *key);

#endif
