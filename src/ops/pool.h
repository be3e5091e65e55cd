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

/* The definition, token by token over the whole range, in double: y; and,
 * when dy is given, its gradient (dy routed to the first argmax) added to
 * dx. */
void sl_max_pool_ref(const sl_pool_desc *d, const float *x, const float *dy, double *y,
                     double *dx);

#endif
