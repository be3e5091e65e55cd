/* Tensors, the execution context and the autodiff tape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int64_t sl_numel_from(const sl_tensor *t, int from)
{
    int64_t n = 1;
    for (int i = from; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool sl_same_shape(const sl_tensor *a, const sl_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

void sl_ctx_init(sl_ctx *ctx, size_t arena_bytes)
{
    memset(ctx, 0, sizeof *ctx);
    sl_arena_init(&ctx->arena, arena_bytes);
    ctx->grad_enabled = true;
    sl_rng_seed(&ctx->rng, 0);
}

void sl_ctx_free(sl_ctx *ctx)
{
    if (ctx->child) {
        sl_ctx_free(ctx->child);
        free(ctx->child);
    }
    sl_arena_free(&ctx->arena);
    free(ctx->tape);
    memset(ctx, 0, sizeof *ctx);
}

void sl_ctx_reset(sl_ctx *ctx)
{
    sl_arena_reset(&ctx->arena);
    ctx->tape_len = 0;
    ctx->links = NULL;
}

size_t sl_ctx_peak(const sl_ctx *ctx)
{
    return ctx->arena.peak + (ctx->child ? sl_ctx_peak(ctx->child) : 0);
}

sl_ctx *sl_ctx_child(sl_ctx *ctx)
{
    if (!ctx->child) {
        ctx->child = malloc(sizeof *ctx->child);
        if (!ctx->child) sl_out_of_memory("a recompute context", sizeof *ctx->child);
        sl_ctx_init(ctx->child, 0);
    }
    sl_ctx_reset(ctx->child);
    ctx->child->training = ctx->training;
    ctx->child->rng = ctx->rng;
    return ctx->child;
}

const float *sl_state_final_grad(const sl_ctx *ctx, const float *s_final)
{
    if (!s_final || !ctx->link_states) return NULL;
    for (const sl_state_link *l = ctx->links; l; l = l->next)
        if (l->s_final == s_final) return l->ds_final;
    return NULL;
}

float *sl_arena_floats(sl_ctx *ctx, int64_t n)
{
    return sl_arena_alloc(&ctx->arena, (size_t)n * sizeof(float));
}

static sl_tensor *header(sl_ctx *ctx, int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > SL_MAX_DIMS) {
        fprintf(stderr, "seqlab: internal error: tensor with %d dims\n", ndim);
        abort();
    }
    sl_tensor *t = sl_arena_alloc(&ctx->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->n *= shape[i];
    }
    return t;
}

sl_tensor *sl_tensor_new(sl_ctx *ctx, int ndim, const int64_t *shape)
{
    sl_tensor *t = header(ctx, ndim, shape);
    t->data = sl_arena_floats(ctx, t->n);
    return t;
}

sl_tensor *sl_tensor_like(sl_ctx *ctx, const sl_tensor *t)
{
    return sl_tensor_new(ctx, t->ndim, t->shape);
}

/* A view shares data and, through sl_grad, the gradient buffer; recording a
 * node keeps the two gradients in sync in the backward pass. desc: NULL, or
 * the view's first element in t (an int64_t, sl_view_rows). */
static void view_backward(sl_ctx *ctx, const sl_node *nd)
{
    float *dst = sl_grad(ctx, nd->in[0]) + (nd->desc ? *(const int64_t *)nd->desc : 0);
    const float *src = nd->out->grad;
    if (dst == src) return;
    for (int64_t i = 0; i < nd->out->n; i++) dst[i] += src[i];
}

sl_tensor *sl_view(sl_ctx *ctx, sl_tensor *t, int ndim, const int64_t *shape)
{
    sl_tensor *v = header(ctx, ndim, shape);
    if (v->n != t->n) {
        fprintf(stderr, "seqlab: internal error: view of %lld elements as %lld\n",
                (long long)t->n, (long long)v->n);
        abort();
    }
    v->data = t->data;
    /* Share the gradient buffer when it exists so no copy is needed. */
    if (t->requires_grad) sl_grad(ctx, t);
    v->grad = t->grad;
    SL_RECORD(ctx, view_backward, v, t);
    return v;
}

sl_tensor *sl_view_rows(sl_ctx *ctx, sl_tensor *t, int64_t r0, int64_t nr)
{
    sl_require(r0 >= 0 && nr > 0 && r0 + nr <= t->shape[0], "sl_view_rows",
               "0 <= r0, r0 + nr <= the first dim");
    int64_t shape[SL_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = nr;
    sl_tensor *v = header(ctx, t->ndim, shape);
    const int64_t off = r0 * (t->n / t->shape[0]);
    v->data = t->data + off;
    if (t->requires_grad) v->grad = sl_grad(ctx, t) + off;
    sl_node *nd = SL_RECORD(ctx, view_backward, v, t);
    if (nd) SL_KEEP_DESC(ctx, nd, off);
    return v;
}

static sl_node *record(sl_ctx *ctx, sl_backward_fn fn, sl_tensor *out, int nin,
                       sl_tensor *const *in, bool need)
{
    out->requires_grad = need;
    if (!need) return NULL;
    if (ctx->tape_len == ctx->tape_cap) {
        size_t cap = ctx->tape_cap ? 2 * ctx->tape_cap : 256;
        sl_node *tape = realloc(ctx->tape, cap * sizeof *tape);
        if (!tape) {
            sl_out_of_memory("growing the tape", cap * sizeof *tape);
        }
        ctx->tape = tape;
        ctx->tape_cap = cap;
    }
    sl_node *nd = &ctx->tape[ctx->tape_len++];
    memset(nd, 0, sizeof *nd);
    nd->backward = fn;
    nd->out = out;
    nd->nin = nin;
    nd->in = sl_arena_alloc(&ctx->arena, (size_t)nin * sizeof *nd->in);
    memcpy(nd->in, in, (size_t)nin * sizeof *nd->in);
    return nd;
}

sl_node *sl_record(sl_ctx *ctx, sl_backward_fn fn, sl_tensor *out, int nin, sl_tensor *const *in)
{
    bool need = false;
    if (ctx->grad_enabled)
        for (int i = 0; i < nin; i++)
            if (in[i] && in[i]->requires_grad) need = true;
    return record(ctx, fn, out, nin, in, need);
}

sl_node *sl_record_always(sl_ctx *ctx, sl_backward_fn fn, sl_tensor *out, int nin,
                          sl_tensor *const *in)
{
    return record(ctx, fn, out, nin, in, ctx->grad_enabled);
}

void sl_keep_desc(sl_ctx *ctx, sl_node *node, const void *desc, size_t bytes)
{
    void *copy = sl_arena_alloc(&ctx->arena, bytes);
    memcpy(copy, desc, bytes);
    node->desc = copy;
}

float *sl_grad(sl_ctx *ctx, sl_tensor *t)
{
    if (!t->grad) {
        /* Zeroing is a visible share of memory-bound backwards: spread it
         * over the threads for large activations. */
        float *g = t->grad = sl_arena_floats(ctx, t->n);
        int64_t n = t->n, chunk = 1 << 16, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 1)
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t lo = c * chunk, len = lo + chunk < n ? chunk : n - lo;
            memset(g + lo, 0, (size_t)len * sizeof(float));
        }
    }
    return t->grad;
}

static void run_tape(sl_ctx *ctx)
{
    for (size_t i = ctx->tape_len; i-- > 0;) {
        const sl_node *nd = &ctx->tape[i];
        /* An output nothing downstream used has no gradient to pass on. */
        if (!nd->out->grad) continue;
        nd->backward(ctx, nd);
    }
}

void sl_backward_with(sl_ctx *ctx, sl_tensor *out, const float *dout)
{
    if (!out->requires_grad) return;
    float *g = sl_grad(ctx, out);
    for (int64_t i = 0; i < out->n; i++) g[i] += dout[i];
    run_tape(ctx);
}

void sl_backward(sl_ctx *ctx, sl_tensor *loss)
{
    if (!loss->requires_grad) return;
    float *g = sl_grad(ctx, loss);
    for (int64_t i = 0; i < loss->n; i++) g[i] = 1.0f;
    run_tape(ctx);
}

sl_status sl_seqs_check(const sl_seqs *s, const sl_tensor *x, const char *who)
{
    if (!s) return SL_OK;
    if (x->ndim < 2 || x->shape[0] != 1)
        return sl_fail(SL_ERR_ARG, "%s: a packed batch must be one row [1, T, ...]", who);
    if (s->n < 1 || !s->cu || s->cu[0] != 0 || s->cu[s->n] != x->shape[1])
        return sl_fail(SL_ERR_ARG, "%s: packed bounds must run from 0 to T = %lld", who,
                       (long long)x->shape[1]);
    for (int64_t i = 0; i < s->n; i++)
        if (s->cu[i + 1] < s->cu[i])
            return sl_fail(SL_ERR_ARG, "%s: packed bounds must not decrease (cu[%lld] > cu[%lld])",
                           who, (long long)i, (long long)(i + 1));
    return SL_OK;
}

const sl_seqs *sl_seqs_keep(sl_ctx *ctx, const sl_seqs *s)
{
    if (!s) return NULL;
    sl_seqs *cp = sl_arena_alloc(&ctx->arena, sizeof *cp);
    int64_t *cu = sl_arena_alloc(&ctx->arena, (size_t)(s->n + 1) * sizeof *cu);
    memcpy(cu, s->cu, (size_t)(s->n + 1) * sizeof *cu);
    *cp = (sl_seqs){s->n, cu};
    return cp;
}

int64_t *sl_seq_chunk_offsets(sl_ctx *ctx, const sl_seqs *s, int64_t B, int64_t T, int64_t C)
{
    const int64_t rows = sl_seq_count(s, B);
    int64_t *off = sl_arena_alloc(&ctx->arena, (size_t)(rows + 1) * sizeof *off);
    off[0] = 0;
    for (int64_t r = 0; r < rows; r++) off[r + 1] = off[r] + (sl_seq_len(s, r, T) + C - 1) / C;
    return off;
}
