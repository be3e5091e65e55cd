/* gla: gated linear attention (Yang et al. 2023, "Gated Linear Attention
 * Transformers with Hardware-Efficient Training").
 *
 *   [q | k | v | z] = x W_qkvz^T                 x: [B, T, D], heads H, dk = dv = D/H
 *   gk = logsigmoid((x W_1^T) W_2^T + b) / 16     W_1: [16, D], W_2: [H*dk, 16] (rank 16)
 *   S_t = diag(exp(gk_t)) S_{t-1} + k_t v_t^T,  o_t = S_t^T (q_t / sqrt(dk))
 *   y = (RMSNorm(o per head) w * silu(z)) W_out^T
 *
 * The 1/16 keeps the gates near 1 (slow forgetting) at initialisation, as in
 * the paper. Parameters: qkvz.weight [4D, D], gate1.weight [16, D],
 * gate2.weight [D, 16], gate2.bias [D], norm.weight [dk], out.weight [D, D].
 * The forward is linear -> logsigmoid gates -> the chunked recurrence op
 * (reading q / sqrt(dk), k and v in place from the projection) -> gated
 * RMSNorm of it and the z columns -> linear. State: one [H, dk, dv] matrix
 * per sequence, whatever the length. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/gate_maps.h"
#include "ops/gated_norm.h"
#include "ops/ops.h"
#include "ops/recurrence.h"

/* Rank of the gate projection and the gate's logit normaliser (paper, 4.4). */
#define GATE_RANK 16
#define GATE_NORM 16.0f

typedef struct gla {
    sl_tensor *wqkvz, *w1, *w2, *b2, *wnorm, *wout;
    int64_t D, H, dk, C;
    float eps;
} gla;

static sl_status gla_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    gla *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->dk = a->D / a->H;
    a->C = c->chunk_size;
    a->eps = (float)c->norm_eps;
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wqkvz = SL_PARAM(p, "qkvz.weight", SL_INIT_NORMAL, std, true, 4 * a->D, a->D);
    a->w1 = SL_PARAM(p, "gate1.weight", SL_INIT_NORMAL, std, true, GATE_RANK, a->D);
    a->w2 = SL_PARAM(p, "gate2.weight", SL_INIT_NORMAL, std, true, a->D, GATE_RANK);
    a->b2 = SL_PARAM(p, "gate2.bias", SL_INIT_ZEROS, 0, false, a->D);
    a->wnorm = SL_PARAM(p, "norm.weight", SL_INIT_ONES, 0, false, a->dk);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    return SL_OK;
}

static int64_t gla_state_floats(const sl_mixer *m, int64_t max_len)
{
    const gla *a = m->impl;
    return a->H * a->dk * a->dk;
}

static int64_t gla_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 7 * m->dims.d_model + GATE_RANK;
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, H, dk, dk] or NULL, rows = B or
 * the packed sequences. */
static sl_tensor *gla_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                              const sl_seqs *seqs)
{
    gla *a = m->impl;
    const int64_t rows = sl_seq_count(seqs, x->shape[0]), D = a->D;
    sl_tensor *qkvz = sl_linear(ctx, x, a->wqkvz, NULL);
    const sl_rec_in in = {.q = qkvz, .k = qkvz, .v = qkvz, .k_off = D, .v_off = 2 * D,
                          .dk = a->dk, .dv = a->dk, .q_scale = 1.0f / sqrtf((float)a->dk)};
    sl_tensor *logit = sl_linear(ctx, sl_linear(ctx, x, a->w1, NULL), a->w2, a->b2);
    sl_tensor *gk = sl_scale(ctx, sl_logsigmoid(ctx, logit), 1.0f / GATE_NORM);
    const int64_t sf = a->H * a->dk * a->dk;
    const sl_state_part sp = sl_state_take(ctx, state, sf, 0, sf, rows, pos);
    sl_tensor *o = sl_recurrence_in(ctx, &in, gk, NULL, sp.s0, a->H, a->C, sp.s_final, seqs);
    sl_state_put(&sp);
    sl_tensor *n = sl_gated_rmsnorm(ctx, o, qkvz, 3 * D, a->wnorm, a->H, a->eps);
    return sl_linear(ctx, n, a->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [H, dk, dk]; scratch: 7D + 16. */
static void gla_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                     float *scratch)
{
    gla *a = m->impl;
    const int64_t D = a->D;
    float *qkvz = scratch, *gk = scratch + 4 * D, *o = gk + D, *n = o + D, *h1 = n + D;
    sl_gemm(false, true, 1, 4 * D, D, x_t, a->wqkvz->data, 0.0f, qkvz);
    /* The forward's order of operations: scale after the projection. */
    for (int64_t i = 0; i < D; i++) qkvz[i] *= 1.0f / sqrtf((float)a->dk);
    sl_gemm(false, true, 1, GATE_RANK, D, x_t, a->w1->data, 0.0f, h1);
    sl_gemm(false, true, 1, D, GATE_RANK, h1, a->w2->data, 0.0f, gk);
    for (int64_t i = 0; i < D; i++)
        gk[i] = sl_logsigmoidf(gk[i] + a->b2->data[i]) * (1.0f / GATE_NORM);
    sl_recurrence_step(state, qkvz, qkvz + D, qkvz + 2 * D, gk, a->dk, NULL, a->H, a->dk, a->dk, o);
    sl_gated_rmsnorm_row(o, qkvz + 3 * D, a->wnorm->data, a->H, a->dk, a->eps, n, NULL);
    sl_gemm(false, true, 1, D, D, n, a->wout->data, 0.0f, y_t);
}

const sl_mixer_vtable sl_mixer_gla = {
    .name = "gla",
    .paper =
        "Yang et al. 2023, Gated Linear Attention Transformers with Hardware-Efficient Training",
    .equation = "S_t = diag(exp(gk_t)) S_{t-1} + k_t v_t^T,  o_t = S_t^T q_t / sqrt(dk)",
    .init = gla_init,
    .forward = gla_forward,
    .state_floats = gla_state_floats,
    .scratch_floats = gla_scratch_floats,
    .step = gla_step,
    .state_desc = "H*dk*dk floats per sequence (D^2/H), constant in length",
};
