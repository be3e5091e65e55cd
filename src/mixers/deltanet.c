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
 * (chunk_size tokens per chunk) -> rmsnorm -> linear, all but the last
 * shared with gated_deltanet.c (src/ops/delta_layer.h). step() state per
 * sequence: [conv q | conv k | conv v] (K-1 rows of D each), then the
 * matrices S [H, dk, dk]. */
#include <math.h>
#include <stdlib.h>

#include "mixers/mixer.h"
#include "ops/delta_layer.h"
#include "ops/ops.h"

static sl_status deltanet_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    sl_delta_layer *n = sl_mixer_impl(m, sizeof *n);
    if (!n) return SL_ERR_OOM;
    *n = (sl_delta_layer){.D = c->d_model,
                          .H = c->n_heads,
                          .dk = c->d_model / c->n_heads,
                          .K = c->conv_size,
                          .C = c->chunk_size,
                          .eps = (float)c->norm_eps};
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    sl_delta_layer_params(n, p, std, out_std);
    return SL_OK;
}

static int64_t deltanet_state_floats(const sl_mixer *m, int64_t max_len)
{
    return sl_delta_layer_state_floats(m->impl);
}

/* The layer's scratch, then o [D]. */
static int64_t deltanet_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const sl_delta_layer *n = m->impl;
    return sl_delta_layer_scratch_floats(n) + n->D;
}

/* x: [B, T, D] -> [B, T, D]; state: [N, state_floats] or NULL, N = B, or
 * seqs->n for a packed x [1, T, D]. */
static sl_tensor *deltanet_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state,
                                   int64_t pos, const sl_seqs *seqs)
{
    const sl_delta_layer *n = m->impl;
    const sl_delta_in in = sl_delta_layer_in(ctx, n, x, state, pos, seqs);
    return sl_linear(ctx, sl_delta_layer_mix(ctx, n, &in, NULL, state, seqs), n->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [state_floats]. */
static void deltanet_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                          float *scratch)
{
    const sl_delta_layer *n = m->impl;
    float *o = scratch + sl_delta_layer_scratch_floats(n);
    sl_delta_layer_step(n, state, x_t, NULL, pos, o, scratch);
    sl_gemm(false, true, 1, n->D, n->D, o, n->wout->data, 0.0f, y_t);
}

/* Chunks of 4 with the short conv (prefill 7 ends inside a chunk with a
 * full conv state) and without it; packed lengths cross both. Packed and
 * alone do the same arithmetic per sequence except for the projections'
 * gemm over more rows: 1e-5. The l2-normalised q, k curve fast where their
 * norm is small: at h = 5e-3 the h^2 truncation of a central difference
 * passes atol (seen at T = 7), at 2e-3 it and the float rounding (~1e-6 /
 * 2e-3) stay under it. */
static const char *const CHECK_VARIANTS[] = {"chunk_size=4", "chunk_size=4,conv_size=0", NULL};

const sl_mixer_vtable sl_mixer_deltanet = {
    .name = "deltanet",
    .paper = "Yang et al. 2024, Parallelizing Linear Transformers with the Delta Rule over "
             "Sequence Length",
    .equation = "S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,  o_t = S_t^T q_t",
    .init = deltanet_init,
    .forward = deltanet_forward,
    .state_floats = deltanet_state_floats,
    .scratch_floats = deltanet_scratch_floats,
    .step = deltanet_step,
    .state_desc = "per sequence: D*D/H floats (S per head) + 3*(conv_size-1)*D (conv rows)",
    .checks = {.tol_packed = 1e-5, .fd_h = 2e-3f, .variants = CHECK_VARIANTS},
};
