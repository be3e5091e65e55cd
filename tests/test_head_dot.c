/* head_dot.c: per-head inner products against a direct loop, and
 * finite-difference gradients of both inputs. */
#include "check.h"
#include "gradcheck.h"
#include "ops/head_dot.h"

static sl_tensor *f_dot(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_head_dot(ctx, in[0], in[1], 3);
}

static void test_matches_loop_and_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    /* [2, 4, H*P] with H = 3, P = 5. */
    sl_tensor *a = GC_LEAF(&rng, 1.0f, 2, 4, 15), *b = GC_LEAF(&rng, 1.0f, 2, 4, 15);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *y = sl_head_dot(&ctx, a, b, 3);
    CHECK(y->ndim == 3 && y->shape[2] == 3, "shape [2, 4, 3]");
    double worst = 0;
    for (int64_t r = 0; r < 8; r++)
        for (int64_t h = 0; h < 3; h++) {
            double s = 0;
            for (int64_t p = 0; p < 5; p++)
                s += (double)a->data[r * 15 + h * 5 + p] * b->data[r * 15 + h * 5 + p];
            worst = fmax(worst, fabs(s - y->data[r * 3 + h]));
        }
    CHECK(worst < 1e-5, "loop: max error %g", worst);
    sl_ctx_free(&ctx);
    /* Bilinear: central differences are exact up to the loss's rounding. */
    sl_tensor *in[2] = {a, b};
    CHECK(gradcheck("head_dot", f_dot, in, 2, NULL, 1e-2f, 1e-3, 1e-3, 100), "gradients");
    gc_free(a);
    gc_free(b);
}

int main(void)
{
    RUN(test_matches_loop_and_gradients);
    return TEST_SUMMARY();
}
