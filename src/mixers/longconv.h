/* What the long-convolution mixers (hyena, baseconv) share: the implicit
 * filters' positional features, and a causal long convolution whose state
 * keeps each sequence's input history (and the taps by lag, when the taps
 * are computed rather than stored as a parameter), so that step() can sum
 * over the history directly and a forward can continue a state. */
#ifndef SL_MIXERS_LONGCONV_H
#define SL_MIXERS_LONGCONV_H

#include "core/core.h"

/* Lag l's time on the filter's [0, 1] scale over M positions: l / (M-1)
 * (0 when M = 1). */
double sl_lag_time(int64_t l, int64_t M);
/* z: [E] (E odd), the implicit filters' features of lag l (Hyena's
 * PositionalEmbedding): [t_l, cos(f_b w_l) for b < nb, -sin(f_b w_l) for
 * b < nb], w_l = 2 pi l / M, nb = (E-1)/2, f = linspace(1e-4, nb-1, nb). */
void sl_lag_features(int64_t l, int64_t M, int64_t E, float *z);
/* The features of lags 0 .. L-1 as a constant [L, E] tensor. */
sl_tensor *sl_lag_feature_table(sl_ctx *ctx, int64_t L, int64_t M, int64_t E);

/* Where one convolution's cache lies in a state row of sf floats: the
 * inputs by token at `hist` ([M, C]), the taps by lag at `taps` ([M, C];
 * -1: not kept). */
typedef struct sl_longconv_cache {
    int64_t sf, hist, taps, M, C;
} sl_longconv_cache;

/* y[t] = sum_{s <= t} k[:, t - s] u[s] per sequence. u: [B, T, C], k:
 * [C, Lk], Lk >= pos + T; state: [rows, sf] or NULL. Without a state or
 * at pos 0 this is sl_fftconv; with a state each sequence's u is appended
 * to its history (and the taps 0 .. pos + len - 1 kept), and at pos > 0
 * the history's contribution is added as a constant (no gradient reaches
 * earlier calls). */
sl_tensor *sl_longconv(sl_ctx *ctx, sl_tensor *u, sl_tensor *k, const sl_longconv_cache *c,
                       float *state, int64_t pos, const sl_seqs *seqs);

/* One token: appends u: [C] to hist: [M, C] at row pos, and adds
 * sum_{s <= pos} taps[pos - s] hist[s] to y: [C] (taps: [> pos, C] by lag). */
void sl_longconv_step(float *hist, const float *taps, const float *u, int64_t pos, int64_t C,
                      float *y);

#endif
