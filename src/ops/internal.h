/* Shared by the op files (not part of the API): the size below which a loop
 * runs on one thread. (sl_require, the shape check, is in core.h.) */
#ifndef SL_OPS_INTERNAL_H
#define SL_OPS_INTERNAL_H

#include "core/core.h"

/* Elements of work under which starting an OpenMP team costs more than the
 * second thread saves (a team start is a few microseconds). */
#define SL_PAR_MIN 32768

#endif
