/* s4d: the diagonal state space layer of Gu, Gupta, Goel, Re 2022, "On the
 * Parameterization and Initialization of Diagonal State Space Models",
 * as its S4D block (the paper's standalone s4d.py): per channel c of the D
 * channels of x, M = d_state/2 complex modes (each with its conjugate),
 *
 *   K_c[l] = 2 Re sum_m C_cm (exp(dt_c A_cm) - 1) / A_cm exp(l dt_c A_cm)   (ZOH)
 *   y = K * x + D x,   z = GELU(y),   [a | g] = z W^T + b,   out = a sigmoid(g)
 *
 * with dt_c = exp(log_dt_c) and A_cm = -exp(A.log_re_cm) + i A.im_cm. The
 * convolution is the FFT op (sl_fftconv), the kernel the fused Vandermonde
 * op (sl_s4d_kernel), D folded into its tap 0. Bidirectional (causal =
 * false): a second C gives a kernel applied at negative lags (S4's
 * bidirectional kernel; dt, A, D shared). GELU is the tanh form, as every
 * GELU here.
 *
 * Inits (option init): lin A = -1/2 + i pi m; inv A = -1/2 + i (N/pi)
 * (N/(2m+1) - 1); real A = -(m+1); log_dt log-uniform in [1e-3, 0.1]; C
 * complex normal (each part N(0, 1/2)); D N(0, 1).
 * Parameters: log_dt [D], A.log_re [D, M], A.im [D, M], C [S, D, M, 2]
 * (S = 1, or 2 when bidirectional; (re, im)), D [D], out.weight [2D, D],
 * out.bias [2D]; the SSM's are declared by ops/s4d_layer.c (shared with h3).
 * State: the complex modes x_cm (x_t = E x_{t-1} + Bbar u_t), [D, M, 2]
 * floats (re, im) per sequence. A forward with a carried state adds the
 * state's terms to the convolution (ops/s4d_state: E^(t+1) s0 read out, and
 * the final modes), with gradients, so it trains chunk by chunk. */
#include "mixers/mixer.h"
#include "ops/columns.h"
#include "ops/fastmath.h"
#include "ops/gate.h"
#include "ops/ops.h"
#include "ops/s4d_layer.h"

typedef struct s4d {
    sl_s4d_ssm ssm;
    sl_tensor *wout, *bout;
    int64_t D;
    float cache[]; /* the step's, sl_s4d_ssm_cache_floats */
} s4d;

static sl_status s4d_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *dm = &m->dims;
    const int64_t N = sl_opt_int(&m->opts, "d_state");
    s4d *a = sl_mixer_impl(m, sizeof *a + (size_t)sl_s4d_ssm_cache_floats(dm->d_model, N) *
                                              sizeof(float));
    if (!a) return SL_ERR_OOM;
    a->D = dm->d_model;
    sl_status st = sl_s4d_ssm_params(&a->ssm, p, "s4d", "", a->D, N, sl_opt_str(&m->opts, "init"),
                                     dm->causal);
    if (st) return st;
    a->ssm.cache = a->cache;
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, sl_mixer_out_std(dm), true, 2 * a->D, a->D);
    a->bout = SL_PARAM(p, "out.bias", SL_INIT_ZEROS, 0, false, 2 * a->D);
    return SL_OK;
}

static int64_t s4d_state_floats(const sl_mixer *m, int64_t max_len)
{
    return m->dims.d_model * sl_opt_int(&m->opts, "d_state");
}

static int64_t s4d_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 2 * s4d_state_floats(m, max_len) + 4 * m->dims.d_model;
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, D*M*2] or NULL. */
static sl_tensor *s4d_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                              const sl_seqs *seqs)
{
    s4d *a = m->impl;
    sl_tensor *y = sl_s4d_ssm_forward(ctx, &a->ssm, x, state, sl_s4d_ssm_state_floats(&a->ssm), 0,
                                      pos, seqs);
    sl_tensor *o = sl_linear(ctx, sl_gelu(ctx, y), a->wout, a->bout);
    sl_tensor *gate = sl_sigmoid(ctx, sl_columns(ctx, o, a->D, a->D));
    return sl_mul(ctx, sl_columns(ctx, o, 0, a->D), gate);
}

/* x_t: [D] -> y_t: [D]; state: [D, M, 2]; scratch: 2 D M 2 + 4 D. */
static void s4d_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                     float *scratch)
{
    s4d *a = m->impl;
    const int64_t D = a->D;
    float *y = scratch + sl_s4d_ssm_scratch_floats(&a->ssm), *o = y + D;
    sl_s4d_ssm_step(&a->ssm, state, x_t, y, scratch);
    for (int64_t c = 0; c < D; c++) y[c] = sl_geluf(y[c]);
    memcpy(o, a->bout->data, (size_t)(2 * D) * sizeof(float));
    sl_gemm(false, true, 1, 2 * D, D, y, a->wout->data, 1.0f, o);
    for (int64_t c = 0; c < D; c++) y_t[c] = o[c] * sl_sigmoidf(o[D + c]);
}

static const sl_option OPTIONS[] = {
    {"d_state", SL_OPT_INT, "64", 2, 4096, NULL, "state size N per channel: N/2 complex modes"},
    {"init", SL_OPT_ENUM, "lin", 0, 0, "lin|inv|real",
     "A's init: S4D-Lin (-1/2 + i pi n), S4D-Inv, S4D-Real (-(n+1))"},
};

/* Each init, a small state, and the bidirectional form. S4D-Inv at the
 * default N = 64 has Im A up to (N/pi)(N - 1) ~ 1283: at dt ~ 0.1 a finite
 * difference step of log_dt turns its phases by radians, so that variant
 * skips finite differences and N = 8 (Im A <= 18) checks them. */
static const char *const CHECK_VARIANTS[] = {
    "",           "init=inv,nofd", "init=inv,d_state=8", "init=real,d_state=6",
    "causal=false", "causal=false,init=inv,d_state=8", NULL};

const sl_mixer_vtable sl_mixer_s4d = {
    .name = "s4d",
    .paper = "Gu et al. 2022, On the Parameterization and Initialization of Diagonal State Space "
             "Models",
    .equation = "K[l] = 2 Re sum_n C_n (exp(dt A_n) - 1)/A_n exp(l dt A_n),  y = K * x + D x,"
                "  out = GLU(GELU(y) W^T + b)",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = s4d_init,
    .forward = s4d_forward,
    .state_floats = s4d_state_floats,
    .scratch_floats = s4d_scratch_floats,
    .step = s4d_step,
    .state_desc = "D*d_state floats per sequence (d_state/2 complex modes per channel)",
    .bidirectional = true,
    .checks = {.variants = CHECK_VARIANTS},
};
