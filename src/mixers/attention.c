/* attention: multi-head scaled dot-product attention (Vaswani et al. 2017,
 * "Attention Is All You Need"), with grouped-query and multi-query heads
 * (Ainslie et al. 2023, "GQA"; Shazeer 2019, "Fast Transformer Decoding").
 *
 *   [q | k | v] = x W_qkv^T (+ b_qkv)     x: [B, T, D], H query heads of dh = D/H,
 *                                         G = n_kv_heads key/value heads of dh
 *   q, k <- RoPE(q, k)                    when pos = rope
 *   o_t,h = sum_s softmax_s(q_t,h . k_s,g(h) / sqrt(dh) + mask_ts) v_s,g(h)
 *   y = o W_out^T (+ b_out)               g(h) = h / (H / G)
 *
 * mask: causal (s <= t) or bidirectional, optionally a window (|t - s| <
 * w). Parameters: qkv.weight [(H + 2G) dh, D] (rows q, then k, then v),
 * out.weight [D, D], and with bias qkv.bias [(H + 2G) dh], out.bias [D].
 * The forward is linear -> rope -> the fused tiled attention op (O(T)
 * memory) -> linear.
 *
 * step() keeps a KV cache per layer: state = [K rows | V rows], each [C,
 * G dh]. Without a window C = max_seq_len and position p sits in row p;
 * with a causal window w, C = min(w, max_seq_len) and the cache is a ring:
 * position p sits in row p % C, so it holds exactly the keys the window
 * lets the next query see, O(w) memory at any length, and such a layer
 * decodes past max_seq_len (`streams`). A packed batch (sl_seqs) attends
 * within each sequence, with positions restarting at each one's start, and
 * with a state each sequence has its own cache (state [n, 2, C, G dh]). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/ops.h"

typedef struct attn {
    sl_tensor *wqkv, *bqkv, *wout, *bout;
    int64_t D, H, G, dh, rows; /* rows: the cache's C */
    bool rope, causal;
    float theta;
    int64_t window;
} attn;

static sl_status attn_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    const int64_t G = sl_opt_int(&m->opts, "n_kv_heads");
    if (G && c->n_heads % G)
        return sl_fail(SL_ERR_CONFIG,
                       "mixer 'attention' of layer %lld: option n_kv_heads = %lld must divide "
                       "n_heads = %lld",
                       (long long)m->layer, (long long)G, (long long)c->n_heads);
    attn *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->G = G ? G : a->H;
    a->dh = a->D / a->H;
    a->rope = c->rope;
    a->theta = (float)c->rope_theta;
    a->causal = c->causal;
    a->window = sl_opt_int(&m->opts, "window");
    a->rows = a->window > 0 && a->window < c->max_seq_len ? a->window : c->max_seq_len;
    const int64_t W = (a->H + 2 * a->G) * a->dh;
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wqkv = SL_PARAM(p, "qkv.weight", SL_INIT_NORMAL, std, true, W, a->D);
    if (c->bias) a->bqkv = SL_PARAM(p, "qkv.bias", SL_INIT_ZEROS, 0, false, W);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    if (c->bias) a->bout = SL_PARAM(p, "out.bias", SL_INIT_ZEROS, 0, false, a->D);
    return SL_OK;
}

/* The cache has C rows whatever max_len asks (a position past max_seq_len
 * lands in the ring): V's rows start C rows in, so the layout cannot
 * depend on the caller's max_len. */
static int64_t attn_state_floats(const sl_mixer *m, int64_t max_len)
{
    const attn *a = m->impl;
    return 2 * a->rows * a->G * a->dh;
}

static int64_t attn_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const attn *a = m->impl;
    return (a->H + 2 * a->G) * a->dh + a->D + a->rows;
}

/* A windowed cache is a ring, so decoding never runs out of rows. */
static bool attn_streams(const sl_mixer *m)
{
    const attn *a = m->impl;
    return a->window > 0 && a->rows == a->window;
}

/* Copies the k and v parts of qkv rows into the cache, position pos + t
 * into row (pos + t) % C. qkv: [T, (H + 2G) dh] of one sequence, state:
 * [2, C, G dh]. */
static void cache_put(const attn *a, float *state, const float *qkv, int64_t T, int64_t pos)
{
    const int64_t Dkv = a->G * a->dh, W = a->D + 2 * Dkv;
    float *kc = state, *vc = state + a->rows * Dkv;
    for (int64_t t = 0; t < T; t++) {
        const int64_t r = (pos + t) % a->rows;
        memcpy(kc + r * Dkv, qkv + t * W + a->D, (size_t)Dkv * sizeof(float));
        memcpy(vc + r * Dkv, qkv + t * W + a->D + Dkv, (size_t)Dkv * sizeof(float));
    }
}

/* The query of position pos (its k and v already in the cache) against
 * the cache. q: [H dh] -> o: [H dh]; scores: [C]. Every row the cache
 * holds is visible: a ring holds just the keys the window shows (in
 * rotated order, which changes only the order of the softmax sums), and a
 * full cache of C = max_seq_len <= window rows is never cut by it. */
static void cache_read(const attn *a, const float *state, const float *q, int64_t pos, float *o,
                       float *scores)
{
    const int64_t Tk = pos + 1 < a->rows ? pos + 1 : a->rows;
    sl_attention_decode(state, state + a->rows * a->G * a->dh, q, Tk, a->H, a->G, a->dh, 0, o,
                        scores);
}

/* x: [B, T, D] -> [B, T, D]; state: [n, 2, C, G dh] or NULL, one row per
 * batch row or packed sequence. */
static sl_tensor *attn_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                               const sl_seqs *seqs)
{
    attn *a = m->impl;
    const int64_t B = x->shape[0], T = x->shape[1], D = a->D, n = sl_seq_count(seqs, B);
    const int64_t sf = attn_state_floats(m, 0), W = (a->H + 2 * a->G) * a->dh;
    sl_tensor *qkv = sl_linear(ctx, x, a->wqkv, a->bqkv);
    if (a->rope) qkv = sl_rope_qk(ctx, qkv, a->H, a->G, pos, a->theta, seqs);
    sl_tensor *o;
    if (!state || pos == 0) {
        o = sl_attention(ctx, qkv, a->H, a->G, a->causal, a->window, seqs);
        for (int64_t i = 0; state && i < n; i++) {
            /* Only the last C rows can stay in a ring. */
            const int64_t len = sl_seq_len(seqs, i, T), skip = len > a->rows ? len - a->rows : 0;
            cache_put(a, state + i * sf, qkv->data + (sl_seq_start(seqs, i, T) + skip) * W,
                      len - skip, skip);
        }
    } else {
        /* Continuing cached sequences: each new query reads its own cache. */
        o = SL_NEW(ctx, B, T, D);
        float *scores = sl_arena_floats(ctx, a->rows);
        for (int64_t i = 0; i < n; i++) {
            float *st = state + i * sf;
            const int64_t t0 = sl_seq_start(seqs, i, T), len = sl_seq_len(seqs, i, T);
            for (int64_t t = t0; t < t0 + len; t++) {
                cache_put(a, st, qkv->data + t * W, 1, pos + t - t0);
                cache_read(a, st, qkv->data + t * W, pos + t - t0, o->data + t * D, scores);
            }
        }
    }
    return sl_linear(ctx, o, a->wout, a->bout);
}

/* x_t: [D] -> y_t: [D]; state: [2, C, G dh]; scratch: (H + 2G) dh + D + C. */
static void attn_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                      float *scratch)
{
    attn *a = m->impl;
    const int64_t D = a->D, W = (a->H + 2 * a->G) * a->dh;
    float *qkv = scratch, *o = scratch + W, *scores = o + D;
    sl_gemm(false, true, 1, W, D, x_t, a->wqkv->data, 0.0f, qkv);
    if (a->bqkv)
        for (int64_t i = 0; i < W; i++) qkv[i] += a->bqkv->data[i];
    if (a->rope) {
        sl_rope_apply(qkv, a->H, a->dh, pos, a->theta);
        sl_rope_apply(qkv + D, a->G, a->dh, pos, a->theta);
    }
    cache_put(a, state, qkv, 1, pos);
    cache_read(a, state, qkv, pos, o, scores);
    sl_gemm(false, true, 1, D, D, o, a->wout->data, 0.0f, y_t);
    if (a->bout)
        for (int64_t i = 0; i < D; i++) y_t[i] += a->bout->data[i];
}

static const sl_option OPTIONS[] = {
    {"window", SL_OPT_INT, "0", 0, 1 << 30, NULL,
     "attend to the last `window` tokens only (t - s < window); 0 = unlimited; the "
     "decoding cache is then a ring of min(window, max_seq_len) rows"},
    {"n_kv_heads", SL_OPT_INT, "0", 0, 1 << 20, NULL,
     "key/value heads G, dividing n_heads (grouped-query; 1 = multi-query); 0 = n_heads"},
};

/* Masks causal and bidirectional, windowed or not, with and without RoPE
 * (the bidirectional window of 5 still lets t = 0 see t = 4, which the
 * check asks). The T = 70 cases of tests/test_mixer_attention.c cross the
 * op's tiles. Multi-query and grouped heads; a ring cache that wraps many
 * times, and one that goes on past max_seq_len = 8. */
static const char *const CHECK_VARIANTS[] = {
    "", "rope=true", "window=5", "window=7,rope=true", "causal=false", "causal=false,window=5",
    "n_heads=4,n_kv_heads=1", "n_heads=4,n_kv_heads=2,rope=true,window=6",
    "window=4,max_seq_len=8,rope=true", NULL};

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
    .streams = attn_streams,
    .state_desc = "KV cache: 2*D*n_kv_heads/n_heads floats per token, at most window tokens",
    .bidirectional = true,
    .state_no_grad = true,
    .checks = {.variants = CHECK_VARIANTS},
};
