/* Per-head division: values, the row function step() uses, and gradients of
 * o and den by finite differences. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/div_heads.h"

enum { H = 3, DV = 4 };
#define EPS 1e-6f

static void test_forward_divides_each_head(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *o = SL_NEW(&ctx, 2, 3, H * DV), *den = SL_NEW(&ctx, 2, 3, H);
    for (int64_t i = 0; i < o->n; i++) o->data[i] = sl_rng_normal(&rng);
    for (int64_t i = 0; i < den->n; i++) den->data[i] = 0.5f + sl_rng_uniform(&rng);
    sl_tensor *y = sl_div_heads(&ctx, o, den, EPS);
    float row[H * DV];
    for (int64_t r = 0; r < 6; r++) { /* step()'s row function, bit for bit */
        sl_div_heads_row(o->data + r * H * DV, den->data + r * H, H, DV, EPS, row);
        CHECK(memcmp(row, y->data + r * H * DV, sizeof row) == 0, "row %lld", (long long)r);
    }
    for (int64_t r = 0; r < 6; r++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < DV; j++) {
                int64_t i = (r * H + h) * DV + j;
                CHECK_CLOSE(y->data[i], o->data[i] / ((double)den->data[r * H + h] + EPS), 1e-7,
                            1e-6, "quotient");
            }
    sl_ctx_free(&ctx);
}

static sl_tensor *div_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_div_heads(ctx, in[0], in[1], EPS);
}

static void test_gradient_finite_differences(void)
{
    /* den in [1, 2]: 1/den has curvature <= 2 there, so truncation at
     * h = 1e-2 (~1e-4 relative at worst) and rounding stay under atol 3e-4
     * with rtol 3e-3. */
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *in[2] = {GC_LEAF(&rng, 1.0f, 2, 3, H * DV), GC_LEAF(&rng, 1.0f, 2, 3, H)};
    for (int64_t i = 0; i < in[1]->n; i++) in[1]->data[i] = 1.0f + sl_rng_uniform(&rng);
    CHECK(gradcheck("div_heads", div_fn, in, 2, NULL, 1e-2f, 3e-4, 3e-3, 100), "div_heads");
    gc_free(in[0]);
    gc_free(in[1]);
}

int main(void)
{
    RUN(test_forward_divides_each_head);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
