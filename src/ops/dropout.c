/* Inverted dropout: kept elements are scaled by 1/(1-p) so eval needs no
 * rescaling. Each call draws one 64-bit key from ctx->rng; element i is kept
 * when a hash of (key, i) clears the threshold. The mask is therefore a pure
 * function of the seed and the call order, the same whatever the thread
 * count, generated inside the threaded loops with no serial pass, and
 * recomputed by the backward instead of being stored. p is resolved to
 * 2^-24. */
#include <math.h>

#include "ops/internal.h"
#include "ops/ops.h"

#define MASK_BITS 24

/* A 32-bit integer hash with full avalanche (Wellons' "lowbias32"). */
static inline uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* 1 when element i is kept under key (k1, k2), else 0. The comparison is
 * done on the sign bit of a difference: GCC turns a plain comparison here
 * into a branch around a float multiply, which could trap, and then refuses
 * to vectorise the loop. */
static inline float kept(int64_t i, uint32_t k1, uint32_t k2, int32_t drop_below)
{
    uint32_t h = mix32(mix32((uint32_t)i + k1) ^ (k2 + (uint32_t)((uint64_t)i >> 32)));
    int32_t u = (int32_t)(h >> (32 - MASK_BITS));
    return (float)(((uint32_t)(u - drop_below) >> 31) ^ 1u);
}

/* One call's mask: its key, threshold and the kept elements' scale. */
typedef struct dropout_desc {
    uint32_t k1, k2;
    int32_t drop_below;
    float scale;
} dropout_desc;

/* dy -> dx += dy scale kept(i). desc: dropout_desc. */
static void dropout_backward(sl_ctx *ctx, const sl_node *nd)
{
    const dropout_desc *d = nd->desc;
    const float *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]), scale = d->scale;
    uint32_t k1 = d->k1, k2 = d->k2;
    int32_t drop_below = d->drop_below;
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (scale * kept(i, k1, k2, drop_below));
}

/* x: [...] -> [...]; x itself (no copy, no node, no draw) in eval mode or
 * when p rounds to 0 at the mask's resolution. Requires p < 1. */
sl_tensor *sl_dropout(sl_ctx *ctx, sl_tensor *x, float p)
{
    sl_require(p >= 0 && p < 1, "sl_dropout", "0 <= p < 1");
    const int32_t one = 1 << MASK_BITS;
    int32_t drop_below = (int32_t)lrint((double)p * one);
    if (!ctx->training || drop_below == 0) return x;
    sl_require(drop_below < one, "sl_dropout", "p below 1 - 2^-25");
    uint64_t key = sl_rng_u64(&ctx->rng);
    uint32_t k1 = (uint32_t)key, k2 = (uint32_t)(key >> 32);
    /* The exact keep probability at this resolution, so E[y] = x exactly. */
    float scale = (float)one / (float)(one - drop_below);
    sl_tensor *y = sl_tensor_like(ctx, x);
    const float *px = x->data;
    float *py = y->data;
    int64_t n = x->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = px[i] * (scale * kept(i, k1, k2, drop_below));
    sl_node *nd = SL_RECORD(ctx, dropout_backward, y, x);
    if (nd) {
        const dropout_desc d = {k1, k2, drop_below, scale};
        SL_KEEP_DESC(ctx, nd, d);
    }
    return y;
}
