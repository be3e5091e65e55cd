/* elu + 1, relu, log-sigmoid, softplus and -exp: values against double
 * formulas (with inputs far out on both sides, where log-sigmoid and
 * softplus must neither overflow nor lose their linear tails), and
 * gradients by finite differences. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/gate_maps.h"

typedef sl_tensor *(*map_op)(sl_ctx *, sl_tensor *);

static const struct {
    const char *name;
    map_op op;
} MAPS[] = {{"elu1", sl_elu1},         {"relu", sl_relu},       {"logsigmoid", sl_logsigmoid},
            {"softplus", sl_softplus}, {"neg_exp", sl_neg_exp}};
enum { NMAPS = sizeof MAPS / sizeof MAPS[0] };

static double reference(int which, double x)
{
    switch (which) {
    case 0: return x > 0 ? x + 1 : exp(x);
    case 1: return x > 0 ? x : 0;
    case 2: return -log1p(exp(-x));
    case 3: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    default: return -exp(x);
    }
}

static void test_forward_matches_reference(void)
{
    static const float xs[] = {-200.0f, -80.0f, -20.0f, -1.5f, -1e-3f, 0.0f,
                               1e-3f,   0.7f,   20.0f,  80.0f, 200.0f};
    const int64_t n = sizeof xs / sizeof xs[0];
    for (int m = 0; m < NMAPS; m++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 16);
        sl_tensor *x = SL_NEW(&ctx, n);
        memcpy(x->data, xs, sizeof xs);
        sl_tensor *y = MAPS[m].op(&ctx, x);
        for (int64_t i = 0; i < n; i++) {
            double ref = reference(m, xs[i]);
            if (fabs(ref) > 1e38) continue; /* -exp past float's range */
            /* sl_expf's 3e-7 relative error; below e^-87 it clamps at ~1e-38. */
            CHECK(isfinite(y->data[i]) && fabs(y->data[i] - ref) <= 1e-30 + 1e-6 * fabs(ref),
                  "%s(%g) = %.9g, expected %.9g", MAPS[m].name, xs[i], y->data[i], ref);
        }
        sl_ctx_free(&ctx);
    }
}

static sl_tensor *map_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return MAPS[*(const int *)arg].op(ctx, in[0]);
}

static void test_gradient_finite_differences(void)
{
    /* Inputs kept at least 0.1 from 0, where elu + 1 and relu have a kink:
     * h = 1e-2 never crosses it. Elsewhere the maps are smooth with second
     * derivatives <= 1, so truncation ~h^2/6 ~ 2e-5 and float rounding
     * ~1e-7 / 1e-2 stay under atol 3e-4. */
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    for (int m = 0; m < NMAPS; m++) {
        sl_tensor *x = GC_LEAF(&rng, 2.0f, 64);
        for (int64_t i = 0; i < x->n; i++) x->data[i] += x->data[i] >= 0 ? 0.1f : -0.1f;
        CHECK(gradcheck(MAPS[m].name, map_fn, &x, 1, &m, 1e-2f, 3e-4, 3e-3, 64), "%s",
              MAPS[m].name);
        gc_free(x);
    }
}

/* fastmath.h's log(1 + u) on [0, 1] against libm in double: relative error
 * within float rounding, and exact at 0. */
static void test_log1p_unit(void)
{
    double worst = 0;
    for (int i = 0; i <= 100000; i++) {
        const float u = i <= 50000 ? (float)i / 50000.0f : ldexpf(1.0f, -(i - 50000) / 400);
        const double ref = log1p((double)u), got = sl_log1p_unit(u);
        if (ref > 0) worst = fmax(worst, fabs(got - ref) / ref);
    }
    CHECK(worst < 3e-7, "relative error %g", worst);
    CHECK(sl_log1p_unit(0.0f) == 0.0f, "log1p(0) = 0");
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_gradient_finite_differences);
    RUN(test_log1p_unit);
    return TEST_SUMMARY();
}
