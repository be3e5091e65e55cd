/* The chunked recompute of a mixer layer: see recompute.h. */
#include <string.h>

#include "mixers/recompute.h"

bool sl_mixer_chunkable(const sl_mixer *m)
{
    const sl_mixer_vtable *vt = m->vt;
    return vt->step && vt->state_floats && m->dims.causal && !vt->state_no_grad;
}

/* What the backward needs besides x and dy. */
typedef struct recompute_saved {
    sl_mixer *m;
    int64_t Tc, sf;
    float *states; /* [chunks - 1, B, sf]: the state entering chunks 1, 2, ... */
} recompute_saved;

/* Tokens [t0, t0 + L) of every row of x: [B, T, D] -> xk: [B, L, D]. */
static void rows_out(const float *x, float *xk, int64_t B, int64_t T, int64_t D, int64_t t0,
                     int64_t L)
{
    for (int64_t b = 0; b < B; b++)
        memcpy(xk + b * L * D, x + (b * T + t0) * D, (size_t)(L * D) * sizeof(float));
}

/* The inverse: xk: [B, L, D] -> tokens [t0, t0 + L) of x, added when add. */
static void rows_in(float *x, const float *xk, int64_t B, int64_t T, int64_t D, int64_t t0,
                    int64_t L, bool add)
{
    for (int64_t b = 0; b < B; b++) {
        float *xr = x + (b * T + t0) * D;
        const float *kr = xk + b * L * D;
        if (!add)
            memcpy(xr, kr, (size_t)(L * D) * sizeof(float));
        else
            for (int64_t i = 0; i < L * D; i++) xr[i] += kr[i];
    }
}

/* Chunk k's input, a fresh tensor in sub: [B, L, D]. */
static sl_tensor *chunk_input(sl_ctx *sub, const sl_tensor *x, int64_t t0, int64_t L)
{
    sl_tensor *xk = SL_NEW(sub, x->shape[0], L, x->shape[2]);
    rows_out(x->data, xk->data, x->shape[0], x->shape[1], x->shape[2], t0, L);
    return xk;
}

/* Node: in = {x}, out = y, saved = recompute_saved. */
static void recompute_backward(sl_ctx *ctx, const sl_node *nd)
{
    const recompute_saved *sv = nd->saved;
    sl_mixer *m = sv->m;
    sl_tensor *x = nd->in[0];
    const int64_t B = x->shape[0], T = x->shape[1], D = x->shape[2], Tc = sv->Tc, sf = sv->sf;
    const int64_t nc = (T + Tc - 1) / Tc;
    float *dx = x->requires_grad ? sl_grad(ctx, x) : NULL;
    float *state = sl_arena_floats(ctx, B * sf), *ds = sl_arena_floats(ctx, B * sf);
    memset(ds, 0, (size_t)(B * sf) * sizeof(float));
    sl_ctx *sub = sl_ctx_child(ctx);
    for (int64_t k = nc - 1; k >= 0; k--) {
        const int64_t t0 = k * Tc, L = T - t0 < Tc ? T - t0 : Tc;
        sl_ctx_reset(sub);
        sub->link_states = true;
        if (k > 0) memcpy(state, sv->states + (k - 1) * B * sf, (size_t)(B * sf) * sizeof(float));
        sl_tensor *xk = chunk_input(sub, x, t0, L);
        xk->requires_grad = dx != NULL;
        sl_tensor *yk = m->vt->forward(m, sub, xk, state, t0, NULL);
        /* The gradient w.r.t. the state leaving this chunk, part by part. */
        for (sl_state_link *l = sub->links; l; l = l->next)
            for (int64_t b = 0; b < B; b++)
                memcpy(l->ds_final + b * l->len, ds + b * sf + l->off,
                       (size_t)l->len * sizeof(float));
        memset(ds, 0, (size_t)(B * sf) * sizeof(float));
        float *dyk = sl_arena_floats(sub, B * L * D);
        rows_out(nd->out->grad, dyk, B, T, D, t0, L);
        sl_backward_with(sub, yk, dyk);
        if (dx && xk->grad) rows_in(dx, xk->grad, B, T, D, t0, L, true);
        for (sl_state_link *l = sub->links; l; l = l->next)
            for (int64_t b = 0; l->s0 && l->s0->grad && b < B; b++)
                for (int64_t j = 0; j < l->len; j++)
                    ds[b * sf + l->off + j] += l->s0->grad[b * l->len + j];
    }
    sub->link_states = false;
    sl_ctx_reset(sub);
}

sl_tensor *sl_mixer_recompute(sl_ctx *ctx, sl_mixer *m, sl_tensor *x, int64_t Tc)
{
    sl_require(x->ndim == 3 && Tc >= 1 && sl_mixer_chunkable(m), "sl_mixer_recompute",
               "x [B, T, D], Tc >= 1 and a chunkable mixer");
    const int64_t align = m->vt->align ? m->vt->align(m) : 1;
    Tc = (Tc + align - 1) / align * align;
    const int64_t B = x->shape[0], T = x->shape[1], D = x->shape[2];
    const int64_t nc = (T + Tc - 1) / Tc, sf = m->vt->state_floats(m, T);
    sl_tensor *y = SL_NEW(ctx, B, T, D);
    sl_node *nd = sl_record_always(ctx, recompute_backward, y, 1, &x);
    recompute_saved *sv = NULL;
    if (nd) {
        sv = nd->saved = sl_arena_alloc(&ctx->arena, sizeof *sv);
        *sv = (recompute_saved){m, Tc, sf, sl_arena_floats(ctx, (nc - 1) * B * sf)};
    }
    float *state = sl_arena_floats(ctx, B * sf);
    sl_ctx *sub = sl_ctx_child(ctx);
    sub->grad_enabled = false;
    for (int64_t k = 0; k < nc; k++) {
        const int64_t t0 = k * Tc, L = T - t0 < Tc ? T - t0 : Tc;
        sl_ctx_reset(sub);
        sl_tensor *yk = m->vt->forward(m, sub, chunk_input(sub, x, t0, L), state, t0, NULL);
        rows_in(y->data, yk->data, B, T, D, t0, L, false);
        if (sv && k < nc - 1)
            memcpy(sv->states + k * B * sf, state, (size_t)(B * sf) * sizeof(float));
    }
    sub->grad_enabled = true;
    sl_ctx_reset(sub);
    return y;
}
