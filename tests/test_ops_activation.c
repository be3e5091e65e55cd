/* activation.c: GELU (tanh form), SiLU, SwiGLU and the SiLU gate against
 * double-precision formulas (forward and backward, on a threaded size) and
 * by finite differences. */
#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

static double gelu_ref(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }
static double silu_ref(double x) { return x * sigmoid_ref(x); }
/* Derivatives by a central difference in double: exact to ~1e-10 here. */
static double dref(double (*f)(double), double x) { return (f(x + 1e-5) - f(x - 1e-5)) / 2e-5; }

/* sl_expf has relative error < 2e-7, so sigmoid-based values and
 * derivatives are good to a few 1e-7 relative: atol 2e-6, rtol 1e-5. */
static void check_pointwise(sl_tensor *(*op)(sl_ctx *, sl_tensor *), double (*f)(double),
                            const char *name)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 2, 300, 200); /* 60000: threaded */
    x->data[0] = 0;
    x->data[1] = -30;
    x->data[2] = 30;
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = op(&ctx, x);
    float *dy = malloc(x->n * sizeof(float));
    for (int64_t i = 0; i < x->n; i++) dy[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, y, dy);
    double wy = 0, wd = 0;
    for (int64_t i = 0; i < x->n; i++) {
        double v = x->data[i], ey = f(v), ed = dy[i] * dref(f, v);
        double qy = fabs(y->data[i] - ey) / (2e-6 + 1e-5 * fabs(ey));
        double qd = fabs(x->grad[i] - ed) / (2e-6 + 1e-5 * fabs(ed));
        wy = qy > wy ? qy : wy;
        wd = qd > wd ? qd : wd;
    }
    CHECK(wy <= 1, "%s forward: ratio %g", name, wy);
    CHECK(wd <= 1, "%s backward: ratio %g", name, wd);
    free(dy);
    sl_ctx_free(&ctx);
    gc_free(x);
}

static void test_gelu_matches_reference(void) { check_pointwise(sl_gelu, gelu_ref, "gelu"); }
static void test_silu_matches_reference(void) { check_pointwise(sl_silu, silu_ref, "silu"); }

static void test_gelu_known_values(void)
{
    /* PyTorch: F.gelu(torch.tensor([1., -1., 3.]), approximate='tanh'). */
    const float x[3] = {1, -1, 3};
    const float want[3] = {0.8411920070648193f, -0.15880800783634186f, 2.9963626861572266f};
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 12);
    sl_tensor *t = SL_NEW(&ctx, 3);
    for (int i = 0; i < 3; i++) t->data[i] = x[i];
    sl_tensor *y = sl_gelu(&ctx, t);
    for (int i = 0; i < 3; i++) CHECK_CLOSE(y->data[i], want[i], 1e-6, 1e-6, "gelu");
    sl_ctx_free(&ctx);
}

/* x: [R, 2F] -> silu(a) g, checked against the double formula with the same
 * tolerances as above, forward and both halves of the backward. */
static void test_swiglu_matches_reference(void)
{
    const int64_t R = 150, F = 160; /* R * F = 24000, R * 2F = 48000: threaded */
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *x = GC_LEAF(&rng, 2, R, 2 * F);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = sl_swiglu(&ctx, x);
    CHECK(y->ndim == 2 && y->shape[1] == F, "shape");
    float *dy = malloc(R * F * sizeof(float));
    for (int64_t i = 0; i < R * F; i++) dy[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, y, dy);
    double w = 0;
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < F; j++) {
            double a = x->data[r * 2 * F + j], g = x->data[r * 2 * F + F + j], d = dy[r * F + j];
            double e[3] = {silu_ref(a) * g, d * g * dref(silu_ref, a), d * silu_ref(a)};
            float got[3] = {y->data[r * F + j], x->grad[r * 2 * F + j], x->grad[r * 2 * F + F + j]};
            for (int k = 0; k < 3; k++) {
                double q = fabs(got[k] - e[k]) / (1e-5 + 1e-5 * fabs(e[k]));
                w = q > w ? q : w;
            }
        }
    CHECK(w <= 1, "swiglu: ratio %g", w);
    free(dy);
    sl_ctx_free(&ctx);
    gc_free(x);
}

static sl_tensor *gelu_fn(sl_ctx *ctx, sl_tensor **in, void *arg) { return sl_gelu(ctx, in[0]); }
static sl_tensor *silu_fn(sl_ctx *ctx, sl_tensor **in, void *arg) { return sl_silu(ctx, in[0]); }
static sl_tensor *swiglu_fn(sl_ctx *ctx, sl_tensor **in, void *arg) { return sl_swiglu(ctx, in[0]); }
static sl_tensor *silu_gate_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_silu_gate(ctx, in[0], in[1]);
}

/* h = 1e-2: central differences err by h^2 f'''/6 < 1e-4 for these smooth
 * functions of unit-scale inputs, plus float rounding of L over 2h (~5e-5);
 * atol 1e-3, rtol 1e-2. */
/* a * silu(z) against the double formula. */
static void test_silu_gate_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *a = SL_NEW(&ctx, 4, 25), *z = SL_NEW(&ctx, 4, 25);
    for (int64_t i = 0; i < a->n; i++) {
        a->data[i] = 2.0f * sl_rng_normal(&rng);
        z->data[i] = 4.0f * sl_rng_normal(&rng);
    }
    sl_tensor *y = sl_silu_gate(&ctx, a, z);
    for (int64_t i = 0; i < y->n; i++)
        CHECK_CLOSE(y->data[i], a->data[i] * silu_ref(z->data[i]), 1e-6, 1e-5, "silu_gate");
    sl_ctx_free(&ctx);
}

static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_tensor *x = GC_LEAF(&rng, 1.5f, 3, 10);
    CHECK(gradcheck("gelu", gelu_fn, &x, 1, NULL, 1e-2f, 1e-3, 1e-2, 64), "gelu");
    CHECK(gradcheck("silu", silu_fn, &x, 1, NULL, 1e-2f, 1e-3, 1e-2, 64), "silu");
    CHECK(gradcheck("swiglu", swiglu_fn, &x, 1, NULL, 1e-2f, 1e-3, 1e-2, 64), "swiglu");
    sl_tensor *az[2] = {x, GC_LEAF(&rng, 1.5f, 3, 10)};
    CHECK(gradcheck("silu_gate", silu_gate_fn, az, 2, NULL, 1e-2f, 1e-3, 1e-2, 64), "silu_gate");
    gc_free(az[1]);
    gc_free(x);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_gelu_matches_reference);
    RUN(test_gelu_known_values);
    RUN(test_silu_matches_reference);
    RUN(test_swiglu_matches_reference);
    RUN(test_silu_gate_matches_reference);
    RUN(test_gradients);
    return TEST_SUMMARY();
}
