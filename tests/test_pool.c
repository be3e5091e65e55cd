/* Window and segment max pooling: the op's forward and backward against
 * the definition (T = 1, odd T, ranges wider than the sequence, channels
 * across a block edge, packed batches with empty and one-token sequences,
 * T = 65536), first-index tie-breaking, and finite differences on inputs
 * without ties. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/pool.h"

/* Packed: an empty sequence first, one token, seven, empty, four. */
static const int64_t CU[] = {0, 0, 1, 8, 8, 12};
static const sl_seqs PACKED = {5, CU};

/* Op vs reference, y and dx under a random dy. */
static void check_case(int64_t B, int64_t T, int64_t C, int kind, int64_t size,
                       const sl_seqs *seqs)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + C + size));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *x = SL_NEW(&ctx, B, T, C);
    x->requires_grad = true;
    for (int64_t i = 0; i < x->n; i++) x->data[i] = sl_rng_normal(&rng);
    float *dy = malloc((size_t)x->n * sizeof(float));
    for (int64_t i = 0; i < x->n; i++) dy[i] = sl_rng_normal(&rng);
    double *yr = calloc((size_t)x->n + 1, sizeof(double));
    double *dxr = calloc((size_t)x->n + 1, sizeof(double));
    sl_tensor *y = sl_max_pool(&ctx, x, kind, size, seqs);
    sl_backward_with(&ctx, y, dy);
    const sl_pool_desc d = {B, T, C, kind, size, seqs};
    sl_max_pool_ref(&d, x->data, dy, yr, dxr);
    for (int64_t i = 0; i < x->n; i++) {
        CHECK_CLOSE(y->data[i], yr[i], 0, 0, "y");
        CHECK_CLOSE(x->grad[i], dxr[i], 1e-4, 1e-4, "dx"); /* float sums of S dy */
    }
    free(dy);
    free(yr);
    free(dxr);
    sl_ctx_free(&ctx);
}

static void test_matches_reference(void)
{
    const int kinds[] = {SL_POOL_WINDOW, SL_POOL_SEGMENT};
    const int64_t sizes[][4] = {{1, 3, 5, 31}, {1, 3, 4, 40}};
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 4; s++) {
            const int64_t z = sizes[k][s];
            check_case(2, 1, 3, kinds[k], z, NULL);
            check_case(2, 13, 5, kinds[k], z, NULL);
            check_case(1, 9, 70, kinds[k], z, NULL); /* a second, partial block */
            check_case(1, 12, 70, kinds[k], z, &PACKED);
        }
}

/* Equal values: the first index takes the whole gradient. */
static void test_ties_first_index(void)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *x = GC_LEAF(NULL, 0.0f, 1, 4, 1);
    const float v[4] = {2, 2, 1, 2};
    memcpy(x->data, v, sizeof v);
    const float dy[4] = {1, 10, 100, 1000};
    sl_backward_with(&ctx, sl_max_pool(&ctx, x, SL_POOL_SEGMENT, 4, NULL), dy);
    CHECK(x->grad[0] == 1111 && x->grad[1] == 0 && x->grad[3] == 0, "segment: first index");
    memset(x->grad, 0, 4 * sizeof(float));
    sl_ctx_reset(&ctx);
    sl_backward_with(&ctx, sl_max_pool(&ctx, x, SL_POOL_WINDOW, 3, NULL), dy);
    /* Windows {0,1}, {0,1,2}, {1,2,3}, {2,3}: argmax 0, 0, 1, 3. */
    CHECK(x->grad[0] == 11 && x->grad[1] == 100 && x->grad[2] == 0 && x->grad[3] == 1000,
          "window: first index");
    gc_free(x);
    sl_ctx_free(&ctx);
}

/* T = 65536 with one long sequence and a packed pair: offsets beyond 2^16
 * rows stay right. */
static void test_long(void)
{
    const int64_t cu[] = {0, 40000, 65536};
    const sl_seqs two = {2, cu};
    check_case(1, 65536, 3, SL_POOL_WINDOW, 5, NULL);
    check_case(1, 65536, 3, SL_POOL_SEGMENT, 1000, &two);
}

struct pool_arg {
    int kind;
    int64_t size;
    const sl_seqs *seqs;
};

static sl_tensor *pool_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const struct pool_arg *a = arg;
    return sl_max_pool(ctx, in[0], a->kind, a->size, a->seqs);
}

static void test_gradient_finite_differences(void)
{
    /* Piecewise linear: exact away from ties. Inputs spaced at least 0.05
     * apart (a shuffled ramp) keep every argmax fixed under h = 1e-2. */
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const struct pool_arg args[] = {{SL_POOL_WINDOW, 3, NULL},
                                    {SL_POOL_SEGMENT, 4, NULL},
                                    {SL_POOL_WINDOW, 5, &PACKED},
                                    {SL_POOL_SEGMENT, 3, &PACKED}};
    for (int k = 0; k < 4; k++) {
        const int64_t B = args[k].seqs ? 1 : 2, T = 12, C = 6, n = B * T * C;
        sl_tensor *x = GC_LEAF(&rng, 1.0f, B, T, C);
        for (int64_t i = 0; i < n; i++) x->data[i] = 0.05f * (float)i;
        for (int64_t i = n - 1; i > 0; i--) {
            const int64_t j = (int64_t)sl_rng_below(&rng, (uint64_t)(i + 1));
            const float t = x->data[i];
            x->data[i] = x->data[j];
            x->data[j] = t;
        }
        CHECK(gradcheck("max_pool", pool_fn, &x, 1, (void *)&args[k], 1e-2f, 1e-4, 1e-3, 200),
              "max_pool case %d", k);
        gc_free(x);
    }
}

int main(void)
{
    RUN(test_matches_reference);
    RUN(test_ties_first_index);
    RUN(test_long);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
