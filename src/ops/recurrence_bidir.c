/* The non-causal decayed recurrence as a composition of ops:
 *     o = rec(q, k, v) + flip(rec(flip q, flip k, flip v)) - (q_t . k_t) v_t
 * The first term sums j <= t with weight gamma^(t-j); the second, the same
 * recurrence on reversed sequences, sums j >= t with gamma^(j-t); both hold
 * j = t with weight 1, subtracted once. A decay that depends on the token
 * (GLA, Mamba2) would need gamma_{j+1..t} from one side and gamma_{t+1..j}
 * from the other, a different reversed input; only symmetric constant decays
 * are offered, which is what RetNet and TransNormer define. */
#include "ops/flip_time.h"
#include "ops/head_dot.h"
#include "ops/mul_heads.h"
#include "ops/ops.h"
#include "ops/recurrence.h"

/* q, k: [B, T, H*dk], v: [B, T, H*dv] -> o: [B, T, H*dv] */
sl_tensor *sl_recurrence_bidir(sl_ctx *ctx, sl_tensor *q, sl_tensor *k, sl_tensor *v,
                               const float *log_gamma, int64_t H, int64_t C, const sl_seqs *seqs)
{
    sl_tensor *fwd = sl_recurrence(ctx, q, k, v, NULL, log_gamma, NULL, H, C, NULL, seqs);
    sl_tensor *rev = sl_recurrence(ctx, sl_flip_time(ctx, q, seqs), sl_flip_time(ctx, k, seqs),
                                   sl_flip_time(ctx, v, seqs), NULL, log_gamma, NULL, H, C, NULL,
                                   seqs);
    sl_tensor *diag = sl_mul_heads(ctx, v, sl_scale(ctx, sl_head_dot(ctx, q, k, H), -1.0f));
    return sl_add(ctx, sl_add(ctx, fwd, sl_flip_time(ctx, rev, seqs)), diag);
}
