/* Opening input files: only regular files, and never blocking on a FIFO
 * that has no writer. */
#ifndef SL_FILE_H
#define SL_FILE_H

#include <stddef.h>

#include "core/status.h"

/* Opens path read-only into *fd and sets *size to its bytes. A directory,
 * FIFO, device or socket is refused with a message naming path and `what`
 * ("data file", "config"); *fd is then -1. */
sl_status sl_open_regular(const char *path, const char *what, int *fd, int64_t *size);
/* The whole of a regular file of at most max bytes as a NUL-terminated
 * malloc'd text in *out (*len bytes). A NUL byte inside, a larger file or
 * a read error fails, naming path and `what`. */
sl_status sl_read_text(const char *path, const char *what, int64_t max, char **out, int64_t *len);
/* Replaces path with data[0..n) all at once: writes PATH.tmp.PID.N, fsyncs
 * and renames it over path, so a reader sees the old file or the new one,
 * never a part. On failure the temporary file is removed. */
sl_status sl_write_atomic(const char *path, const void *data, size_t n);

#endif
