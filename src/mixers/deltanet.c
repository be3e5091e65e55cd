/* deltanet: linear attention with the delta rule (Yang, Wang, Shen, Panda,
 * Kim 2024, "Parallelizing Linear Transformers with the Delta Rule over
 * Sequence Length"; Schlag et al. 2021 for the rule itself).
 *
 *   q, k, v = silu(shortconv(x W^T))  per projection, conv kernel conv_size
 *   q, k   <- q / ||q||, k / ||k||     per head (dk = D/H)
 *   beta_t  = sigmoid(x_t W_beta^T)    per head
 *   S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,  o_t = S_t^T q_t
 *   y = RMSNorm_head(o) W_out^T
 *
 * Parameters: q.weight, k.weight, v.weight [D, D], q_conv.weight,
 * k_conv.weight, v_conv.weight [D, K] (absent when conv_size = 0),
 * beta.weight [H, D], out_norm.weight [dk], out.weight [D, D]. The forward is
 * linear -> shortconv -> silu -> l2norm -> the fused chunked delta rule
 * (chunk_size tokens per chunk) -> rmsnorm -> linear. step() state per
 * sequence: [conv q | conv k | conv v] (K-1 rows of D each), then the
 * matrices S [H, dk, dk]. The gated variant (gated_deltanet.c) reuses all of
 * this with its two gates set.
 *
 * A packed batch (sl_seqs) goes to the two ops that mix over time, the
 * short convs and the delta rule, which keep the sequences apart; every
 * other op works token by token. Its states are one row per sequence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/deltanet.h"
#include "ops/delta_rule.h"
#include "ops/fastmath.h"
#include "ops/gate.h"
#include "ops/internal.h"
#include "ops/l2norm.h"
#include "ops/ops.h"
#include "ops/shortconv.h"

/* Floats of one projection's conv state per sequence. */
static int64_t conv_floats(const sl_deltanet *n) { return n->K > 0 ? (n->K - 1) * n->D : 0; }

sl_status sl_deltanet_init(sl_mixer *m, sl_params *p)
{
    const sl_config *c = m->cfg;
    sl_deltanet *n = calloc(1, sizeof *n);
    if (!n) return sl_fail(SL_ERR_ARG, "out of memory");
    m->impl = n;
    n->D = c->d_model;
    n->H = c->n_heads;
    n->dk = n->D / n->H;
    n->K = c->conv_size;
    n->C = c->chunk_size;
    n->eps = (float)c->norm_eps;
    /* GPT-2's residual-branch scaling, as in attention.c; conv weights take
     * PyTorch's Conv1d default bound 1/sqrt(fan_in), fan_in = K per channel. */
    float std = (float)c->init_std, out_std = std / sqrtf(2.0f * (float)c->n_layers);
    int64_t D = n->D, K = n->K;
    n->wq = SL_PARAM(p, "q.weight", SL_INIT_NORMAL, std, true, D, D);
    n->wk = SL_PARAM(p, "k.weight", SL_INIT_NORMAL, std, true, D, D);
    n->wv = SL_PARAM(p, "v.weight", SL_INIT_NORMAL, std, true, D, D);
    if (K > 0) {
        float bound = 1.0f / sqrtf((float)K);
        n->cq = SL_PARAM(p, "q_conv.weight", SL_INIT_UNIFORM, bound, false, D, K);
        n->ck = SL_PARAM(p, "k_conv.weight", SL_INIT_UNIFORM, bound, false, D, K);
        n->cv = SL_PARAM(p, "v_conv.weight", SL_INIT_UNIFORM, bound, false, D, K);
    }
    n->wbeta = SL_PARAM(p, "beta.weight", SL_INIT_NORMAL, std, true, n->H, D);
    n->norm = SL_PARAM(p, "out_norm.weight", SL_INIT_ONES, 0, false, n->dk);
    n->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, D, D);
    return SL_OK;
}

int64_t sl_deltanet_state_floats(const sl_mixer *m, int64_t max_len)
{
    const sl_deltanet *n = m->impl;
    return 3 * conv_floats(n) + n->H * n->dk * n->dk;
}

int64_t sl_deltanet_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const sl_deltanet *n = m->impl;
    return 8 * n->D + 2 * n->H + n->dk;
}

/* x: [B, T, D] (one projection) -> silu(shortconv(x)): [B, T, D]; with a
 * state ([N, sf], N = sl_seq_count(seqs, B)), the conv rows at offset off
 * continue from and are left updated, one row per sequence. */
static sl_tensor *conv_silu(sl_ctx *ctx, const sl_deltanet *n, sl_tensor *x, sl_tensor *w,
                            float *state, int64_t sf, int64_t off, int64_t pos, const sl_seqs *seqs)
{
    if (!w) return sl_silu(ctx, x);
    if (!state) return sl_silu(ctx, sl_shortconv(ctx, x, w, NULL, NULL, NULL, seqs));
    int64_t N = sl_seq_count(seqs, x->shape[0]);
    sl_tensor *s0 = SL_NEW(ctx, N, n->K - 1, n->D);
    sl_state_gather(state, sf, off, conv_floats(n), N, pos, s0->data);
    sl_tensor *y = sl_shortconv(ctx, x, w, NULL, s0, s0->data, seqs);
    sl_state_scatter(state, sf, off, conv_floats(n), N, s0->data);
    return sl_silu(ctx, y);
}

/* x: [B, T, D] -> [B, T, D]; state: [N, state_floats] or NULL, N = B, or
 * seqs->n for a packed x [1, T, D]. */
sl_tensor *sl_deltanet_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                               const sl_seqs *seqs)
{
    sl_deltanet *n = m->impl;
    /* The state rows are gathered before any op sees the bounds, so check
     * them here: a bad n would index past the caller's state. */
    sl_require(sl_seqs_check(seqs, x, "deltanet") == SL_OK, "deltanet",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, D]");
    int64_t B = x->shape[0], T = x->shape[1], D = n->D, H = n->H, dk = n->dk;
    int64_t N = sl_seq_count(seqs, B); /* sequences: rows of the state */
    int64_t sf = sl_deltanet_state_floats(m, 0), cf = conv_floats(n);
    sl_tensor *q = sl_linear(ctx, x, n->wq, NULL), *k = sl_linear(ctx, x, n->wk, NULL);
    sl_tensor *v = sl_linear(ctx, x, n->wv, NULL);
    q = conv_silu(ctx, n, q, n->cq, state, sf, 0, pos, seqs);
    k = conv_silu(ctx, n, k, n->ck, state, sf, cf, pos, seqs);
    v = conv_silu(ctx, n, v, n->cv, state, sf, 2 * cf, pos, seqs);
    q = sl_l2norm(ctx, q, dk);
    k = sl_l2norm(ctx, k, dk);
    sl_tensor *beta = sl_sigmoid(ctx, sl_linear(ctx, x, n->wbeta, NULL));
    sl_tensor *g =
        n->wa ? sl_decay_gate(ctx, sl_linear(ctx, x, n->wa, NULL), n->alog, n->dtb) : NULL;
    sl_tensor *S = NULL;
    if (state) {
        S = SL_NEW(ctx, N, H, dk, dk);
        sl_state_gather(state, sf, 3 * cf, H * dk * dk, N, pos, S->data);
    }
    /* The kernel reads the three as column blocks in place. */
    const sl_rec_in in = {.q = q, .k = k, .v = v, .dk = dk, .dv = dk};
    sl_tensor *o = sl_delta_rule_in(ctx, &in, beta, g, S, H, n->C, S ? S->data : NULL, seqs);
    if (state) sl_state_scatter(state, sf, 3 * cf, H * dk * dk, N, S->data);
    o = sl_rmsnorm(ctx, SL_VIEW(ctx, o, B, T, H, dk), n->norm, n->eps);
    o = SL_VIEW(ctx, o, B, T, D);
    if (n->wgate) o = sl_mul(ctx, o, sl_silu(ctx, sl_linear(ctx, x, n->wgate, NULL)));
    return sl_linear(ctx, o, n->wout, NULL);
}

/* x: [n] -> x / sqrt(sum x^2 + 1e-6) per group of dk, in place, as sl_l2norm. */
static void l2norm_groups(float *x, int64_t len, int64_t dk)
{
    for (int64_t g = 0; g < len; g += dk) {
        float ss = 0;
        for (int64_t j = 0; j < dk; j++) ss += x[g + j] * x[g + j];
        float r = 1.0f / sqrtf(ss + 1e-6f);
        for (int64_t j = 0; j < dk; j++) x[g + j] *= r;
    }
}

/* x_t: [D] -> y_t: [D]; state: [3 conv states | S], scratch: 8D + 2H + dk,
 * laid out raw [3D] | qkv [3D] | beta [H] | g [H] | o [D] | gate [D] | dk. */
void sl_deltanet_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                      float *scratch)
{
    sl_deltanet *n = m->impl;
    int64_t D = n->D, H = n->H, dk = n->dk, cf = conv_floats(n);
    if (pos == 0) memset(state, 0, (size_t)sl_deltanet_state_floats(m, 0) * sizeof(float));
    float *raw = scratch, *qkv = raw + 3 * D, *beta = qkv + 3 * D, *g = beta + H, *o = g + H;
    float *gate = o + D, *kS = gate + D;
    const sl_tensor *w[3] = {n->wq, n->wk, n->wv}, *cw[3] = {n->cq, n->ck, n->cv};
    for (int i = 0; i < 3; i++) {
        float *r = raw + i * D, *y = qkv + i * D;
        sl_gemm(false, true, 1, D, D, x_t, w[i]->data, 0.0f, r);
        if (cw[i])
            sl_shortconv_step(r, cw[i]->data, NULL, D, n->K, state + i * cf, y);
        else
            memcpy(y, r, (size_t)D * sizeof(float));
        for (int64_t j = 0; j < D; j++) y[j] *= sl_sigmoidf(y[j]);
    }
    l2norm_groups(qkv, 2 * D, dk);
    sl_gemm(false, true, 1, H, D, x_t, n->wbeta->data, 0.0f, beta);
    for (int64_t h = 0; h < H; h++) beta[h] = sl_sigmoidf(beta[h]);
    if (n->wa) {
        sl_gemm(false, true, 1, H, D, x_t, n->wa->data, 0.0f, g);
        for (int64_t h = 0; h < H; h++)
            g[h] = -expf(n->alog->data[h]) * sl_softplusf(g[h] + n->dtb->data[h]);
    }
    sl_delta_rule_step(qkv, qkv + D, qkv + 2 * D, beta, n->wa ? g : NULL, H, dk, state + 3 * cf, o,
                       kS);
    for (int64_t h = 0; h < H; h++) {
        float *oh = o + h * dk, ss = 0;
        for (int64_t j = 0; j < dk; j++) ss += oh[j] * oh[j];
        float rs = 1.0f / sqrtf(ss / (float)dk + n->eps);
        for (int64_t j = 0; j < dk; j++) oh[j] = oh[j] * rs * n->norm->data[j];
    }
    if (n->wgate) {
        sl_gemm(false, true, 1, D, D, x_t, n->wgate->data, 0.0f, gate);
        for (int64_t j = 0; j < D; j++) o[j] *= gate[j] * sl_sigmoidf(gate[j]);
    }
    sl_gemm(false, true, 1, D, D, o, n->wout->data, 0.0f, y_t);
}

const sl_mixer_vtable sl_mixer_deltanet = {
    .name = "deltanet",
    .paper = "Yang et al. 2024, Parallelizing Linear Transformers with the Delta Rule over "
             "Sequence Length",
    .init = sl_deltanet_init,
    .forward = sl_deltanet_forward,
    .state_floats = sl_deltanet_state_floats,
    .scratch_floats = sl_deltanet_scratch_floats,
    .step = sl_deltanet_step,
    .state_desc = "per sequence: D*D/H floats (S per head) + 3*(conv_size-1)*D (conv rows)",
};
