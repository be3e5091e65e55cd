/* retnet: multi-scale retention (Sun et al. 2023, "Retentive Network: A
 * Successor to Transformer for Large Language Models").
 *
 *   [q | k | v] = x W_qkv^T,  z = x W_g^T      x: [B, T, D], heads H, dk = dv = D/H
 *   q, k <- RoPE(q, k);  q <- q / sqrt(dk)
 *   S_t = gamma_h S_{t-1} + k_t v_t^T,  o_t = S_t^T q_t,  gamma_h = 1 - 2^(-5-h)
 *   y = (RMSNorm(o per head) w * swish(z)) W_out^T
 *
 * This is the recurrent form of the paper's parallel retention
 * (s Q K^T . D) V with D_nm = gamma^(n-m); the rotation stands in for its
 * xPos and is always on (retention's relative position), whatever `pos`
 * says. Each head has its own fixed decay, so heads see different spans.
 * With causal = false the decay is symmetric, D_nm = gamma^|n-m| over the
 * whole sequence (sl_recurrence_bidir), as in RetNet-style encoders; there
 * is then no step.
 * Parameters: qkv.weight [3D, D], gate.weight [D, D], norm.weight [dk],
 * out.weight [D, D]. The forward is linear -> rope -> the chunked
 * recurrence op (reading q / sqrt(dk), k and v in place from the projection)
 * -> gated RMSNorm -> linear. State: one [H, dk, dv]
 * matrix per sequence, whatever the length. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/gated_norm.h"
#include "ops/ops.h"
#include "ops/recurrence.h"

typedef struct retnet {
    sl_tensor *wqkv, *wg, *wnorm, *wout;
    int64_t D, H, dk, C;
    float eps, theta;
    bool causal;
    float log_gamma[]; /* [H]; kept here because the op's backward reads it */
} retnet;

static sl_status retnet_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    retnet *a = sl_mixer_impl(m, sizeof *a + (size_t)c->n_heads * sizeof(float));
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->dk = a->D / a->H;
    a->C = c->chunk_size;
    a->eps = (float)c->norm_eps;
    a->theta = (float)c->rope_theta;
    a->causal = c->causal;
    for (int64_t h = 0; h < a->H; h++) a->log_gamma[h] = (float)log1p(-exp2(-5.0 - (double)h));
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wqkv = SL_PARAM(p, "qkv.weight", SL_INIT_NORMAL, std, true, 3 * a->D, a->D);
    a->wg = SL_PARAM(p, "gate.weight", SL_INIT_NORMAL, std, true, a->D, a->D);
    a->wnorm = SL_PARAM(p, "norm.weight", SL_INIT_ONES, 0, false, a->dk);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    return SL_OK;
}

static int64_t retnet_state_floats(const sl_mixer *m, int64_t max_len)
{
    const retnet *a = m->impl;
    return a->H * a->dk * a->dk;
}

static int64_t retnet_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 6 * m->dims.d_model;
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, H, dk, dk] or NULL, rows = B or
 * the packed sequences. */
static sl_tensor *retnet_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                                 const sl_seqs *seqs)
{
    retnet *a = m->impl;
    const int64_t rows = sl_seq_count(seqs, x->shape[0]), D = a->D;
    sl_tensor *qkv =
        sl_rope_qk(ctx, sl_linear(ctx, x, a->wqkv, NULL), a->H, a->H, pos, a->theta, seqs);
    const sl_rec_in in = {.q = qkv, .k = qkv, .v = qkv, .k_off = D, .v_off = 2 * D,
                          .dk = a->dk, .dv = a->dk, .q_scale = 1.0f / sqrtf((float)a->dk)};
    sl_tensor *z = sl_linear(ctx, x, a->wg, NULL);
    if (!a->causal) {
        sl_require(!state, "retnet", "no state in bidirectional mode");
        sl_tensor *o = sl_recurrence_bidir(ctx, &in, a->log_gamma, a->H, a->C, seqs);
        sl_tensor *n = sl_gated_rmsnorm(ctx, o, z, 0, a->wnorm, a->H, a->eps);
        return sl_linear(ctx, n, a->wout, NULL);
    }
    const int64_t sf = a->H * a->dk * a->dk;
    const sl_state_part sp = sl_state_take(ctx, state, sf, 0, sf, rows, pos);
    sl_tensor *o =
        sl_recurrence_in(ctx, &in, NULL, a->log_gamma, sp.s0, a->H, a->C, sp.s_final, seqs);
    sl_state_put(&sp);
    return sl_linear(ctx, sl_gated_rmsnorm(ctx, o, z, 0, a->wnorm, a->H, a->eps), a->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [H, dk, dk]; scratch: 6D. */
static void retnet_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                        float *scratch)
{
    retnet *a = m->impl;
    const int64_t D = a->D;
    float *qkv = scratch, *z = scratch + 3 * D, *o = z + D, *n = o + D;
    sl_gemm(false, true, 1, 3 * D, D, x_t, a->wqkv->data, 0.0f, qkv);
    sl_rope_apply(qkv, a->H, a->dk, pos, a->theta);
    sl_rope_apply(qkv + D, a->H, a->dk, pos, a->theta);
    /* The forward's order of operations: scale after the rotation. */
    for (int64_t i = 0; i < D; i++) qkv[i] *= 1.0f / sqrtf((float)a->dk);
    sl_gemm(false, true, 1, D, D, x_t, a->wg->data, 0.0f, z);
    sl_recurrence_step(state, qkv, qkv + D, qkv + 2 * D, NULL, 0, a->log_gamma, a->H, a->dk, a->dk,
                       o);
    sl_gated_rmsnorm_row(o, z, a->wnorm->data, a->H, a->dk, a->eps, n, NULL);
    sl_gemm(false, true, 1, D, D, n, a->wout->data, 0.0f, y_t);
}

static const char *const CHECK_VARIANTS[] = {"", "causal=false", NULL};

const sl_mixer_vtable sl_mixer_retnet = {
    .name = "retnet",
    .paper =
        "Sun et al. 2023, Retentive Network: A Successor to Transformer for Large Language Models",
    .equation = "S_t = gamma_h S_{t-1} + k_t v_t^T,  o_t = S_t^T q_t,  gamma_h = 1 - 2^(-5-h)",
    .init = retnet_init,
    .forward = retnet_forward,
    .state_floats = retnet_state_floats,
    .scratch_floats = retnet_scratch_floats,
    .step = retnet_step,
    .state_desc = "H*dk*dk floats per sequence (D^2/H), constant in length",
    .bidirectional = true,
    .checks = {.variants = CHECK_VARIANTS},
};
