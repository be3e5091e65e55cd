/* The non-causal depthwise conv: the op against the definition in double
 * (K = 1, 3, 7; T = 1, odd T, T shorter than K, channels across a block
 * edge, packed batches with empty and one-token sequences, T = 65536) and
 * finite differences of x, w and bias, packed and not. */
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/dwconv.h"

static const int64_t CU[] = {0, 0, 1, 8, 8, 12};
static const sl_seqs PACKED = {5, CU};

static void check_case(int64_t B, int64_t T, int64_t C, int64_t K, const sl_seqs *seqs)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + C + K));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *x = SL_NEW(&ctx, B, T, C), *w = SL_NEW(&ctx, C, K), *b = SL_NEW(&ctx, C);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = sl_rng_normal(&rng);
    for (int64_t i = 0; i < w->n; i++) w->data[i] = sl_rng_normal(&rng);
    for (int64_t i = 0; i < b->n; i++) b->data[i] = sl_rng_normal(&rng);
    double *yr = malloc((size_t)x->n * sizeof(double));
    sl_tensor *y = sl_dwconv(&ctx, x, w, b, seqs);
    const sl_dwconv_desc d = {B, T, C, K, seqs};
    sl_dwconv_ref(&d, x->data, w->data, b->data, yr);
    for (int64_t i = 0; i < y->n; i++) CHECK_CLOSE(y->data[i], yr[i], 1e-5, 1e-5, "y");
    free(yr);
    sl_ctx_free(&ctx);
}

static void test_matches_reference(void)
{
    const int64_t Ks[] = {1, 3, 7};
    for (int k = 0; k < 3; k++) {
        check_case(2, 1, 3, Ks[k], NULL);
        check_case(2, 13, 5, Ks[k], NULL);
        check_case(1, 5, 70, Ks[k], NULL); /* T < K, a second, partial block */
        check_case(1, 12, 70, Ks[k], &PACKED);
    }
    check_case(1, 65536, 3, 7, NULL);
}

struct arg {
    const sl_seqs *seqs;
};

static sl_tensor *conv_fn(sl_ctx *ctx, sl_tensor **in, void *a)
{
    return sl_dwconv(ctx, in[0], in[1], in[2], ((const struct arg *)a)->seqs);
}

static void test_gradient_finite_differences(void)
{
    /* Bilinear in x and w, linear in bias: exact up to float rounding. */
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const struct arg args[] = {{NULL}, {&PACKED}};
    for (int c = 0; c < 2; c++) {
        const int64_t B = args[c].seqs ? 1 : 2;
        sl_tensor *in[3] = {GC_LEAF(&rng, 1.0f, B, 12, 6), GC_LEAF(&rng, 1.0f, 6, 5),
                            GC_LEAF(&rng, 1.0f, 6)};
        CHECK(gradcheck("dwconv", conv_fn, in, 3, (void *)&args[c], 1e-2f, 2e-4, 2e-3, 200),
              "dwconv case %d", c);
        gc_free_all(in, 3);
    }
}

int main(void)
{
    RUN(test_matches_reference);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
