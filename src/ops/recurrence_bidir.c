/* The non-causal decayed recurrence as a composition of ops:
 *     o = rec(q, k, v) + flip(rec(flip q, flip k, flip v)) - (q_t . k_t) v_t
 * The first term sums j <= t with weight gamma^(t-j); the second, the same
 * recurrence on reversed sequences, sums j >= t with gamma^(j-t); both hold
 * j = t with weight 1, subtracted once. A decay that depends on the token
 * (GLA, Mamba2) would need gamma_{j+1..t} from one side and gamma_{t+1..j}
 * from the other, a different reversed input; only symmetric constant decays
 * are offered, which is what RetNet and TransNormer define. */
#include "ops/columns.h"
#include "ops/flip_time.h"
#include "ops/gate_maps.h"
#include "ops/head_dot.h"
#include "ops/mul_heads.h"
#include "ops/ops.h"
#include "ops/recurrence.h"

/* in's blocks as tensors of their own, mapped and scaled as the op reads
 * them: q, k: [B, T, H*dk], v: [B, T, H*dv]. */
static void blocks(sl_ctx *ctx, const sl_rec_in *in, int64_t H, sl_tensor **q, sl_tensor **k,
                   sl_tensor **v)
{
    sl_tensor *qk[2] = {sl_columns(ctx, in->q, in->q_off, H * in->dk),
                        sl_columns(ctx, in->k, in->k_off, H * in->dk)};
    for (int i = 0; i < 2; i++) {
        if (in->map == SL_REC_ELU1) qk[i] = sl_elu1(ctx, qk[i]);
        if (in->map == SL_REC_RELU) qk[i] = sl_relu(ctx, qk[i]);
    }
    const float scale[2] = {in->q_scale, in->k_scale};
    for (int i = 0; i < 2; i++)
        if (scale[i] != 0.0f && scale[i] != 1.0f) qk[i] = sl_scale(ctx, qk[i], scale[i]);
    *q = qk[0];
    *k = qk[1];
    *v = sl_columns(ctx, in->v, in->v_off, H * in->dv);
}

/* in's blocks -> o: [B, T, H*dv]. The causal half reads them in place; the
 * reversed half and the diagonal need them as tensors. */
sl_tensor *sl_recurrence_bidir(sl_ctx *ctx, const sl_rec_in *in, const float *log_gamma,
                               int64_t H, int64_t C, const sl_seqs *seqs)
{
    sl_tensor *q, *k, *v;
    blocks(ctx, in, H, &q, &k, &v);
    sl_tensor *fwd = sl_recurrence_in(ctx, in, NULL, log_gamma, NULL, H, C, NULL, seqs);
    sl_tensor *rev = sl_recurrence(ctx, sl_flip_time(ctx, q, seqs), sl_flip_time(ctx, k, seqs),
                                   sl_flip_time(ctx, v, seqs), NULL, log_gamma, NULL, H, C, NULL,
                                   seqs);
    sl_tensor *diag = sl_mul_heads(ctx, v, sl_scale(ctx, sl_head_dot(ctx, q, k, H), -1.0f));
    return sl_add(ctx, sl_add(ctx, fwd, sl_flip_time(ctx, rev, seqs)), diag);
}
