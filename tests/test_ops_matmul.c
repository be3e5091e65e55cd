/* matmul.c: sl_gemm against its naive reference (every transpose, the sgemv
 * shapes, odd sizes, both betas), and finite-difference gradients of
 * sl_linear and sl_matmul. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

/* Linear maps are exact under central differences, so the only error is
 * float rounding of L = sum r y: about 1e-7 |L| / 2h with h = 1e-2, far
 * below atol = rtol = 1e-3. */
#define LIN_H 1e-2f
#define LIN_ATOL 1e-3
#define LIN_RTOL 1e-3

static void fill(sl_rng *rng, float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) p[i] = sl_rng_normal(rng);
}

static void test_gemm_matches_reference(void)
{
    /* (M, N, K): odd sizes, the sgemv cases M == 1 and N == 1, a dot product,
     * long reductions that sl_gemm splits over K across threads, and a tall
     * product it splits over M (checked at 1, 2 and 3 threads, the last
     * leaving uneven slices). */
    const int64_t sizes[][3] = {{7, 5, 3},      {13, 17, 11},  {1, 9, 7},
                                {9, 1, 7},      {1, 1, 5},     {33, 65, 31},
                                {64, 1, 129},   {37, 29, 3001}, {5, 300, 1030},
                                {2053, 19, 13}};
    for (int threads = 1; threads <= 3; threads++) {
        sl_set_threads(threads);
        sl_rng rng;
        sl_rng_seed(&rng, 1);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            int64_t M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
            float *A = malloc(M * K * sizeof(float)), *B = malloc(K * N * sizeof(float));
            float *C = malloc(M * N * sizeof(float)), *R = malloc(M * N * sizeof(float));
            fill(&rng, A, M * K);
            fill(&rng, B, K * N);
            for (int t = 0; t < 4; t++) {
                bool ta = t & 1, tb = t & 2;
                for (int64_t i = 0; i < M * N; i++) C[i] = NAN; /* beta = 0 must not read C */
                sl_gemm_ref(ta, tb, M, N, K, A, B, 0, R);
                sl_gemm(ta, tb, M, N, K, A, B, 0, C);
                /* float sums of K ~ N(0,1) products: the error grows like
                 * sqrt(K) 1e-7 times the partial sums (~sqrt(K)), so the
                 * absolute tolerance scales with sqrt(K) for entries near 0. */
                double atol = 1e-5 * fmax(1.0, sqrt((double)K / 10));
                double q = close_ratio(C, R, M * N, atol, 1e-4);
                CHECK(q <= 1, "M %lld N %lld K %lld ta %d tb %d beta 0: ratio %g", (long long)M,
                      (long long)N, (long long)K, ta, tb, q);
                for (int64_t i = 0; i < M * N; i++) C[i] = R[i] = (float)i / 7;
                sl_gemm_ref(ta, tb, M, N, K, A, B, 1, R);
                sl_gemm(ta, tb, M, N, K, A, B, 1, C);
                q = close_ratio(C, R, M * N, atol, 1e-4);
                CHECK(q <= 1, "M %lld N %lld K %lld ta %d tb %d beta 1: ratio %g", (long long)M,
                      (long long)N, (long long)K, ta, tb, q);
            }
            free(A);
            free(B);
            free(C);
            free(R);
        }
    }
    sl_set_threads(0);
}

static void test_gemm_empty_inner_dimension(void)
{
    float C[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, A[1], B[1];
    sl_gemm(false, false, 2, 3, 0, A, B, 0, C);
    for (int i = 0; i < 6; i++) CHECK(C[i] == 0, "K = 0, beta = 0 gives zeros");
}

static sl_tensor *linear_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_linear(ctx, in[0], in[1], arg ? in[2] : NULL);
}

static void test_linear_forward_and_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *in[3] = {GC_LEAF(&rng, 1, 2, 3, 5), GC_LEAF(&rng, 1, 4, 5), GC_LEAF(&rng, 1, 4)};
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *y = sl_linear(&ctx, in[0], in[1], in[2]);
    CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 4, "shape");
    float ref[24];
    sl_gemm_ref(false, true, 6, 4, 5, in[0]->data, in[1]->data, 0, ref);
    for (int i = 0; i < 24; i++) ref[i] += in[2]->data[i % 4];
    CHECK(close_ratio(y->data, ref, 24, 1e-5, 1e-5) <= 1, "y = x W^T + b");
    sl_ctx_free(&ctx);
    CHECK(gradcheck("linear", linear_fn, in, 3, (void *)1, LIN_H, LIN_ATOL, LIN_RTOL, 64), "grads");
    CHECK(gradcheck("linear, no bias", linear_fn, in, 2, NULL, LIN_H, LIN_ATOL, LIN_RTOL, 64),
          "grads");
    /* An input without requires_grad must be left alone. */
    in[0]->requires_grad = false;
    memset(in[0]->grad, 0, in[0]->n * sizeof(float));
    CHECK(gradcheck("linear, frozen x", linear_fn, in, 3, (void *)1, LIN_H, LIN_ATOL, LIN_RTOL, 64),
          "grads");
    for (int64_t i = 0; i < in[0]->n; i++) CHECK(in[0]->grad[i] == 0, "frozen x untouched");
    for (int k = 0; k < 3; k++) gc_free(in[k]);
}

typedef struct {
    bool ta, tb;
} mm_arg;

static sl_tensor *matmul_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const mm_arg *t = arg;
    return sl_matmul(ctx, in[0], in[1], t->ta, t->tb);
}

/* a: [nb or none, M, K] or transposed, b likewise; checks c against the
 * reference per batch and both gradients. */
static void check_matmul(sl_rng *rng, int64_t na, int64_t nb, bool ta, bool tb)
{
    const int64_t M = 3, K = 4, N = 5;
    int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    sl_tensor *in[2] = {na ? GC_LEAF(rng, 1, na, ar, ac) : GC_LEAF(rng, 1, ar, ac),
                        nb ? GC_LEAF(rng, 1, nb, br, bc) : GC_LEAF(rng, 1, br, bc)};
    mm_arg arg = {ta, tb};
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *c = sl_matmul(&ctx, in[0], in[1], ta, tb);
    int64_t batch = na > nb ? na : nb;
    CHECK(c->ndim == (batch ? 3 : 2) && c->shape[c->ndim - 2] == M && c->shape[c->ndim - 1] == N,
          "shape of c, na %lld nb %lld", (long long)na, (long long)nb);
    for (int64_t i = 0; i < (batch ? batch : 1); i++) {
        float ref[M * N];
        sl_gemm_ref(ta, tb, M, N, K, in[0]->data + (na ? i * M * K : 0),
                    in[1]->data + (nb ? i * K * N : 0), 0, ref);
        CHECK(close_ratio(c->data + i * M * N, ref, M * N, 1e-5, 1e-5) <= 1, "batch %lld",
              (long long)i);
    }
    sl_ctx_free(&ctx);
    CHECK(gradcheck("matmul", matmul_fn, in, 2, &arg, LIN_H, LIN_ATOL, LIN_RTOL, 64),
          "grads: na %lld nb %lld ta %d tb %d", (long long)na, (long long)nb, ta, tb);
    gc_free(in[0]);
    gc_free(in[1]);
}

static void test_matmul_every_transpose_and_batching(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        check_matmul(&rng, 2, 2, ta, tb); /* batched */
        check_matmul(&rng, 0, 0, ta, tb); /* 2-D, a batch of one */
        check_matmul(&rng, 3, 0, ta, tb); /* b shared by the batch */
        check_matmul(&rng, 0, 3, ta, tb); /* a shared by the batch */
    }
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_gemm_matches_reference);
    RUN(test_gemm_empty_inner_dimension);
    RUN(test_linear_forward_and_gradients);
    RUN(test_matmul_every_transpose_and_batching);
    return TEST_SUMMARY();
}
