/* AdamW with decoupled weight decay, the warmup + cosine schedule and
 * global-norm clipping, all flat loops over the parameter buffers. */
#ifndef SL_OPTIM_H
#define SL_OPTIM_H

#include "core/core.h"
#include "model/config.h"

/* Learning rate of update `step` (0-based): linear warmup from lr/warmup to
 * lr, then cosine from lr to min_lr at step = steps. */
double sl_lr_at(const sl_config *c, int64_t step);
/* Global L2 norm of all gradients (summed in fixed chunks in double, so the
 * value does not depend on the thread count). */
double sl_grad_norm(const sl_params *p);
/* Scales gradients by max_norm / (norm + 1e-6) when that is < 1 (as
 * torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. */
double sl_clip_grad(sl_params *p, double max_norm);
/* One AdamW update; step is the number of updates done before this one.
 * PyTorch's AdamW: p *= 1 - lr wd (only where decay), then
 * p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
 * The update is worked out and checked first, then applied only when every
 * new weight and moment is finite (Megatron and DeepSpeed skip such steps):
 * returns NULL when applied, else the name of the first parameter whose
 * update is not finite, with nothing changed. A read-only pass before the
 * in-place one, because a discarded update must leave the old values. */
const char *sl_adamw_step(sl_params *p, const sl_config *c, int64_t step, double lr);
/* The name of the first parameter with a NaN or Inf weight or moment (*which:
 * "weight", "adam.m" or "adam.v" when not NULL), or NULL when all are finite. */
const char *sl_params_nonfinite(const sl_params *p, const char **which);

#endif
