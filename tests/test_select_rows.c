/* Row selection: the rows it picks, and finite differences (rows not
 * picked take no gradient). */
#include "check.h"
#include "gradcheck.h"
#include "ops/select_rows.h"

static const int64_t IDX[] = {4, 0, 2};

static sl_tensor *select_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_select_rows(ctx, in[0], IDX, 3);
}

static void test_select_rows(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 1, 6, 5);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *y = sl_select_rows(&ctx, x, IDX, 3);
    CHECK(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 5, "[n, D]");
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            CHECK(y->data[i * 5 + j] == x->data[IDX[i] * 5 + j], "row %d", i);
    sl_ctx_free(&ctx);
    CHECK(gradcheck("select_rows", select_fn, &x, 1, NULL, 1e-2f, 1e-4, 1e-3, 30), "gradient");
    for (int j = 0; j < 5; j++) CHECK(x->grad[1 * 5 + j] == 0 && x->grad[5 * 5 + j] == 0, "unpicked");
    gc_free(x);
}

int main(void)
{
    RUN(test_select_rows);
    return TEST_SUMMARY();
}
