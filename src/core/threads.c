/* One thread knob for OpenMP and OpenBLAS, and the clock that times them. */
#include <omp.h>
#include <time.h>

#include "core/core.h"

void openblas_set_num_threads(int n);

static int nthreads;

void sl_set_threads(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    nthreads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int sl_get_threads(void) { return nthreads > 0 ? nthreads : omp_get_max_threads(); }

double sl_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
