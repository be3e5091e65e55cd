/* elementwise.c: values and finite-difference gradients of sl_add, sl_mul,
 * sl_scale, including an op applied to the same tensor twice. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

/* Sums and products are at most quadratic, so central differences are exact
 * up to float rounding of L (~1e-7 |L| / 2h with h = 1e-2): 1e-3 is loose. */
#define H 1e-2f
#define TOL 1e-3

static sl_tensor *add_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_add(ctx, in[0], in[1]);
}
static sl_tensor *mul_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_mul(ctx, in[0], in[1]);
}
static sl_tensor *square_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_mul(ctx, in[0], in[0]);
}
static sl_tensor *scale_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_scale(ctx, in[0], -2.5f);
}

static void test_values(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *a = GC_LEAF(&rng, 1, 3, 7), *b = GC_LEAF(&rng, 1, 3, 7);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *s = sl_add(&ctx, a, b), *p = sl_mul(&ctx, a, b), *k = sl_scale(&ctx, a, 3);
    for (int64_t i = 0; i < a->n; i++) {
        CHECK(s->data[i] == a->data[i] + b->data[i], "add");
        CHECK(p->data[i] == a->data[i] * b->data[i], "mul");
        CHECK(k->data[i] == 3 * a->data[i], "scale");
    }
    CHECK(s->ndim == 2 && s->shape[1] == 7, "shape kept");
    sl_ctx_free(&ctx);
    gc_free(a);
    gc_free(b);
}

static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *in[2] = {GC_LEAF(&rng, 1, 2, 3, 4), GC_LEAF(&rng, 1, 2, 3, 4)};
    CHECK(gradcheck("add", add_fn, in, 2, NULL, H, TOL, TOL, 64), "add");
    CHECK(gradcheck("mul", mul_fn, in, 2, NULL, H, TOL, TOL, 64), "mul");
    CHECK(gradcheck("mul(x, x)", square_fn, in, 1, NULL, H, TOL, TOL, 64), "both uses of x");
    CHECK(gradcheck("scale", scale_fn, in, 1, NULL, H, TOL, TOL, 64), "scale");
    in[1]->requires_grad = false;
    memset(in[1]->grad, 0, in[1]->n * sizeof(float));
    CHECK(gradcheck("mul, frozen b", mul_fn, in, 2, NULL, H, TOL, TOL, 64), "mul");
    for (int64_t i = 0; i < in[1]->n; i++) CHECK(in[1]->grad[i] == 0, "frozen b untouched");
    gc_free(in[0]);
    gc_free(in[1]);
}

/* Above the threading threshold: the same sums in parallel. */
static void test_large_backward(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_tensor *a = GC_LEAF(&rng, 1, 300, 200), *b = GC_LEAF(&rng, 1, 300, 200);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = sl_mul(&ctx, a, b);
    float *dy = malloc(y->n * sizeof(float));
    for (int64_t i = 0; i < y->n; i++) dy[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, y, dy);
    for (int64_t i = 0; i < y->n; i++) {
        CHECK(a->grad[i] == dy[i] * b->data[i] && b->grad[i] == dy[i] * a->data[i], "at %lld",
              (long long)i);
        if (check_failures) break;
    }
    free(dy);
    sl_ctx_free(&ctx);
    gc_free(a);
    gc_free(b);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_values);
    RUN(test_gradients);
    RUN(test_large_backward);
    return TEST_SUMMARY();
}
