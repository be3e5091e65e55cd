/* Per-group L2 norm: against the double reference (including an all-zero
 * group, where the epsilon keeps the output finite) and finite differences. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/l2norm.h"

static void test_forward_matches_reference(void)
{
    static const int64_t groups[] = {1, 4, 8, 13};
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    for (int gi = 0; gi < 4; gi++) {
        int64_t gs = groups[gi];
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *x = SL_NEW(&ctx, 3, 5, 2 * gs);
        for (int64_t i = 0; i < x->n; i++) x->data[i] = 3.0f * sl_rng_normal(&rng);
        memset(x->data, 0, (size_t)gs * sizeof(float)); /* a zero group: y = 0, not NaN */
        sl_tensor *y = sl_l2norm(&ctx, x, gs);
        float *ref = malloc((size_t)x->n * sizeof(float));
        sl_l2norm_ref(x->data, x->n, gs, ref);
        double r = close_ratio(y->data, ref, y->n, 1e-6, 1e-6);
        CHECK(r <= 1, "group %lld: ratio %g", (long long)gs, r);
        free(ref);
        sl_ctx_free(&ctx);
    }
}

/* step() calls the row function: each group of the op's output, bit for bit. */
static void test_row_matches_op(void)
{
    const int64_t gs = 13;
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *x = SL_NEW(&ctx, 2, 3, 2 * gs);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = 3.0f * sl_rng_normal(&rng);
    sl_tensor *y = sl_l2norm(&ctx, x, gs);
    float row[13];
    for (int64_t g = 0; g < x->n / gs; g++) {
        sl_l2norm_row(x->data + g * gs, row, gs);
        CHECK(memcmp(row, y->data + g * gs, sizeof row) == 0, "group %lld", (long long)g);
    }
    sl_ctx_free(&ctx);
}

static sl_tensor *l2_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_l2norm(ctx, in[0], *(const int64_t *)arg);
}

static void test_gradient_finite_differences(void)
{
    /* Inputs of N(0,1): group norms ~ sqrt(group), the second derivative is
     * O(1/norm^2), so the h^2 = 1e-6 truncation term and float rounding of
     * the O(1) outputs (~1e-7 / 2e-3 ~ 1e-4 with 60 outputs summed) both
     * stay under atol 3e-4. */
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    static int64_t groups[] = {4, 8};
    for (int gi = 0; gi < 2; gi++) {
        sl_tensor *x = GC_LEAF(&rng, 1.0f, 3, 2, 3, 2 * groups[gi]);
        CHECK(gradcheck("l2norm", l2_fn, &x, 1, &groups[gi], 1e-3f, 3e-4, 3e-3, 200), "group %lld",
              (long long)groups[gi]);
        gc_free(x);
    }
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_row_matches_op);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
