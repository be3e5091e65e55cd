/* The kernels of LayerNorm and RMSNorm over the last dim (the ops
 * sl_layernorm and sl_rmsnorm in ops.h record them on the tape), on plain
 * pointers, and the row function both they and every step() call:
 *
 *   y = (x - mean) rstd w + b,  rstd = 1 / sqrt(mean((x - mean)^2) + eps)
 *
 * RMSNorm is the same with mean = 0 and no b. */
#ifndef SL_OPS_NORM_H
#define SL_OPS_NORM_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sl_norm_desc {
    int64_t R, D; /* rows, and the width normalised */
    float eps;
    bool center; /* LayerNorm; false: RMSNorm */
} sl_norm_desc;

/* x: [R, D], w: [D], b: [D] or NULL -> y: [R, D]; mean (LayerNorm), rstd:
 * [R] each, or NULL when not kept. Threaded over rows. */
void sl_norm_fwd(const sl_norm_desc *d, const float *x, const float *w, const float *b, float *y,
                 float *mean, float *rstd);
/* dy: [R, D] -> dx: [R, D], dw, db: [D], each added to, and NULL when not
 * wanted; mean, rstd: the forward's. scratch: sl_norm_bwd_scratch(d) floats
 * when dw or db is wanted (per-thread sums, added in thread order, so the
 * result is the same for a given thread count). */
void sl_norm_bwd(const sl_norm_desc *d, const float *x, const float *w, const float *mean,
                 const float *rstd, const float *dy, float *dx, float *dw, float *db,
                 float *scratch);
int64_t sl_norm_bwd_scratch(const sl_norm_desc *d);

/* One row: x: [D], w: [D], b: [D] or NULL -> y: [D] (may be x). Each returns
 * the row's rstd; LayerNorm also gives its mean. */
float sl_layernorm_row(const float *x, const float *w, const float *b, float *y, int64_t D,
                       float eps, float *mean);
float sl_rmsnorm_row(const float *x, const float *w, float *y, int64_t D, float eps);

/* The naive oracle of both kernels, in double: x: [R, D], w: [D], b: [D] or
 * NULL (NULL when !d->center), dy: [R, D] -> y, dx: [R, D], dw, db: [D]
 * (overwritten, not added to). */
void sl_norm_ref(const sl_norm_desc *d, const float *x, const float *w, const float *b,
                 const float *dy, double *y, double *dx, double *dw, double *db);

#endif
