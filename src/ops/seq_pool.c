/* Sequence pooling: the op, its backward and the reference. */
#include <string.h>

#include "ops/internal.h"
#include "ops/seq_pool.h"

typedef struct seq_pool_desc {
    int64_t B, T;
    sl_seq_pool_kind kind;
    const sl_seqs *seqs;
} seq_pool_desc;

/* Sequence n's pooled rows [lo, hi) over all B*T rows (none when it is
 * empty) and their weight. */
static void pooled_rows(const seq_pool_desc *d, int64_t n, int64_t *lo, int64_t *hi, float *w)
{
    const int64_t s = sl_seq_start(d->seqs, n, d->T), L = sl_seq_len(d->seqs, n, d->T);
    *lo = d->kind == SL_SEQ_LAST && L > 0 ? s + L - 1 : s;
    *hi = d->kind == SL_SEQ_FIRST && L > 0 ? s + 1 : s + L;
    *w = *hi > *lo ? 1.0f / (float)(*hi - *lo) : 0.0f;
}

/* dy: [N, D] -> dx[t] += w dy[n] for each pooled row t of sequence n. */
static void seq_pool_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0];
    const seq_pool_desc *d = nd->desc;
    const int64_t D = sl_last(x), N = sl_seq_count(d->seqs, d->B);
    const float *dy = nd->out->grad;
    float *dx = sl_grad(ctx, x);
#pragma omp parallel for schedule(static) if (x->n >= SL_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        int64_t lo, hi;
        float w;
        pooled_rows(d, n, &lo, &hi, &w);
        for (int64_t t = lo; t < hi; t++)
#pragma omp simd
            for (int64_t j = 0; j < D; j++) dx[t * D + j] += w * dy[n * D + j];
    }
}

sl_tensor *sl_seq_pool(sl_ctx *ctx, sl_tensor *x, sl_seq_pool_kind kind, const sl_seqs *seqs)
{
    sl_require(x->ndim == 3, "sl_seq_pool", "x [B, T, D]");
    sl_require(sl_seqs_check(seqs, x, "sl_seq_pool") == SL_OK, "sl_seq_pool",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, D]");
    const seq_pool_desc d = {x->shape[0], x->shape[1], kind, seqs};
    const int64_t D = x->shape[2], N = sl_seq_count(seqs, d.B);
    sl_tensor *y = SL_NEW(ctx, N, D);
#pragma omp parallel for schedule(static) if (x->n >= SL_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        int64_t lo, hi;
        float w;
        pooled_rows(&d, n, &lo, &hi, &w);
        float *yn = y->data + n * D;
        memset(yn, 0, (size_t)D * sizeof(float));
        for (int64_t t = lo; t < hi; t++)
#pragma omp simd
            for (int64_t j = 0; j < D; j++) yn[j] += x->data[t * D + j];
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yn[j] *= w;
    }
    sl_node *nd = SL_RECORD(ctx, seq_pool_backward, y, x);
    if (nd) SL_KEEP_DESC(ctx, nd, d);
    return y;
}

void sl_seq_pool_ref(const float *x, int64_t B, int64_t T, int64_t D, sl_seq_pool_kind kind,
                     const sl_seqs *seqs, double *y)
{
    for (int64_t n = 0; n < sl_seq_count(seqs, B); n++) {
        const int64_t s = sl_seq_start(seqs, n, T), L = sl_seq_len(seqs, n, T);
        for (int64_t j = 0; j < D; j++) {
            double v = 0;
            if (L == 0) v = 0;
            else if (kind == SL_SEQ_FIRST) v = x[s * D + j];
            else if (kind == SL_SEQ_LAST) v = x[(s + L - 1) * D + j];
            else {
                for (int64_t t = s; t < s + L; t++) v += x[t * D + j];
                v /= (double)L;
            }
            y[n * D + j] = v;
        }
    }
}
