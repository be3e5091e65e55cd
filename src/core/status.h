/* Status codes. Every function that can fail returns an sl_status; on
 * failure sl_errmsg() gives a message naming the file, field and
 * expectation. */
#ifndef SL_STATUS_H
#define SL_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEQLAB_VERSION "0.1.0"

typedef enum sl_status {
    SL_OK = 0,
    SL_ERR_IO,      /* missing or unreadable file, failed write */
    SL_ERR_FORMAT,  /* corrupt or truncated file */
    SL_ERR_CONFIG,  /* unknown key, wrong type, bad value */
    SL_ERR_SHAPE,   /* impossible shapes */
    SL_ERR_NUMERIC, /* NaN or Inf where a number was expected */
    SL_ERR_ARG,     /* bad argument to a call */
    SL_ERR_OOM,     /* an allocation failed (the message says how many bytes, for what) */
    SL_ERR_STOPPED, /* stopped on request (SIGINT, SIGTERM) after saving its state */
} sl_status;

/* The message and the code of the last failure on this thread. */
const char *sl_errmsg(void);
sl_status sl_errcode(void);

#endif
