/* mlstm: the matrix-memory cell of xLSTM (Beck et al. 2024, "xLSTM:
 * Extended Long Short-Term Memory"), as a sequence mixer.
 *
 *   [q | k | v] = x W_qkv^T,  k <- k / sqrt(dk)        x: [B, T, D], heads H, dk = dv = D/H
 *   [it | ft] = x W_gate^T + b_gate + [0 | c],  lf = logsigmoid(ft)     (one of each per head)
 *   m_t = max(lf_t + m_{t-1}, it_t)
 *   C_t = e^(lf_t + m_{t-1} - m_t) C_{t-1} + e^(it_t - m_t) k_t v_t^T
 *   n_t = e^(lf_t + m_{t-1} - m_t) n_{t-1} + e^(it_t - m_t) k_t
 *   h_t = C_t^T q_t / max(|n_t . q_t|, e^(-m_t))
 *   y = (RMSNorm(h per head) w * sigmoid(x W_o^T)) W_out^T
 *
 * The input gate is exponential (e^it) and the forget gate a sigmoid in log
 * space; m is the paper's stabiliser (src/ops/mlstm.h: it cancels exactly,
 * so it changes no output). The forget gate starts open, as in the paper's
 * code (forget bias linspace(3, 6) over the heads): the fixed offset
 * c_h = 3 + 3 h / (H - 1) (c = 3 when H = 1) is added in the forward and
 * gate.bias, initialised to zeros, holds the learned change from it. The
 * bias has no weight decay and AdamW's steps do not depend on where a
 * parameter starts, so this trains exactly as a bias initialised to c. The
 * gate weights are drawn N(0, init_std) like every other projection here
 * (the paper's code starts them at zero).
 *
 * Parameters: qkv.weight [3D, D], gate.weight [2H, D] (rows: H input gates,
 * then H forget gates), gate.bias [2H], norm.weight [dk], ogate.weight [D, D],
 * out.weight [D, D]. The forward is linear -> the chunked mLSTM op, which
 * reads q, k and v in place as column blocks of the projection (k scaled by
 * 1/sqrt(dk) as it is read: no copies), with the gates' columns (the forget
 * half through logsigmoid) -> per-head RMSNorm -> times sigmoid(x W_o^T) ->
 * linear. State: (C [dk, dv], n [dk], m) per head and sequence,
 * H * (dk*dk + dk + 1) floats, whatever the length. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/columns.h"
#include "ops/gate.h"
#include "ops/gate_maps.h"
#include "ops/mlstm.h"
#include "ops/norm.h"
#include "ops/ops.h"

/* The forget gate's bias offsets run linearly from FGATE_LO to FGATE_HI over
 * the heads: sigmoid(3) = 0.95 .. sigmoid(6) = 0.998 at initialisation. */
#define FGATE_LO 3.0f
#define FGATE_HI 6.0f

typedef struct mlstm {
    sl_tensor *wqkv, *wgate, *bgate, *wnorm, *wog, *wout;
    int64_t D, H, dk, C;
    float eps;
    float offset[]; /* [2H]: 0 for the input gates, the forget offsets c_h */
} mlstm;

static sl_status mlstm_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    mlstm *a = sl_mixer_impl(m, sizeof *a + (size_t)(2 * c->n_heads) * sizeof(float));
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->dk = a->D / a->H;
    a->C = c->chunk_size;
    a->eps = (float)c->norm_eps;
    for (int64_t h = 0; h < a->H; h++)
        a->offset[a->H + h] =
            a->H > 1 ? FGATE_LO + (FGATE_HI - FGATE_LO) * (float)h / (float)(a->H - 1) : FGATE_LO;
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wqkv = SL_PARAM(p, "qkv.weight", SL_INIT_NORMAL, std, true, 3 * a->D, a->D);
    a->wgate = SL_PARAM(p, "gate.weight", SL_INIT_NORMAL, std, true, 2 * a->H, a->D);
    a->bgate = SL_PARAM(p, "gate.bias", SL_INIT_ZEROS, 0, false, 2 * a->H);
    a->wnorm = SL_PARAM(p, "norm.weight", SL_INIT_ONES, 0, false, a->dk);
    a->wog = SL_PARAM(p, "ogate.weight", SL_INIT_NORMAL, std, true, a->D, a->D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    return SL_OK;
}

static int64_t mlstm_state_floats(const sl_mixer *m, int64_t max_len)
{
    const mlstm *a = m->impl;
    return a->H * sl_mlstm_state_floats(a->dk, a->dk);
}

static int64_t mlstm_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 6 * m->dims.d_model + 2 * m->dims.n_heads;
}

/* x: [B, T, D] (or a packed [1, T, D] with seqs) -> [B, T, D]; state:
 * [rows, H, dk*dk + dk + 1] or NULL. */
static sl_tensor *mlstm_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                                const sl_seqs *seqs)
{
    mlstm *a = m->impl;
    const int64_t D = a->D, H = a->H, B = x->shape[0], T = x->shape[1];
    /* qkv: [B, T, 3D]; the op reads its q, k, v blocks in place. */
    sl_tensor *qkv = sl_linear(ctx, x, a->wqkv, NULL);
    const sl_rec_in in = {.q = qkv,
                          .k = qkv,
                          .v = qkv,
                          .q_off = 0,
                          .k_off = D,
                          .v_off = 2 * D,
                          .dk = a->dk,
                          .dv = a->dk,
                          .map = SL_REC_PLAIN,
                          .k_scale = 1.0f / sqrtf((float)a->dk)};
    sl_tensor *off = SL_NEW(ctx, 2 * H);
    memcpy(off->data, a->offset, (size_t)(2 * H) * sizeof(float));
    sl_tensor *gates = sl_linear(ctx, x, a->wgate, sl_add(ctx, a->bgate, off));
    sl_tensor *ig = sl_columns(ctx, gates, 0, H);
    sl_tensor *lf = sl_logsigmoid(ctx, sl_columns(ctx, gates, H, H));
    const int64_t sf = H * sl_mlstm_state_floats(a->dk, a->dk);
    const sl_state_part sp = sl_state_take(ctx, state, sf, 0, sf, sl_seq_count(seqs, B), pos);
    sl_tensor *h = sl_mlstm_in(ctx, &in, ig, lf, sp.s0, H, a->C, sp.s_final, seqs);
    sl_state_put(&sp);
    sl_tensor *n = sl_rmsnorm(ctx, SL_VIEW(ctx, h, B, T, H, a->dk), a->wnorm, a->eps);
    sl_tensor *o =
        sl_mul(ctx, SL_VIEW(ctx, n, B, T, D), sl_sigmoid(ctx, sl_linear(ctx, x, a->wog, NULL)));
    return sl_linear(ctx, o, a->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [H, dk*dk + dk + 1]; scratch: 6D + 2H. */
static void mlstm_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                       float *scratch)
{
    mlstm *a = m->impl;
    const int64_t D = a->D, H = a->H, dk = a->dk;
    float *qkv = scratch, *g = qkv + 3 * D, *h = g + 2 * H, *og = h + D, *n = og + D;
    if (pos == 0) sl_mlstm_state_fresh(state, H, dk, dk);
    sl_gemm(false, true, 1, 3 * D, D, x_t, a->wqkv->data, 0.0f, qkv);
    /* The forward's order of operations: scale after the projection. */
    for (int64_t i = 0; i < D; i++) qkv[D + i] *= 1.0f / sqrtf((float)dk);
    sl_gemm(false, true, 1, 2 * H, D, x_t, a->wgate->data, 0.0f, g);
    for (int64_t i = 0; i < 2 * H; i++) g[i] += a->bgate->data[i] + a->offset[i];
    for (int64_t i = H; i < 2 * H; i++) g[i] = sl_logsigmoidf(g[i]);
    sl_mlstm_step(state, qkv, qkv + D, qkv + 2 * D, g, g + H, H, dk, dk, h);
    sl_gemm(false, true, 1, D, D, x_t, a->wog->data, 0.0f, og);
    for (int64_t hh = 0; hh < H; hh++)
        sl_rmsnorm_row(h + hh * dk, a->wnorm->data, n + hh * dk, dk, a->eps);
    for (int64_t j = 0; j < D; j++) n[j] *= sl_sigmoidf(og[j]);
    sl_gemm(false, true, 1, D, D, n, a->wout->data, 0.0f, y_t);
}

const sl_mixer_vtable sl_mixer_mlstm = {
    .name = "mlstm",
    .paper = "Beck et al. 2024, xLSTM: Extended Long Short-Term Memory",
    .equation = "C_t = f_t C_{t-1} + i_t k_t v_t^T,  h_t = C_t^T q_t / max(|n_t . q_t|, e^(-m_t))",
    .init = mlstm_init,
    .forward = mlstm_forward,
    .state_floats = mlstm_state_floats,
    .scratch_floats = mlstm_scratch_floats,
    .step = mlstm_step,
    .state_desc =
        "H*(dk*dk + dk + 1) floats per sequence (C, n and m per head), constant in length",
    .checks = {.tol_packed = 1e-5},
};
