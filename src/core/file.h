/* Opening input files: only regular files, and never blocking on a FIFO
 * that has no writer. */
#ifndef SL_FILE_H
#define SL_FILE_H

#include "core/status.h"

/* Opens path read-only into *fd and sets *size to its bytes. A directory,
 * FIFO, device or socket is refused with a message naming path and `what`
 * ("data file", "config"); *fd is then -1. */
sl_status sl_open_regular(const char *path, const char *what, int *fd, int64_t *size);

#endif
