/* Opening input files (core/file.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/file.h"

sl_status sl_open_regular(const char *path, const char *what, int *fd, int64_t *size)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer; on a regular file it changes nothing. */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) return sl_fail(SL_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
    struct stat sb;
    const char *why = NULL;
    if (fstat(*fd, &sb) != 0) why = strerror(errno);
    else if (S_ISDIR(sb.st_mode)) why = "it is a directory, not a regular file";
    else if (!S_ISREG(sb.st_mode)) why = "not a regular file (a device, FIFO or socket)";
    if (!why) {
        *size = (int64_t)sb.st_size;
        return SL_OK;
    }
    close(*fd);
    *fd = -1;
    return sl_fail(SL_ERR_IO, "%s: cannot read %s: %s", path, what, why);
}
