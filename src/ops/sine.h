/* The sine activation with a learned frequency per unit, sin(f x), of the
 * implicit filters of SIREN (Sitzmann et al. 2020) and Hyena (Poli et al.
 * 2023), whose filter MLP maps positions to kernel taps. */
#ifndef SL_OPS_SINE_H
#define SL_OPS_SINE_H

#include "core/core.h"

/* x: [..., W], f: [W] -> y: [..., W], y = sin(f x) per unit. Backward:
 * dx = dy f cos(f x), df = sum over rows of dy x cos(f x). */
sl_tensor *sl_sine(sl_ctx *ctx, sl_tensor *x, sl_tensor *f);
/* One row, for step(): x: [W] -> y: [W] (may alias x). */
void sl_sine_row(const float *x, const float *f, int64_t W, float *y);

#endif
