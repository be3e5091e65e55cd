/* Delta-rule gates: sigmoid and the softplus decay gate (and its row
 * function), and HGRN's affine sigmoid, against double references
 * (including the far tails of softplus, where the naive log(1 + e^z)
 * overflows or rounds to 0) and finite differences. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/gate.h"

static void test_softplus_tails(void)
{
    static const float zs[] = {-100.0f, -20.0f, -1.0f, 0.0f, 0.5f, 20.0f, 100.0f};
    for (int i = 0; i < 7; i++) {
        double z = zs[i], ref = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
        CHECK_CLOSE(sl_softplusf(zs[i]), ref, 1e-30, 1e-6, "softplus");
    }
}

static void test_forward_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    const int64_t R = 7, H = 3;
    sl_tensor *x = SL_NEW(&ctx, R, H), *al = SL_NEW(&ctx, H), *dt = SL_NEW(&ctx, H);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = 4.0f * sl_rng_normal(&rng);
    for (int64_t h = 0; h < H; h++) {
        al->data[h] = sl_rng_normal(&rng);
        dt->data[h] = sl_rng_normal(&rng);
    }
    sl_tensor *s = sl_sigmoid(&ctx, x), *g = sl_decay_gate(&ctx, x, al, dt);
    sl_tensor *f = sl_affine_sigmoid(&ctx, x, 0.25f, 0.75f, 1.0f);
    sl_tensor *fc = sl_affine_sigmoid(&ctx, x, 0.0f, 0.75f, -1.0f);
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            double xv = x->data[r * H + h], z = xv + dt->data[h];
            double sp = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
            CHECK_CLOSE(s->data[r * H + h], 1.0 / (1.0 + exp(-xv)), 1e-7, 1e-6, "sigmoid");
            CHECK_CLOSE(f->data[r * H + h], 0.25 + 0.75 / (1.0 + exp(-xv)), 1e-7, 1e-6,
                        "bounded gate");
            CHECK_CLOSE(fc->data[r * H + h], 0.75 / (1.0 + exp(xv)), 1e-7, 1e-6, "complement");
            CHECK(f->data[r * H + h] == sl_affine_sigmoidf((float)xv, 0.25f, 0.75f, 1.0f),
                  "step()'s scalar form, bit for bit");
            CHECK_CLOSE(g->data[r * H + h], -exp((double)al->data[h]) * sp, 1e-7, 1e-5, "decay gate");
            CHECK(g->data[r * H + h] <= 0, "g <= 0");
        }
    float row[3];
    for (int64_t r = 0; r < R; r++) { /* step()'s row function, bit for bit */
        sl_decay_gate_row(x->data + r * H, al->data, dt->data, row, H);
        CHECK(memcmp(row, g->data + r * H, sizeof row) == 0, "row %lld", (long long)r);
    }
    sl_ctx_free(&ctx);
}

static sl_tensor *sigmoid_fn(sl_ctx *ctx, sl_tensor **in, void *arg) { return sl_sigmoid(ctx, in[0]); }

/* arg: {c0, c1, k}. */
static sl_tensor *affine_sigmoid_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const float *c = arg;
    return sl_affine_sigmoid(ctx, in[0], c[0], c[1], c[2]);
}

static sl_tensor *gate_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_decay_gate(ctx, in[0], in[1], in[2]);
}

static void test_gradient_finite_differences(void)
{
    /* Smooth functions of O(1) inputs with O(1) derivatives: at h = 1e-3 the
     * h^2 truncation is ~1e-6 and float rounding of the 15..45 outputs
     * ~1e-6 / 2e-3 = 5e-4 at worst, under atol 1e-3. */
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *x = GC_LEAF(&rng, 2.0f, 2, 5, 3);
    CHECK(gradcheck("sigmoid", sigmoid_fn, &x, 1, NULL, 1e-3f, 1e-3, 1e-3, 100), "sigmoid");
    float bounded[3] = {0.25f, 0.75f, 1.0f}, complement[3] = {0.0f, 0.75f, -1.0f};
    CHECK(gradcheck("affine sigmoid", affine_sigmoid_fn, &x, 1, bounded, 1e-3f, 1e-3, 1e-3, 100),
          "bounded gate");
    CHECK(gradcheck("affine sigmoid", affine_sigmoid_fn, &x, 1, complement, 1e-3f, 1e-3, 1e-3,
                    100),
          "complement");
    sl_tensor *in[3] = {x, GC_LEAF(&rng, 0.5f, 1, 3), GC_LEAF(&rng, 1.0f, 1, 3)};
    CHECK(gradcheck("decay gate", gate_fn, in, 3, NULL, 1e-3f, 1e-3, 1e-3, 100), "decay gate");
    for (int i = 0; i < 3; i++) gc_free(in[i]);
}

int main(void)
{
    RUN(test_softplus_tails);
    RUN(test_forward_matches_reference);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
