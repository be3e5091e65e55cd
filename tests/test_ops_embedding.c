/* embedding.c: the gather forward, and the scatter-add backward against a
 * serial loop on a threaded size with many repeated ids (the race the
 * column split avoids), plus a finite-difference check. */
#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

static void test_gather_and_scatter(void)
{
    const int64_t V = 11, D = 96, B = 4, T = 100; /* R * D = 38400: threaded */
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *w = GC_LEAF(&rng, 1, V, D);
    int32_t ids[400];
    for (int64_t r = 0; r < B * T; r++) ids[r] = (int32_t)sl_rng_below(&rng, V);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = sl_embedding(&ctx, w, ids, B, T);
    CHECK(y->ndim == 3 && y->shape[0] == B && y->shape[1] == T && y->shape[2] == D, "shape");
    for (int64_t r = 0; r < B * T; r++)
        for (int64_t j = 0; j < D; j++)
            CHECK(y->data[r * D + j] == w->data[ids[r] * D + j], "row %lld", (long long)r);
    float *dy = malloc(B * T * D * sizeof(float)), *ref = calloc(V * D, sizeof(float));
    for (int64_t i = 0; i < B * T * D; i++) dy[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, y, dy);
    /* The same sums in the same (row) order: bit-identical. */
    for (int64_t r = 0; r < B * T; r++)
        for (int64_t j = 0; j < D; j++) ref[ids[r] * D + j] += dy[r * D + j];
    int64_t bad = 0;
    for (int64_t i = 0; i < V * D; i++) bad += w->grad[i] != ref[i];
    CHECK(bad == 0, "%lld gradient elements differ", (long long)bad);
    free(dy);
    free(ref);
    sl_ctx_free(&ctx);
    gc_free(w);
}

static const int32_t small_ids[6] = {2, 0, 2, 4, 2, 1};

static sl_tensor *embedding_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_embedding(ctx, in[0], small_ids, 2, 3);
}

/* Linear in w: central differences are exact up to float rounding of L over
 * 2h (~1e-5 with h = 1e-2); atol = rtol = 1e-3. Row 3 is never used and
 * must get a zero gradient. */
static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *w = GC_LEAF(&rng, 1, 5, 4);
    CHECK(gradcheck("embedding", embedding_fn, &w, 1, NULL, 1e-2f, 1e-3, 1e-3, 64), "embedding");
    for (int j = 0; j < 4; j++) CHECK(w->grad[3 * 4 + j] == 0, "unused row");
    gc_free(w);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_gather_and_scatter);
    RUN(test_gradients);
    return TEST_SUMMARY();
}
