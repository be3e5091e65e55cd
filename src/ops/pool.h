/* Max pooling along time, each token over a range of its own sequence, the
 * segment and local pooling of PoNet (Tan et al. 2021):
 *
 *   window  (w odd):  y_t = max_{|j - t| <= w/2} x_j   (a sliding window,
 *                     stride 1, centred; PyTorch's MaxPool1d(w, 1, w/2))
 *   segment (size S): y_t = max_{j in seg(t)} x_j,  seg(t) = tokens
 *                     [S floor(t/S), S floor(t/S) + S) of t's sequence
 *
 * per channel, both ranges cut at the bounds of t's sequence (never into
 * its neighbour in a packed batch). The backward routes each dy_t to the
 * argmax of t's range; on ties the first (lowest) index takes it all, as a
 * strict `>` scan finds it. The argmax is recomputed from x, not stored. */
#ifndef SL_OPS_POOL_H
#define SL_OPS_POOL_H

#include "core/core.h"

enum { SL_POOL_WINDOW, SL_POOL_SEGMENT };

/* One call's sizes: kind, size (w or S, >= 1; w odd), packing (seqs:
 * NULL, or valid bounds over T with B = 1). */
typedef struct sl_pool_desc {
    int64_t B, T, C;
    int kind;
    int64_t size;
    const sl_seqs *seqs;
} sl_pool_desc;

/* x: [B, T, C] -> y: [B, T, C], the op with its backward. */
sl_tensor *sl_max_pool(sl_ctx *ctx, sl_tensor *x, int kind, int64_t size, const sl_seqs *seqs);

/* The kernels, threaded over (sequence, block of channels). bwd adds to dx. */
void sl_max_pool_fwd(const sl_pool_desc *d, const float *x, float *y);
void sl_max_pool_bwd(const sl_pool_desc *d, const float *x, const float *dy, float *dx);

/* mx[j], am[j]: the max and first argmax of column j < nc over rows
 * [lo, hi) (lo < hi) of x, rows ld apart: the one scan, and tie rule, of
 * every max pooling here (also ops/pool_fusion.c). Inline: the fused
 * fusion calls it per token and channel block. */
static inline void sl_pool_range_max(const float *x, int64_t ld, int64_t nc, int64_t lo, int64_t hi,
                                     float *mx, int64_t *am)
{
    for (int64_t j = 0; j < nc; j++) {
        mx[j] = x[lo * ld + j];
        am[j] = lo;
    }
    for (int64_t u = lo + 1; u < hi; u++) {
        const float *r = x + u * ld;
#pragma omp simd
        for (int64_t j = 0; j < nc; j++) {
            const bool gt = r[j] > mx[j];
            mx[j] = gt ? r[j] : mx[j];
            am[j] = gt ? u : am[j];
        }
    }
}

/* The definition, token by token over the whole range, in double: y; and,
 * when dy is given, its gradient (dy routed to the first argmax) added to
 * dx. */
void sl_max_pool_ref(const sl_pool_desc *d, const float *x, const float *dy, double *y,
                     double *dx);

#endif
