/* The long depthwise convolution of S4 / S4D (Gu et al. 2022), H3 and Hyena,
 * computed by FFT. Per sequence (a batch row, or one packed sequence of
 * length L) and channel c, over tokens t, s of that sequence only:
 *
 *   causal:        y[t, c] = sum_{s <= t} kf[c, t - s] u[s, c]
 *   bidirectional: y[t, c] = sum_{s <= t} kf[c, t - s] u[s, c]
 *                          + sum_{s > t}  kb[c, s - t - 1] u[s, c]
 *
 * kf holds taps of lag 0, 1, ..., kb those of lag -1, -2, ... (S4's
 * bidirectional kernel: its second half flipped and placed at negative
 * lags). A sequence of length L reads taps 0 .. L-1 of kf and 0 .. L-2 of
 * kb. The backward is the same transform's adjoint:
 *
 *   du[s] = sum_{t >= s} kf[t - s] dy[t] + sum_{t < s} kb[s - t - 1] dy[t]
 *   dkf[j] = sum_sequences sum_t dy[t] u[t - j],  dkb[j] = ... dy[t] u[t + j + 1]
 *
 * Each sequence is zero-padded to a size n >= 2L whose factors are 2, 3, 5
 * and 7 (so the circular convolution is the linear one, and FFTW is fast),
 * transformed by FFTW's single-precision real transforms (plans made once
 * per size under a lock, FFTW_ESTIMATE: the same numbers every run),
 * multiplied, and transformed back. Work is split by channel: a channel's
 * kernel is transformed once per size and serves every row, and dk sums the
 * rows in the frequency domain, so nothing depends on the thread count. */
#ifndef SL_OPS_FFTCONV_H
#define SL_OPS_FFTCONV_H

#include <stdbool.h>

#include "core/core.h"

/* u: [B, T, C], k: [C, T] when causal, else [2, C, T] (kf then kb) ->
 * y: [B, T, C]. seqs: NULL, or a packed batch (B = 1; see sl_seqs): each
 * sequence is convolved alone, reading taps from 0. Gradients to u and k. */
sl_tensor *sl_fftconv(sl_ctx *ctx, sl_tensor *u, sl_tensor *k, bool causal, const sl_seqs *seqs);

/* One call's sizes, direction and packing (seqs: NULL, or valid bounds over
 * T with B = 1). */
typedef struct sl_fftconv_desc {
    int64_t B, T, C;
    bool causal;
    const sl_seqs *seqs;
} sl_fftconv_desc;

/* The FFT size for a sequence of L tokens: the least n >= 2L, n even, with
 * no prime factor above 7. */
int64_t sl_fftconv_size(int64_t L);

/* The kernels, same layouts. Threaded over channels; each thread holds
 * O(n) floats of its own, never a [B, n, C] buffer. Backward: dy -> du:
 * [B, T, C], dk: k's shape, each added to and NULL when not wanted. */
void sl_fftconv_fwd(const sl_fftconv_desc *d, const float *u, const float *k, float *y);
void sl_fftconv_bwd(const sl_fftconv_desc *d, const float *u, const float *k, const float *dy,
                    float *du, float *dk);

/* The direct O(L^2) sums in double; same layouts. y: [B, T, C]. */
void sl_fftconv_ref(const sl_fftconv_desc *d, const float *u, const float *k, double *y);

#endif
