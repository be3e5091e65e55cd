/* baseconv: the gated convolution of Zoology (Arora et al. 2023, "Zoology:
 * Measuring and Improving Recall in Efficient Language Models") that Based
 * (Arora et al. 2024, "Simple linear attention language models balance the
 * recall-throughput tradeoff") mixes with linear attention, as their
 * reference code's BaseConv computes it:
 *
 *   y = (h * x) . (x W^T + b) + x          x: [B, T, D], depthwise causal h
 *
 * h by `kernel`: `short`, a causal depthwise conv of 3 taps with a bias
 * (ops/shortconv); `long`, an explicit learned kernel of max_seq_len taps per
 * channel; `implicit`, taps from an MLP on positional features,
 * h[:, l] = W_1 relu(W_0 z(l) + b_0) + b_1 (z of mixers/longconv.h, E = 3,
 * width 16). In training (no state) the long forms run as one op,
 * ops/base_conv.h, that keeps x, the taps by lag, W and b, and recomputes
 * h * x and the gate block by block of channels in its backward; a
 * forward carrying a state runs the composed ops, h * x through
 * ops/fftconv with the history cache (mixers/longconv.h).
 * Parameters: proj.weight [D, D], proj.bias [D]; short: conv.weight [D, 3],
 * conv.bias [D]; long: filter.weight [M, D] (row l = lag l, M =
 * max_seq_len; a sequence past M sees zero taps); implicit:
 * filter.0.weight [16, 3], filter.0.bias [16], filter.1.weight [D, 16],
 * filter.1.bias [D]. State per sequence: short, the conv rows [2, D]; long,
 * the input history [M, D]; implicit, the history then the taps by lag
 * [M, D]. */
#include "mixers/longconv.h"
#include "mixers/mixer.h"
#include "ops/base_conv.h"
#include "ops/gate_maps.h"
#include "ops/lag_taps.h"
#include "ops/ops.h"
#include "ops/shortconv.h"

#define BC_SHORT 3  /* short kernel taps (the code's kernel_size) */
#define BC_EMB 3    /* implicit filter: positional features (d_emb) */
#define BC_HIDDEN 16 /* implicit filter: MLP width (d_hidden) */

enum { KIND_SHORT, KIND_LONG, KIND_IMPLICIT };

typedef struct baseconv {
    sl_tensor *wp, *bp, *conv, *convb, *filter, *f0w, *f0b, *f1w, *f1b;
    int64_t D, M, kind;
} baseconv;

static sl_status baseconv_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    baseconv *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    const int64_t D = a->D = c->d_model;
    a->M = c->max_seq_len;
    const char *k = sl_opt_str(&m->opts, "kernel");
    a->kind = strcmp(k, "short") == 0 ? KIND_SHORT : strcmp(k, "long") == 0 ? KIND_LONG
                                                                              : KIND_IMPLICIT;
    a->wp = SL_PARAM(p, "proj.weight", SL_INIT_NORMAL, (float)c->init_std, true, D, D);
    a->bp = SL_PARAM(p, "proj.bias", SL_INIT_ZEROS, 0, false, D);
    if (a->kind == KIND_SHORT) {
        a->conv = SL_PARAM(p, "conv.weight", SL_INIT_UNIFORM, 1.0f / sqrtf(BC_SHORT), false, D,
                           BC_SHORT);
        a->convb = SL_PARAM(p, "conv.bias", SL_INIT_ZEROS, 0, false, D);
    } else if (a->kind == KIND_LONG) {
        a->filter = SL_PARAM(p, "filter.weight", SL_INIT_NORMAL, 1.0f, false, a->M, D);
    } else {
        const float s0 = 1.0f / sqrtf(BC_EMB), s1 = 1.0f / sqrtf(BC_HIDDEN);
        a->f0w = SL_PARAM(p, "filter.0.weight", SL_INIT_UNIFORM, s0, false, BC_HIDDEN, BC_EMB);
        a->f0b = SL_PARAM(p, "filter.0.bias", SL_INIT_UNIFORM, s0, false, BC_HIDDEN);
        a->f1w = SL_PARAM(p, "filter.1.weight", SL_INIT_UNIFORM, s1, false, D, BC_HIDDEN);
        a->f1b = SL_PARAM(p, "filter.1.bias", SL_INIT_UNIFORM, s1, false, D);
    }
    return SL_OK;
}

static int64_t baseconv_state_floats(const sl_mixer *m, int64_t max_len)
{
    const baseconv *a = m->impl;
    return a->kind == KIND_SHORT  ? (BC_SHORT - 1) * a->D
           : a->kind == KIND_LONG ? a->M * a->D
                                  : 2 * a->M * a->D;
}

static int64_t baseconv_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    return 2 * m->dims.d_model + BC_HIDDEN;
}

/* The taps by lag: [S, D], row l = lag l (long: the M stored rows;
 * implicit: the MLP at lags 0 .. L-1). */
static sl_tensor *lag_table(baseconv *a, sl_ctx *ctx, int64_t L)
{
    if (a->kind == KIND_LONG) return a->filter;
    sl_tensor *z = sl_lag_feature_table(ctx, L, a->M, BC_EMB);
    sl_tensor *h = sl_relu(ctx, sl_linear(ctx, z, a->f0w, a->f0b));
    return sl_linear(ctx, h, a->f1w, a->f1b);
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, state_floats] or NULL. */
static sl_tensor *baseconv_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state,
                                   int64_t pos, const sl_seqs *seqs)
{
    baseconv *a = m->impl;
    const int64_t T = x->shape[1], n = sl_seq_count(seqs, x->shape[0]);
    const int64_t sf = baseconv_state_floats(m, a->M);
    if (!state) pos = 0;
    /* Training (no state) with a long kernel: the layer as one op that
     * keeps only its inputs (ops/base_conv.h); the composed form below
     * carries the state. */
    if (a->kind != KIND_SHORT && !state && T > 0)
        return sl_base_conv(ctx, x, lag_table(a, ctx, T), a->wp, a->bp, seqs);
    sl_tensor *hx;
    if (a->kind == KIND_SHORT) {
        const sl_state_part sp = sl_state_take(ctx, state, sf, 0, sf, n, pos);
        hx = sl_shortconv(ctx, x, a->conv, a->convb, sp.s0, sp.s_final, seqs);
        sl_state_put(&sp);
    } else {
        const sl_longconv_cache lc = {.sf = sf, .hist = 0,
                                      .taps = a->kind == KIND_IMPLICIT ? a->M * a->D : -1,
                                      .M = a->M, .C = a->D};
        const int64_t L = pos + (T > 0 ? T : 1);
        hx = sl_longconv(ctx, x, sl_lag_taps(ctx, lag_table(a, ctx, L), L), &lc, state, pos,
                         seqs);
    }
    return sl_add(ctx, sl_mul(ctx, hx, sl_linear(ctx, x, a->wp, a->bp)), x);
}

/* x_t: [D] -> y_t: [D]; scratch: 2D + 16. */
static void baseconv_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                          float *scratch)
{
    baseconv *a = m->impl;
    const int64_t D = a->D;
    float *hx = scratch, *tap = scratch + D, *hid = tap + D;
    if (a->kind == KIND_SHORT) {
        sl_shortconv_step(state, x_t, a->conv->data, a->convb->data, D, BC_SHORT, hx);
    } else {
        sl_require(pos < a->M, "baseconv step", "pos < max_seq_len");
        const float *tp = a->kind == KIND_LONG ? a->filter->data : state + a->M * D;
        if (a->kind == KIND_IMPLICIT) {
            float z[BC_EMB];
            sl_lag_features(pos, a->M, BC_EMB, z);
            sl_gemm(false, true, 1, BC_HIDDEN, BC_EMB, z, a->f0w->data, 0.0f, hid);
            for (int64_t j = 0; j < BC_HIDDEN; j++) {
                const float v = hid[j] + a->f0b->data[j];
                hid[j] = v > 0 ? v : 0;
            }
            sl_gemm(false, true, 1, D, BC_HIDDEN, hid, a->f1w->data, 0.0f, tap);
            for (int64_t c = 0; c < D; c++)
                state[a->M * D + pos * D + c] = tap[c] + a->f1b->data[c];
        }
        memset(hx, 0, (size_t)D * sizeof(float));
        sl_longconv_step(state, tp, x_t, pos, D, hx);
    }
    sl_gemm(false, true, 1, D, D, x_t, a->wp->data, 0.0f, y_t);
    for (int64_t c = 0; c < D; c++) y_t[c] = hx[c] * (y_t[c] + a->bp->data[c]) + x_t[c];
}

static const sl_option OPTIONS[] = {
    {"kernel", SL_OPT_ENUM, "implicit", 0, 0, "implicit|long|short",
     "h: implicit (MLP on positions), long (explicit max_seq_len taps) or short (3 taps)"},
};

static const char *const CHECK_VARIANTS[] = {"", "kernel=long", "kernel=short", NULL};

const sl_mixer_vtable sl_mixer_baseconv = {
    .name = "baseconv",
    .paper = "Arora et al. 2024, Simple linear attention language models balance the "
             "recall-throughput tradeoff (BaseConv, Zoology)",
    .equation = "y = (h * x) (x W^T + b) + x,  h short, long or implicit (MLP on positions)",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = baseconv_init,
    .forward = baseconv_forward,
    .state_floats = baseconv_state_floats,
    .scratch_floats = baseconv_scratch_floats,
    .step = baseconv_step,
    .state_desc = "long kernels: D (long) or 2D (implicit) floats per token of max_seq_len; "
                  "short: 2D",
    .state_no_grad = true,
    .checks = {.variants = CHECK_VARIANTS},
};
