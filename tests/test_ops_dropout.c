/* dropout.c: the identity cases, the keep rate and scaling, independence of
 * neighbouring elements and of successive calls, determinism for a seed
 * across thread counts, and the gradient through the recomputed mask. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

static void test_identity_in_eval_and_at_zero(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 1, 4, 5);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    CHECK(sl_dropout(&ctx, x, 0.5f) == x, "eval mode returns x");
    ctx.training = true;
    CHECK(sl_dropout(&ctx, x, 0) == x, "p = 0 returns x");
    CHECK(ctx.tape_len == 0, "nothing recorded");
    sl_ctx_free(&ctx);
    gc_free(x);
}

/* Two successive dropouts of a vector of ones, on the given thread count. */
static void dropout_twice(int threads, uint64_t seed, float p, int64_t n, float *first,
                          float *second)
{
    sl_set_threads(threads);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.training = true;
    sl_rng_seed(&ctx.rng, seed);
    sl_tensor *x = SL_NEW(&ctx, n);
    for (int64_t i = 0; i < n; i++) x->data[i] = 1;
    memcpy(first, sl_dropout(&ctx, x, p)->data, n * sizeof(float));
    memcpy(second, sl_dropout(&ctx, x, p)->data, n * sizeof(float));
    sl_ctx_free(&ctx);
    sl_set_threads(2);
}

/* n = 2^17 + 3. A kept fraction has standard deviation
 * sqrt(q (1 - q) / n) <= 1.4e-3 for q = 1 - p or (1 - p)^2: checks allow
 * 5 sigma. */
static void test_rate_scale_and_determinism(void)
{
    const int64_t n = (1 << 17) + 3;
    const float p = 0.25f, q = 1 - p;
    float *a = malloc(n * sizeof(float)), *a2 = malloc(n * sizeof(float));
    float *b = malloc(n * sizeof(float)), *b2 = malloc(n * sizeof(float));
    float *c = malloc(n * sizeof(float)), *c2 = malloc(n * sizeof(float));
    dropout_twice(2, 7, p, n, a, a2);
    dropout_twice(1, 7, p, n, b, b2);
    dropout_twice(2, 8, p, n, c, c2);
    int64_t kept = 0, pairs = 0, both = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        bad += a[i] != 0 && a[i] != 1 / q;
        kept += a[i] != 0;
        pairs += a[i] != 0 && a2[i] != 0;
        if (i > 0) both += a[i] != 0 && a[i - 1] != 0;
    }
    CHECK(bad == 0, "kept values scaled by 1/(1-p): %lld others", (long long)bad);
    CHECK(fabs((double)kept / n - q) < 7e-3, "kept fraction %g", (double)kept / n);
    CHECK(fabs((double)both / (n - 1) - q * q) < 7e-3, "neighbours independent: %g",
          (double)both / (n - 1));
    CHECK(fabs((double)pairs / n - q * q) < 7e-3, "successive calls independent: %g",
          (double)pairs / n);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0 && memcmp(a2, b2, n * sizeof(float)) == 0,
          "same seed, 1 or 2 threads: same masks");
    CHECK(memcmp(a, c, n * sizeof(float)) != 0, "another seed, another mask");
    free(a);
    free(a2);
    free(b);
    free(b2);
    free(c);
    free(c2);
}

static sl_tensor *dropout_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    /* Every evaluation draws the same mask. */
    ctx->training = true;
    sl_rng_seed(&ctx->rng, 3);
    return sl_dropout(ctx, in[0], 0.4f);
}

/* Linear in x for a fixed mask: central differences are exact up to float
 * rounding of L over 2h (~1e-5 with h = 1e-2); atol = rtol = 1e-3. */
static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    sl_tensor *x = GC_LEAF(&rng, 1, 3, 9);
    CHECK(gradcheck("dropout", dropout_fn, &x, 1, NULL, 1e-2f, 1e-3, 1e-3, 64), "dropout");
    int64_t zeros = 0;
    for (int64_t i = 0; i < x->n; i++) zeros += x->grad[i] == 0;
    CHECK(zeros > 0 && zeros < x->n, "some gradients dropped: %lld", (long long)zeros);
    gc_free(x);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_identity_in_eval_and_at_zero);
    RUN(test_rate_scale_and_determinism);
    RUN(test_gradients);
    return TEST_SUMMARY();
}
