/* Per-sequence means: the op against a double loop (T = 1, channels across
 * a block edge, packed batches with empty and one-token sequences, where an
 * empty one's mean is 0) and finite differences, packed and not. */
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/seq_mean.h"

static const int64_t CU[] = {0, 0, 1, 8, 8, 12};
static const sl_seqs PACKED = {5, CU};

static void check_case(int64_t B, int64_t T, int64_t C, const sl_seqs *seqs)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 100 + T * 10 + C));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *x = SL_NEW(&ctx, B, T, C);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = sl_rng_normal(&rng);
    sl_tensor *m = sl_seq_mean(&ctx, x, seqs);
    CHECK(m->ndim == 2 && m->shape[0] == sl_seq_count(seqs, B) && m->shape[1] == C, "[N, C]");
    for (int64_t n = 0; n < m->shape[0]; n++) {
        const int64_t st = sl_seq_start(seqs, n, T), L = sl_seq_len(seqs, n, T);
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t t = 0; t < L; t++) s += x->data[(st + t) * C + c];
            CHECK_CLOSE(m->data[n * C + c], L ? s / (double)L : 0.0, 1e-6, 1e-5, "mean");
        }
    }
    sl_ctx_free(&ctx);
}

static void test_matches_reference(void)
{
    check_case(2, 1, 3, NULL);
    check_case(3, 13, 70, NULL);
    check_case(1, 12, 70, &PACKED);
    check_case(1, 9000, 4, NULL); /* threaded */
}

static sl_tensor *mean_fn(sl_ctx *ctx, sl_tensor **in, void *seqs)
{
    return sl_seq_mean(ctx, in[0], seqs);
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 2, 12, 5);
    CHECK(gradcheck("seq_mean", mean_fn, &x, 1, NULL, 1e-2f, 1e-4, 1e-3, 200), "rows");
    gc_free(x);
    x = GC_LEAF(&rng, 1.0f, 1, 12, 5);
    CHECK(gradcheck("seq_mean", mean_fn, &x, 1, (void *)&PACKED, 1e-2f, 1e-4, 1e-3, 200), "packed");
    gc_free(x);
}

int main(void)
{
    RUN(test_matches_reference);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
