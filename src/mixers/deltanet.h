/* The body shared by the two delta-rule mixers, deltanet.c and
 * gated_deltanet.c: they differ only in the decay gate and the output gate,
 * which are NULL parameters here for plain DeltaNet. Not part of the API. */
#ifndef SL_MIXERS_DELTANET_H
#define SL_MIXERS_DELTANET_H

#include "mixers/mixer.h"

typedef struct sl_deltanet {
    sl_tensor *wq, *wk, *wv;    /* [D, D] projections */
    sl_tensor *cq, *ck, *cv;    /* [D, K] short conv weights, NULL when K = 0 */
    sl_tensor *wbeta;           /* [H, D] */
    sl_tensor *norm;            /* [dk] output RMSNorm weight */
    sl_tensor *wout;            /* [D, D] */
    sl_tensor *wa, *alog, *dtb; /* gated: [H, D], [H], [H] decay gate */
    sl_tensor *wgate;           /* gated: [D, D] output gate */
    int64_t D, H, dk, K, C;
    float eps;
} sl_deltanet;

/* Declares the parameters both mixers have; the gated one adds its own. */
sl_status sl_deltanet_init(sl_mixer *m, sl_params *p);
/* x: [B, T, D] -> [B, T, D]; state: [N, state_floats] or NULL, N = B, or
 * seqs->n when x is a packed batch [1, T, D] (mixer.h). */
sl_tensor *sl_deltanet_forward(sl_mixer *m, sl_ctx *ctx, sl_tensor *x, float *state, int64_t pos,
                               const sl_seqs *seqs);
int64_t sl_deltanet_state_floats(const sl_mixer *m, int64_t max_len);
int64_t sl_deltanet_scratch_floats(const sl_mixer *m, int64_t max_len);
/* x_t: [D] -> y_t: [D]; state: [state_floats]. */
void sl_deltanet_step(sl_mixer *m, float *state, const float *x_t, float *y_t, int64_t pos,
                      float *scratch);

#endif
