/* linear_attention: linear attention (Katharopoulos et al. 2020,
 * "Transformers are RNNs: Fast Autoregressive Transformers with Linear
 * Attention"), causal or bidirectional.
 *
 *   [q | k | v] = x W_qkv^T          x: [B, T, D], heads H, q, k: f per head, v: dk = D/H
 *   S_t = S_{t-1} + phi(k_t) v_t^T,  o_t = S_t^T phi(q_t)
 *   with normalize:  o_t <- o_t / (phi(q_t) . z_t + eps),  z_t = sum_{j<=t} phi(k_j)
 *   y = o W_out^T
 *
 * phi = feature_map: elu1 (elu(x) + 1, the paper's), relu, identity, or
 * taylor (Based, Arora et al. 2024: phi(q) . phi(k) = 1 + s + s^2/2 with
 * s = q . k / sqrt(f), F = 1 + f + f^2 features per head; see ops/taylor.h).
 * f = feature_dim, or dk when 0: Based projects q and k down to f = 16 so
 * that its F = 273 features stay affordable. The normaliser is the same
 * recurrence with v = 1 (an [F, 1] state z) and needs phi(q) . phi(k) >= 0,
 * so identity with normalize is refused. With causal = false the sums run
 * over the whole sequence (j <= t becomes every j; sl_recurrence_bidir) and
 * there is no step. Parameters: qkv.weight [2Hf + D, D], out.weight [D, D].
 * The forward is linear -> the chunked recurrence op reading q, k, v in
 * place from the projection with phi fused into its reads (taylor: column
 * split -> features -> the op), twice with normalize -> linear. State per
 * sequence: S [H, F, dk], then z [H, F] with normalize (F = f except for
 * taylor). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixers/mixer.h"
#include "ops/columns.h"
#include "ops/div_heads.h"
#include "ops/gate_maps.h"
#include "ops/ops.h"
#include "ops/recurrence.h"
#include "ops/taylor.h"

/* The denominator's guard, as in the paper's code. */
#define NORM_EPS 1e-6f

enum { PHI_ELU1, PHI_RELU, PHI_IDENTITY, PHI_TAYLOR };

typedef struct linattn {
    sl_tensor *wqkv, *wout;
    int64_t D, H, dk, f, fk, C; /* f: q, k width per head; fk: features after phi */
    int phi;
    bool normalize, causal;
} linattn;

static sl_status linattn_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    const char *fm = sl_opt_str(&m->opts, "feature_map");
    const int phi = strcmp(fm, "elu1") == 0       ? PHI_ELU1
                    : strcmp(fm, "relu") == 0     ? PHI_RELU
                    : strcmp(fm, "identity") == 0 ? PHI_IDENTITY
                                                  : PHI_TAYLOR;
    const bool normalize = sl_opt_bool(&m->opts, "normalize");
    if (phi == PHI_IDENTITY && normalize)
        return sl_fail(SL_ERR_CONFIG,
                       "mixer 'linear_attention' option 'normalize' = true needs a non-negative "
                       "'feature_map' (elu1, relu or taylor), got \"identity\"");
    linattn *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->H = c->n_heads;
    a->dk = a->D / a->H;
    const int64_t f = sl_opt_int(&m->opts, "feature_dim");
    a->f = f ? f : a->dk;
    a->fk = phi == PHI_TAYLOR ? sl_taylor_width(a->f) : a->f;
    a->C = c->chunk_size;
    a->phi = phi;
    a->normalize = normalize;
    a->causal = c->causal;
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->wqkv = SL_PARAM(p, "qkv.weight", SL_INIT_NORMAL, std, true, 2 * a->H * a->f + a->D, a->D);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, a->D, a->D);
    return SL_OK;
}

/* Floats of S, and of z after it. */
static int64_t s_floats(const linattn *a) { return a->H * a->fk * a->dk; }
static int64_t z_floats(const linattn *a) { return a->normalize ? a->H * a->fk : 0; }

static int64_t linattn_state_floats(const sl_mixer *m, int64_t max_len)
{
    const linattn *a = m->impl;
    return s_floats(a) + z_floats(a);
}

static int64_t linattn_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const linattn *a = m->impl;
    return 2 * a->H * a->f + 2 * a->D + 2 * a->H + 2 * a->H * a->fk;
}

static sl_tensor *feature_map(sl_ctx *ctx, const linattn *a, sl_tensor *x)
{
    switch (a->phi) {
    case PHI_ELU1: return sl_elu1(ctx, x);
    case PHI_RELU: return sl_relu(ctx, x);
    case PHI_TAYLOR: return sl_taylor_features(ctx, x, a->H);
    default: return x;
    }
}

/* Where the recurrence reads q, k and v. elu1 and relu are fused into the
 * op's reads of the projection; taylor widens q and k to F features, so
 * those are computed first. */
static sl_rec_in recurrence_in(sl_ctx *ctx, const linattn *a, sl_tensor *qkv)
{
    const int64_t Hf = a->H * a->f;
    if (a->phi == PHI_TAYLOR)
        return (sl_rec_in){.q = feature_map(ctx, a, sl_columns(ctx, qkv, 0, Hf)),
                           .k = feature_map(ctx, a, sl_columns(ctx, qkv, Hf, Hf)),
                           .v = qkv,
                           .v_off = 2 * Hf,
                           .dk = a->fk,
                           .dv = a->dk};
    return (sl_rec_in){.q = qkv,
                       .k = qkv,
                       .v = qkv,
                       .k_off = Hf,
                       .v_off = 2 * Hf,
                       .dk = a->f,
                       .dv = a->dk,
                       .map = a->phi == PHI_ELU1   ? SL_REC_ELU1
                              : a->phi == PHI_RELU ? SL_REC_RELU
                                                   : SL_REC_PLAIN};
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, state_floats] or NULL, rows = B
 * or the packed sequences. */
static sl_tensor *linattn_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                                  const sl_seqs *seqs)
{
    linattn *a = m->impl;
    const int64_t B = sl_seq_count(seqs, x->shape[0]), T = x->shape[1], H = a->H;
    const int64_t ns = s_floats(a), nz = z_floats(a), sf = ns + nz;
    sl_tensor *qkv = sl_linear(ctx, x, a->wqkv, NULL);
    /* The normaliser is the same recurrence with v = 1. */
    sl_tensor *ones = NULL;
    if (a->normalize) {
        ones = SL_NEW(ctx, x->shape[0], T, H);
        for (int64_t i = 0; i < ones->n; i++) ones->data[i] = 1.0f;
    }
    sl_rec_in in = recurrence_in(ctx, a, qkv), den_in = in;
    if (ones) {
        den_in.v = ones;
        den_in.v_off = 0;
        den_in.dv = 1;
    }
    if (!a->causal) {
        sl_require(!state, "linear_attention", "no state in bidirectional mode");
        sl_tensor *o = sl_recurrence_bidir(ctx, &in, NULL, H, a->C, seqs);
        if (ones)
            o = sl_div_heads(ctx, o, sl_recurrence_bidir(ctx, &den_in, NULL, H, a->C, seqs),
                             NORM_EPS);
        return sl_linear(ctx, o, a->wout, NULL);
    }
    /* Carried state: S [rows, H, fk, dk], then the normaliser's z [rows, H, fk]. */
    const sl_state_part sp = sl_state_take(ctx, state, sf, 0, ns, B, pos);
    sl_tensor *o = sl_recurrence_in(ctx, &in, NULL, NULL, sp.s0, H, a->C, sp.s_final, seqs);
    sl_state_put(&sp);
    if (ones) {
        const sl_state_part zp = sl_state_take(ctx, state, sf, ns, nz, B, pos);
        sl_tensor *den =
            sl_recurrence_in(ctx, &den_in, NULL, NULL, zp.s0, H, a->C, zp.s_final, seqs);
        sl_state_put(&zp);
        o = sl_div_heads(ctx, o, den, NORM_EPS);
    }
    return sl_linear(ctx, o, a->wout, NULL);
}

/* x_t: [D] -> y_t: [D]; state: [S (H, F, dk) | z (H, F)]; scratch:
 * 2Hf + 2D + 2H + 2HF. */
static void linattn_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                         float *scratch)
{
    linattn *a = m->impl;
    const int64_t D = a->D, H = a->H, dk = a->dk, fk = a->fk, Hf = H * a->f;
    float *qkv = scratch, *o = scratch + 2 * Hf + D, *ones = o + D, *den = ones + H;
    float *pq = qkv, *pk = qkv + Hf;
    sl_gemm(false, true, 1, 2 * Hf + D, D, x_t, a->wqkv->data, 0.0f, qkv);
    if (a->phi == PHI_TAYLOR) {
        pq = den + H;
        pk = pq + H * fk;
        sl_taylor_row(qkv, H, a->f, pq);
        sl_taylor_row(qkv + Hf, H, a->f, pk);
    } else if (a->phi != PHI_IDENTITY) {
        for (int64_t i = 0; i < 2 * Hf; i++)
            qkv[i] = a->phi == PHI_ELU1 ? sl_elu1f(qkv[i]) : sl_reluf(qkv[i]);
    }
    sl_recurrence_step(state, pq, pk, qkv + 2 * Hf, NULL, 0, NULL, H, fk, dk, o);
    if (a->normalize) {
        for (int64_t h = 0; h < H; h++) ones[h] = 1.0f;
        sl_recurrence_step(state + s_floats(a), pq, pk, ones, NULL, 0, NULL, H, fk, 1, den);
        sl_div_heads_row(o, den, H, dk, NORM_EPS, o);
    }
    sl_gemm(false, true, 1, D, D, o, a->wout->data, 0.0f, y_t);
}

static const sl_option OPTIONS[] = {
    {"feature_map", SL_OPT_ENUM, "elu1", 0, 0, "elu1|relu|identity|taylor",
     "phi: elu(x) + 1, relu, none, or Based's 2nd-order Taylor features"},
    {"normalize", SL_OPT_BOOL, "false", 0, 0, NULL,
     "divide by phi(q_t) . sum_{j<=t} phi(k_j) + 1e-6 (not with identity)"},
    {"feature_dim", SL_OPT_INT, "0", 0, 1024, NULL,
     "f: q, k width per head before phi (Based: 16); 0 = D/H"},
};

/* Every accepted combination, causal and bidirectional; feature_dim 4
 * projects q, k below the head width 8, as Based does. relu skips finite
 * differences: a probe that moves a pre-activation across 0 differentiates
 * a kink (its map is checked in test_gate_maps). */
static const char *const CHECK_VARIANTS[] = {
    "", "normalize=true", "feature_map=relu,nofd", "feature_map=relu,normalize=true,nofd",
    "feature_map=identity", "feature_map=taylor", "feature_map=taylor,normalize=true",
    "feature_map=taylor,normalize=true,feature_dim=4", "feature_dim=4",
    "causal=false", "causal=false,normalize=true", "causal=false,feature_map=relu,nofd",
    "causal=false,feature_map=relu,normalize=true,nofd", "causal=false,feature_map=identity",
    "causal=false,feature_map=taylor", "causal=false,feature_map=taylor,normalize=true",
    "causal=false,feature_map=taylor,normalize=true,feature_dim=4",
    "causal=false,feature_dim=4", NULL};

const sl_mixer_vtable sl_mixer_linear_attention = {
    .name = "linear_attention",
    .paper = "Katharopoulos et al. 2020, Transformers are RNNs: Fast Autoregressive Transformers "
             "with Linear Attention",
    .equation = "S_t = S_{t-1} + phi(k_t) v_t^T,  o_t = S_t^T phi(q_t)  (/ phi(q_t) . z_t)",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = linattn_init,
    .forward = linattn_forward,
    .state_floats = linattn_state_floats,
    .scratch_floats = linattn_scratch_floats,
    .step = linattn_step,
    .state_desc = "H*F*dk floats per sequence (F = f = feature_dim or dk, 1 + f + f^2 for "
                  "taylor; + H*F with normalize), constant in length",
    .bidirectional = true,
    .checks = {.variants = CHECK_VARIANTS},
};
