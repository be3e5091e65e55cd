/* mamba2: the state space dual (SSD) layer (Dao & Gu 2024, "Transformers are
 * SSMs: Generalized Models and Efficient Algorithms Through Structured State
 * Space Duality", Mamba-2). Per head h, with x_t in R^P and B_t, C_t in R^N:
 *
 *   [z | x | B | C | dt_in] = u W_in^T           u: [B, T, D], heads H
 *   x, B, C <- silu(shortconv(x, B, C))         one depthwise conv, kernel conv_size
 *   dt_t = softplus(dt_in_t + dt_bias_h),  A_h = -exp(A_log_h)
 *   H_t = exp(dt_t A_h) H_{t-1} + B_t (dt_t x_t)^T,   y_t = H_t^T C_t + D_h x_t
 *   out = RMSNorm(y * silu(z)) w W_out^T        (gate, then one norm over D)
 *
 * Here N = P = D/H (the paper's state size N is a free choice; tying it to
 * the head dim keeps the recurrence square), B and C are per head
 * (ngroups = H). The output norm is the reference code's default
 * (norm_before_gate = False, one group): gate first, then RMSNorm over all
 * D channels. The SSD step is
 * the recurrence op with a per-token per-head log decay: q = C, k = B,
 * v = dt * x, g = dt * A. dt itself is sl_decay_gate with A_log = 0 (which
 * gives -dt); dt and D scale each head's P channels through sl_mul_heads:
 * the exact form, no simplification of the input scaling.
 *
 * Parameters: in.weight [4D + H, D], conv.weight [3D, K], conv.bias [3D]
 * (both absent when conv_size = 0), A_log [H], dt_bias [H], D [H],
 * norm.weight [D], out.weight [D, D]. A_log and dt_bias start as in the
 * reference code (state-spaces/mamba, mamba_ssm/modules/mamba2.py:
 * A_init_range (1, 16), dt_min 1e-3, dt_max 0.1): A_log = log(A), A uniform
 * in [1, 16], and softplus(dt_bias) = dt log-uniform in [1e-3, 0.1); D at 1.
 * step() state per sequence: the conv rows [K-1, 3D], then the matrices
 * H [H, P, P]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/columns.h"
#include "ops/fastmath.h"
#include "ops/gate.h"
#include "ops/mul_heads.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "ops/recurrence.h"
#include "ops/shortconv.h"

typedef struct mamba2 {
    sl_tensor *win, *conv, *convb, *alog, *dtb, *dskip, *wnorm, *wout;
    int64_t D, H, P, K, C;
    float eps;
} mamba2;

/* Floats of the conv state per sequence: K-1 rows of x | B | C. */
static int64_t conv_floats(const mamba2 *a) { return a->K > 0 ? (a->K - 1) * 3 * a->D : 0; }

static sl_status mamba2_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    mamba2 *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->P = a->D / a->H;
    a->K = c->conv_size;
    a->C = c->chunk_size;
    a->eps = (float)c->norm_eps;
    /* PyTorch's Conv1d bound 1/sqrt(K); A_log and dt_bias Mamba-2's (the
     * header). */
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    int64_t D = a->D, H = a->H;
    a->win = SL_PARAM(p, "in.weight", SL_INIT_NORMAL, std, true, 4 * D + H, D);
    if (a->K > 0) {
        a->conv = SL_PARAM(p, "conv.weight", SL_INIT_UNIFORM, 1.0f / sqrtf((float)a->K), false,
                           3 * D, a->K);
        a->convb = SL_PARAM(p, "conv.bias", SL_INIT_ZEROS, 0, false, 3 * D);
    }
    a->alog = SL_PARAM_RANGE(p, "A_log", SL_INIT_A_LOG, 1.0f, 16.0f, false, H);
    a->dtb = SL_PARAM_RANGE(p, "dt_bias", SL_INIT_DT_BIAS, 1e-3f, 0.1f, false, H);
    a->dskip = SL_PARAM(p, "D", SL_INIT_ONES, 0, false, H);
    a->wnorm = SL_PARAM(p, "norm.weight", SL_INIT_ONES, 0, false, D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, D, D);
    return SL_OK;
}

static int64_t mamba2_state_floats(const sl_mixer *m, int64_t max_len)
{
    const mamba2 *a = m->impl;
    return conv_floats(a) + a->H * a->P * a->P;
}

static int64_t mamba2_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const mamba2 *a = m->impl;
    return 10 * a->D + 4 * a->H;
}

static sl_tensor *mamba2_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *u, float *state, int64_t pos,
                                 const sl_seqs *seqs)
{
    mamba2 *a = m->impl;
    const int64_t B = sl_seq_count(seqs, u->shape[0]), D = a->D, H = a->H, P = a->P;
    const int64_t sf = mamba2_state_floats(m, 0), cf = conv_floats(a);
    sl_tensor *proj = sl_linear(ctx, u, a->win, NULL);  /* [B, T, 4D + H] */
    sl_tensor *z = sl_columns(ctx, proj, 0, D);         /* [B, T, D] */
    sl_tensor *xbc = sl_columns(ctx, proj, D, 3 * D);   /* [B, T, 3D] */
    sl_tensor *dt_in = sl_columns(ctx, proj, 4 * D, H); /* [B, T, H] */
    if (a->conv) {
        const sl_state_part cp = sl_state_take(ctx, state, sf, 0, cf, B, pos);
        xbc = sl_shortconv(ctx, xbc, a->conv, a->convb, cp.s0, cp.s_final, seqs);
        sl_state_put(&cp);
    }
    xbc = sl_silu(ctx, xbc);
    sl_tensor *x = sl_columns(ctx, xbc, 0, D);
    /* g = dt A: [B, T, H]; with A_log = 0 the same gate is -dt. */
    sl_tensor *g = sl_decay_gate(ctx, dt_in, a->alog, a->dtb);
    sl_tensor *alog0 = SL_NEW(ctx, H);
    memset(alog0->data, 0, (size_t)H * sizeof(float));
    sl_tensor *dt = sl_scale(ctx, sl_decay_gate(ctx, dt_in, alog0, a->dtb), -1.0f);
    sl_tensor *v = sl_mul_heads(ctx, x, dt); /* dt x: [B, T, D] */
    const sl_state_part sp = sl_state_take(ctx, state, sf, cf, H * P * P, B, pos);
    /* q = C and k = B, read in place from xbc. */
    const sl_rec_in in = {.q = xbc, .k = xbc, .v = v, .q_off = 2 * D, .k_off = D, .dk = P, .dv = P};
    sl_tensor *y = sl_recurrence_in(ctx, &in, g, NULL, sp.s0, H, a->C, sp.s_final, seqs);
    sl_state_put(&sp);
    y = sl_add(ctx, y, sl_mul_heads(ctx, x, a->dskip)); /* + D_h x */
    y = sl_rmsnorm(ctx, sl_mul(ctx, y, sl_silu(ctx, z)), a->wnorm, a->eps);
    return sl_linear(ctx, y, a->wout, NULL);
}

/* u_t: [D] -> y_t: [D]; state: [conv rows | H], scratch: 10D + 4H, laid out
 * proj [4D + H] | xbc [3D] | dt [H] | g [H] | v [D] | o [D] | n [D] | alog0 [H].
 * The pointwise and per-row stages call the forward's ops' row functions: only
 * the projections and the recurrence sum in another order than the forward. */
static void mamba2_step(sl_mixer *m, float *state, const float *u_t, float *y_t, int64_t pos,
                        float *scratch)
{
    mamba2 *a = m->impl;
    const int64_t D = a->D, H = a->H, P = a->P, cf = conv_floats(a);
    if (pos == 0) memset(state, 0, (size_t)mamba2_state_floats(m, 0) * sizeof(float));
    float *proj = scratch, *xbc = proj + 4 * D + H, *dt = xbc + 3 * D, *g = dt + H, *v = g + H;
    float *o = v + D, *n = o + D, *alog0 = n + D;
    sl_gemm(false, true, 1, 4 * D + H, D, u_t, a->win->data, 0.0f, proj);
    if (a->conv)
        sl_shortconv_step(state, proj + D, a->conv->data, a->convb->data, 3 * D, a->K, xbc);
    else
        memcpy(xbc, proj + D, (size_t)(3 * D) * sizeof(float));
    for (int64_t j = 0; j < 3 * D; j++) xbc[j] = sl_siluf(xbc[j]);
    sl_decay_gate_row(proj + 4 * D, a->alog->data, a->dtb->data, g, H);
    /* dt as the forward takes it: the gate with A_log = 0, negated. */
    memset(alog0, 0, (size_t)H * sizeof(float));
    sl_decay_gate_row(proj + 4 * D, alog0, a->dtb->data, dt, H);
    for (int64_t h = 0; h < H; h++) dt[h] *= -1.0f;
    sl_mul_heads_row(xbc, dt, H, P, v);
    sl_recurrence_step(state + cf, xbc + 2 * D, xbc + D, v, g, 1, NULL, H, P, P, o);
    sl_mul_heads_row(xbc, a->dskip->data, H, P, n); /* + D_h x */
    for (int64_t j = 0; j < D; j++) o[j] = (o[j] + n[j]) * sl_siluf(proj[j]);
    sl_rmsnorm_row(o, a->wnorm->data, n, D, a->eps);
    sl_gemm(false, true, 1, D, D, n, a->wout->data, 0.0f, y_t);
}

/* With the short conv in front of x, B, C, and without it. */
static const char *const CHECK_VARIANTS[] = {"", "conv_size=0", NULL};

const sl_mixer_vtable sl_mixer_mamba2 = {
    .name = "mamba2",
    .paper = "Dao & Gu 2024, Transformers are SSMs (Mamba-2, SSD)",
    .equation = "H_t = exp(dt_t A_h) H_{t-1} + B_t (dt_t x_t)^T,  y_t = H_t^T C_t + D_h x_t",
    .init = mamba2_init,
    .forward = mamba2_forward,
    .state_floats = mamba2_state_floats,
    .scratch_floats = mamba2_scratch_floats,
    .step = mamba2_step,
    .state_desc = "(K-1)*3D + H*P*P floats per sequence (P = D/H), constant in length",
    .checks = {.variants = CHECK_VARIANTS},
};
