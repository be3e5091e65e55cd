/* lmu: the Legendre Memory Unit (Voelker, Kajic, Eliasmith 2019) as a token
 * mixer, in the layout of LMUFormer's non-spiking LMU block (Liu et al.
 * 2024, "LMUFormer: Low Complexity Yet Powerful Spiking Model With Legendre
 * Memory Units") and the parallel LMU (Chilkuri & Eliasmith 2021):
 *
 *   u = x W_u^T + b_u                              [B, T, U], U = memory_d
 *   m_t = A_bar m_{t-1} + B_bar u_t                 q = order coefficients per u channel
 *   h = relu(m W_m^T + x W_x^T + b_h)               LMUFormer's W_h on [m ; x], split
 *   y = h W_out^T + b_out                           LMUFormer's output projection
 *
 * A, B are the paper's fixed Legendre system for a window of theta steps,
 * discretised by zero-order hold at init (ops/lmu.h: the exponential of
 * the augmented matrix in double); nothing of the memory is learned. The
 * forward is the convolution with the impulse response H[l] = A_bar^l B_bar
 * (ops/lmu: FFT convolution, plus A_bar^(t+1) m_0 with a carried state,
 * whose gradient the op's backward returns); step() is the recurrence.
 * Parameters: u.weight [U, D], u.bias [U], hm.weight [D, U*q], hx.weight
 * [D, D], h.bias [D], out.weight [D, D], out.bias [D]. State per sequence:
 * m, U*q floats (channel j*q + i), constant in length. */
#include "mixers/mixer.h"
#include "ops/gate_maps.h"
#include "ops/lmu.h"
#include "ops/ops.h"

typedef struct lmu {
    sl_tensor *wu, *bu, *whm, *whx, *bh, *wout, *bout;
    int64_t D, U, q;
    double theta;
    float sys[]; /* A_bar [q, q], then B_bar [q] */
} lmu;

static sl_status lmu_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    const int64_t q = sl_opt_int(&m->opts, "order");
    lmu *a = sl_mixer_impl(m, sizeof *a + (size_t)(q * q + q) * sizeof(float));
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->q = q;
    a->U = sl_opt_int(&m->opts, "memory_d");
    a->theta = sl_opt_float(&m->opts, "theta");
    double *A = malloc((size_t)(q * q + q) * sizeof(double));
    if (!A) return sl_fail(SL_ERR_OOM, "mixer 'lmu': out of memory");
    sl_lmu_discretize(q, a->theta, A, A + q * q);
    for (int64_t i = 0; i < q * q + q; i++) a->sys[i] = (float)A[i];
    free(A);
    const int64_t D = a->D, U = a->U;
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wu = SL_PARAM(p, "u.weight", SL_INIT_NORMAL, std, true, U, D);
    a->bu = SL_PARAM(p, "u.bias", SL_INIT_ZEROS, 0, false, U);
    a->whm = SL_PARAM(p, "hm.weight", SL_INIT_NORMAL, std, true, D, U * q);
    a->whx = SL_PARAM(p, "hx.weight", SL_INIT_NORMAL, std, true, D, D);
    a->bh = SL_PARAM(p, "h.bias", SL_INIT_ZEROS, 0, false, D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, D, D);
    a->bout = SL_PARAM(p, "out.bias", SL_INIT_ZEROS, 0, false, D);
    return SL_OK;
}

static int64_t lmu_state_floats(const sl_mixer *m, int64_t max_len)
{
    const lmu *a = m->impl;
    return a->U * a->q;
}

static int64_t lmu_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const lmu *a = m->impl;
    return a->U + a->q + 2 * a->D;
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, U*q] or NULL. */
static sl_tensor *lmu_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                              const sl_seqs *seqs)
{
    lmu *a = m->impl;
    const int64_t T = x->shape[1], n = sl_seq_count(seqs, x->shape[0]), sf = a->U * a->q;
    const sl_lmu_desc d = {.q = a->q, .A = a->sys, .Bv = a->sys + a->q * a->q,
                           .H = sl_lmu_impulse(a->q, a->theta, T > 0 ? T : 1)};
    sl_tensor *u = sl_linear(ctx, x, a->wu, a->bu);
    const sl_state_part sp = sl_state_take(ctx, state, sf, 0, sf, n, pos);
    sl_tensor *mem = sl_lmu_memory(ctx, u, &d, sp.s0, sp.s_final, seqs);
    sl_state_put(&sp);
    sl_tensor *pre =
        sl_add(ctx, sl_linear(ctx, mem, a->whm, NULL), sl_linear(ctx, x, a->whx, a->bh));
    return sl_linear(ctx, sl_relu(ctx, pre), a->wout, a->bout);
}

/* x_t: [D] -> y_t: [D]; state: [U*q]; scratch: U + q + 2D. */
static void lmu_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                     float *scratch)
{
    lmu *a = m->impl;
    const int64_t D = a->D, U = a->U, q = a->q;
    float *u = scratch, *tmp = u + U, *h = tmp + q, *hx = h + D;
    sl_gemm(false, true, 1, U, D, x_t, a->wu->data, 0.0f, u);
    for (int64_t j = 0; j < U; j++) u[j] += a->bu->data[j];
    sl_lmu_step(a->sys, a->sys + q * q, q, U, state, u, tmp);
    sl_gemm(false, true, 1, D, U * q, state, a->whm->data, 0.0f, h);
    sl_gemm(false, true, 1, D, D, x_t, a->whx->data, 0.0f, hx);
    for (int64_t c = 0; c < D; c++) h[c] = sl_reluf(h[c] + hx[c] + a->bh->data[c]);
    sl_gemm(false, true, 1, D, D, h, a->wout->data, 0.0f, y_t);
    for (int64_t c = 0; c < D; c++) y_t[c] += a->bout->data[c];
}

static const sl_option OPTIONS[] = {
    {"order", SL_OPT_INT, "64", 1, 1024, NULL,
     "Legendre coefficients q per memory channel (LMUFormer: d_model; 64 keeps T = 1M small)"},
    {"theta", SL_OPT_FLOAT, "128", 1e-3, 1e9, NULL, "window the memory represents, in tokens"},
    {"memory_d", SL_OPT_INT, "1", 1, 1 << 16, NULL,
     "input channels u of the memory (LMUFormer: 1, one u shared by all)"},
};

/* The default (a window longer than the test sequences), two memory
 * channels, and short windows of low order that the test lengths cross.
 * The last skips finite differences: with one coefficient per channel the
 * relu's inputs sit near its kink, where a central difference straddles
 * it (the op's own test checks its gradients at every order). */
static const char *const CHECK_VARIANTS[] = {
    "", "memory_d=2", "order=4,theta=6", "order=1,theta=3,memory_d=3,nofd", NULL};

const sl_mixer_vtable sl_mixer_lmu = {
    .name = "lmu",
    .paper = "Voelker et al. 2019, Legendre Memory Units; as a token mixer: Liu et al. 2024, "
             "LMUFormer",
    .equation = "u = x W_u^T,  m_t = A_bar m_{t-1} + B_bar u_t (fixed Legendre A, B, ZOH),"
                "  y = relu(m W_m^T + x W_x^T) W_out^T",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = lmu_init,
    .forward = lmu_forward,
    .state_floats = lmu_state_floats,
    .scratch_floats = lmu_scratch_floats,
    .step = lmu_step,
    .state_desc = "memory_d*order floats per sequence (m), constant in length",
    .checks = {.variants = CHECK_VARIANTS},
};
