/* Global attention pooling: the op against the definition in double (T = 1,
 * odd T, several heads, keys read in place from a wider tensor, packed
 * batches with empty and one-token sequences, T = 65536 at input scale
 * 100) and finite differences of g and of the keys' tensor. */
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/attn_pool.h"

static const int64_t CU[] = {0, 0, 1, 8, 8, 12};
static const sl_seqs PACKED = {5, CU};

/* Keys at column off of x: [B, T, C]. */
static void check_case(int64_t B, int64_t T, int64_t H, int64_t P, int64_t off, int64_t C,
                       const sl_seqs *seqs, float scale)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + H));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    const int64_t N = sl_seq_count(seqs, B), W = H * P;
    sl_tensor *g = SL_NEW(&ctx, N, W), *x = SL_NEW(&ctx, B, T, C);
    for (int64_t i = 0; i < g->n; i++) g->data[i] = scale * sl_rng_normal(&rng);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = scale * sl_rng_normal(&rng);
    double *vr = malloc((size_t)g->n * sizeof(double));
    sl_tensor *v = sl_attn_pool(&ctx, g, x, off, H, seqs);
    const sl_attn_pool_desc d = {B, T, H, P, C, seqs};
    sl_attn_pool_ref(&d, g->data, x->data + off, vr);
    bool finite = true;
    for (int64_t i = 0; i < v->n; i++) finite &= isfinite(v->data[i]);
    CHECK(finite, "finite at T %lld scale %g", (long long)T, scale);
    for (int64_t i = 0; i < v->n && scale == 1.0f; i++)
        CHECK_CLOSE(v->data[i], vr[i], 1e-5, 1e-4, "v");
    for (int64_t n = 0; n < N; n++)
        if (sl_seq_len(seqs, n, T) == 0)
            for (int64_t j = 0; j < W; j++) CHECK(v->data[n * W + j] == 0.0f, "empty: v = 0");
    free(vr);
    sl_ctx_free(&ctx);
}

static void test_matches_reference(void)
{
    check_case(2, 1, 2, 3, 0, 6, NULL, 1.0f);
    check_case(2, 13, 3, 4, 5, 20, NULL, 1.0f);
    check_case(1, 12, 2, 5, 3, 16, &PACKED, 1.0f);
    check_case(1, 65536, 2, 4, 8, 16, NULL, 100.0f);
}

struct arg {
    int64_t H, off;
    const sl_seqs *seqs;
};

static sl_tensor *pool_fn(sl_ctx *ctx, sl_tensor **in, void *a)
{
    const struct arg *r = a;
    return sl_attn_pool(ctx, in[0], in[1], r->off, r->H, r->seqs);
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const struct arg args[] = {{2, 0, NULL}, {2, 3, &PACKED}};
    for (int c = 0; c < 2; c++) {
        const int64_t B = args[c].seqs ? 1 : 2, N = sl_seq_count(args[c].seqs, B);
        sl_tensor *in[2] = {GC_LEAF(&rng, 1.0f, N, 8), GC_LEAF(&rng, 1.0f, B, 12, 13)};
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
