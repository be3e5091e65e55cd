/* PoNet's pooling fusion (Tan et al. 2021; lxchtan/PoNet's
 * `(context_layer + segment) * o + local`), per channel:
 *
 *   y_t = (v_n + s'_t) * o_t + l'_t,   s'_t = max_{j in seg(t)} s_j,
 *                                      l'_t = max_{|j - t| <= w/2} l_j
 *
 * v_n the global vector of t's sequence n; seg(t) the run of S tokens
 * [S floor(t/S), S floor(t/S) + S) of t's sequence, counted from its
 * start; the window the w (odd) tokens centred on t (PyTorch's
 * MaxPool1d(w, 1, w/2)); both cut at the bounds of t's sequence, never
 * into its neighbour in a packed batch. o, s and l are three D-wide blocks
 * of columns of one projection, read in place. Backward, each dy routed to
 * the first (lowest) argmax of its range (on ties it takes it all):
 *   do_t = dy_t (v_n + s'_t),   dv_n = sum_t dy_t o_t,
 *   ds_j = sum of dy_t o_t over the t whose segment max is at j,
 *   dl_j = sum of dy_t over the t whose window max is at j.
 * The maxima are recomputed in the backward, nothing is stored. */
#ifndef SL_OPS_POOL_FUSION_H
#define SL_OPS_POOL_FUSION_H

#include "core/core.h"

/* One call's sizes: D channels; ld = the floats between two tokens' rows
 * of the projection; S = segment >= 1, w = window >= 1 and odd; seqs:
 * NULL, or valid bounds over T with B = 1. */
typedef struct sl_pool_fusion_desc {
    int64_t B, T, D, ld, segment, window;
    const sl_seqs *seqs;
} sl_pool_fusion_desc;

/* v: [N, D], N = sl_seq_count(seqs, B); x: [B, T, C] holding o, s, l in
 * columns [off, off + 3D) -> y: [B, T, D]. The backward writes x's whole
 * gradient when it is the first to reach it (zeros in the columns it does
 * not read, no separate zeroing pass), else adds to it. */
sl_tensor *sl_pool_fusion(sl_ctx *ctx, sl_tensor *v, sl_tensor *x, int64_t off, int64_t segment,
                          int64_t window, const sl_seqs *seqs);

/* The kernels, threaded over (sequence, block of 64 channels); o points at
 * the first token's o, with s and l D and 2D floats after it. bwd adds to
 * dv, and to do, ds, dl (at do, rows ld apart) or, when set, overwrites
 * them. */
void sl_pool_fusion_fwd(const sl_pool_fusion_desc *d, const float *v, const float *o, float *y);
void sl_pool_fusion_bwd(const sl_pool_fusion_desc *d, const float *v, const float *o,
                        const float *dy, float *dv, float *dx, bool set);

/* The definition, token by token in double: y; and, when dy is given, the
 * gradients added to dv: [N, D] and dx (do, ds, dl as the kernels' layout,
 * rows ld apart). */
void sl_pool_fusion_ref(const sl_pool_fusion_desc *d, const float *v, const float *o,
                        const float *dy, double *y, double *dv, double *dx);

#endif
