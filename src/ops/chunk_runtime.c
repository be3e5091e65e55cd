/* The chunked kernels' shared runtime (chunk_runtime.h). */
#include <omp.h>

#include "ops/chunk_runtime.h"

sl_chunk_rows sl_chunk_rows_keep(sl_ctx *ctx, const sl_seqs *seqs, int64_t B, int64_t T,
                                 int64_t C)
{
    sl_chunk_rows r = {sl_seq_count(seqs, B), T, C, sl_seqs_keep(ctx, seqs), NULL};
    if (C > 0) r.coff = sl_seq_chunk_offsets(ctx, seqs, B, T, C);
    return r;
}

int64_t sl_chunk_max_len(const sl_chunk_rows *r)
{
    int64_t m = 0;
    for (int64_t i = 0; i < r->n; i++) {
        const int64_t len = sl_chunk_len(r, i);
        m = len > m ? len : m;
    }
    return m;
}

int sl_chunk_team(int64_t items, int64_t work)
{
    if (work < (int64_t)1 << 20 || items < 2) return 1;
    const int64_t nt = omp_get_max_threads();
    return (int)(nt < items ? nt : items);
}

void sl_chunk_for(int nt, int64_t items, sl_chunk_fn fn, const void *arg, float *scratch,
                  int64_t per)
{
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int64_t item = 0; item < items; item++)
        fn(arg, item, scratch + per * omp_get_thread_num());
}
