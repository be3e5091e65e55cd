/* Dense products: sl_gemm (OpenBLAS) and its naive reference, the Linear
 * layer and batched matmul with their backwards. Every dense product in the
 * library goes through sl_gemm, so BLAS threading is decided in one place. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/ops.h"

/* C: [M, N] = op(A) op(B) + beta C; A: [M, K] ([K, M] when ta),
 * B: [K, N] ([N, K] when tb). C is not read when beta = 0. */
void sl_gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                 const float *B, float beta, float *C)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                float a = ta ? A[k * M + i] : A[i * K + k];
                float b = tb ? B[j * K + k] : B[k * N + j];
                s += (double)a * b;
            }
            if (beta != 0) s += (double)beta * C[i * N + j];
            C[i * N + j] = (float)s;
        }
}

static void gemm_blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                      const float *B, float beta, float *C);

/* OpenBLAS threads a product over M and N only. A weight gradient
 * dW [N, K] = dy^T x has small M x N and a long reduction over K = B*T rows,
 * and there a second thread makes OpenBLAS slower than one (measured: 384 x
 * 384 x 4096 takes 13 ms on one thread, 20 ms on two). Such products are
 * split over K instead: thread t multiplies its slice of K into its own
 * buffer (thread 0 straight into C) and the partial products are summed. */
static bool split_over_k(int64_t M, int64_t N, int64_t K, int nt)
{
    return nt > 1 && !omp_in_parallel() && K >= 1024 && K >= 2 * M && K >= 2 * N;
}

static void gemm_split_k(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                         const float *B, float beta, float *C, int nt)
{
    static _Thread_local float *part;
    static _Thread_local size_t cap;
    size_t need = (size_t)(nt - 1) * (size_t)(M * N);
    if (need > cap) {
        free(part);
        part = malloc(need * sizeof(float));
        cap = part ? need : 0;
        if (!part) {
            gemm_blas(ta, tb, M, N, K, A, B, beta, C);
            return;
        }
    }
    int64_t slice = (K + nt - 1) / nt;
    float *parts = part; /* the pool's threads see their own _Thread_local copies */
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        int64_t k0 = t * slice, k1 = k0 + slice < K ? k0 + slice : K;
        /* A slice of K is a block of rows of a transposed operand, of columns
         * otherwise; the leading dimensions stay those of the whole matrix. */
        const float *a = ta ? A + k0 * M : A + k0, *b = tb ? B + k0 : B + k0 * N;
        float *c = t == 0 ? C : parts + (size_t)(t - 1) * (size_t)(M * N);
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)M, (int)N, (int)(k1 > k0 ? k1 - k0 : 0), 1.0f, a, (int)(ta ? M : K), b,
                    (int)(tb ? K : N), t == 0 ? beta : 0.0f, c, (int)N);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t i = 0; i < M * N; i++)
            for (int u = 1; u < nt; u++) C[i] += parts[(size_t)(u - 1) * (size_t)(M * N) + i];
    }
}

/* A tall product (the projections of every token, M = B*T rows) ran
 * 10-15% faster as one single-threaded OpenBLAS call per thread on its own
 * rows than as one call threaded by OpenBLAS (T x 768 x 256 and T x 256 x
 * 768 at T = 4096 and 16384, 2 threads, the two alternated; equal at
 * T = 1024). Each entry of C is still one call's full sum over K, so the
 * split does not change results. */
static bool split_over_m(int64_t M, int64_t N, int nt)
{
    return nt > 1 && !omp_in_parallel() && M >= 2048 && M >= N;
}

static void gemm_split_m(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                         const float *B, float beta, float *C, int nt)
{
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        int64_t m0 = M * t / nt, m1 = M * (t + 1) / nt;
        /* Rows of A are columns when A is transposed; lda stays the whole
         * matrix's. The calls run single-threaded inside this region. */
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)(m1 - m0), (int)N, (int)K, 1.0f, ta ? A + m0 : A + m0 * K,
                    (int)(ta ? M : K), B, (int)(tb ? K : N), beta, C + m0 * N, (int)N);
    }
}

/* Same contract as sl_gemm_ref. */
void sl_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B,
             float beta, float *C)
{
    int nt = sl_get_threads();
    if (M > 1 && N > 1 && split_over_k(M, N, K, nt)) {
        if (beta == 0) memset(C, 0, (size_t)(M * N) * sizeof(float));
        gemm_split_k(ta, tb, M, N, K, A, B, beta == 0 ? 1.0f : beta, C, nt);
        return;
    }
    if (N > 1 && K > 0 && split_over_m(M, N, nt)) {
        gemm_split_m(ta, tb, M, N, K, A, B, beta, C, nt);
        return;
    }
    gemm_blas(ta, tb, M, N, K, A, B, beta, C);
}

static void gemm_blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                      const float *B, float beta, float *C)
{
    if (M <= 0 || N <= 0) return;
    /* Arena memory may hold NaN bit patterns. OpenBLAS's sgemm stores zeros
     * when beta = 0 (tests/test_ops_matmul.c fills C with NaN to hold it to
     * that), but its sgemv scales y by beta, and 0 * NaN is NaN. */
    if (beta == 0 && (M == 1 || N == 1 || K <= 0)) memset(C, 0, (size_t)(M * N) * sizeof(float));
    if (K <= 0) {
        if (beta != 0 && beta != 1)
            for (int64_t i = 0; i < M * N; i++) C[i] *= beta;
        return;
    }
    const CBLAS_LAYOUT L = CblasRowMajor;
    const CBLAS_TRANSPOSE T = CblasTrans, NT = CblasNoTrans;
    /* A vector operand is contiguous whether transposed or not, and sgemv
     * streams the matrix once instead of packing it as sgemm would. */
    if (M == 1) {
        if (tb) cblas_sgemv(L, NT, (int)N, (int)K, 1.0f, B, (int)K, A, 1, beta, C, 1);
        else cblas_sgemv(L, T, (int)K, (int)N, 1.0f, B, (int)N, A, 1, beta, C, 1);
    } else if (N == 1) {
        if (ta) cblas_sgemv(L, T, (int)K, (int)M, 1.0f, A, (int)M, B, 1, beta, C, 1);
        else cblas_sgemv(L, NT, (int)M, (int)K, 1.0f, A, (int)K, B, 1, beta, C, 1);
    } else {
        cblas_sgemm(L, ta ? T : NT, tb ? T : NT, (int)M, (int)N, (int)K, 1.0f, A,
                    (int)(ta ? M : K), B, (int)(tb ? K : N), beta, C, (int)N);
    }
}

/* ------------------------------------------------------------------ linear */

/* db[j] += sum_r dy[r, j]. dy: [R, N], db: [N]. Each thread owns whole
 * column blocks and sums them in row order, so the result does not depend on
 * the thread count. */
static void add_column_sums(const float *dy, int64_t R, int64_t N, float *db)
{
    enum { CB = 64 };
    int64_t nblocks = (N + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (R * N >= SL_PAR_MIN)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t j0 = blk * CB, w = N - j0 < CB ? N - j0 : CB;
        float acc[CB] = {0};
        for (int64_t r = 0; r < R; r++) {
            const float *row = dy + r * N + j0;
#pragma omp simd
            for (int64_t j = 0; j < w; j++) acc[j] += row[j];
        }
        for (int64_t j = 0; j < w; j++) db[j0 + j] += acc[j];
    }
}

/* dy: [R, N] -> dx: [R, K] += dy W, dW: [N, K] += dy^T x, db: [N] += sum_r dy. */
static void linear_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    const float *dy = nd->out->grad;
    int64_t R = sl_rows(x), K = sl_last(x), N = w->shape[0];
    if (x->requires_grad) sl_gemm(false, false, R, K, N, dy, w->data, 1, sl_grad(ctx, x));
    if (w->requires_grad) sl_gemm(true, false, N, K, R, dy, x->data, 1, sl_grad(ctx, w));
    if (b && b->requires_grad) add_column_sums(dy, R, N, sl_grad(ctx, b));
}

/* x: [..., K], w: [N, K], b: [N] or NULL -> y: [..., N]. */
sl_tensor *sl_linear(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *b)
{
    int64_t R = sl_rows(x), K = sl_last(x), N = w->shape[0];
    sl_require(w->ndim == 2 && w->shape[1] == K && (!b || b->n == N), "sl_linear",
               "x [..., K], w [N, K], b [N]");
    int64_t shape[SL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = N;
    sl_tensor *y = sl_tensor_new(ctx, x->ndim, shape);
    if (b) {
        /* Start from the bias and let sgemm accumulate: no second pass. */
#pragma omp parallel for schedule(static) if (R * N >= SL_PAR_MIN)
        for (int64_t r = 0; r < R; r++) memcpy(y->data + r * N, b->data, (size_t)N * sizeof(float));
        sl_gemm(false, true, R, N, K, x->data, w->data, 1, y->data);
    } else {
        sl_gemm(false, true, R, N, K, x->data, w->data, 0, y->data);
    }
    SL_RECORD(ctx, linear_backward, y, x, w, b);
    return y;
}

/* ------------------------------------------------------------------ matmul */

/* The geometry of sl_matmul: nb products of op(A) [M, K] by op(B) [K, N];
 * sa, sb are the per-product strides, 0 for a 2-D operand shared by all. */
typedef struct {
    int64_t nb, M, N, K, sa, sb;
} mm_geom;

/* The number of matrices in t: the product of all but its last two dims. */
static int64_t leading(const sl_tensor *t)
{
    return t->n / (t->shape[t->ndim - 2] * t->shape[t->ndim - 1]);
}

/* a: [..., M, K] ([..., K, M] when ta), b: [..., K, N] ([..., N, K] when tb). */
static mm_geom mm_geometry(const sl_tensor *a, const sl_tensor *b, bool ta, bool tb)
{
    sl_require(a->ndim >= 2 && b->ndim >= 2, "sl_matmul", "operands of at least 2 dims");
    int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    mm_geom g = {0};
    g.M = ta ? ac : ar;
    g.K = ta ? ar : ac;
    g.N = tb ? br : bc;
    int64_t na = leading(a), nb = leading(b);
    sl_require((tb ? bc : br) == g.K, "sl_matmul", "inner dimensions to match");
    sl_require(na == nb || a->ndim == 2 || b->ndim == 2, "sl_matmul",
               "equal batch counts, or a 2-D operand shared by the batch");
    g.nb = na > nb ? na : nb;
    g.sa = a->ndim == 2 ? 0 : g.M * g.K;
    g.sb = b->ndim == 2 ? 0 : g.K * g.N;
    return g;
}

/* nb products C[i] = op(A[i]) op(B[i]) + beta C[i], C[i]: [M, N], strides
 * sa, sb, sc in floats. sc = 0 means every product accumulates into one C,
 * which must then run in order on one thread. */
static void gemm_batch(int64_t nb, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       const float *A, int64_t sa, const float *B, int64_t sb, float beta,
                       float *C, int64_t sc)
{
    if (sc == 0) {
        for (int64_t i = 0; i < nb; i++)
            sl_gemm(ta, tb, M, N, K, A + i * sa, B + i * sb, i == 0 ? beta : 1.0f, C);
        return;
    }
    /* Small products run one per thread (BLAS sees it is inside a parallel
     * region and stays single-threaded); large ones use BLAS's threads. */
    int64_t work = M * N * K;
#pragma omp parallel for schedule(static) if (nb > 1 && work < (1 << 22) && nb * work >= SL_PAR_MIN)
    for (int64_t i = 0; i < nb; i++)
        sl_gemm(ta, tb, M, N, K, A + i * sa, B + i * sb, beta, C + i * sc);
}

/* Which operands the forward read transposed. */
typedef struct matmul_desc {
    bool ta, tb;
} matmul_desc;

/* c: [..., M, N] -> da, db by the product rule, transposes undone per case.
 * desc: matmul_desc. */
static void matmul_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *a = nd->in[0], *b = nd->in[1];
    const matmul_desc *d = nd->desc;
    bool ta = d->ta, tb = d->tb;
    mm_geom g = mm_geometry(a, b, ta, tb);
    const float *dc = nd->out->grad;
    int64_t sc = g.M * g.N;
    if (a->requires_grad) {
        float *da = sl_grad(ctx, a);
        if (ta) /* dA [K, M] = op(B) dC^T */
            gemm_batch(g.nb, tb, true, g.K, g.M, g.N, b->data, g.sb, dc, sc, 1, da, g.sa);
        else /* dA [M, K] = dC op(B)^T */
            gemm_batch(g.nb, false, !tb, g.M, g.K, g.N, dc, sc, b->data, g.sb, 1, da, g.sa);
    }
    if (b->requires_grad) {
        float *db = sl_grad(ctx, b);
        if (tb) /* dB [N, K] = dC^T op(A) */
            gemm_batch(g.nb, true, ta, g.N, g.K, g.M, dc, sc, a->data, g.sa, 1, db, g.sb);
        else /* dB [K, N] = op(A)^T dC */
            gemm_batch(g.nb, !ta, false, g.K, g.N, g.M, a->data, g.sa, dc, sc, 1, db, g.sb);
    }
}

/* a: [..., M, K] ([..., K, M] when ta), b: [..., K, N] ([..., N, K] when tb)
 * -> c: [..., M, N] with the leading dims of the batched operand (a when
 * both are); two 2-D operands give a 2-D c. */
sl_tensor *sl_matmul(sl_ctx *ctx, sl_tensor *a, sl_tensor *b, bool ta, bool tb)
{
    mm_geom g = mm_geometry(a, b, ta, tb);
    const sl_tensor *lead = b->ndim > a->ndim ? b : a;
    int64_t shape[SL_MAX_DIMS];
    memcpy(shape, lead->shape, sizeof shape);
    shape[lead->ndim - 2] = g.M;
    shape[lead->ndim - 1] = g.N;
    sl_tensor *c = sl_tensor_new(ctx, lead->ndim, shape);
    gemm_batch(g.nb, ta, tb, g.M, g.N, g.K, a->data, g.sa, b->data, g.sb, 0, c->data, g.M * g.N);
    sl_node *nd = SL_RECORD(ctx, matmul_backward, c, a, b);
    if (nd) {
        const matmul_desc d = {ta, tb};
        SL_KEEP_DESC(ctx, nd, d);
    }
    return c;
}
