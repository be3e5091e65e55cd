/* Inverted dropout: kept elements are scaled by 1/(1-p) so eval needs no
 * rescaling. The random numbers come from ctx->rng, drawn serially before
 * any thread starts, so the mask is the same for a seed whatever the thread
 * count. Each 64-bit draw is stored as four 16-bit lanes (p is resolved to
 * 1/65536) and compared with the threshold inside the threaded loops, which
 * keeps the serial part to one store per draw. */
#include <math.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/ops.h"

/* 1 when lane >= drop_below, else 0, from the sign bit of the difference:
 * GCC turns a comparison here into a branch around a float multiply, which
 * could trap, and then refuses to vectorise the loop. */
static inline float kept(uint16_t lane, int32_t drop_below)
{
    return (float)(((uint32_t)((int32_t)lane - drop_below) >> 31) ^ 1u);
}

/* dy -> dx += dy scale kept(lane). saved: lanes [n] (uint16), iarg[0]:
 * drop_below, farg[0]: scale. */
static void dropout_backward(sl_ctx *ctx, const sl_node *nd)
{
    const uint16_t *lane = nd->saved;
    const float *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]), scale = nd->farg[0];
    int32_t drop_below = (int32_t)nd->iarg[0];
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (scale * kept(lane[i], drop_below));
}

/* x: [...] -> [...]; x itself (no copy, no node) in eval mode or when p
 * rounds to 0 at the mask's 1/65536 resolution. Requires p < 1. */
sl_tensor *sl_dropout(sl_ctx *ctx, sl_tensor *x, float p)
{
    sl_require(p >= 0 && p < 1, "sl_dropout", "0 <= p < 1");
    int32_t drop_below = (int32_t)lrintf(p * 65536.0f);
    if (!ctx->training || drop_below == 0) return x;
    sl_require(drop_below < 65536, "sl_dropout", "p below 1 - 2^-17");
    int64_t n = x->n, words = (n + 3) / 4;
    uint16_t *lane = sl_arena_alloc(&ctx->arena, (size_t)words * sizeof(uint64_t));
    for (int64_t k = 0; k < words; k++) {
        uint64_t bits = sl_rng_u64(&ctx->rng);
        memcpy(lane + 4 * k, &bits, sizeof bits);
    }
    /* The exact keep probability at this resolution, so E[y] = x exactly. */
    float scale = 65536.0f / (float)(65536 - drop_below);
    sl_tensor *y = sl_tensor_like(ctx, x);
    const float *px = x->data;
    float *py = y->data;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = px[i] * (scale * kept(lane[i], drop_below));
    sl_node *nd = SL_RECORD(ctx, dropout_backward, y, x);
    if (nd) {
        nd->saved = lane;
        nd->iarg[0] = drop_below;
        nd->farg[0] = scale;
    }
    return y;
}
