/* norm.c: LayerNorm and RMSNorm against a double-precision loop (forward and
 * backward, on a shape large enough to run threaded with per-thread dw, db
 * slices) and finite-difference gradients of every input. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/norm.h"
#include "ops/ops.h"

#define EPS 1e-5f

static double worst(const float *a, const double *b, int64_t n, double atol, double rtol)
{
    double q = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = fabs(a[i] - b[i]) / (atol + rtol * fabs(b[i]));
        if (!(r <= q)) q = r;
    }
    return q;
}

/* R * D = 40960 is over the threading threshold. A mean of 30 with unit
 * spread tests that the variance does not cancel. Tolerances: float rounding
 * of x - mean at |x| ~ 30 is ~2e-6 per element; dw, db sum 256 rows. */
static void check_against_reference(bool center)
{
    const int64_t R = 256, D = 160;
    sl_rng rng;
    sl_rng_seed(&rng, center ? 1 : 2);
    sl_tensor *x = GC_LEAF(&rng, 1, R, D), *w = GC_LEAF(&rng, 1, D), *b = GC_LEAF(&rng, 1, D);
    for (int64_t i = 0; i < x->n; i++) x->data[i] += 30;
    float *dy = malloc(R * D * sizeof(float));
    for (int64_t i = 0; i < R * D; i++) dy[i] = sl_rng_normal(&rng);
    double *y = malloc(R * D * sizeof(double)), *dx = malloc(R * D * sizeof(double));
    double dw[160], db[160];
    const sl_norm_desc d = {R, D, EPS, center};
    sl_norm_ref(&d, x->data, w->data, center ? b->data : NULL, dy, y, dx, dw, db);

    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *out = center ? sl_layernorm(&ctx, x, w, b, EPS) : sl_rmsnorm(&ctx, x, w, EPS);
    sl_backward_with(&ctx, out, dy);
    CHECK(worst(out->data, y, R * D, 1e-4, 1e-4) <= 1, "y");
    CHECK(worst(x->grad, dx, R * D, 1e-4, 1e-3) <= 1, "dx: %g", worst(x->grad, dx, R * D, 1e-4, 1e-3));
    CHECK(worst(w->grad, dw, D, 1e-3, 1e-4) <= 1, "dw: %g", worst(w->grad, dw, D, 1e-3, 1e-4));
    if (center) CHECK(worst(b->grad, db, D, 1e-3, 1e-4) <= 1, "db");
    sl_ctx_free(&ctx);
    free(dy);
    free(y);
    free(dx);
    gc_free(x);
    gc_free(w);
    gc_free(b);
}

static void test_layernorm_matches_reference(void) { check_against_reference(true); }
static void test_rmsnorm_matches_reference(void) { check_against_reference(false); }

static sl_tensor *layernorm_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_layernorm(ctx, in[0], in[1], arg ? in[2] : NULL, EPS);
}
static sl_tensor *rmsnorm_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_rmsnorm(ctx, in[0], in[1], EPS);
}

/* h = 1e-2 on unit-scale rows of 8: the central-difference error h^2 f'''/6
 * is ~1e-5, and float rounding of L (~1e-7 |L|, |L| ~ 10) over 2h adds
 * ~5e-5. atol 1e-3, rtol 1e-2 leave a wide margin and still catch any wrong
 * term, which would be O(1). */
static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_tensor *in[3] = {GC_LEAF(&rng, 1, 2, 3, 8), GC_LEAF(&rng, 1, 8), GC_LEAF(&rng, 1, 8)};
    CHECK(gradcheck("layernorm", layernorm_fn, in, 3, (void *)1, 1e-2f, 1e-3, 1e-2, 64), "layernorm");
    CHECK(gradcheck("layernorm, no bias", layernorm_fn, in, 2, NULL, 1e-2f, 1e-3, 1e-2, 64), "no bias");
    CHECK(gradcheck("rmsnorm", rmsnorm_fn, in, 2, NULL, 1e-2f, 1e-3, 1e-2, 64), "rmsnorm");
    in[1]->requires_grad = false;
    memset(in[1]->grad, 0, in[1]->n * sizeof(float));
    CHECK(gradcheck("layernorm, frozen w", layernorm_fn, in, 3, (void *)1, 1e-2f, 1e-3, 1e-2, 64),
          "frozen");
    for (int64_t i = 0; i < in[1]->n; i++) CHECK(in[1]->grad[i] == 0, "frozen w untouched");
    for (int k = 0; k < 3; k++) gc_free(in[k]);
}

static void test_no_tape_without_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    sl_tensor *x = GC_LEAF(&rng, 1, 4, 8), *w = GC_LEAF(&rng, 1, 8);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *y = sl_layernorm(&ctx, x, w, NULL, EPS);
    CHECK(ctx.tape_len == 0 && !y->requires_grad, "nothing recorded");
    /* Each row of the output has mean 0 and variance ~1 when w = 1. */
    for (int64_t j = 0; j < 8; j++) w->data[j] = 1;
    y = sl_layernorm(&ctx, x, w, NULL, EPS);
    double s = 0, q = 0;
    for (int64_t j = 0; j < 8; j++) {
        s += y->data[j];
        q += (double)y->data[j] * y->data[j];
    }
    CHECK(fabs(s) < 1e-5 && fabs(q / 8 - 1) < 1e-3, "normalised: mean %g var %g", s / 8, q / 8);
    sl_ctx_free(&ctx);
    gc_free(x);
    gc_free(w);
}

/* step() calls the row functions: each row of the ops' output, bit for bit. */
static void test_rows_match_ops(void)
{
    const int64_t R = 5, D = 37; /* D not a multiple of any vector width */
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    sl_tensor *x = GC_LEAF(&rng, 3, R, D), *w = GC_LEAF(&rng, 1, D), *b = GC_LEAF(&rng, 1, D);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *ys[3] = {sl_rmsnorm(&ctx, x, w, EPS), sl_layernorm(&ctx, x, w, b, EPS),
                        sl_layernorm(&ctx, x, w, NULL, EPS)};
    float row[37], mean;
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x->data + r * D;
        sl_rmsnorm_row(xr, w->data, row, D, EPS);
        CHECK(memcmp(row, ys[0]->data + r * D, sizeof row) == 0, "rmsnorm row %lld", (long long)r);
        sl_layernorm_row(xr, w->data, b->data, row, D, EPS, &mean);
        CHECK(memcmp(row, ys[1]->data + r * D, sizeof row) == 0, "layernorm row %lld",
              (long long)r);
        sl_layernorm_row(xr, w->data, NULL, row, D, EPS, &mean);
        CHECK(memcmp(row, ys[2]->data + r * D, sizeof row) == 0, "no bias row %lld", (long long)r);
    }
    sl_ctx_free(&ctx);
    gc_free(x);
    gc_free(w);
    gc_free(b);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_layernorm_matches_reference);
    RUN(test_rmsnorm_matches_reference);
    RUN(test_gradients);
    RUN(test_no_tape_without_gradients);
    RUN(test_rows_match_ops);
    return TEST_SUMMARY();
}
