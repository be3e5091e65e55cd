/* Sequence pooling: mean, last and first against the double reference,
 * over batch rows and a packed batch (a one-token and an empty sequence
 * included: zeros), and finite differences of each. */
#include <stdlib.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/seq_pool.h"

/* One token, five, empty, seven. */
static const int64_t CU[] = {0, 1, 6, 6, 13};
static const sl_seqs PACKED = {4, CU};

typedef struct pool_arg {
    sl_seq_pool_kind kind;
    const sl_seqs *seqs;
} pool_arg;

static sl_tensor *pool_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const pool_arg *a = arg;
    return sl_seq_pool(ctx, in[0], a->kind, a->seqs);
}

static void test_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    for (int k = 0; k < 3; k++)
        for (int packed = 0; packed < 2; packed++) {
            const sl_seqs *seqs = packed ? &PACKED : NULL;
            const int64_t B = packed ? 1 : 3, T = 13, D = 5, N = packed ? 4 : B;
            sl_tensor *x = GC_LEAF(&rng, 1.0f, B, T, D);
            sl_ctx ctx;
            sl_ctx_init(&ctx, 1 << 16);
            sl_tensor *y = sl_seq_pool(&ctx, x, (sl_seq_pool_kind)k, seqs);
            double want[4 * 5];
            sl_seq_pool_ref(x->data, B, T, D, (sl_seq_pool_kind)k, seqs, want);
            CHECK(y->ndim == 2 && y->shape[0] == N && y->shape[1] == D, "[N, D]");
            for (int64_t i = 0; i < N * D; i++)
                CHECK_CLOSE(y->data[i], want[i], 1e-6, 1e-6, "pooled");
            sl_ctx_free(&ctx);
            gc_free(x);
        }
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    for (int k = 0; k < 3; k++)
        for (int packed = 0; packed < 2; packed++) {
            const pool_arg a = {(sl_seq_pool_kind)k, packed ? &PACKED : NULL};
            sl_tensor *x = packed ? GC_LEAF(&rng, 1.0f, 1, 13, 4) : GC_LEAF(&rng, 1.0f, 2, 6, 4);
            CHECK(gradcheck("seq_pool", pool_fn, &x, 1, (void *)&a, 1e-2f, 1e-4, 1e-3, 200),
                  "kind %d packed %d", k, packed);
            gc_free(x);
        }
}

int main(void)
{
    RUN(test_matches_reference);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
