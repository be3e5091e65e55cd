/* One thread knob for OpenMP and OpenBLAS. */
#include <omp.h>

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
