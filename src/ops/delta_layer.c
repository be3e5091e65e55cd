/* The delta-rule layer's shared parts (delta_layer.h): a composition of ops
 * forward, and their row functions in step(), so that the two forms do the
 * same arithmetic up to the chunked rule's summation order. */
#include <math.h>
#include <string.h>

#include "ops/delta_layer.h"
#include "ops/delta_rule.h"
#include "ops/fastmath.h"
#include "ops/gate.h"
#include "ops/l2norm.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "ops/shortconv.h"

/* Floats of one projection's conv state per sequence. */
static int64_t conv_floats(const sl_delta_layer *n) { return n->K > 0 ? (n->K - 1) * n->D : 0; }

int64_t sl_delta_layer_state_floats(const sl_delta_layer *n)
{
    return 3 * conv_floats(n) + n->H * n->dk * n->dk;
}

/* raw [3D] | qkv [3D] | beta [H] | the delta rule step's [dk]. */
int64_t sl_delta_layer_scratch_floats(const sl_delta_layer *n) { return 6 * n->D + n->H + n->dk; }

void sl_delta_layer_params(sl_delta_layer *n, sl_params *p, float std, float out_std)
{
    /* Conv weights take PyTorch's Conv1d default bound 1/sqrt(fan_in),
     * fan_in = K per channel. */
    const int64_t D = n->D, K = n->K;
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
}

/* u: [B, T, D] (one projection), w: [D, K] or NULL -> silu(shortconv(u)):
 * [B, T, D]. With a state: the conv rows at offset off of each of its rows
 * (holding pos tokens) start it, and its final rows go back there. */
static sl_tensor *conv_silu(sl_ctx *ctx, const sl_delta_layer *n, sl_tensor *u, sl_tensor *w,
                            float *state, int64_t pos, int64_t off, const sl_seqs *seqs)
{
    if (!w) return sl_silu(ctx, u);
    const int64_t N = sl_seq_count(seqs, u->shape[0]);
    const sl_state_part cp =
        sl_state_take(ctx, state, sl_delta_layer_state_floats(n), off, conv_floats(n), N, pos);
    sl_tensor *y = sl_shortconv(ctx, u, w, NULL, cp.s0, cp.s_final, seqs);
    sl_state_put(&cp);
    return sl_silu(ctx, y);
}

sl_delta_in sl_delta_layer_in(sl_ctx *ctx, const sl_delta_layer *n, sl_tensor *x, float *state,
                              int64_t pos, const sl_seqs *seqs)
{
    /* The state rows are copied before any op sees the bounds, so check
     * them here: a bad n would index past the caller's state. */
    sl_require(sl_seqs_check(seqs, x, "deltanet") == SL_OK, "deltanet",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, D]");
    const int64_t cf = conv_floats(n);
    sl_delta_in in = {.pos = pos};
    sl_tensor *w[3] = {n->wq, n->wk, n->wv}, *cw[3] = {n->cq, n->ck, n->cv}, *u[3];
    for (int i = 0; i < 3; i++) u[i] = sl_linear(ctx, x, w[i], NULL);
    for (int i = 0; i < 3; i++) u[i] = conv_silu(ctx, n, u[i], cw[i], state, pos, i * cf, seqs);
    in.q = sl_l2norm(ctx, u[0], n->dk);
    in.k = sl_l2norm(ctx, u[1], n->dk);
    in.v = u[2];
    in.beta = sl_sigmoid(ctx, sl_linear(ctx, x, n->wbeta, NULL));
    return in;
}

sl_tensor *sl_delta_layer_mix(sl_ctx *ctx, const sl_delta_layer *n, const sl_delta_in *in,
                              sl_tensor *g, float *state, const sl_seqs *seqs)
{
    const int64_t B = in->q->shape[0], T = in->q->shape[1], H = n->H, dk = n->dk;
    const int64_t N = sl_seq_count(seqs, B), sf = sl_delta_layer_state_floats(n);
    const sl_state_part sp =
        sl_state_take(ctx, state, sf, 3 * conv_floats(n), H * dk * dk, N, in->pos);
    /* The kernel reads q, k and v as column blocks in place. */
    const sl_rec_in qkv = {.q = in->q, .k = in->k, .v = in->v, .dk = dk, .dv = dk};
    sl_tensor *o = sl_delta_rule_in(ctx, &qkv, in->beta, g, sp.s0, H, n->C, sp.s_final, seqs);
    sl_state_put(&sp);
    o = sl_rmsnorm(ctx, SL_VIEW(ctx, o, B, T, H, dk), n->norm, n->eps);
    return SL_VIEW(ctx, o, B, T, n->D);
}

/* Scratch laid out as sl_delta_layer_scratch_floats says. */
void sl_delta_layer_step(const sl_delta_layer *n, float *state, const float *x_t, const float *g,
                         int64_t pos, float *o, float *scratch)
{
    const int64_t D = n->D, H = n->H, dk = n->dk, cf = conv_floats(n);
    if (pos == 0) memset(state, 0, (size_t)sl_delta_layer_state_floats(n) * sizeof(float));
    float *raw = scratch, *qkv = raw + 3 * D, *beta = qkv + 3 * D, *kS = beta + H;
    const sl_tensor *w[3] = {n->wq, n->wk, n->wv}, *cw[3] = {n->cq, n->ck, n->cv};
    for (int i = 0; i < 3; i++) {
        float *r = raw + i * D, *u = qkv + i * D;
        sl_gemm(false, true, 1, D, D, x_t, w[i]->data, 0.0f, r);
        if (cw[i])
            sl_shortconv_step(state + i * cf, r, cw[i]->data, NULL, D, n->K, u);
        else
            memcpy(u, r, (size_t)D * sizeof(float));
        for (int64_t j = 0; j < D; j++) u[j] = sl_siluf(u[j]);
    }
    for (int64_t h = 0; h < 2 * H; h++) sl_l2norm_row(qkv + h * dk, qkv + h * dk, dk);
    sl_gemm(false, true, 1, H, D, x_t, n->wbeta->data, 0.0f, beta);
    for (int64_t h = 0; h < H; h++) beta[h] = sl_sigmoidf(beta[h]);
    sl_delta_rule_step(state + 3 * cf, qkv, qkv + D, qkv + 2 * D, beta, g, H, dk, o, kS);
    for (int64_t h = 0; h < H; h++)
        sl_rmsnorm_row(o + h * dk, n->norm->data, o + h * dk, dk, n->eps);
}
