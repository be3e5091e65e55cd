/* Per-sequence means, threaded over (sequence, block of SL_MEAN_CB
 * channels); each channel sums its tokens in order, so results do not
 * depend on the thread count. */
#include <string.h>

#include "ops/internal.h"
#include "ops/seq_mean.h"

/* Channels per work item. */
#define SL_MEAN_CB 64

static int64_t blocks(int64_t C) { return (C + SL_MEAN_CB - 1) / SL_MEAN_CB; }

/* x: [B, T, C] -> m: [N, C]. */
static void mean_fwd(const float *x, int64_t B, int64_t T, int64_t C, const sl_seqs *seqs, float *m)
{
    const int64_t N = sl_seq_count(seqs, B), nb = blocks(C);
#pragma omp parallel for schedule(static) if (B * T * C >= SL_PAR_MIN)
    for (int64_t w = 0; w < N * nb; w++) {
        const int64_t n = w / nb, c0 = (w % nb) * SL_MEAN_CB;
        const int64_t nc = C - c0 < SL_MEAN_CB ? C - c0 : SL_MEAN_CB;
        const int64_t st = sl_seq_start(seqs, n, T), L = sl_seq_len(seqs, n, T);
        float acc[SL_MEAN_CB] = {0};
        for (int64_t t = 0; t < L; t++) {
            const float *r = x + (st + t) * C + c0;
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) acc[j] += r[j];
        }
        for (int64_t j = 0; j < nc; j++) m[n * C + c0 + j] = L ? acc[j] / (float)L : 0.0f;
    }
}

/* Node: in = {x}, out = m, saved = the bounds (NULL unpacked). The team
 * shares out each sequence's tokens, whatever the number of sequences. */
static void seq_mean_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    if (!x->requires_grad) return;
    const sl_seqs *seqs = nd->saved;
    const int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    const int64_t N = sl_seq_count(seqs, B);
    const float *dm = nd->out->grad;
    float *dx = sl_grad(ctx, x);
#pragma omp parallel if (B * T * C >= SL_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const int64_t st = sl_seq_start(seqs, n, T), L = sl_seq_len(seqs, n, T);
#pragma omp for schedule(static) nowait
        for (int64_t t = 0; t < L; t++) {
            float *r = dx + (st + t) * C;
#pragma omp simd
            for (int64_t j = 0; j < C; j++) r[j] += dm[n * C + j] / (float)L;
        }
    }
}

/* x: [B, T, C] -> m: [N, C] */
sl_tensor *sl_seq_mean(sl_ctx *ctx, sl_tensor *x, const sl_seqs *seqs)
{
    sl_require(x->ndim == 3, "sl_seq_mean", "x [B, T, C]");
    sl_require(sl_seqs_check(seqs, x, "sl_seq_mean") == SL_OK, "sl_seq_mean",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, C]");
    const int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    sl_tensor *m = SL_NEW(ctx, sl_seq_count(seqs, B), C);
    mean_fwd(x->data, B, T, C, seqs, m->data);
    sl_node *nd = SL_RECORD(ctx, seq_mean_backward, m, x);
    if (nd && seqs) nd->saved = (void *)sl_seqs_keep(ctx, seqs);
    return m;
}
