/* Short causal conv: against the naive loop, a sequence split into two calls
 * with the state carried (split points around K-1, the case where a chunk is
 * shorter than the state) equals one call, step() equals the forward, and
 * the backward matches finite differences for every input. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/shortconv.h"

static void fill(sl_rng *rng, float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) p[i] = sl_rng_normal(rng);
}

static void test_forward_matches_reference(void)
{
    static const int64_t Ks[] = {1, 2, 4, 5}, Ts[] = {1, 3, 17};
    const int64_t B = 2, C = 19; /* 19: scalar channel tails after the vectors */
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    for (int ki = 0; ki < 4; ki++)
        for (int ti = 0; ti < 3; ti++)
            for (int with = 0; with < 2; with++) {
                int64_t K = Ks[ki], T = Ts[ti];
                sl_ctx ctx;
                sl_ctx_init(&ctx, 1 << 20);
                ctx.grad_enabled = false;
                sl_tensor *x = SL_NEW(&ctx, B, T, C), *w = SL_NEW(&ctx, C, K);
                sl_tensor *bias = with ? SL_NEW(&ctx, C) : NULL;
                sl_tensor *s0 = with && K > 1 ? SL_NEW(&ctx, B, K - 1, C) : NULL;
                fill(&rng, x->data, x->n);
                fill(&rng, w->data, w->n);
                if (bias) fill(&rng, bias->data, C);
                if (s0) fill(&rng, s0->data, s0->n);
                float *st = malloc((size_t)(B * K * C) * sizeof(float));
                float *st_ref = malloc((size_t)(B * K * C) * sizeof(float));
                float *y_ref = malloc((size_t)x->n * sizeof(float));
                sl_tensor *y = sl_shortconv(&ctx, x, w, bias, s0, st);
                sl_shortconv_ref(x->data, w->data, bias ? bias->data : NULL, s0 ? s0->data : NULL,
                                 B, T, C, K, y_ref, st_ref);
                /* float32 sums of K products against double: ~1e-7 relative. */
                double r = close_ratio(y->data, y_ref, y->n, 1e-6, 1e-5);
                CHECK(r <= 1, "K %lld T %lld with %d: ratio %g", (long long)K, (long long)T, with, r);
                CHECK(!memcmp(st, st_ref, (size_t)(B * (K - 1) * C) * sizeof(float)),
                      "K %lld T %lld: final state", (long long)K, (long long)T);
                free(st);
                free(st_ref);
                free(y_ref);
                sl_ctx_free(&ctx);
            }
}

static void test_split_equals_whole(void)
{
    /* K = 4: splits 1 and 2 leave a first chunk shorter than the K-1 = 3
     * state rows, 3 exactly fills it, 4 overflows it. K = 5 adds 3 = K-2. */
    static const int64_t Ks[] = {4, 5};
    const int64_t B = 2, T = 11, C = 6;
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    for (int ki = 0; ki < 2; ki++) {
        int64_t K = Ks[ki];
        const int64_t splits[] = {1, 2, K - 2, K - 1, K};
        for (int si = 0; si < 5; si++) {
            int64_t T1 = splits[si], T2 = T - T1;
            sl_ctx ctx;
            sl_ctx_init(&ctx, 1 << 20);
            ctx.grad_enabled = false;
            sl_tensor *x = SL_NEW(&ctx, B, T, C), *w = SL_NEW(&ctx, C, K), *bias = SL_NEW(&ctx, C);
            sl_tensor *x1 = SL_NEW(&ctx, B, T1, C), *x2 = SL_NEW(&ctx, B, T2, C);
            sl_tensor *s0 = SL_NEW(&ctx, B, K - 1, C);
            fill(&rng, x->data, x->n);
            fill(&rng, w->data, w->n);
            fill(&rng, bias->data, C);
            fill(&rng, s0->data, s0->n);
            for (int64_t b = 0; b < B; b++) {
                memcpy(x1->data + b * T1 * C, x->data + b * T * C, (size_t)(T1 * C) * sizeof(float));
                memcpy(x2->data + b * T2 * C, x->data + (b * T + T1) * C, (size_t)(T2 * C) * sizeof(float));
            }
            float *st_whole = malloc((size_t)s0->n * sizeof(float));
            sl_tensor *yw = sl_shortconv(&ctx, x, w, bias, s0, st_whole);
            /* The split run updates s0 in place: state_out aliasing state0. */
            sl_tensor *y1 = sl_shortconv(&ctx, x1, w, bias, s0, s0->data);
            sl_tensor *y2 = sl_shortconv(&ctx, x2, w, bias, s0, s0->data);
            bool same = true;
            for (int64_t b = 0; b < B; b++) {
                same &= !memcmp(yw->data + b * T * C, y1->data + b * T1 * C, (size_t)(T1 * C) * sizeof(float));
                same &= !memcmp(yw->data + (b * T + T1) * C, y2->data + b * T2 * C,
                                (size_t)(T2 * C) * sizeof(float));
            }
            CHECK(same, "K %lld split %lld: outputs", (long long)K, (long long)T1);
            CHECK(!memcmp(st_whole, s0->data, (size_t)s0->n * sizeof(float)), "K %lld split %lld: state",
                  (long long)K, (long long)T1);
            free(st_whole);
            sl_ctx_free(&ctx);
        }
    }
}

static void test_step_matches_forward(void)
{
    const int64_t T = 9, C = 5, K = 4;
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *x = SL_NEW(&ctx, 1, T, C), *w = SL_NEW(&ctx, C, K), *bias = SL_NEW(&ctx, C);
    fill(&rng, x->data, x->n);
    fill(&rng, w->data, w->n);
    fill(&rng, bias->data, C);
    float fstate[3 * 5], state[3 * 5] = {0}, y[5];
    sl_tensor *yf = sl_shortconv(&ctx, x, w, bias, NULL, fstate);
    for (int64_t t = 0; t < T; t++) {
        sl_shortconv_step(x->data + t * C, w->data, bias->data, C, K, state, y);
        double r = close_ratio(y, yf->data + t * C, C, 1e-6, 1e-6);
        CHECK(r <= 1, "t %lld: ratio %g", (long long)t, r);
    }
    CHECK(!memcmp(state, fstate, sizeof state), "final state");
    sl_ctx_free(&ctx);
}

static sl_tensor *conv_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_shortconv(ctx, in[0], in[1], in[2], in[3], NULL);
}

static void test_gradient_finite_differences(void)
{
    /* The op is bilinear in (x or state, w), so the central difference has no
     * truncation error; only float32 rounding of ~B*T*C outputs of O(1)
     * (~1e-6 in L) divided by 2h = 2e-2 remains: ~1e-4 absolute at worst. */
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    static const int64_t Ts[] = {2, 7};
    for (int ti = 0; ti < 2; ti++) {
        sl_tensor *in[4] = {GC_LEAF(&rng, 1.0f, 2, Ts[ti], 5), GC_LEAF(&rng, 1.0f, 5, 4),
                            GC_LEAF(&rng, 1.0f, 5), GC_LEAF(&rng, 1.0f, 2, 3, 5)};
        CHECK(gradcheck("shortconv", conv_fn, in, 4, NULL, 1e-2f, 2e-4, 1e-3, 200), "T %lld",
              (long long)Ts[ti]);
        for (int i = 0; i < 4; i++) gc_free(in[i]);
    }
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_split_equals_whole);
    RUN(test_step_matches_forward);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
