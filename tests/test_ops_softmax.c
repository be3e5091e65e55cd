/* softmax.c: forward and backward against a double-precision loop (large
 * logits included, on a threaded size) and by finite differences. */
#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

/* Rows of 77 with a few logits near 1000, which would overflow exp without
 * the max subtraction. Outputs are in [0, 1]: sl_expf's 2e-7 relative
 * error and the float sum give ~1e-6 relative error, so rtol 1e-5 and
 * atol 1e-7 (for the tiny probabilities). */
static void test_matches_reference(void)
{
    const int64_t R = 500, D = 77; /* 38500: threaded */
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 3, R, D);
    for (int64_t r = 0; r < R; r += 7) x->data[r * D + r % D] = 1000;
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = sl_softmax(&ctx, x);
    float *dy = malloc(R * D * sizeof(float));
    for (int64_t i = 0; i < R * D; i++) dy[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, y, dy);
    double wy = 0, wd = 0;
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x->data + r * D;
        double m = xr[0], s = 0, p[77], dot = 0;
        for (int64_t j = 0; j < D; j++) m = xr[j] > m ? xr[j] : m;
        for (int64_t j = 0; j < D; j++) s += p[j] = exp(xr[j] - m);
        for (int64_t j = 0; j < D; j++) {
            p[j] /= s;
            dot += p[j] * dy[r * D + j];
        }
        for (int64_t j = 0; j < D; j++) {
            double ed = p[j] * (dy[r * D + j] - dot);
            double qy = fabs(y->data[r * D + j] - p[j]) / (1e-7 + 1e-5 * p[j]);
            double qd = fabs(x->grad[r * D + j] - ed) / (1e-6 + 1e-5 * fabs(ed));
            wy = qy > wy ? qy : wy;
            wd = qd > wd ? qd : wd;
        }
    }
    CHECK(wy <= 1, "forward: ratio %g", wy);
    CHECK(wd <= 1, "backward: ratio %g", wd);
    free(dy);
    sl_ctx_free(&ctx);
    gc_free(x);
}

static sl_tensor *softmax_fn(sl_ctx *ctx, sl_tensor **in, void *arg) { return sl_softmax(ctx, in[0]); }

/* h = 1e-2 on logits of unit scale: truncation h^2 f'''/6 ~ 1e-5 (all
 * derivatives of softmax are bounded by 1), float rounding of L over 2h
 * ~1e-5; atol 1e-3, rtol 1e-2. */
static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *x = GC_LEAF(&rng, 1, 2, 3, 7);
    CHECK(gradcheck("softmax", softmax_fn, &x, 1, NULL, 1e-2f, 1e-3, 1e-2, 64), "softmax");
    gc_free(x);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_matches_reference);
    RUN(test_gradients);
    return TEST_SUMMARY();
}
