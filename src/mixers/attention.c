/* attention: multi-head scaled dot-product attention (Vaswani et al. 2017,
 * "Attention Is All You Need").
 *
 *   [q | k | v] = x W_qkv^T (+ b_qkv)          x: [B, T, D], heads H, dh = D/H
 *   q, k <- RoPE(q, k)                          when pos = rope
 *   o_t = sum_s softmax_s(q_t . k_s / sqrt(dh) + mask_ts) v_s
 *   y = o W_out^T (+ b_out)
 *
 * mask: causal (s <= t) or bidirectional, optionally a window (t - s < w).
 * Parameters: qkv.weight [3D, D], out.weight [D, D], and with bias
 * qkv.bias [3D], out.bias [D]. The forward is linear -> rope -> the fused
 * tiled attention op (O(T) memory) -> linear. step() keeps a KV cache of
 * max_seq_len rows per layer: state = [K rows | V rows], each
 * [max_seq_len, D]. A packed batch (sl_seqs) attends within each sequence,
 * with positions restarting at each one's start, and with a state each
 * sequence has its own cache (state [n, 2, max_seq_len, D]). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/ops.h"

typedef struct attn {
    sl_tensor *wqkv, *bqkv, *wout, *bout;
    int64_t D, H, dh, max_len;
    bool rope, causal;
    float theta;
    int64_t window;
} attn;

static sl_status attn_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    attn *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->dh = a->D / a->H;
    a->max_len = c->max_seq_len;
    a->rope = c->rope;
    a->theta = (float)c->rope_theta;
    a->causal = c->causal;
    a->window = sl_opt_int(&m->opts, "window");
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wqkv = SL_PARAM(p, "qkv.weight", SL_INIT_NORMAL, std, true, 3 * a->D, a->D);
    if (c->bias) a->bqkv = SL_PARAM(p, "qkv.bias", SL_INIT_ZEROS, 0, false, 3 * a->D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    if (c->bias) a->bout = SL_PARAM(p, "out.bias", SL_INIT_ZEROS, 0, false, a->D);
    return SL_OK;
}

/* The cache has max_seq_len rows whatever max_len asks (no position reaches
 * max_seq_len): V's rows start max_seq_len rows in, so the layout cannot
 * depend on the caller's max_len. */
static int64_t attn_state_floats(const sl_mixer *m, int64_t max_len)
{
    return 2 * m->dims.max_seq_len * m->dims.d_model;
}

static int64_t attn_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 4 * m->dims.d_model + max_len;
}

/* Copies the k and v thirds of qkv rows into the cache at rows pos.. .
 * qkv: [T, 3D] of one sequence, state: [2, max_len, D]. */
static void cache_put(const attn *a, float *state, const float *qkv, int64_t T, int64_t pos)
{
    int64_t D = a->D;
    float *kc = state, *vc = state + a->max_len * D;
    for (int64_t t = 0; t < T; t++) {
        memcpy(kc + (pos + t) * D, qkv + t * 3 * D + D, (size_t)D * sizeof(float));
        memcpy(vc + (pos + t) * D, qkv + t * 3 * D + 2 * D, (size_t)D * sizeof(float));
    }
}

/* x: [B, T, D] -> [B, T, D]; state: [n, 2, max_len, D] or NULL, one row per
 * batch row or packed sequence. */
static sl_tensor *attn_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                               const sl_seqs *seqs)
{
    attn *a = m->impl;
    const int64_t B = x->shape[0], T = x->shape[1], D = a->D, n = sl_seq_count(seqs, B);
    const int64_t sf = attn_state_floats(m, a->max_len);
    sl_tensor *qkv = sl_linear(ctx, x, a->wqkv, a->bqkv);
    if (a->rope) qkv = sl_rope_qk(ctx, qkv, a->H, pos, a->theta, seqs);
    sl_tensor *o;
    if (!state || pos == 0) {
        o = sl_attention(ctx, qkv, a->H, a->causal, a->window, seqs);
        for (int64_t i = 0; state && i < n; i++)
            cache_put(a, state + i * sf, qkv->data + sl_seq_start(seqs, i, T) * 3 * D,
                      sl_seq_len(seqs, i, T), 0);
    } else {
        /* Continuing cached sequences: each new query reads its own cache. */
        o = SL_NEW(ctx, B, T, D);
        float *scores = sl_arena_floats(ctx, pos + T);
        for (int64_t i = 0; i < n; i++) {
            float *st = state + i * sf;
            const int64_t t0 = sl_seq_start(seqs, i, T), len = sl_seq_len(seqs, i, T);
            cache_put(a, st, qkv->data + t0 * 3 * D, len, pos);
            for (int64_t t = t0; t < t0 + len; t++)
                sl_attention_decode(st, st + a->max_len * D, qkv->data + t * 3 * D,
                                    pos + t - t0 + 1, a->H, a->dh, a->window, o->data + t * D,
                                    scores);
        }
    }
    return sl_linear(ctx, o, a->wout, a->bout);
}

/* x_t: [D] -> y_t: [D]; state: [2, max_len, D]; scratch: 4D + max_len. */
static void attn_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                      float *scratch)
{
    attn *a = m->impl;
    int64_t D = a->D;
    float *qkv = scratch, *o = scratch + 3 * D, *scores = scratch + 4 * D;
    sl_gemm(false, true, 1, 3 * D, D, x_t, a->wqkv->data, 0.0f, qkv);
    if (a->bqkv)
        for (int64_t i = 0; i < 3 * D; i++) qkv[i] += a->bqkv->data[i];
    if (a->rope) {
        sl_rope_apply(qkv, a->H, a->dh, pos, a->theta);
        sl_rope_apply(qkv + D, a->H, a->dh, pos, a->theta);
    }
    cache_put(a, state, qkv, 1, pos);
    sl_attention_decode(state, state + a->max_len * D, qkv, pos + 1, a->H, a->dh, a->window, o,
                        scores);
    sl_gemm(false, true, 1, D, D, o, a->wout->data, 0.0f, y_t);
    if (a->bout)
        for (int64_t i = 0; i < D; i++) y_t[i] += a->bout->data[i];
}

static const sl_option OPTIONS[] = {
    {"window", SL_OPT_INT, "0", 0, 1 << 30, NULL,
     "attend to the last `window` tokens only (t - s < window); 0 = unlimited"},
};

/* Masks causal and bidirectional, windowed or not, with and without RoPE
 * (the bidirectional window of 5 still lets t = 0 see t = 4, which the
 * check asks). The T = 70 cases of tests/test_mixer_attention.c cross the
 * op's tiles. */
static const char *const CHECK_VARIANTS[] = {
    "", "rope=true", "window=5", "window=7,rope=true", "causal=false", "causal=false,window=5",
    NULL};

const sl_mixer_vtable sl_mixer_attention = {
    .name = "attention",
    .paper = "Vaswani et al. 2017, Attention Is All You Need",
    .equation = "o_t = sum_s softmax_s(q_t . k_s / sqrt(dh) + mask_ts) v_s",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = attn_init,
    .forward = attn_forward,
    .state_floats = attn_state_floats,
    .scratch_floats = attn_scratch_floats,
    .step = attn_step,
    .state_desc = "KV cache: 2*D floats per token",
    .bidirectional = true,
    .state_no_grad = true,
    .checks = {.variants = CHECK_VARIANTS},
};
