/* loss.c: cross-entropy against a double-precision loop (value and
 * gradient, ignored rows, large logits, threaded size), the all-ignored
 * case, thread-count independence of the loss, and finite differences;
 * masked MSE likewise. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

#define IGNORE (-100)

/* Probabilities come from sl_expf (relative error 2e-7) and a float sum, so
 * per-row losses are good to ~1e-6 relative and gradients to ~1e-7
 * absolute (they are divided by the count). */
static void test_matches_reference(void)
{
    const int64_t R = 300, V = 130; /* 39000: threaded */
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 4, R, V);
    int32_t t[300];
    for (int64_t r = 0; r < R; r++) {
        t[r] = r % 5 == 0 ? IGNORE : (int32_t)sl_rng_below(&rng, V);
        if (r % 11 == 0) x->data[r * V + (r * 7) % V] = 500; /* overflows exp unshifted */
    }
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *loss = sl_cross_entropy(&ctx, x, t, IGNORE);
    CHECK(loss->n == 1 && loss->requires_grad, "[1], recorded");
    sl_backward(&ctx, loss);

    double total = 0;
    int64_t count = 0;
    double *p = malloc(R * V * sizeof(double));
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x->data + r * V;
        double m = xr[0], s = 0;
        for (int64_t j = 0; j < V; j++) m = xr[j] > m ? xr[j] : m;
        for (int64_t j = 0; j < V; j++) s += exp(xr[j] - m);
        for (int64_t j = 0; j < V; j++) p[r * V + j] = exp(xr[j] - m) / s;
        if (t[r] == IGNORE) continue;
        total += m + log(s) - xr[t[r]];
        count++;
    }
    CHECK_CLOSE(loss->data[0], total / count, 1e-6, 1e-5, "loss");
    double w = 0;
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < V; j++) {
            double e = t[r] == IGNORE ? 0 : (p[r * V + j] - (j == t[r])) / count;
            double q = fabs(x->grad[r * V + j] - e) / (1e-8 + 1e-5 * fabs(e));
            w = q > w ? q : w;
        }
    CHECK(w <= 1, "gradient: ratio %g", w);
    free(p);

    /* The mean is summed serially, so the value is the same on one thread. */
    float two = loss->data[0];
    sl_set_threads(1);
    loss = sl_cross_entropy(&ctx, x, t, IGNORE);
    sl_set_threads(2);
    CHECK(loss->data[0] == two, "thread count: %.9g vs %.9g", loss->data[0], two);
    sl_ctx_free(&ctx);
    gc_free(x);
}

static void test_all_ignored(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *x = GC_LEAF(&rng, 1, 3, 4);
    const int32_t t[3] = {IGNORE, IGNORE, IGNORE};
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *loss = sl_cross_entropy(&ctx, x, t, IGNORE);
    CHECK(loss->data[0] == 0, "loss %g", loss->data[0]);
    sl_backward(&ctx, loss);
    for (int64_t i = 0; i < x->n; i++) CHECK(x->grad[i] == 0, "zero gradient");
    sl_ctx_free(&ctx);
    gc_free(x);
}

/* Rows 1 and 4 have the ignored value 3 (a real class id here). */
static const int32_t small_targets[6] = {0, 3, 4, 1, 3, 2};

static sl_tensor *ce_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_cross_entropy(ctx, in[0], small_targets, 3);
}

/* h = 1e-2 on unit logits: the loss is smooth with derivatives bounded by
 * ~1, so truncation is ~1e-5 and float rounding of L over 2h ~1e-5;
 * atol 1e-3, rtol 1e-2. */
static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_tensor *x = GC_LEAF(&rng, 1, 2, 3, 5);
    CHECK(gradcheck("cross_entropy", ce_fn, &x, 1, NULL, 1e-2f, 1e-3, 1e-2, 64), "cross_entropy");
    for (int j = 0; j < 5; j++) CHECK(x->grad[5 + j] == 0 && x->grad[20 + j] == 0, "ignored rows");
    gc_free(x);
}

/* Masked MSE: rows 1 and 4 of 6 not counted. */
static const uint8_t MSE_MASK[6] = {1, 0, 1, 1, 0, 1};
static float mse_target[6 * 3];

static sl_tensor *mse_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_mse(ctx, in[0], mse_target, arg ? MSE_MASK : NULL);
}

/* The value against a double loop (masked and not), the all-masked case,
 * and finite differences (a quadratic: exact up to float rounding). */
static void test_mse(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    sl_tensor *x = GC_LEAF(&rng, 1, 6, 3);
    for (int i = 0; i < 18; i++) mse_target[i] = sl_rng_normal(&rng);
    for (int masked = 0; masked < 2; masked++) {
        double want = 0;
        int count = 0;
        for (int r = 0; r < 6; r++) {
            if (masked && !MSE_MASK[r]) continue;
            for (int j = 0; j < 3; j++) {
                const double e = (double)x->data[r * 3 + j] - mse_target[r * 3 + j];
                want += e * e;
                count++;
            }
        }
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 16);
        CHECK_CLOSE(mse_fn(&ctx, &x, masked ? (void *)1 : NULL)->data[0], want / count, 1e-6,
                    1e-6, masked ? "mse, masked" : "mse");
        sl_ctx_free(&ctx);
        CHECK(gradcheck("mse", mse_fn, &x, 1, masked ? (void *)1 : NULL, 1e-2f, 1e-4, 1e-3, 64),
              "mse gradient, masked %d", masked);
    }
    for (int j = 0; j < 3; j++) CHECK(x->grad[3 + j] == 0 && x->grad[12 + j] == 0, "masked rows");
    static const uint8_t none[6] = {0};
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    CHECK(sl_mse(&ctx, x, mse_target, none)->data[0] == 0, "nothing counted: 0");
    sl_ctx_free(&ctx);
    gc_free(x);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_matches_reference);
    RUN(test_all_ignored);
    RUN(test_gradients);
    RUN(test_mse);
    return TEST_SUMMARY();
}
