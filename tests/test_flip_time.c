/* flip_time.c: reversal and one-token shift of each row and of each packed
 * sequence against a direct loop, flip(flip(x)) == x, and finite-difference
 * gradients. */
#include "check.h"
#include "gradcheck.h"
#include "ops/flip_time.h"

static const int64_t CU[] = {0, 3, 3, 4, 9};
static const sl_seqs SEQS = {4, CU};

static sl_tensor *f_flip(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_flip_time(ctx, in[0], arg);
}

static sl_tensor *f_shift(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_shift_time(ctx, in[0], arg);
}

static void test_shift_matches_loop(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 2, 5, 3), *xp = GC_LEAF(&rng, 1.0f, 1, 9, 2);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *y = sl_shift_time(&ctx, x, NULL), *yp = sl_shift_time(&ctx, xp, &SEQS);
    bool ok = true;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t t = 0; t < 5; t++)
            for (int64_t j = 0; j < 3; j++)
                ok &= y->data[(b * 5 + t) * 3 + j] == (t ? x->data[(b * 5 + t - 1) * 3 + j] : 0);
    CHECK(ok, "rows shifted");
    ok = true;
    for (int64_t i = 0; i < SEQS.n; i++)
        for (int64_t t = CU[i]; t < CU[i + 1]; t++)
            for (int64_t j = 0; j < 2; j++)
                ok &= yp->data[t * 2 + j] == (t > CU[i] ? xp->data[(t - 1) * 2 + j] : 0);
    CHECK(ok, "each packed sequence shifted within its bounds");
    sl_ctx_free(&ctx);
    gc_free(x);
    gc_free(xp);
}

static void test_matches_loop(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 2, 5, 3), *xp = GC_LEAF(&rng, 1.0f, 1, 9, 2);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *y = sl_flip_time(&ctx, x, NULL), *yp = sl_flip_time(&ctx, xp, &SEQS);
    bool ok = true;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t t = 0; t < 5; t++)
            for (int64_t j = 0; j < 3; j++)
                ok &= y->data[(b * 5 + t) * 3 + j] == x->data[(b * 5 + 4 - t) * 3 + j];
    CHECK(ok, "rows reversed");
    ok = true;
    for (int64_t i = 0; i < SEQS.n; i++)
        for (int64_t t = CU[i]; t < CU[i + 1]; t++)
            for (int64_t j = 0; j < 2; j++)
                ok &= yp->data[t * 2 + j] == xp->data[(CU[i + 1] - 1 - (t - CU[i])) * 2 + j];
    CHECK(ok, "each packed sequence reversed within its bounds");
    sl_tensor *back = sl_flip_time(&ctx, yp, &SEQS);
    CHECK(!memcmp(back->data, xp->data, (size_t)xp->n * sizeof(float)), "an involution");
    sl_ctx_free(&ctx);
    gc_free(x);
    gc_free(xp);
}

static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 2, 5, 3), *xp = GC_LEAF(&rng, 1.0f, 1, 9, 2);
    /* A permutation: gradients are exact up to rounding of the loss. */
    CHECK(gradcheck("flip rows", f_flip, &x, 1, NULL, 1e-2f, 1e-3, 1e-3, 100), "rows");
    CHECK(gradcheck("flip packed", f_flip, &xp, 1, (void *)&SEQS, 1e-2f, 1e-3, 1e-3, 100),
          "packed");
    CHECK(gradcheck("shift rows", f_shift, &x, 1, NULL, 1e-2f, 1e-3, 1e-3, 100), "shift rows");
    CHECK(gradcheck("shift packed", f_shift, &xp, 1, (void *)&SEQS, 1e-2f, 1e-3, 1e-3, 100),
          "shift packed");
    gc_free(x);
    gc_free(xp);
}

int main(void)
{
    RUN(test_matches_loop);
    RUN(test_shift_matches_loop);
    RUN(test_gradients);
    return TEST_SUMMARY();
}
