/* The fused attention kernel apart from the tape (the op, its oracle and
 * the decode step are declared in ops.h): a descriptor and the forward and
 * backward on pointers. */
#ifndef SL_OPS_ATTENTION_H
#define SL_OPS_ATTENTION_H

#include "core/core.h"
#include "ops/chunk_runtime.h"

/* What one run needs to know besides its pointers. */
typedef struct sl_attention_desc {
    int64_t B, T, H, Hkv, dh; /* Hkv key/value heads, dividing H */
    bool causal;
    int64_t window;     /* 0: none */
    sl_chunk_rows rows; /* the sequences (C = 0) */
} sl_attention_desc;

/* Floats of scratch sl_attention_fwd or (backward) sl_attention_bwd needs,
 * one buffer per thread. */
int64_t sl_attention_scratch_floats(const sl_attention_desc *d, bool backward);

/* qkv: [B*T, (H + 2 Hkv) dh] -> out: [B*T, H*dh]; lse: [H, B*T] (the log-sum-exp
 * of each query's scores, all the backward keeps) or NULL. */
void sl_attention_fwd(const sl_attention_desc *d, const float *qkv, float *out, float *lse,
                      float *scratch);
/* The adjoint from the forward's out and lse and dout: [B*T, H*dh]; dqkv
 * (as qkv) is added to. */
void sl_attention_bwd(const sl_attention_desc *d, const float *qkv, const float *out,
                      const float *lse, const float *dout, float *dqkv, float *scratch);

#endif
