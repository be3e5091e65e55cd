/* lag_taps.c: the transpose against its definition for a table shorter
 * than, as long as and longer than the taps asked, and finite differences
 * (the op is linear: exact up to float rounding). */
#include "check.h"
#include "gradcheck.h"
#include "ops/lag_taps.h"

static sl_tensor *f_taps(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_lag_taps(ctx, in[0], *(const int64_t *)arg);
}

static void test_values_and_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 9, 5);
    static const int64_t Ls[] = {4, 9, 13};
    for (int i = 0; i < 3; i++) {
        int64_t L = Ls[i];
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 16);
        ctx.grad_enabled = false;
        sl_tensor *k = sl_lag_taps(&ctx, x, L);
        bool ok = k->shape[0] == 5 && k->shape[1] == L;
        for (int64_t c = 0; c < 5; c++)
            for (int64_t l = 0; l < L; l++)
                ok &= k->data[c * L + l] == (l < 9 ? x->data[l * 5 + c] : 0.0f);
        CHECK(ok, "taps of %lld lags from a table of 9", (long long)L);
        sl_ctx_free(&ctx);
        sl_tensor *in[1] = {x};
        CHECK(gradcheck("lag_taps", f_taps, in, 1, &L, 1e-2f, 1e-3, 1e-3, 45), "L %lld",
              (long long)L);
    }
    gc_free(x);
}

int main(void)
{
    RUN(test_values_and_gradients);
    return TEST_SUMMARY();
}
