/* Reading and writing whole files (core/file.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
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

sl_status sl_read_text(const char *path, const char *what, int64_t max, char **out, int64_t *len)
{
    *out = NULL;
    int fd;
    int64_t size;
    sl_status st = sl_open_regular(path, what, &fd, &size);
    if (st) return st;
    char *buf = NULL;
    if (size > max)
        st = sl_fail(SL_ERR_FORMAT, "%s: %lld bytes: a %s is at most %lld bytes", path,
                     (long long)size, what, (long long)max);
    else if (!(buf = malloc((size_t)size + 1)))
        st = sl_fail(SL_ERR_OOM, "%s: out of memory for %lld bytes", path, (long long)size);
    int64_t n = 0;
    while (!st && n < size) {
        ssize_t r = read(fd, buf + n, (size_t)(size - n));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            st = sl_fail(SL_ERR_IO, "%s: read error: %s", path, r ? strerror(errno) : "file shrank");
        else n += r;
    }
    close(fd);
    if (!st) {
        buf[n] = '\0';
        if ((int64_t)strlen(buf) != n)
            st = sl_fail(SL_ERR_FORMAT, "%s: offset %zu: a NUL byte: expected text", path,
                         strlen(buf));
    }
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return SL_OK;
}

sl_status sl_write_atomic(const char *path, const void *data, size_t n)
{
    static atomic_uint counter;
    const size_t tlen = strlen(path) + 48;
    char *tmp = malloc(tlen);
    if (!tmp) return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    snprintf(tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    sl_status st = SL_OK;
    if (fd < 0) {
        st = sl_fail(SL_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                     strerror(errno));
        free(tmp);
        return st;
    }
    for (size_t at = 0; at < n && !st;) {
        ssize_t w = write(fd, (const char *)data + at, n - at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) st = sl_fail(SL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        else at += (size_t)w;
    }
    if (!st && fsync(fd) != 0) st = sl_fail(SL_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && !st)
        st = sl_fail(SL_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = sl_fail(SL_ERR_IO, "%s: cannot rename the temporary file onto it: %s", path,
                     strerror(errno));
    if (st) unlink(tmp);
    free(tmp);
    return st;
}
