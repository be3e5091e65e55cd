/* Shared by the op files (not part of the API): the size below which a loop
 * runs on one thread, and the check that stops a caller's shape mistake with
 * a message instead of a silent out-of-bounds read. */
#ifndef SL_OPS_INTERNAL_H
#define SL_OPS_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Elements of work under which starting an OpenMP team costs more than the
 * second thread saves (a team start is a few microseconds). */
#define SL_PAR_MIN 32768

/* Shapes are the calling code's responsibility, so a mismatch is a bug in
 * seqlab, not bad user input: report it and stop. */
static inline void sl_require(bool ok, const char *op, const char *expected)
{
    if (!ok) {
        fprintf(stderr, "seqlab: internal error: %s: expected %s\n", op, expected);
        abort();
    }
}

#endif
