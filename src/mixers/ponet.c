/* ponet: multi-granularity pooling (Tan et al. 2021, "PoNet: Pooling Network
 * for Efficient Token Mixing in Long Sequences", section 3), non-causal only.
 *
 *   [q | k | o | s | l] = x W_in^T                x: [B, T, D], heads H, P = D/H
 *   g   = mean_t q_t,  a = softmax_t(g . k_t / sqrt P),  v = sum_t a_t k_t
 *                                                  per head: global aggregation
 *   s'_t = max over t's segment of s              segment max pooling (S tokens)
 *   l'_t = max over |j - t| <= w/2 of l_j          local max pooling (w = local_window)
 *   y = ((v + s'_t) * o_t + l'_t) W_out^T          pooling fusion
 *
 * The fusion and the shared keys/values of the global step (v pools k, no
 * separate value projection) are PoNet's code (lxchtan/PoNet,
 * PoNetSelfAttention). The paper cuts segments at sentence bounds; a mixer
 * sees no text, so segments are fixed runs of `segment` tokens from each
 * sequence's start. Every pooling stays inside its sequence of a packed
 * batch. No projection biases (as the other mixers here).
 * Parameters: in.weight [5D, D], out.weight [D, D]. No state, no step: the
 * global vector reads the whole sequence.
 *
 * How it is computed: q enters only through its mean, and a mean of
 * projections is the projection of the mean, so g = (mean_t x_t) W_q^T
 * (W_q = rows 0..D-1 of in.weight, a view) and only the other 4D rows
 * project the tokens ([k | o | s | l], a sixth of the input GEMM work
 * saved each way). sl_attn_pool reads k in place and gives v per
 * sequence; sl_pool_fusion reads o, s, l in place and writes the fusion,
 * its backward writing their gradient straight into the projection's. */
#include "mixers/mixer.h"
#include "ops/attn_pool.h"
#include "ops/ops.h"
#include "ops/pool_fusion.h"
#include "ops/seq_pool.h"

typedef struct ponet {
    sl_tensor *win, *wout;
    int64_t D, H, segment, window;
} ponet;

static sl_status ponet_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    const int64_t window = sl_opt_int(&m->opts, "local_window");
    if (window % 2 == 0)
        return sl_fail(SL_ERR_CONFIG,
                       "mixer 'ponet' of layer %lld: option 'local_window' = %lld must be odd (a "
                       "window centred on its token)",
                       (long long)m->layer, (long long)window);
    ponet *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->segment = sl_opt_int(&m->opts, "segment");
    a->window = window;
    a->win = SL_PARAM(p, "in.weight", SL_INIT_NORMAL, (float)c->init_std, true, 5 * a->D, a->D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, sl_mixer_out_std(c), true, a->D, a->D);
    return SL_OK;
}

/* x: [B, T, D] -> [B, T, D]; no state (the mixer is non-causal only). */
static sl_tensor *ponet_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                                const sl_seqs *seqs)
{
    ponet *a = m->impl;
    const int64_t D = a->D;
    sl_require(!state, "ponet", "no state: the mixer is non-causal only");
    /* g: [N, D] from the mean; proj: [B, T, 4D] = [k | o | s | l]; v: [N, D]. */
    sl_tensor *g = sl_linear(ctx, sl_seq_pool(ctx, x, SL_SEQ_MEAN, seqs), sl_view_rows(ctx, a->win, 0, D), NULL);
    sl_tensor *proj = sl_linear(ctx, x, sl_view_rows(ctx, a->win, D, 4 * D), NULL);
    sl_tensor *v = sl_attn_pool(ctx, g, proj, 0, a->H, seqs);
    sl_tensor *y = sl_pool_fusion(ctx, v, proj, D, a->segment, a->window, seqs);
    return sl_linear(ctx, y, a->wout, NULL);
}

static const sl_option OPTIONS[] = {
    {"segment", SL_OPT_INT, "32", 1, 1 << 30, NULL,
     "segment max pooling over runs of this many tokens from each sequence's start"},
    {"local_window", SL_OPT_INT, "3", 1, 1023, NULL,
     "local max pooling over this many tokens centred on each one (odd)"},
};

/* The defaults (one segment spans every test sequence), segments shorter
 * than the sequences with a wider window, and both at one token (segment
 * and local pooling then pass s and l through). */
static const char *const CHECK_VARIANTS[] = {"", "segment=3,local_window=5",
                                             "segment=1,local_window=1", NULL};

const sl_mixer_vtable sl_mixer_ponet = {
    .name = "ponet",
    .paper = "Tan et al. 2021, PoNet: Pooling Network for Efficient Token Mixing in Long Sequences",
    .equation = "y = ((attnpool_T(q, k) + segmax(s)) * o + windowmax(l)) W_out^T,"
                "  [q|k|o|s|l] = x W_in^T",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = ponet_init,
    .forward = ponet_forward,
    .state_desc = "none (non-causal only: no step)",
    .noncausal_only = true,
    .checks = {.variants = CHECK_VARIANTS},
};
