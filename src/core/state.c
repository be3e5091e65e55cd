/* Carried states as kernel operands (sl_state_part), and their links into
 * the graph when a recompute needs gradients across calls. */
#include <string.h>

#include "core/core.h"

sl_state_part sl_state_take(sl_ctx *ctx, float *state, int64_t sf, int64_t off, int64_t len,
                            int64_t n, int64_t pos)
{
    sl_state_part p = {.state = state, .sf = sf, .off = off, .len = len, .n = n};
    if (!state) return p;
    p.s_final = sl_arena_floats(ctx, n * len);
    if (pos > 0) {
        p.s0 = SL_NEW(ctx, n, len);
        for (int64_t r = 0; r < n; r++)
            memcpy(p.s0->data + r * len, state + r * sf + off, (size_t)len * sizeof(float));
    }
    if (ctx->link_states) {
        sl_state_link *l = sl_arena_alloc(&ctx->arena, sizeof *l);
        *l = (sl_state_link){.next = ctx->links, .s0 = p.s0, .s_final = p.s_final,
                             .ds_final = sl_arena_floats(ctx, n * len), .off = off, .len = len};
        memset(l->ds_final, 0, (size_t)(n * len) * sizeof(float));
        if (p.s0) p.s0->requires_grad = true;
        ctx->links = l;
    }
    return p;
}

void sl_state_put(const sl_state_part *p)
{
    if (!p->state) return;
    for (int64_t r = 0; r < p->n; r++)
        memcpy(p->state + r * p->sf + p->off, p->s_final + r * p->len,
               (size_t)p->len * sizeof(float));
}
