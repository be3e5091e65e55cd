/* Global attention pooling: the op against the definition in double (T = 1,
 * odd T, several heads, packed batches with empty and one-token sequences,
 * T = 65536 at input scale 100) and finite differences of q and k. */
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/attn_pool.h"

static const int64_t CU[] = {0, 0, 1, 8, 8, 12};
static const sl_seqs PACKED = {5, CU};

static void check_case(int64_t B, int64_t T, int64_t H, int64_t P, const sl_seqs *seqs,
                       float scale)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + H));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *q = SL_NEW(&ctx, B, T, H * P), *k = SL_NEW(&ctx, B, T, H * P);
    for (int64_t i = 0; i < q->n; i++) {
        q->data[i] = scale * sl_rng_normal(&rng);
        k->data[i] = scale * sl_rng_normal(&rng);
    }
    double *yr = malloc((size_t)q->n * sizeof(double));
    sl_tensor *y = sl_attn_pool(&ctx, q, k, H, seqs);
    const sl_attn_pool_desc d = {B, T, H, P, seqs};
    sl_attn_pool_ref(&d, q->data, k->data, yr);
    bool finite = true;
    for (int64_t i = 0; i < y->n; i++) finite &= isfinite(y->data[i]);
    CHECK(finite, "finite at T %lld scale %g", (long long)T, scale);
    for (int64_t i = 0; i < y->n && scale == 1.0f; i++)
        CHECK_CLOSE(y->data[i], yr[i], 1e-5, 1e-4, "y");
    free(yr);
    sl_ctx_free(&ctx);
}

static void test_matches_reference(void)
{
    check_case(2, 1, 2, 3, NULL, 1.0f);
    check_case(2, 13, 3, 4, NULL, 1.0f);
    check_case(1, 12, 2, 5, &PACKED, 1.0f);
    check_case(1, 65536, 2, 4, NULL, 100.0f);
}

struct arg {
    int64_t H;
    const sl_seqs *seqs;
};

static sl_tensor *pool_fn(sl_ctx *ctx, sl_tensor **in, void *a)
{
    const struct arg *r = a;
    return sl_attn_pool(ctx, in[0], in[1], r->H, r->seqs);
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const struct arg args[] = {{2, NULL}, {2, &PACKED}};
    for (int c = 0; c < 2; c++) {
        const int64_t B = args[c].seqs ? 1 : 2;
        sl_tensor *in[2] = {GC_LEAF(&rng, 1.0f, B, 12, 8), GC_LEAF(&rng, 1.0f, B, 12, 8)};
        CHECK(gradcheck("attn_pool", pool_fn, in, 2, (void *)&args[c], 1e-2f, 2e-4, 2e-3, 200),
              "attn_pool case %d", c);
        gc_free_all(in, 2);
    }
}

int main(void)
{
    RUN(test_matches_reference);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
