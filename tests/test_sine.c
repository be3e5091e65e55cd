/* sine.c: sin(f x) against double sin and its row function, and
 * finite-difference gradients of x and f (rows past one block of the
 * frequency gradient's reduction). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/sine.h"

static sl_tensor *f_sine(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_sine(ctx, in[0], in[1]);
}

static void test_values_and_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    /* 300 rows: the frequency gradient's second block is partial. */
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 3, 100, 6), *f = GC_LEAF(&rng, 2.0f, 6);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *y = sl_sine(&ctx, x, f);
    double worst = 0;
    for (int64_t i = 0; i < y->n; i++)
        worst = fmax(worst, fabs(y->data[i] - sin((double)f->data[i % 6] * x->data[i])));
    CHECK(worst < 1e-6, "sin(f x) vs double: %g", worst);
    float row[6];
    sl_sine_row(x->data + 6 * 17, f->data, 6, row);
    CHECK(memcmp(row, y->data + 6 * 17, sizeof row) == 0, "row function bit for bit");
    sl_ctx_free(&ctx);
    sl_tensor *in[2] = {x, f};
    CHECK(gradcheck("sine", f_sine, in, 2, NULL, 1e-2f, 1e-3, 1e-2, 200), "dx and df");
    gc_free(x);
    gc_free(f);
}

int main(void)
{
    RUN(test_values_and_gradients);
    return TEST_SUMMARY();
}
