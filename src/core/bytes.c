/* The one check of a planned allocation against the machine (core.h). */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "core/core.h"

int64_t sl_phys_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? sl_size_mul(pages, size) : INT64_MAX;
}

sl_status sl_mem_check(int64_t bytes, const char *fmt, ...)
{
    const int64_t have = sl_phys_bytes();
    if (bytes <= have) return SL_OK;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (bytes == INT64_MAX)
        return sl_fail(SL_ERR_OOM, "%s would take more than 2^63 bytes: out of memory (this "
                                   "machine has %lld bytes of physical memory)",
                       what, (long long)have);
    return sl_fail(SL_ERR_OOM, "%s would take %lld bytes: out of memory (this machine has %lld "
                               "bytes of physical memory)",
                   what, (long long)bytes, (long long)have);
}
