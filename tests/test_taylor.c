/* Based's Taylor feature map: phi(q) . phi(k) = 1 + s + s^2/2 with
 * s = q . k / sqrt(d), and gradients by finite differences. */
#include "check.h"
#include "gradcheck.h"
#include "ops/taylor.h"

static void test_kernel_is_taylor_of_exp(void)
{
    enum { H = 2, d = 5 };
    const int64_t F = sl_taylor_width(d);
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    float q[H * d], k[H * d], pq[H * 31], pk[H * 31];
    CHECK(F == 31, "width %lld", (long long)F);
    for (int i = 0; i < H * d; i++) {
        q[i] = sl_rng_normal(&rng);
        k[i] = sl_rng_normal(&rng);
    }
    sl_taylor_row(q, H, d, pq);
    sl_taylor_row(k, H, d, pk);
    for (int h = 0; h < H; h++) {
        double s = 0, dot = 0;
        for (int i = 0; i < d; i++) s += (double)q[h * d + i] * k[h * d + i];
        s /= sqrt((double)d);
        for (int64_t f = 0; f < F; f++) dot += (double)pq[h * F + f] * pk[h * F + f];
        CHECK_CLOSE(dot, 1 + s + s * s / 2, 1e-6, 1e-5, "phi(q) . phi(k)");
    }
}

static sl_tensor *taylor_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_taylor_features(ctx, in[0], 2);
}

static void test_gradient_finite_differences(void)
{
    /* Quadratic in x: the central difference is exact up to float rounding
     * of ~100 O(1) outputs (~1e-6 / 1e-2 = 1e-4 at worst), under atol 3e-4. */
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 3, 2 * 4);
    CHECK(gradcheck("taylor", taylor_fn, &x, 1, NULL, 1e-2f, 3e-4, 3e-3, 100), "taylor");
    gc_free(x);
}

int main(void)
{
    RUN(test_kernel_is_taylor_of_exp);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
