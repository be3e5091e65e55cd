/* Inverted dropout: kept elements are scaled by 1/(1-p) so eval needs no
 * rescaling. The mask comes from ctx->rng, drawn serially before any thread
 * starts, so it is the same for a seed whatever the thread count; each
 * 64-bit draw gives four 16-bit lanes (p is resolved to 1/65536). */
#include <math.h>

#include "ops/internal.h"
#include "ops/ops.h"

/* dy -> dx += dy keep scale; saved: keep [n] bytes (0 or 1), farg[0]: scale.
 * A product rather than a select: a multiply in one arm of a branch could
 * trap, and GCC then refuses to vectorise the loop. */
static void dropout_backward(sl_ctx *ctx, const sl_node *nd)
{
    const uint8_t *keep = nd->saved;
    const float *dy = nd->out->grad;
    float *dx = sl_grad(ctx, nd->in[0]), scale = nd->farg[0];
    int64_t n = nd->out->n;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (scale * keep[i]);
}

/* x: [...] -> [...]; x itself (no copy, no node) in eval mode or when p
 * rounds to 0 at the mask's 1/65536 resolution. Requires p < 1. */
sl_tensor *sl_dropout(sl_ctx *ctx, sl_tensor *x, float p)
{
    sl_require(p >= 0 && p < 1, "sl_dropout", "0 <= p < 1");
    uint32_t drop_below = (uint32_t)lrintf(p * 65536.0f);
    if (!ctx->training || drop_below == 0) return x;
    sl_require(drop_below < 65536, "sl_dropout", "p below 1 - 2^-17");
    int64_t n = x->n;
    uint8_t *keep = sl_arena_alloc(&ctx->arena, (size_t)n);
    for (int64_t i = 0; i < n; i += 4) {
        uint64_t bits = sl_rng_u64(&ctx->rng);
        int64_t lanes = n - i < 4 ? n - i : 4;
        for (int64_t k = 0; k < lanes; k++) keep[i + k] = ((bits >> (16 * k)) & 0xffff) >= drop_below;
    }
    /* The exact keep probability at this resolution, so E[y] = x exactly. */
    float scale = 65536.0f / (float)(65536 - drop_below);
    sl_tensor *y = sl_tensor_like(ctx, x);
    const float *px = x->data;
    float *py = y->data;
#pragma omp parallel for simd schedule(static) if (n >= SL_PAR_MIN)
    for (int64_t i = 0; i < n; i++) py[i] = px[i] * (scale * keep[i]);
    sl_node *nd = SL_RECORD(ctx, dropout_backward, y, x);
    if (nd) {
        nd->saved = keep;
        nd->farg[0] = scale;
    }
    return y;
}
