/* The whole report page (docs/report.md): a title, a section per sweep
 * (its spec, its table, its plots) and one for the benchmark points. */
#ifndef SL_REPORT_PAGE_H
#define SL_REPORT_PAGE_H

#include <stdio.h>

#include "report/bench.h"
#include "report/runs.h"

typedef struct rp_page {
    const char *runs_dir;
    const rp_collection *runs;
    const rp_bench *bench;
    const char *const *bench_files;
    size_t n_bench_files;
} rp_page;

/* Writes the page to f; SL_ERR_OOM when a plot cannot be built. */
sl_status rp_page_write(FILE *f, const rp_page *pg);

#endif
