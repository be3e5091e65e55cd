/* Error messages: one per thread, set by sl_fail, read by sl_errmsg. */
#include <stdarg.h>
#include <stdio.h>

#include "core/core.h"

static _Thread_local char errbuf[1024];
static _Thread_local sl_status errcode;

sl_status sl_fail(sl_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    errcode = code;
    return code;
}

const char *sl_errmsg(void) { return errbuf[0] ? errbuf : "no error"; }

sl_status sl_errcode(void) { return errcode; }

_Noreturn void sl_out_of_memory(const char *what, size_t bytes)
{
    fprintf(stderr,
            "seqlab: error: out of memory: %s (%zu bytes); a smaller batch_size, seq_len or "
            "model fits\n",
            what, bytes);
    exit(3);
}
