/* What the channel-blocked fused ops (gated_conv, base_conv) share: a block
 * of channels is copied out of its [BT, C] tensor into packed rows, worked
 * on, and written or added back, so that their scratch is O(BT) per
 * channel of one block, never a whole [BT, C] buffer. Header-only. */
#ifndef SL_OPS_CHANNEL_BLOCK_H
#define SL_OPS_CHANNEL_BLOCK_H

#include <stdbool.h>

#include "core/core.h"
#include "ops/internal.h"

/* Columns c0 .. c0+nc-1 of the BT rows of src (Cs floats apart) into dst:
 * [BT, nc]. */
static inline void cb_gather(const float *src, int64_t Cs, int64_t c0, int64_t nc, int64_t BT,
                             float *dst)
{
#pragma omp parallel for schedule(static) if (BT * nc >= SL_PAR_MIN)
    for (int64_t t = 0; t < BT; t++)
        for (int64_t j = 0; j < nc; j++) dst[t * nc + j] = src[t * Cs + c0 + j];
}

/* The reverse: src: [BT, nc] written (or added, when add) to the columns. */
static inline void cb_scatter(float *dst, int64_t Cs, int64_t c0, int64_t nc, int64_t BT,
                              const float *src, bool add)
{
#pragma omp parallel for schedule(static) if (BT * nc >= SL_PAR_MIN)
    for (int64_t t = 0; t < BT; t++)
        for (int64_t j = 0; j < nc; j++)
            dst[t * Cs + c0 + j] = (add ? dst[t * Cs + c0 + j] : 0.0f) + src[t * nc + j];
}

/* out = a . b over n floats. */
static inline void cb_mul(const float *a, const float *b, float *out, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

#endif
