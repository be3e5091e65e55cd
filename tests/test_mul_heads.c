/* mul_heads.c: per-head scaling against a direct loop and its row function, and finite-difference
 * gradients with a per-row scale and with one scale shared by all rows. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/mul_heads.h"

static sl_tensor *f_mul(sl_ctx *ctx, sl_tensor **in, void *arg) { return sl_mul_heads(ctx, in[0], in[1]); }

static void test_matches_loop_and_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    /* x: [2, 3, H*P] with H = 3, P = 4. */
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 2, 3, 12), *s = GC_LEAF(&rng, 1.0f, 2, 3, 3);
    sl_tensor *sh = GC_LEAF(&rng, 1.0f, 3);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *y = sl_mul_heads(&ctx, x, s), *ys = sl_mul_heads(&ctx, x, sh);
    float row[12];
    for (int64_t r = 0; r < 6; r++) { /* step()'s row function, bit for bit */
        sl_mul_heads_row(x->data + r * 12, s->data + r * 3, 3, 4, row);
        CHECK(memcmp(row, y->data + r * 12, sizeof row) == 0, "row %lld", (long long)r);
        sl_mul_heads_row(x->data + r * 12, sh->data, 3, 4, row);
        CHECK(memcmp(row, ys->data + r * 12, sizeof row) == 0, "shared row %lld", (long long)r);
    }
    for (int64_t r = 0; r < 6; r++)
        for (int64_t c = 0; c < 12; c++) {
            CHECK(y->data[r * 12 + c] == x->data[r * 12 + c] * s->data[r * 3 + c / 4], "per row");
            CHECK(ys->data[r * 12 + c] == x->data[r * 12 + c] * sh->data[c / 4], "shared");
        }
    sl_ctx_free(&ctx);
    /* y is bilinear in (x, s): central differences are exact up to float
     * rounding of L = sum r y (~1e-7 |L| / 2h with h = 1e-2). */
    sl_tensor *in[2] = {x, s};
    CHECK(gradcheck("mul_heads", f_mul, in, 2, NULL, 1e-2f, 1e-3, 1e-3, 100), "per-row scale");
    in[1] = sh;
    CHECK(gradcheck("mul_heads shared", f_mul, in, 2, NULL, 1e-2f, 1e-3, 1e-3, 100), "shared scale");
    gc_free(x);
    gc_free(s);
    gc_free(sh);
}

int main(void)
{
    RUN(test_matches_loop_and_gradients);
    return TEST_SUMMARY();
}
