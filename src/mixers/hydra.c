/* hydra: the quasiseparable matrix mixer (Hwang, Lahoti, Dao & Gu 2024,
 * "Hydra: Bidirectional State Space Models Through Generalized Matrix
 * Mixers"), non-causal only. Per head h (P = D/H channels, state N = P):
 *
 *   [z | x | B_f | C_f | B_b | C_b | dt_f | dt_b] = u W_in^T      u: [B, T, D]
 *   x, B_f, C_f, B_b, C_b <- silu(dwconv(...))     non-causal depthwise conv, K taps
 *   SSD_d(x)_t = C_t^T H_t,  H_t = exp(dt_t A_h) H_{t-1} + B_t (dt_t x_t)^T
 *                                                  with direction d's B, C, dt
 *   y = shift(SSD_f(x)) + flip(shift(SSD_b(flip x))) + x * (x W_D^T + D)
 *   out = (RMSNorm(y) w * silu(z)) W_out^T
 *
 * shift moves a sequence one token later (zero at its first token), so the
 * two SSD terms fill the strictly lower and strictly upper triangles of
 * the mixing matrix and the diagonal is the D term's alone (the paper's
 * eq. 9; the reference code rolls the SSD output by one). The directions
 * share x, the conv, A_log and dt_bias, and have their own B, C and dt
 * projections, as the reference code (goombalab/hydra, modules/hydra.py)
 * does; the diagonal is input-dependent there too: D_h + (x W_D^T)_h.
 * Differences from the reference, kept from this repo's mamba2: expand 1
 * (x has D channels), B and C per head (ngroups = H) with N = P, so the
 * SSD is the recurrence op as mamba2 uses it. The norm is the reference's
 * norm_before_gate = True, one group over all D channels: sl_gated_rmsnorm.
 *
 * Parameters: in.weight [6D + 2H, D], conv.weight [5D, K], conv.bias [5D]
 * (absent when conv_kernel = 0), A_log [H] (0: A = -1 as the reference
 * initialises it), dt_bias [H] (softplus^-1 of dt log-uniform in
 * [1e-3, 0.1)), D [H] (ones), fc_D.weight [H, D] (uniform 1/sqrt(D)),
 * norm.weight [D], out.weight [D, D]. No state, no step. */
#include <string.h>

#include "mixers/mixer.h"
#include "ops/columns.h"
#include "ops/dwconv.h"
#include "ops/flip_time.h"
#include "ops/gate.h"
#include "ops/gated_norm.h"
#include "ops/mul_heads.h"
#include "ops/ops.h"
#include "ops/recurrence.h"

typedef struct hydra {
    sl_tensor *win, *conv, *convb, *alog, *dtb, *dskip, *wd, *wnorm, *wout;
    int64_t D, H, P, C;
    float eps;
} hydra;

static sl_status hydra_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    const int64_t K = sl_opt_int(&m->opts, "conv_kernel");
    if (K > 0 && K % 2 == 0)
        return sl_fail(SL_ERR_CONFIG,
                       "mixer 'hydra' of layer %lld: option 'conv_kernel' = %lld must be odd "
                       "(the conv is centred on its token) or 0",
                       (long long)m->layer, (long long)K);
    hydra *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    const int64_t D = c->d_model, H = c->n_heads;
    a->D = D;
    a->H = H;
    a->P = D / H;
    a->C = c->chunk_size;
    a->eps = (float)c->norm_eps;
    float std = (float)c->init_std;
    a->win = SL_PARAM(p, "in.weight", SL_INIT_NORMAL, std, true, 6 * D + 2 * H, D);
    if (K > 0) {
        a->conv = SL_PARAM(p, "conv.weight", SL_INIT_UNIFORM, 1.0f / sqrtf((float)K), false,
                           5 * D, K);
        a->convb = SL_PARAM(p, "conv.bias", SL_INIT_ZEROS, 0, false, 5 * D);
    }
    a->alog = SL_PARAM(p, "A_log", SL_INIT_ZEROS, 0, false, H);
    a->dtb = SL_PARAM_RANGE(p, "dt_bias", SL_INIT_DT_BIAS, 1e-3f, 0.1f, false, H);
    a->dskip = SL_PARAM(p, "D", SL_INIT_ONES, 0, false, H);
    a->wd = SL_PARAM(p, "fc_D.weight", SL_INIT_UNIFORM, 1.0f / sqrtf((float)D), true, H, D);
    a->wnorm = SL_PARAM(p, "norm.weight", SL_INIT_ONES, 0, false, D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, sl_mixer_out_std(c), true, D, D);
    return SL_OK;
}

/* One direction's SSD over xbc's columns (B at k_off, C at q_off) with the
 * raw dt projection dt_in: [B, T, H], shifted one token later. */
static sl_tensor *ssd_shifted(sl_ctx *ctx, hydra *a, sl_tensor *xbc, int64_t k_off, int64_t q_off,
                              sl_tensor *x, sl_tensor *dt_in, const sl_seqs *seqs)
{
    sl_tensor *alog0 = SL_NEW(ctx, a->H);
    memset(alog0->data, 0, (size_t)a->H * sizeof(float));
    sl_tensor *g = sl_decay_gate(ctx, dt_in, a->alog, a->dtb); /* dt A */
    sl_tensor *dt = sl_scale(ctx, sl_decay_gate(ctx, dt_in, alog0, a->dtb), -1.0f);
    const sl_rec_in in = {.q = xbc, .k = xbc, .v = sl_mul_heads(ctx, x, dt), .q_off = q_off,
                          .k_off = k_off, .dk = a->P, .dv = a->P};
    return sl_shift_time(ctx, sl_recurrence_in(ctx, &in, g, NULL, NULL, a->H, a->C, NULL, seqs),
                         seqs);
}

/* u: [B, T, D] -> [B, T, D]; no state (the mixer is non-causal only). */
static sl_tensor *hydra_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *u, float *state, int64_t pos,
                                const sl_seqs *seqs)
{
    hydra *a = m->impl;
    const int64_t D = a->D, H = a->H;
    sl_require(!state, "hydra", "no state: the mixer is non-causal only");
    sl_tensor *proj = sl_linear(ctx, u, a->win, NULL);   /* [B, T, 6D + 2H] */
    sl_tensor *xbc = sl_columns(ctx, proj, D, 5 * D);    /* x | B_f | C_f | B_b | C_b */
    if (a->conv) xbc = sl_dwconv(ctx, xbc, a->conv, a->convb, seqs);
    xbc = sl_silu(ctx, xbc);
    sl_tensor *x = sl_columns(ctx, xbc, 0, D);
    sl_tensor *fwd = ssd_shifted(ctx, a, xbc, D, 2 * D, x, sl_columns(ctx, proj, 6 * D, H), seqs);
    /* The backward direction: the same SSD over reversed sequences. */
    sl_tensor *rev = ssd_shifted(ctx, a, sl_flip_time(ctx, xbc, seqs), 3 * D, 4 * D,
                                 sl_flip_time(ctx, x, seqs),
                                 sl_flip_time(ctx, sl_columns(ctx, proj, 6 * D + H, H), seqs),
                                 seqs);
    sl_tensor *diag = sl_mul_heads(ctx, x, sl_linear(ctx, x, a->wd, a->dskip));
    sl_tensor *y = sl_add(ctx, sl_add(ctx, fwd, sl_flip_time(ctx, rev, seqs)), diag);
    y = sl_gated_rmsnorm(ctx, y, proj, 0, a->wnorm, 1, a->eps);
    return sl_linear(ctx, y, a->wout, NULL);
}

static const sl_option OPTIONS[] = {
    {"conv_kernel", SL_OPT_INT, "7", 0, 63, NULL,
     "taps of the non-causal depthwise conv before the SSDs (odd; 0 = none)"},
};

/* The reference's conv of 7 (wider than the 5-token sequences), a short
 * one, and none. */
static const char *const CHECK_VARIANTS[] = {"", "conv_kernel=3", "conv_kernel=0", NULL};

const sl_mixer_vtable sl_mixer_hydra = {
    .name = "hydra",
    .paper = "Hwang et al. 2024, Hydra: Bidirectional State Space Models Through Generalized "
             "Matrix Mixers",
    .equation = "y = shift(SSD_f(x)) + flip(shift(SSD_b(flip x))) + x (x W_D^T + D),"
                "  out = (RMSNorm(y) silu(z)) W_out^T",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = hydra_init,
    .forward = hydra_forward,
    .state_desc = "none (non-causal only: no step)",
    .noncausal_only = true,
    .checks = {.variants = CHECK_VARIANTS},
};
