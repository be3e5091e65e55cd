/* `seqlab bench --mixer` points (JSON Lines: results/bench_mixers.jsonl,
 * or the command's stdout as it is) for the time and memory plots. */
#ifndef SL_REPORT_BENCH_H
#define SL_REPORT_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define RP_MIXER_NAME 64

typedef struct rp_bench_point {
    char mixer[RP_MIXER_NAME];
    int64_t seq;
    double ms, peak_mb;
    double torch_ms; /* 0: not measured */
} rp_bench_point;

typedef struct rp_bench {
    rp_bench_point *p;
    size_t n, cap;
} rp_bench;

/* Appends path's points to b. Lines that do not start with '{' are not
 * points (the command's table) and are passed over; a line that does must
 * be a JSON object with a string "mixer", an integer "seq" >= 1 and
 * numbers "ms" and "peak_mb" ("torch_ms" optional), else an error names
 * path, the line and the field. A later point of the same mixer and seq
 * replaces an earlier one (a rerun appended to the file). */
sl_status rp_bench_read(rp_bench *b, const char *path);
void rp_bench_free(rp_bench *b);

#endif
