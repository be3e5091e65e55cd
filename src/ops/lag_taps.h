/* Convolution taps from a lag-major table: an implicit filter's MLP gives
 * one row per lag ([L, C]) and an explicit kernel is stored so too (rows
 * are lags, contiguous over channels, as step() reads them), while
 * sl_fftconv takes each channel's taps contiguous ([C, L]). */
#ifndef SL_OPS_LAG_TAPS_H
#define SL_OPS_LAG_TAPS_H

#include "core/core.h"

/* x: [S, C] (row l = lag l) -> k: [C, L], k[c, l] = x[l, c] for l < S and
 * 0 past the table (a kernel shorter than the sequence). Backward: dx[l, c]
 * += dk[c, l] for l < min(S, L). */
sl_tensor *sl_lag_taps(sl_ctx *ctx, sl_tensor *x, int64_t L);

#endif
