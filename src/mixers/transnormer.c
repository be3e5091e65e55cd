/* transnormer: NormAttention and DiagAttention (Qin, Han, Sun, Li, Kong,
 * Barnes, Zhong 2022, "The Devil in Linear Transformer"), with the optional
 * per-head decay of TransNormerLLM (Qin et al. 2023).
 *
 * Layer l of L is one of two kinds, chosen by its depth:
 *
 *   [q | k | v] = x W_qkv^T                 x: [B, T, D], heads H, dk = D/H
 *
 *   l <  L/2, DiagAttention (block-local softmax attention against attention
 *   dilution in the lower layers): the sequence is cut into non-overlapping
 *   blocks of w = block_size tokens at positions 0, w, 2w, ... and
 *     o_t = sum_{s in block(t), s <= t} softmax_s(q_t . k_s / sqrt(dk)) v_s
 *   with q, k <- RoPE(q, k) first when pos = rope (a softmax over a block
 *   sees no order otherwise; the model adds no positions with rope)
 *
 *   l >= L/2, NormAttention (linear attention whose scaling, the softmax-like
 *   denominator, is replaced by a normalisation of the output, which bounds
 *   the gradients):
 *     phi(x) = elu(x) + 1
 *     S_t = lambda_h S_{t-1} + phi(k_t) v_t^T,   o_t = S_t^T phi(q_t)
 *   lambda_h = 1 without `decay` (the 2022 paper); with it, TransNormerLLM's
 *     log lambda_h = -s_h (1 - l/(L-1) + 1e-5)     (L = 1: -s_h (1 + 1e-5))
 *   with s_h the ALiBi slopes 2^(-8(h+1)/H) (for H not a power of two the
 *   ALiBi interleave: 2^(-8(h+1)/P) for the P = 2^floor(log2 H) first, then
 *   every other slope of 2P).
 *
 *   both: y = RMSNorm(o) W_out^T         RMSNorm over all D channels, weight [D]
 *
 * Choices, from the reference code (OpenNLPLab/fairseq-evo norm_linear_attention
 * and norm_local_attention, the TransNormer T2 setting): phi = 1 + elu on q
 * and k (T2; T1 used elu, which can go negative), no 1/sqrt(dk) scaling in
 * NormAttention (dropping it is the paper's point), the softmax variant of
 * DiagAttention (T2; T1 used relu scores), one RMSNorm over the whole width
 * after either attention and no output gate (the gate u came with
 * TransNormer v2 / TransNormerLLM), block size 64 (its chunk_size). The
 * decay follows TransNormerLLM's code (ALiBi slopes, 1 - l/(L-1) + 1e-5);
 * the formula as printed, -(8/H)(1 - l/L) h, would decay the lowest head of
 * an 8-head layer by e^-8 per token.
 *
 * Parameters (both kinds): qkv.weight [3D, D], norm.weight [D], out.weight
 * [D, D]. NormAttention is composed of ops: linear -> the chunked recurrence
 * op (per-head log decay; elu+1 fused into its reads of q and k from the
 * projection) -> RMSNorm -> linear; its state is S, [H, dk, dk] per sequence.
 * DiagAttention runs the fused attention op over a packed batch whose
 * "sequences" are the blocks (intersected with the caller's packed sequences,
 * or with the batch rows after viewing [B, T] as [1, B*T]); its state is a KV
 * cache of the current block only, [K rows | V rows] each [w, D], which the
 * next block overwrites from its row 0. With causal = false (an encoder)
 * DiagAttention attends to its whole block and NormAttention sums over the
 * whole sequence with the symmetric decay lambda_h^|t-s|
 * (sl_recurrence_bidir); there is then no state or step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/gate_maps.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "ops/recurrence.h"

typedef struct transnormer {
    sl_tensor *wqkv, *wnorm, *wout;
    int64_t D, H, dk, C, w;
    bool diag;  /* DiagAttention (lower half) or NormAttention */
    bool decay; /* NormAttention: log_gamma applies */
    bool causal;
    bool rope; /* DiagAttention: RoPE on q, k (pos = rope) */
    float theta;
    float eps;
    float log_gamma[]; /* [H]; kept here because the op's backward reads it */
} transnormer;

/* The ALiBi slopes of H heads (Press et al. 2022), as TransNormerLLM builds
 * its decay rates: s: [H]. */
static void alibi_slopes(int64_t H, double *s)
{
    int64_t P = 1;
    while (2 * P <= H) P *= 2;
    for (int64_t h = 0; h < P; h++) s[h] = exp2(-8.0 * (double)(h + 1) / (double)P);
    /* The rest: slopes 0, 2, 4, ... of 2P heads, 2^(-8(2j+1)/(2P)). */
    for (int64_t j = 0; j < H - P; j++)
        s[P + j] = exp2(-8.0 * (double)(2 * j + 1) / (double)(2 * P));
}

static sl_status tn_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    transnormer *a = sl_mixer_impl(m, sizeof *a + (size_t)c->n_heads * sizeof(float));
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->dk = a->D / a->H;
    a->C = c->chunk_size;
    a->w = sl_opt_int(&m->opts, "block_size");
    a->eps = (float)c->norm_eps;
    a->causal = c->causal;
    a->theta = (float)c->rope_theta;
    a->diag = m->layer < c->n_layers / 2;
    a->rope = a->diag && c->rope;
    a->decay = !a->diag && sl_opt_bool(&m->opts, "decay");
    if (a->decay) {
        double *s = malloc((size_t)a->H * sizeof *s);
        if (!s) return sl_fail(SL_ERR_OOM, "out of memory");
        alibi_slopes(a->H, s);
        const int64_t L = c->n_layers;
        double depth = L > 1 ? 1.0 - (double)m->layer / (double)(L - 1) + 1e-5 : 1.0 + 1e-5;
        for (int64_t h = 0; h < a->H; h++) a->log_gamma[h] = (float)(-s[h] * depth);
        free(s);
    }
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wqkv = SL_PARAM(p, "qkv.weight", SL_INIT_NORMAL, std, true, 3 * a->D, a->D);
    a->wnorm = SL_PARAM(p, "norm.weight", SL_INIT_ONES, 0, false, a->D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    return SL_OK;
}

static int64_t tn_state_floats(const sl_mixer *m, int64_t max_len)
{
    const transnormer *a = m->impl;
    return a->diag ? 2 * a->w * a->D : a->H * a->dk * a->dk;
}

static int64_t tn_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const transnormer *a = m->impl;
    return 5 * a->D + a->w;
}

/* ------------------------------------------------------- NormAttention */

/* qkv: [B, T, 3D] -> o: [B, T, D]; state: [n, H, dk, dk] or NULL. */
static sl_tensor *norm_attention(transnormer *a, sl_ctx *ctx, sl_tensor *qkv, float *state,
                                 int64_t pos, const sl_seqs *seqs)
{
    const int64_t D = a->D;
    const sl_rec_in in = {.q = qkv, .k = qkv, .v = qkv, .k_off = D, .v_off = 2 * D,
                          .dk = a->dk, .dv = a->dk, .map = SL_REC_ELU1};
    const float *lg = a->decay ? a->log_gamma : NULL;
    if (!a->causal) {
        sl_require(!state, "transnormer", "no state in bidirectional mode");
        return sl_recurrence_bidir(ctx, &in, lg, a->H, a->C, seqs);
    }
    const int64_t sf = a->H * a->dk * a->dk;
    const sl_state_part sp =
        sl_state_take(ctx, state, sf, 0, sf, sl_seq_count(seqs, qkv->shape[0]), pos);
    sl_tensor *o = sl_recurrence_in(ctx, &in, NULL, lg, sp.s0, a->H, a->C, sp.s_final, seqs);
    sl_state_put(&sp);
    return o;
}

/* ------------------------------------------------------- DiagAttention */

/* The rows of the KV cache: keys then values, each [w, D]. */
static float *cache_k(const transnormer *a, float *st) { return st; }
static float *cache_v(const transnormer *a, float *st) { return st + a->w * a->D; }

/* Continuing cached sequences inside a block (pos % w > 0): token by
 * token, each writes its row p % w of its sequence's cache and attends to
 * rows 0 .. p % w, the tokens of its block so far. No tape: the cache is
 * outside the graph, so the recompute, which needs one, starts its calls on
 * block bounds (tn_align). */
static sl_tensor *diag_continue(transnormer *a, sl_ctx *ctx, sl_tensor *qkv, float *state,
                                int64_t pos, const sl_seqs *seqs)
{
    sl_require(!ctx->link_states, "transnormer", "a recompute chunk starting inside a block");
    const int64_t B = qkv->shape[0], T = qkv->shape[1], D = a->D, n = sl_seq_count(seqs, B);
    const int64_t sf = 2 * a->w * D;
    sl_tensor *o = SL_NEW(ctx, B, T, D);
    float *scores = sl_arena_floats(ctx, a->w);
    for (int64_t i = 0; i < n; i++) {
        float *st = state + i * sf;
        const int64_t t0 = sl_seq_start(seqs, i, T), len = sl_seq_len(seqs, i, T);
        for (int64_t t = 0; t < len; t++) {
            const float *x = qkv->data + (t0 + t) * 3 * D;
            const int64_t r = (pos + t) % a->w;
            memcpy(cache_k(a, st) + r * D, x + D, (size_t)D * sizeof(float));
            memcpy(cache_v(a, st) + r * D, x + 2 * D, (size_t)D * sizeof(float));
            sl_attention_decode(cache_k(a, st), cache_v(a, st), x, r + 1, a->H, a->H, a->dk, 0,
                                o->data + (t0 + t) * D, scores);
        }
    }
    return o;
}

/* qkv: [B, T, 3D] -> o: [B, T, D]; state: [n, 2, w, D] or NULL. From a
 * block bound (pos % w = 0, where no earlier token is seen): the attention
 * op over the blocks as a packed batch, then the cache holds each
 * sequence's last block. */
static sl_tensor *diag_attention(transnormer *a, sl_ctx *ctx, sl_tensor *qkv, float *state,
                                 int64_t pos, const sl_seqs *seqs)
{
    sl_require(a->causal || !state, "transnormer", "no state in bidirectional mode");
    if (state && pos % a->w > 0) return diag_continue(a, ctx, qkv, state, pos, seqs);
    const int64_t B = qkv->shape[0], T = qkv->shape[1], D = a->D, w = a->w;
    const int64_t n = sl_seq_count(seqs, B);
    int64_t nb = 0;
    for (int64_t i = 0; i < n; i++) nb += (sl_seq_len(seqs, i, T) + w - 1) / w;
    /* Block bounds over the B*T tokens; an empty batch keeps one empty block. */
    int64_t *cu = sl_arena_alloc(&ctx->arena, (size_t)(nb + 2) * sizeof *cu), m = 0;
    cu[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t t0 = sl_seq_start(seqs, i, T), len = sl_seq_len(seqs, i, T);
        for (int64_t b = w; b < len + w; b += w) cu[++m] = t0 + (b < len ? b : len);
    }
    if (m == 0) cu[++m] = 0;
    const sl_seqs blocks = {m, cu};
    sl_tensor *flat = B > 1 ? SL_VIEW(ctx, qkv, 1, B * T, 3 * D) : qkv;
    sl_tensor *o = sl_attention(ctx, flat, a->H, a->H, a->causal, 0, &blocks);
    if (B > 1) o = SL_VIEW(ctx, o, B, T, D);
    for (int64_t i = 0; state && i < n; i++) {
        float *st = state + i * 2 * w * D;
        const int64_t t0 = sl_seq_start(seqs, i, T), len = sl_seq_len(seqs, i, T);
        const int64_t last = len > 0 ? (len - 1) / w * w : 0;
        for (int64_t t = last; t < len; t++) {
            const float *x = qkv->data + (t0 + t) * 3 * D;
            memcpy(cache_k(a, st) + (t - last) * D, x + D, (size_t)D * sizeof(float));
            memcpy(cache_v(a, st) + (t - last) * D, x + 2 * D, (size_t)D * sizeof(float));
        }
    }
    return o;
}

/* ------------------------------------------------------------ the mixer */

/* x: [B, T, D] -> [B, T, D]. */
static sl_tensor *tn_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                             const sl_seqs *seqs)
{
    transnormer *a = m->impl;
    sl_tensor *qkv = sl_linear(ctx, x, a->wqkv, NULL);
    if (a->rope) qkv = sl_rope_qk(ctx, qkv, a->H, a->H, pos, a->theta, seqs);
    sl_tensor *o = a->diag ? diag_attention(a, ctx, qkv, state, pos, seqs)
                           : norm_attention(a, ctx, qkv, state, pos, seqs);
    return sl_linear(ctx, sl_rmsnorm(ctx, o, a->wnorm, a->eps), a->wout, NULL);
}

/* DiagAttention's calls start on block bounds; NormAttention's anywhere. */
static int64_t tn_align(const sl_mixer *m)
{
    const transnormer *a = m->impl;
    return a->diag ? a->w : 1;
}

/* x_t: [D] -> y_t: [D]; state: [H, dk, dk] (NormAttention) or [2, w, D]
 * (DiagAttention); scratch: 5D + w. */
static void tn_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                    float *scratch)
{
    transnormer *a = m->impl;
    const int64_t D = a->D;
    float *qkv = scratch, *o = scratch + 3 * D, *nrm = o + D, *scores = nrm + D;
    sl_gemm(false, true, 1, 3 * D, D, x_t, a->wqkv->data, 0.0f, qkv);
    if (a->diag) {
        const int64_t r = pos % a->w;
        if (a->rope) {
            sl_rope_apply(qkv, a->H, a->dk, pos, a->theta);
            sl_rope_apply(qkv + D, a->H, a->dk, pos, a->theta);
        }
        memcpy(cache_k(a, state) + r * D, qkv + D, (size_t)D * sizeof(float));
        memcpy(cache_v(a, state) + r * D, qkv + 2 * D, (size_t)D * sizeof(float));
        sl_attention_decode(cache_k(a, state), cache_v(a, state), qkv, r + 1, a->H, a->H, a->dk, 0, o,
                            scores);
    } else {
        for (int64_t i = 0; i < 2 * D; i++) qkv[i] = sl_elu1f(qkv[i]);
        sl_recurrence_step(state, qkv, qkv + D, qkv + 2 * D, NULL, 0,
                           a->decay ? a->log_gamma : NULL, a->H, a->dk, a->dk, o);
    }
    sl_rmsnorm_row(o, a->wnorm->data, nrm, D, a->eps);
    sl_gemm(false, true, 1, D, D, nrm, a->wout->data, 0.0f, y_t);
}

static const sl_option OPTIONS[] = {
    {"block_size", SL_OPT_INT, "64", 1, 1 << 20, NULL,
     "w: tokens per block of the lower layers' block-local softmax (DiagAttention)"},
    {"decay", SL_OPT_BOOL, "false", 0, 0, NULL,
     "per-head decay lambda_h in the upper layers' NormAttention (TransNormerLLM)"},
};

/* 4 layers: layer 0 is DiagAttention (blocks of 5, with and without RoPE),
 * layer 2 NormAttention (chunks of 4, with and without the decay); each
 * kind also bidirectional, where T = 5 is one whole block. The default
 * (2 layers, layer 0, block 64) crosses a block edge at T = 70. */
#define TN_TINY "n_layers=4,chunk_size=4,block_size=5,"
static const char *const CHECK_VARIANTS[] = {
    "", TN_TINY "layer=0", TN_TINY "layer=2", TN_TINY "layer=2,decay=true",
    TN_TINY "layer=0,rope=true", TN_TINY "layer=0,causal=false", TN_TINY "layer=2,causal=false",
    TN_TINY "layer=2,decay=true,causal=false", TN_TINY "layer=0,rope=true,causal=false", NULL};

const sl_mixer_vtable sl_mixer_transnormer = {
    .name = "transnormer",
    .paper = "Qin et al. 2022, The Devil in Linear Transformer (TransNormer)",
    .equation = "lower layers: block-local softmax attention; upper: S_t = lambda_h S_{t-1} + "
                "phi(k_t) v_t^T, o_t = S_t^T phi(q_t); y = RMSNorm(o) W_out^T",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = tn_init,
    .forward = tn_forward,
    .state_floats = tn_state_floats,
    .scratch_floats = tn_scratch_floats,
    .step = tn_step,
    .state_desc = "lower layers: 2*block_size*D floats (the block's KV cache); upper layers: "
                  "H*dk*dk (D^2/H), constant in length",
    .bidirectional = true,
    .align = tn_align,
    .checks = {.variants = CHECK_VARIANTS},
};
