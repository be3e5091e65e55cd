/* Gated per-head RMSNorm: the op against a double reference, the one-token
 * form against the op, and gradients of o, z and w by finite differences. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/gated_norm.h"

enum { G = 3, GS = 5 };
#define EPS 1e-5f

static void test_forward_and_step_match_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    const int64_t B = 2, T = 3;
    sl_tensor *o = SL_NEW(&ctx, B, T, G * GS), *z = SL_NEW(&ctx, B, T, G * GS),
              *w = SL_NEW(&ctx, GS);
    for (int64_t i = 0; i < o->n; i++) o->data[i] = 3.0f * sl_rng_normal(&rng);
    for (int64_t i = 0; i < z->n; i++) z->data[i] = 2.0f * sl_rng_normal(&rng);
    for (int64_t i = 0; i < w->n; i++) w->data[i] = 1.0f + 0.3f * sl_rng_normal(&rng);
    sl_tensor *y = sl_gated_rmsnorm(&ctx, o, z, 0, w, G, EPS);
    const sl_gated_norm_desc d = {1, G, GS, G * GS, EPS};
    for (int64_t r = 0; r < B * T; r++) {
        double ref[G * GS];
        float yt[G * GS];
        sl_gated_rmsnorm_ref(&d, o->data + r * G * GS, z->data + r * G * GS, w->data, ref);
        sl_gated_rmsnorm_row(o->data + r * G * GS, z->data + r * G * GS, w->data, G, GS, EPS, yt,
                             NULL);
        for (int j = 0; j < G * GS; j++) {
            CHECK_CLOSE(y->data[r * G * GS + j], ref[j], 1e-6, 1e-5, "op vs reference");
            CHECK(yt[j] == y->data[r * G * GS + j], "one token vs op: the same row function");
        }
    }
    sl_ctx_free(&ctx);
}

/* in = {o, z, w}; arg: z's first column in its tensor. */
static sl_tensor *gn_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_gated_rmsnorm(ctx, in[0], in[1], *(const int64_t *)arg, in[2], G, EPS);
}

static void test_gradient_finite_differences(void)
{
    /* Smooth in all inputs; group RMS ~1 keeps the normaliser's curvature
     * O(1), so truncation at h = 1e-2 (~2e-5) and the rounding of 60 O(1)
     * outputs (~1e-6 / 1e-2) stay under atol 3e-4. */
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    /* z alone, then z as the block at column 2 of a wider tensor (the
     * padding columns must get no gradient). */
    for (int64_t off = 0; off <= 2; off += 2) {
        sl_tensor *in[3] = {GC_LEAF(&rng, 1.0f, 2, 2, G * GS),
                            GC_LEAF(&rng, 1.0f, 2, 2, G * GS + 2 * off), GC_LEAF(&rng, 0.3f, GS)};
        for (int64_t i = 0; i < GS; i++) in[2]->data[i] += 1.0f;
        CHECK(gradcheck("gated_rmsnorm", gn_fn, in, 3, &off, 1e-2f, 3e-4, 3e-3, 100),
              "gated_rmsnorm z_off %lld", (long long)off);
        for (int i = 0; i < 3; i++) gc_free(in[i]);
    }
}

int main(void)
{
    RUN(test_forward_and_step_match_reference);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
