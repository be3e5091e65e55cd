/* aaren: attention as a many-to-many RNN (Feng, Tung, Hajimirsadeghi,
 * Ahmed, Bengio, Mori 2024, "Attention as an RNN", section 3.3). Softmax
 * attention whose query is a learned parameter, not a token, so the
 * output at t is attention over the prefix x_1..t, computed for every t at
 * once by a scan over (m, u, w), the paper's many-to-many RNN:
 *
 *   k_t = x_t W_k^T,  v_t = x_t W_v^T                  [D], H heads of P = D/H
 *   s_{t,h} = q_h . k_{t,h} / sqrt(P)                  q: [H, P], learned
 *   o_{t,h} = sum_{i<=t} softmax(s_{1..t,h})_i v_{i,h}
 *   y = o W_out^T
 *
 * Heads and the output projection are those of the Transformer attention
 * that Aaren stands in for (the paper keeps the Transformer block around it;
 * here the block's norms and residuals are the model's). Since q is fixed,
 * s = x A^T with A_h = q_h W_k,h / sqrt(P): the keys are never formed, A
 * ([H, D]) is computed from q and W_k in each forward and its gradient
 * flows back to both. Parameters: query [H, P] (normal(1), the scale of a
 * normed token), k.weight, v.weight [D, D] (normal(init_std)), out.weight
 * [D, D] (normal(init_std / sqrt(2 n_layers))). The forward: the folded
 * key map, two linears, the prefix_softmax op, a linear. State: per head
 * (m, u, w[P]), H (P + 2) floats per sequence, constant in length; a
 * sequence at position 0 starts from the empty state (m = -inf as
 * SL_PS_EMPTY, u = 0, w = 0). */
#include "mixers/mixer.h"
#include "ops/ops.h"
#include "ops/prefix_softmax.h"

typedef struct aaren {
    sl_tensor *q, *wk, *wv, *wout;
    int64_t D, H, P;
} aaren;

static sl_status aaren_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    if (c->n_heads < 1 || c->d_model % c->n_heads)
        return sl_fail(SL_ERR_CONFIG, "mixer 'aaren': d_model %lld must split into n_heads %lld",
                       (long long)c->d_model, (long long)c->n_heads);
    aaren *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->P = a->D / a->H;
    const float std = (float)c->init_std;
    a->q = SL_PARAM(p, "query", SL_INIT_NORMAL, 1.0f, false, a->H, a->P);
    a->wk = SL_PARAM(p, "k.weight", SL_INIT_NORMAL, std, true, a->D, a->D);
    a->wv = SL_PARAM(p, "v.weight", SL_INIT_NORMAL, std, true, a->D, a->D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, sl_mixer_out_std(c), true, a->D, a->D);
    return SL_OK;
}

static int64_t aaren_state_floats(const sl_mixer *m, int64_t max_len)
{
    return m->dims.d_model + 2 * m->dims.n_heads;
}

static int64_t aaren_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 3 * m->dims.d_model + m->dims.n_heads;
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, H (P + 2)] or NULL, rows = B or
 * the packed sequences. */
static sl_tensor *aaren_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                                const sl_seqs *seqs)
{
    aaren *a = m->impl;
    const int64_t rows = sl_seq_count(seqs, x->shape[0]), H = a->H, P = a->P;
    /* A_h = q_h W_k,h / sqrt(P): [H, 1, P] x [H, P, D] -> [H, D]. */
    sl_tensor *qk =
        sl_matmul(ctx, SL_VIEW(ctx, a->q, H, 1, P), SL_VIEW(ctx, a->wk, H, P, a->D), false, false);
    sl_tensor *A = sl_scale(ctx, SL_VIEW(ctx, qk, H, a->D), 1.0f / sqrtf((float)P));
    sl_tensor *s = sl_linear(ctx, x, A, NULL);
    sl_tensor *v = sl_linear(ctx, x, a->wv, NULL);
    const sl_state_part sp = sl_state_take(ctx, state, H * (P + 2), 0, H * (P + 2), rows, pos);
    sl_tensor *o = sl_prefix_softmax(ctx, s, v, sp.s0, sp.s_final, seqs);
    sl_state_put(&sp);
    return sl_linear(ctx, o, a->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [H (P + 2)], empty at pos 0; scratch:
 * 3D + H. */
static void aaren_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                       float *scratch)
{
    aaren *a = m->impl;
    const int64_t D = a->D, H = a->H, P = a->P;
    float *k = scratch, *v = k + D, *o = v + D, *s = o + D;
    if (pos == 0) sl_prefix_softmax_empty(state, H, P);
    sl_gemm(false, true, 1, D, D, x_t, a->wk->data, 0.0f, k);
    sl_gemm(false, true, 1, D, D, x_t, a->wv->data, 0.0f, v);
    for (int64_t h = 0; h < H; h++) {
        float d = 0.0f;
        for (int64_t j = 0; j < P; j++) d += a->q->data[h * P + j] * k[h * P + j];
        s[h] = d / sqrtf((float)P);
    }
    sl_prefix_softmax_step(state, s, v, o, H, P);
    sl_gemm(false, true, 1, D, D, o, a->wout->data, 0.0f, y_t);
}

/* One head of 16 channels and four of 4. */
static const char *const CHECK_VARIANTS[] = {"", "n_heads=1", "n_heads=4", NULL};

const sl_mixer_vtable sl_mixer_aaren = {
    .name = "aaren",
    .paper = "Feng et al. 2024, Attention as an RNN",
    .equation = "s_t = q . (x_t W_k^T) / sqrt(P),  o_t = sum_{i<=t} softmax(s_1..t)_i x_i W_v^T,"
                "  y = o W_out^T  (per head; learned q)",
    .init = aaren_init,
    .forward = aaren_forward,
    .state_floats = aaren_state_floats,
    .scratch_floats = aaren_scratch_floats,
    .step = aaren_step,
    .state_desc = "H*(D/H + 2) floats per sequence (m, u, w per head), constant in length",
    .checks = {.variants = CHECK_VARIANTS},
};
