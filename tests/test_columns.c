/* Column blocks: the copied values, the gradient landing in the right
 * columns (finite differences), and accumulation when blocks of one tensor
 * feed several ops. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/columns.h"
#include "ops/ops.h"

static void test_forward_copies_block(void)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *x = SL_NEW(&ctx, 2, 3, 10);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = (float)i;
    sl_tensor *y = sl_columns(&ctx, x, 4, 3);
    CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 3, "shape");
    for (int64_t r = 0; r < 6; r++)
        for (int64_t j = 0; j < 3; j++)
            CHECK(y->data[r * 3 + j] == (float)(r * 10 + 4 + j), "row %lld col %lld", (long long)r,
                  (long long)j);
    sl_ctx_free(&ctx);
}

/* Two overlapping blocks multiplied: both backwards add into x's gradient. */
static sl_tensor *two_blocks_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_mul(ctx, sl_columns(ctx, in[0], 0, 5), sl_columns(ctx, in[0], 3, 5));
}

static void test_gradient_finite_differences(void)
{
    /* Products of N(0,1) values: second derivatives are 0 or 1, so the
     * central difference is exact up to float rounding (~1e-6 / 1e-2). */
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 2, 4, 9);
    CHECK(gradcheck("columns", two_blocks_fn, &x, 1, NULL, 1e-2f, 3e-4, 3e-3, 100), "columns");
    gc_free(x);
}

int main(void)
{
    RUN(test_forward_copies_block);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
