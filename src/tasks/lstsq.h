/* Dense least squares for the tasks' exact baselines. */
#ifndef SL_TASKS_LSTSQ_H
#define SL_TASKS_LSTSQ_H

#include "core/core.h"

/* The min-norm w [n] minimising |a w - c| for a [m, n] (row-major) and
 * c [m], both overwritten: Householder QR with column pivoting, whose
 * rank *rank counts the pivots whose remaining column norm exceeds 1e-12
 * times the first's; below full column rank the min-norm solution through
 * a second QR, of R^T (a complete orthogonal decomposition). SL_ERR_OOM. */
sl_status sl_lstsq(double *a, double *c, int64_t m, int64_t n, double *w, int64_t *rank);

#endif
