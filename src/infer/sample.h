/* Token sampling from logits: temperature, top-k and top-p (nucleus). */
#ifndef SL_SAMPLE_H
#define SL_SAMPLE_H

#include "core/core.h"

typedef struct sl_sampler {
    float temperature; /* 0: greedy (argmax) */
    int64_t top_k;     /* 0: off */
    float top_p;       /* 1: off */
    sl_rng rng;
} sl_sampler;

/* logits: [V]; scratch: [2V] floats. Returns the sampled id. */
int32_t sl_sample(sl_sampler *s, const float *logits, int64_t V, float *scratch);

#endif
