/* Reversal of each sequence in time, and its backward: the reversal is a
 * permutation that is its own inverse, so dx = flip(dy). The one-token
 * shift, whose adjoint is the shift back. */
#include <string.h>

#include "ops/flip_time.h"
#include "ops/internal.h"

/* dst: [B, T, W] <- src reversed within each row or sequence (dst += when
 * acc, for the backward). */
static void flip_rows(const float *src, float *dst, int64_t B, int64_t T, int64_t W,
                      const sl_seqs *seqs, bool acc)
{
    const int64_t rows = sl_seq_count(seqs, B);
#pragma omp parallel for schedule(static) if (B * T * W >= SL_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t0 = sl_seq_start(seqs, r, T), L = sl_seq_len(seqs, r, T);
        for (int64_t t = 0; t < L; t++) {
            const float *s = src + (t0 + L - 1 - t) * W;
            float *d = dst + (t0 + t) * W;
            if (!acc) {
                memcpy(d, s, (size_t)W * sizeof(float));
                continue;
            }
#pragma omp simd
            for (int64_t j = 0; j < W; j++) d[j] += s[j];
        }
    }
}

static void flip_time_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    if (!x->requires_grad) return;
    flip_rows(nd->out->grad, sl_grad(ctx, x), x->shape[0], x->shape[1], sl_numel_from(x, 2),
              nd->saved, true);
}

/* x: [B, T, ...] -> [B, T, ...] */
sl_tensor *sl_flip_time(sl_ctx *ctx, sl_tensor *x, const sl_seqs *seqs)
{
    sl_require(x->ndim >= 2, "sl_flip_time", "x [B, T, ...]");
    sl_require(sl_seqs_check(seqs, x, "sl_flip_time") == SL_OK, "sl_flip_time", sl_errmsg());
    sl_tensor *y = sl_tensor_like(ctx, x);
    flip_rows(x->data, y->data, x->shape[0], x->shape[1], sl_numel_from(x, 2), seqs, false);
    sl_node *nd = SL_RECORD(ctx, flip_time_backward, y, x);
    if (nd) nd->saved = (void *)sl_seqs_keep(ctx, seqs);
    return y;
}

/* dst <- src shifted by +1 (fwd) within each row or sequence, the first
 * row zero; or, for the backward, dst += src shifted by -1. */
static void shift_rows(const float *src, float *dst, int64_t B, int64_t T, int64_t W,
                       const sl_seqs *seqs, bool back)
{
    const int64_t rows = sl_seq_count(seqs, B);
#pragma omp parallel for schedule(static) if (B * T * W >= SL_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t0 = sl_seq_start(seqs, r, T), L = sl_seq_len(seqs, r, T);
        if (L == 0) continue;
        if (!back) {
            memset(dst + t0 * W, 0, (size_t)W * sizeof(float));
            memcpy(dst + (t0 + 1) * W, src + t0 * W, (size_t)((L - 1) * W) * sizeof(float));
            continue;
        }
        for (int64_t t = 0; t + 1 < L; t++) {
            const float *s = src + (t0 + t + 1) * W;
            float *d = dst + (t0 + t) * W;
#pragma omp simd
            for (int64_t j = 0; j < W; j++) d[j] += s[j];
        }
    }
}

static void shift_time_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    if (!x->requires_grad) return;
    shift_rows(nd->out->grad, sl_grad(ctx, x), x->shape[0], x->shape[1], sl_numel_from(x, 2),
               nd->saved, true);
}

/* x: [B, T, ...] -> [B, T, ...] */
sl_tensor *sl_shift_time(sl_ctx *ctx, sl_tensor *x, const sl_seqs *seqs)
{
    sl_require(x->ndim >= 2, "sl_shift_time", "x [B, T, ...]");
    sl_require(sl_seqs_check(seqs, x, "sl_shift_time") == SL_OK, "sl_shift_time", sl_errmsg());
    sl_tensor *y = sl_tensor_like(ctx, x);
    shift_rows(x->data, y->data, x->shape[0], x->shape[1], sl_numel_from(x, 2), seqs, false);
    sl_node *nd = SL_RECORD(ctx, shift_time_backward, y, x);
    if (nd) nd->saved = (void *)sl_seqs_keep(ctx, seqs);
    return y;
}
