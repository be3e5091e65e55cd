/* h3: Hungry Hungry Hippos (Fu, Dao, Saab, Thomas, Rudra, Re 2023, "Hungry
 * Hungry Hippos: Towards Language Modeling with State Space Models"), with
 * head dimension 1 (the reference code's default: D independent channels,
 * so K^T V per head is the product k v):
 *
 *   q, k, v = x W_q^T, x W_k^T, x W_v^T                      [B, T, D]
 *   k~[t] = sum_{j < S} w_shift[c, j] k[t - j]     the shift SSM: its kernel
 *                                                  is a learned FIR of S taps
 *   y = SSM_diag(k~ * v)                           S4D-Lin diagonal SSM (+ D)
 *   out = (q * y) W_out^T
 *
 * The shift SSM (A the shift matrix, B = e_1) has the kernel C_0 .. C_{S-1},
 * so it is the short causal depthwise conv op (ops/shortconv) with S =
 * shift_size taps (its D, the current-token tap, folded into C_0); the
 * diagonal SSM is S4D's (ops/s4d_layer: Vandermonde kernel and FFT
 * convolution, the recurrent form with a state).
 * Parameters: q.weight, k.weight, v.weight [D, D], shift.weight [D, S]
 * (shortconv layout: the last column weighs the current token), ssm.log_dt
 * [D], ssm.A.log_re, ssm.A.im [D, M], ssm.C [1, D, M, 2], ssm.D [D],
 * out.weight [D, D]; M = d_state / 2.
 * State per sequence: the shift conv's last S-1 inputs [S-1, D], then the
 * SSM's modes [D, M, 2] (re, im), each part taken through sl_state_take
 * (so a carried state takes gradients and h3 trains chunk by chunk). */
#include "mixers/mixer.h"
#include "ops/ops.h"
#include "ops/s4d_layer.h"
#include "ops/shortconv.h"

typedef struct h3 {
    sl_tensor *wq, *wk, *wv, *wshift, *wout;
    sl_s4d_ssm ssm;
    int64_t D, S;
    float cache[]; /* the SSM step's, sl_s4d_ssm_cache_floats */
} h3;

static sl_status h3_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *dm = &m->dims;
    const int64_t D = dm->d_model, S = sl_opt_int(&m->opts, "shift_size");
    const int64_t N = sl_opt_int(&m->opts, "d_state");
    h3 *a = sl_mixer_impl(m, sizeof *a + (size_t)sl_s4d_ssm_cache_floats(D, N) * sizeof(float));
    if (!a) return SL_ERR_OOM;
    const float std = (float)dm->init_std;
    a->D = D;
    a->S = S;
    a->wq = SL_PARAM(p, "q.weight", SL_INIT_NORMAL, std, true, D, D);
    a->wk = SL_PARAM(p, "k.weight", SL_INIT_NORMAL, std, true, D, D);
    a->wv = SL_PARAM(p, "v.weight", SL_INIT_NORMAL, std, true, D, D);
    a->wshift = SL_PARAM(p, "shift.weight", SL_INIT_UNIFORM, 1.0f / sqrtf((float)S), true, D, S);
    sl_status st = sl_s4d_ssm_params(&a->ssm, p, "h3", "ssm.", D, N, "lin", true);
    if (st) return st;
    a->ssm.cache = a->cache;
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, sl_mixer_out_std(dm), true, D, D);
    return SL_OK;
}

static int64_t conv_floats(const sl_mixer *m)
{
    return (sl_opt_int(&m->opts, "shift_size") - 1) * m->dims.d_model;
}

static int64_t h3_state_floats(const sl_mixer *m, int64_t max_len)
{
    return conv_floats(m) + m->dims.d_model * sl_opt_int(&m->opts, "d_state");
}

static int64_t h3_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 2 * m->dims.d_model * sl_opt_int(&m->opts, "d_state") + 6 * m->dims.d_model;
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, h3_state_floats] or NULL. */
static sl_tensor *h3_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                             const sl_seqs *seqs)
{
    h3 *a = m->impl;
    sl_tensor *q = sl_linear(ctx, x, a->wq, NULL), *k = sl_linear(ctx, x, a->wk, NULL);
    sl_tensor *v = sl_linear(ctx, x, a->wv, NULL);
    const int64_t rows = sl_seq_count(seqs, x->shape[0]), sf = h3_state_floats(m, 0);
    const sl_state_part cp = sl_state_take(ctx, state, sf, 0, conv_floats(m), rows, pos);
    sl_tensor *ks = sl_shortconv(ctx, k, a->wshift, NULL, cp.s0, cp.s_final, seqs);
    sl_state_put(&cp);
    sl_tensor *y = sl_s4d_ssm_forward(ctx, &a->ssm, sl_mul(ctx, ks, v), state, sf, conv_floats(m),
                                      pos, seqs);
    return sl_linear(ctx, sl_mul(ctx, q, y), a->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [S-1, D] conv rows, then [D, M, 2]. */
static void h3_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                    float *scratch)
{
    h3 *a = m->impl;
    const int64_t D = a->D;
    float *q = scratch + sl_s4d_ssm_scratch_floats(&a->ssm), *k = q + D, *v = k + D;
    float *ks = v + D, *y = ks + D;
    sl_gemm(false, true, 1, D, D, x_t, a->wq->data, 0.0f, q);
    sl_gemm(false, true, 1, D, D, x_t, a->wk->data, 0.0f, k);
    sl_gemm(false, true, 1, D, D, x_t, a->wv->data, 0.0f, v);
    sl_shortconv_step(state, k, a->wshift->data, NULL, D, a->S, ks);
    for (int64_t c = 0; c < D; c++) ks[c] *= v[c];
    sl_s4d_ssm_step(&a->ssm, state + conv_floats(m), ks, y, scratch);
    for (int64_t c = 0; c < D; c++) y[c] *= q[c];
    sl_gemm(false, true, 1, D, D, y, a->wout->data, 0.0f, y_t);
}

static const sl_option OPTIONS[] = {
    {"d_state", SL_OPT_INT, "64", 2, 4096, NULL, "diagonal SSM state size N: N/2 complex modes"},
    {"shift_size", SL_OPT_INT, "64", 2, 4096, NULL, "shift SSM state size: the FIR taps on k"},
};

/* The defaults, and small states (a shift shorter than the packed
 * sequences, and longer). */
static const char *const CHECK_VARIANTS[] = {"", "d_state=6,shift_size=2",
                                             "d_state=8,shift_size=5", NULL};

const sl_mixer_vtable sl_mixer_h3 = {
    .name = "h3",
    .paper = "Fu et al. 2023, Hungry Hungry Hippos: Towards Language Modeling with State Space "
             "Models",
    .equation = "y = SSM_diag(shift(x W_k^T) * x W_v^T),  out = (x W_q^T * y) W_out^T",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = h3_init,
    .forward = h3_forward,
    .state_floats = h3_state_floats,
    .scratch_floats = h3_scratch_floats,
    .step = h3_step,
    .state_desc = "(shift_size-1)*D + D*d_state floats per sequence (shift taps, complex modes)",
    .checks = {.variants = CHECK_VARIANTS},
};
