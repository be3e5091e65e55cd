/* hyena: the Hyena operator (Poli et al. 2023, "Hyena Hierarchy: Towards
 * Larger Convolutional Language Models"; HyenaDNA, Nguyen et al. 2023), in
 * the form of its reference code (safari's HyenaOperator), order N:
 *
 *   [x_0 | x_1 | ... | x_{N-1} | v] = shortconv(x W_in^T (+ b_in))   kernel 3, (N+1)D channels
 *   for o = 0 .. N-2, i = N-1-o:
 *       u = v . x_i
 *       v = h_o * u + s_o . u          causal long convolution (FFT) plus a skip
 *   y = (v . x_0) W_out^T (+ b_out)
 *
 * N gates and N-1 long convolutions: order 2 is H3's shape q . (h * (k . v)).
 * The filters h_o[c, l] (C = (N-1)D channels, lags l) are implicit:
 *
 *   z(l) = [t_l, cos(f_b w_l), -sin(f_b w_l)]   t_l = l / (M-1), w_l = 2 pi l / M,
 *                                               f = linspace(1e-4, nb-1, nb), nb = (E-1)/2
 *   a = sin(f' . (W_j a + b_j)), j = 0, 1, 2    a_0 = z(l); one frequency vector f'
 *   h[c, l] = (W_f a)_c exp(-t_l |delta_c|)      delta = linspace(ln(1e-2)/1.5, ln(1e-2)/0.3, C)
 *
 * with M = max_seq_len (the positions' scale, so a lag's tap does not
 * depend on the call's length). The filter is computed per forward for the
 * lags the call needs, through tape ops, so its gradient reaches the MLP.
 * Parameters: in.weight [(N+1)D, D], conv.weight [(N+1)D, 3], conv.bias
 * [(N+1)D], filter.0.weight [W, E], filter.0.bias [W], filter.1.weight,
 * filter.2.weight [W, W], filter.1.bias, filter.2.bias [W], filter.freq
 * [W], filter.out.weight [C, W], filter.skip [C] (s, filter o's D
 * channels at o*D), out.weight [D, D]; with bias, in.bias [(N+1)D] and
 * out.bias [D].
 * State per sequence (it grows with max_seq_len M): the conv rows
 * [2, (N+1)D], then each long convolution's input history u [M, D], then
 * each filter's taps by lag [M, D]. step() appends u and the tap of lag pos
 * and sums the history directly; a forward continuing a state (pos > 0)
 * adds the history's contribution as a constant (inference: no gradient
 * reaches the earlier tokens, as attention's cache). */
#include "mixers/longconv.h"
#include "mixers/mixer.h"
#include "ops/columns.h"
#include "ops/gated_conv.h"
#include "ops/mul_heads.h"
#include "ops/ops.h"
#include "ops/shortconv.h"
#include "ops/sine.h"

#define HYENA_K 3      /* short conv taps (the reference code's short_filter_order) */
#define HYENA_INNER 2  /* inner W x W layers of the filter MLP */

typedef struct hyena {
    sl_tensor *win, *bin, *conv, *convb, *fw[HYENA_INNER + 1], *fb[HYENA_INNER + 1], *freq,
        *fout, *skip, *wout, *bout;
    int64_t D, N, C, E, W, M;
} hyena;

static int64_t conv_floats(const hyena *a) { return (HYENA_K - 1) * (a->N + 1) * a->D; }
/* Offsets in a state row: history of filter o, taps of filter o. */
static int64_t hist_off(const hyena *a, int64_t o) { return conv_floats(a) + o * a->M * a->D; }
static int64_t taps_off(const hyena *a, int64_t o)
{
    return conv_floats(a) + (a->N - 1 + o) * a->M * a->D;
}

static sl_status hyena_init(sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims *c = &m->dims;
    hyena *a = sl_mixer_impl(m, sizeof *a);
    if (!a) return SL_ERR_OOM;
    a->D = c->d_model;
    a->N = sl_opt_int(&m->opts, "order");
    a->E = sl_opt_int(&m->opts, "filter_emb");
    a->W = sl_opt_int(&m->opts, "filter_width");
    a->M = c->max_seq_len;
    a->C = (a->N - 1) * a->D;
    if (a->E % 2 == 0)
        return sl_fail(SL_ERR_ARG, "mixer 'hyena': filter_emb must be odd (t, then cos and sin "
                                   "pairs), got %lld", (long long)a->E);
    const int64_t D = a->D, P = (a->N + 1) * D, W = a->W;
    float std = (float)c->init_std, out_std = sl_mixer_out_std(c);
    a->win = SL_PARAM(p, "in.weight", SL_INIT_NORMAL, std, true, P, D);
    if (c->bias) a->bin = SL_PARAM(p, "in.bias", SL_INIT_ZEROS, 0, false, P);
    a->conv = SL_PARAM(p, "conv.weight", SL_INIT_UNIFORM, 1.0f / sqrtf(HYENA_K), false, P,
                       HYENA_K);
    a->convb = SL_PARAM(p, "conv.bias", SL_INIT_ZEROS, 0, false, P);
    /* PyTorch Linear's default init, U(+-1/sqrt(fan_in)) for weight and bias. */
    for (int j = 0; j <= HYENA_INNER; j++) {
        const int64_t fan = j ? W : a->E;
        char wn[32], bn[32];
        snprintf(wn, sizeof wn, "filter.%d.weight", j);
        snprintf(bn, sizeof bn, "filter.%d.bias", j);
        a->fw[j] = SL_PARAM(p, wn, SL_INIT_UNIFORM, 1.0f / sqrtf((float)fan), false, W, fan);
        a->fb[j] = SL_PARAM(p, bn, SL_INIT_UNIFORM, 1.0f / sqrtf((float)fan), false, W);
    }
    a->freq = SL_PARAM(p, "filter.freq", SL_INIT_ONES, 0, false, W);
    a->fout = SL_PARAM(p, "filter.out.weight", SL_INIT_UNIFORM, 1.0f / sqrtf((float)W), false,
                       a->C, W);
    a->skip = SL_PARAM(p, "filter.skip", SL_INIT_NORMAL, 1.0f, false, a->C);
    a->wout = SL_PARAM(p, "out.weight", SL_INIT_NORMAL, out_std, true, D, D);
    if (c->bias) a->bout = SL_PARAM(p, "out.bias", SL_INIT_ZEROS, 0, false, D);
    return SL_OK;
}

/* The window's rate |delta_c|: from ln(100)/1.5 (slow) to ln(100)/0.3
 * (fast) over the channels, the reference code's fast_decay_pct 0.3,
 * slow_decay_pct 1.5, target 1e-2. */
static double decay_rate(const hyena *a, int64_t c)
{
    const double lo = log(1e-2) / 1.5, hi = log(1e-2) / 0.3;
    return fabs(a->C > 1 ? lo + (hi - lo) * (double)c / (double)(a->C - 1) : lo);
}

static float window(const hyena *a, int64_t l, int64_t c)
{
    return (float)exp(-sl_lag_time(l, a->M) * decay_rate(a, c));
}

/* The taps of lags l0 .. l0+L-1: [C, L], through the tape. */
static sl_tensor *filter_taps_at(hyena *a, sl_ctx *ctx, int64_t l0, int64_t L)
{
    sl_tensor *z = SL_NEW(ctx, L, a->E), *win = SL_NEW(ctx, a->C, L);
    for (int64_t l = 0; l < L; l++) sl_lag_features(l0 + l, a->M, a->E, z->data + l * a->E);
    /* exp(-t_l |delta_c|) as powers of one ratio per channel, in double
     * (relative error ~ l 1e-16), not an exp per tap. */
#pragma omp parallel for schedule(static) if (a->C * L >= 32768)
    for (int64_t c = 0; c < a->C; c++) {
        const double r = exp(-sl_lag_time(1, a->M) * decay_rate(a, c));
        double w = l0 ? exp(-sl_lag_time(l0, a->M) * decay_rate(a, c)) : 1.0;
        for (int64_t l = 0; l < L; l++, w *= r) win->data[c * L + l] = (float)w;
    }
    sl_tensor *h = z;
    for (int j = 0; j <= HYENA_INNER; j++)
        h = sl_sine(ctx, sl_linear(ctx, h, a->fw[j], a->fb[j]), a->freq);
    h = SL_VIEW(ctx, sl_matmul(ctx, a->fout, h, false, true), a->C, L);
    return sl_mul(ctx, h, win);
}

/* Lags per piece of a long filter: the MLP's activations (~12 W + 5 C
 * floats a lag with their gradients) live for one piece at a time. */
#define HYENA_FILTER_PIECE 8192

/* Piece [l0, l0 + Lp) of taps: [C, L] (rows L apart) <-> tp: [C, Lp]. */
static void piece_copy(float *taps, float *tp, int64_t C, int64_t L, int64_t l0, int64_t Lp,
                       bool to_taps)
{
    for (int64_t c = 0; c < C; c++) {
        float *tr = taps + c * L + l0, *pr = tp + c * Lp;
        memcpy(to_taps ? tr : pr, to_taps ? pr : tr, (size_t)Lp * sizeof(float));
    }
}

/* Node: in = the filter's parameters, out = taps [C, L], aux = the hyena.
 * The backward runs each piece's MLP again, on the tape of a scratch
 * context, from the taps' gradient. */
static void filter_backward(sl_ctx *ctx, const sl_node *nd)
{
    hyena *a = (hyena *)nd->aux;
    const int64_t C = a->C, L = nd->out->shape[1];
    sl_ctx *sub = sl_ctx_child(ctx);
    for (int64_t l0 = 0; l0 < L; l0 += HYENA_FILTER_PIECE) {
        const int64_t Lp = L - l0 < HYENA_FILTER_PIECE ? L - l0 : HYENA_FILTER_PIECE;
        sl_ctx_reset(sub);
        sl_tensor *tp = filter_taps_at(a, sub, l0, Lp);
        float *dtp = sl_arena_floats(sub, C * Lp);
        piece_copy(nd->out->grad, dtp, C, L, l0, Lp, false);
        sl_backward_with(sub, tp, dtp);
    }
    sl_ctx_reset(sub);
}

/* The taps of lags 0 .. L-1: [C, L]. A long filter is computed piece by
 * piece and recomputed in its backward (one node keeping only the taps). */
static sl_tensor *filter_taps(hyena *a, sl_ctx *ctx, int64_t L)
{
    if (L <= HYENA_FILTER_PIECE || !ctx->grad_enabled) return filter_taps_at(a, ctx, 0, L);
    sl_tensor *taps = SL_NEW(ctx, a->C, L);
    sl_tensor *in[] = {a->fw[0], a->fw[1], a->fw[2], a->fb[0], a->fb[1], a->fb[2], a->freq,
                       a->fout};
    sl_node *nd = sl_record(ctx, filter_backward, taps, (int)(sizeof in / sizeof *in), in);
    if (nd) nd->aux = a;
    sl_ctx *sub = sl_ctx_child(ctx);
    sub->grad_enabled = false;
    for (int64_t l0 = 0; l0 < L; l0 += HYENA_FILTER_PIECE) {
        const int64_t Lp = L - l0 < HYENA_FILTER_PIECE ? L - l0 : HYENA_FILTER_PIECE;
        sl_ctx_reset(sub);
        piece_copy(taps->data, filter_taps_at(a, sub, l0, Lp)->data, a->C, L, l0, Lp, true);
    }
    sub->grad_enabled = true;
    sl_ctx_reset(sub);
    return taps;
}

/* Rows o*D .. (o+1)*D - 1 of [C, L]: [D, L]. */
static sl_tensor *rows_of(hyena *a, sl_ctx *ctx, sl_tensor *k, int64_t o)
{
    if (a->N == 2) return k;
    const int64_t L = k->shape[1];
    sl_tensor *flat = SL_VIEW(ctx, k, 1, a->C * L);
    return SL_VIEW(ctx, sl_columns(ctx, flat, o * a->D * L, a->D * L), a->D, L);
}

/* Filter o's place in the state. */
static sl_longconv_cache cache_of(const hyena *a, int64_t o)
{
    return (sl_longconv_cache){.sf = taps_off(a, a->N - 1), .hist = hist_off(a, o),
                               .taps = taps_off(a, o), .M = a->M, .C = a->D};
}

/* x: [B, T, D] -> [B, T, D]; state: [rows, state_floats] or NULL. */
static sl_tensor *hyena_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                                const sl_seqs *seqs)
{
    hyena *a = m->impl;
    const int64_t B = x->shape[0], T = x->shape[1], D = a->D, n = sl_seq_count(seqs, B);
    const int64_t sf = taps_off(a, a->N - 1);
    if (!state) pos = 0;
    sl_tensor *pr = sl_linear(ctx, x, a->win, a->bin);
    /* Training (no state): the chain as one op that keeps only its inputs
     * (ops/gated_conv.h); the composed form below carries the state. */
    if (!state && T > 0) {
        sl_tensor *z = sl_gated_conv(ctx, pr, a->conv, a->convb, filter_taps(a, ctx, T), a->skip,
                                     a->N, seqs);
        return sl_linear(ctx, z, a->wout, a->bout);
    }
    const sl_state_part sp = sl_state_take(ctx, state, sf, 0, conv_floats(a), n, pos);
    sl_tensor *pc = sl_shortconv(ctx, pr, a->conv, a->convb, sp.s0, sp.s_final, seqs);
    sl_state_put(&sp);
    sl_tensor *k = filter_taps(a, ctx, pos + (T > 0 ? T : 1));
    sl_tensor *v = sl_columns(ctx, pc, a->N * D, D);
    for (int64_t o = 0; o + 1 < a->N; o++) {
        sl_tensor *u = sl_mul(ctx, v, sl_columns(ctx, pc, (a->N - 1 - o) * D, D));
        sl_tensor *so = a->N == 2 ? a->skip : sl_columns(ctx, a->skip, o * D, D);
        const sl_longconv_cache lc = cache_of(a, o);
        v = sl_add(ctx, sl_longconv(ctx, u, rows_of(a, ctx, k, o), &lc, state, pos, seqs),
                   sl_mul_heads(ctx, u, so));
    }
    return sl_linear(ctx, sl_mul(ctx, v, sl_columns(ctx, pc, 0, D)), a->wout, a->bout);
}

/* The taps of lag l of every filter: tap: [C]; scratch: 2W floats. */
static void taps_at(const hyena *a, int64_t l, float *tap, float *scratch)
{
    float z[64];
    sl_lag_features(l, a->M, a->E, z);
    const float *in = z;
    for (int j = 0; j <= HYENA_INNER; j++) {
        /* Layers alternate between the two halves of scratch. */
        float *g = scratch + (j % 2) * a->W;
        const int64_t fan = j ? a->W : a->E;
        sl_gemm(false, true, 1, a->W, fan, in, a->fw[j]->data, 0.0f, g);
        for (int64_t w = 0; w < a->W; w++) g[w] += a->fb[j]->data[w];
        sl_sine_row(g, a->freq->data, a->W, g);
        in = g;
    }
    sl_gemm(false, true, 1, a->C, a->W, in, a->fout->data, 0.0f, tap);
    for (int64_t c = 0; c < a->C; c++) tap[c] *= window(a, l, c);
}

static int64_t hyena_state_floats(const sl_mixer *m, int64_t max_len)
{
    const hyena *a = m->impl;
    return taps_off(a, a->N - 1);
}

static int64_t hyena_scratch_floats(const sl_mixer *m, int64_t max_len)
{
    const hyena *a = m->impl;
    return 2 * (a->N + 1) * a->D + 2 * a->W + a->C + 2 * a->D;
}

/* x_t: [D] -> y_t: [D]; state: hyena_state_floats. */
static void hyena_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                       float *scratch)
{
    hyena *a = m->impl;
    const int64_t D = a->D, P = (a->N + 1) * D;
    sl_require(pos < a->M, "hyena step", "pos < max_seq_len");
    float *pr = scratch, *pc = pr + P, *mlp = pc + P, *tap = mlp + 2 * a->W, *v = tap + a->C,
          *u = v + D;
    sl_gemm(false, true, 1, P, D, x_t, a->win->data, 0.0f, pr);
    if (a->bin)
        for (int64_t i = 0; i < P; i++) pr[i] += a->bin->data[i];
    sl_shortconv_step(state, pr, a->conv->data, a->convb->data, P, HYENA_K, pc);
    taps_at(a, pos, tap, mlp);
    memcpy(v, pc + a->N * D, (size_t)D * sizeof(float));
    for (int64_t o = 0; o + 1 < a->N; o++) {
        float *hs = state + hist_off(a, o), *tp = state + taps_off(a, o);
        const float *xi = pc + (a->N - 1 - o) * D, *so = a->skip->data + o * D;
        for (int64_t c = 0; c < D; c++) u[c] = v[c] * xi[c];
        memcpy(tp + pos * D, tap + o * D, (size_t)D * sizeof(float));
        for (int64_t c = 0; c < D; c++) v[c] = so[c] * u[c];
        sl_longconv_step(hs, tp, u, pos, D, v);
    }
    for (int64_t c = 0; c < D; c++) v[c] *= pc[c];
    sl_gemm(false, true, 1, D, D, v, a->wout->data, 0.0f, y_t);
    if (a->bout)
        for (int64_t i = 0; i < D; i++) y_t[i] += a->bout->data[i];
}

static const sl_option OPTIONS[] = {
    {"order", SL_OPT_INT, "2", 2, 8, NULL,
     "gates N (N+1 projections, N-1 long convolutions); 2 is H3's shape"},
    {"filter_width", SL_OPT_INT, "64", 1, 1024, NULL, "width W of the implicit filter's MLP"},
    {"filter_emb", SL_OPT_INT, "5", 3, 63, NULL,
     "positional features E (odd): t and (E-1)/2 cos, sin pairs"},
};

/* Order 2 and 3 (two filters, the taps' row blocks), with biases, and a
 * narrow MLP on the minimal features. */
static const char *const CHECK_VARIANTS[] = {
    "", "order=3", "order=3,bias=true", "filter_width=8,filter_emb=3", NULL};

const sl_mixer_vtable sl_mixer_hyena = {
    .name = "hyena",
    .paper = "Poli et al. 2023, Hyena Hierarchy: Towards Larger Convolutional Language Models",
    .equation = "u = v x_i,  v = h_o * u + s_o u (o = 0..N-2),  y = (v x_0) W_out^T;"
                "  h = MLP_sin(t, cos, sin) exp(-t |delta|)",
    .options = SL_OPTION_TABLE(OPTIONS),
    .init = hyena_init,
    .forward = hyena_forward,
    .state_floats = hyena_state_floats,
    .scratch_floats = hyena_scratch_floats,
    .step = hyena_step,
    .state_desc = "2(N-1)D floats per token of max_seq_len (history, taps) + 2(N+1)D",
    .state_no_grad = true,
    .checks = {.variants = CHECK_VARIANTS},
};
