/* hgrn: hierarchically gated linear recurrence (Qin, Yang, Zhong 2023,
 * "Hierarchically Gated Recurrent Neural Network for Sequence Modeling",
 * section 3, in its real-valued form as flash-linear-attention's HGRN layer).
 *
 *   i = x W_i^T,  p = x W_f^T,  z = x W_g^T          x: [B, T, D], per channel
 *   f_t = lb + (1 - lb) sigmoid(p_t)                  forget gate in [lb, 1)
 *   h_t = f_t . h_{t-1} + (1 - f_t) . silu(i_t)
 *   y = (RMSNorm(h) w * silu(z)) W_out^T
 *
 * The lower bound lb grows with depth, so lower layers may forget quickly
 * (local patterns) and upper layers must keep long memory. The paper
 * learns lb = cumsum(softmax(Gamma))_l - softmax(Gamma)_0 over the layers
 * (a [L, D] parameter shared by the model); a mixer sees only its
 * own layer, so lb is that scheme at its initialisation (Gamma = 0, where
 * the softmax is uniform), fixed: lb = lower_bound_max * layer / n_layers.
 * With the default lower_bound_max = 1 this is the paper's schedule,
 * 0 at the bottom and (L-1)/L at the top. The complement
 * 1 - f = (1 - lb) sigmoid(-p) is computed from p directly, not as 1 - f,
 * which would lose the digits of a gate near 1.
 * Parameters: i.weight, f.weight, g.weight [D, D], norm.weight [D],
 * out.weight [D, D]. The forward is linears -> gates -> the diagonal scan
 * op -> gated RMSNorm over all D channels -> linear. State: h, D floats
 * per sequence. */
#include "mixers/mixer.h"
#include "ops/diag_scan.h"
#include "ops/gate.h"
#include "ops/gated_norm.h"
#include "ops/ops.h"

typedef struct hgrn {
    sl_tensor *wi, *wf, *wg, *wnorm, *wout;
    int64_t D;
    float lb, eps;
} hgrn;

static sl_status hgrn_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    hgrn *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->eps = (float)c->norm_eps;
    a->lb = (float)(sl_opt_float(&m->opts, "lower_bound_max") * (double)m->layer /
                    (double)c->n_layers);
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wi = SL_PARAM(p, "i.weight", SL_INIT_NORMAL, std, true, a->D, a->D);
    a->wf = SL_PARAM(p, "f.weight", SL_INIT_NORMAL, std, true, a->D, a->D);
    a->wg = SL_PARAM(p, "g.weight", SL_INIT_NORMAL, std, true, a->D, a->D);
    a->wnorm = SL_PARAM(p, "norm.weight", SL_INIT_ONES, 0, false, a->D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    return SL_OK;
}

static int64_t hgrn_state_floats(const sl_mixer *m, int64_t max_len) { return m->dims.d_model; }

static int64_t hgrn_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 5 * m->dims.d_model;
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, D] or NULL, rows = B or the
 * packed sequences. */
static sl_tensor *hgrn_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                               const sl_seqs *seqs)
{
    hgrn *a = m->impl;
    const int64_t rows = sl_seq_count(seqs, x->shape[0]);
    sl_tensor *u = sl_silu(ctx, sl_linear(ctx, x, a->wi, NULL));
    sl_tensor *p = sl_linear(ctx, x, a->wf, NULL);
    sl_tensor *f = sl_affine_sigmoid(ctx, p, a->lb, 1.0f - a->lb, 1.0f);
    sl_tensor *in = sl_mul(ctx, u, sl_affine_sigmoid(ctx, p, 0.0f, 1.0f - a->lb, -1.0f));
    const sl_state_part sp = sl_state_take(ctx, state, a->D, 0, a->D, rows, pos);
    sl_tensor *h = sl_diag_scan(ctx, f, in, sp.s0, sp.s_final, seqs);
    sl_state_put(&sp);
    sl_tensor *z = sl_linear(ctx, x, a->wg, NULL);
    return sl_linear(ctx, sl_gated_rmsnorm(ctx, h, z, 0, a->wnorm, 1, a->eps), a->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [D]; scratch: 5D. */
static void hgrn_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                      float *scratch)
{
    hgrn *a = m->impl;
    const int64_t D = a->D;
    float *u = scratch, *p = u + D, *f = p + D, *z = f + D, *n = z + D;
    sl_gemm(false, true, 1, D, D, x_t, a->wi->data, 0.0f, u);
    sl_gemm(false, true, 1, D, D, x_t, a->wf->data, 0.0f, p);
    sl_gemm(false, true, 1, D, D, x_t, a->wg->data, 0.0f, z);
    for (int64_t c = 0; c < D; c++) {
        f[c] = sl_affine_sigmoidf(p[c], a->lb, 1.0f - a->lb, 1.0f);
        u[c] = sl_siluf(u[c]) * sl_affine_sigmoidf(p[c], 0.0f, 1.0f - a->lb, -1.0f);
    }
    sl_diag_scan_step(state, f, u, D);
    sl_gated_rmsnorm_row(state, z, a->wnorm->data, 1, D, a->eps, n, NULL);
    sl_gemm(false, true, 1, D, D, n, a->wout->data, 0.0f, y_t);
}

static const sl_option OPTIONS[] = {
    {"lower_bound_max", SL_OPT_FLOAT, "1", 0, 1, NULL,
     "forget-gate lower bound lb = lower_bound_max * layer / n_layers (0 at the bottom)"},
};

/* The bottom layer (lb = 0), the middle of 2, the top of 4 (lb = 3/4, gates
 * near 1) and a reduced bound. */
static const char *const CHECK_VARIANTS[] = {
    "", "layer=1", "n_layers=4,layer=3", "n_layers=4,layer=2,lower_bound_max=0.5", NULL};

const sl_mixer_vtable sl_mixer_hgrn = {
    .name = "hgrn",
    .paper = "Qin et al. 2023, Hierarchically Gated Recurrent Neural Network for Sequence Modeling",
    .equation = "f_t = lb + (1 - lb) sigmoid(x W_f^T),  h_t = f_t h_{t-1} + (1 - f_t) silu(x W_i^T),"
                "  y = (RMSNorm(h) silu(x W_g^T)) W_out^T",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = hgrn_init,
    .forward = hgrn_forward,
    .state_floats = hgrn_state_floats,
    .scratch_floats = hgrn_scratch_floats,
    .step = hgrn_step,
    .state_desc = "D floats per sequence (h), constant in length",
    .checks = {.variants = CHECK_VARIANTS},
};
