/* dropout.c: the identity cases, the keep rate and scaling, determinism for a
 * seed across thread counts, and the gradient through the saved mask. */
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

/* n = 2^17 + 3 (not a multiple of the 4 lanes per draw). The kept fraction
 * has standard deviation sqrt(p (1 - p) / n) ~ 1.2e-3: 5 sigma is 6e-3. */
static float *dropout_run(int threads, uint64_t seed, float p, int64_t n, double *kept)
{
    sl_set_threads(threads);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.training = true;
    sl_rng_seed(&ctx.rng, seed);
    sl_tensor *x = SL_NEW(&ctx, n);
    for (int64_t i = 0; i < n; i++) x->data[i] = 1;
    sl_tensor *y = sl_dropout(&ctx, x, p);
    float *out = malloc(n * sizeof(float));
    memcpy(out, y->data, n * sizeof(float));
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += out[i] != 0;
    *kept = (double)k / n;
    sl_ctx_free(&ctx);
    sl_set_threads(2);
    return out;
}

static void test_rate_scale_and_determinism(void)
{
    const int64_t n = (1 << 17) + 3;
    const float p = 0.25f;
    double kept, kept1, kept_other;
    float *a = dropout_run(2, 7, p, n, &kept);
    float *b = dropout_run(1, 7, p, n, &kept1);
    float *c = dropout_run(2, 8, p, n, &kept_other);
    CHECK(fabs(kept - (1 - p)) < 6e-3, "kept fraction %g", kept);
    double mean = 0;
    for (int64_t i = 0; i < n; i++) {
        CHECK(a[i] == 0 || a[i] == 1 / (1 - p), "kept values scaled by 1/(1-p): %g", a[i]);
        if (check_failures) break;
        mean += a[i];
    }
    CHECK(fabs(mean / n - 1) < 0.01, "E[y] = x: %g", mean / n);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0, "same seed, 1 or 2 threads: same mask");
    CHECK(memcmp(a, c, n * sizeof(float)) != 0, "another seed, another mask");
    free(a);
    free(b);
    free(c);
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
