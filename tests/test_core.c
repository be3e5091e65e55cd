/* Core: arena growth and reuse, RNG reproducibility, flat parameters, tape. */
#include <string.h>

#include "check.h"
#include "core/core.h"

static void test_arena_grows_then_stops_allocating(void)
{
    sl_arena a;
    sl_arena_init(&a, 128);
    for (int i = 0; i < 10; i++) {
        char *p = sl_arena_alloc(&a, 100);
        CHECK(((uintptr_t)p & 63) == 0, "alignment");
        memset(p, 1, 100);
    }
    CHECK(a.overflow != NULL, "overflowed");
    sl_arena_reset(&a);
    CHECK(a.overflow == NULL && a.cap >= 10 * 128, "grown to peak: %zu", a.cap);
    char *base = a.base;
    for (int i = 0; i < 10; i++) sl_arena_alloc(&a, 100);
    CHECK(a.overflow == NULL && a.base == base, "second pass fits the block");
    sl_arena_free(&a);
}

static void test_rng_reproducible_and_distributed(void)
{
    sl_rng a, b;
    sl_rng_seed(&a, 42);
    sl_rng_seed(&b, 42);
    double sum = 0, sq = 0;
    int n = 100000;
    for (int i = 0; i < n; i++) {
        float x = sl_rng_normal(&a);
        CHECK(x == sl_rng_normal(&b), "same seed, same stream");
        sum += x;
        sq += (double)x * x;
    }
    CHECK(fabs(sum / n) < 0.02 && fabs(sq / n - 1) < 0.02, "N(0,1): mean %g var %g", sum / n, sq / n);
    for (int i = 0; i < 1000; i++) {
        uint64_t k = sl_rng_below(&a, 7);
        float u = sl_rng_uniform(&a);
        CHECK(k < 7 && u >= 0 && u < 1, "ranges");
    }
}

static void test_params_flat_and_aligned(void)
{
    sl_params p;
    sl_params_init(&p);
    strcpy(p.prefix, "blocks.0.");
    sl_tensor *w = SL_PARAM(&p, "w", SL_INIT_NORMAL, 0.02f, true, 3, 5);
    sl_tensor *b = SL_PARAM(&p, "b", SL_INIT_ONES, 0, false, 7);
    CHECK(sl_params_finalize(&p) == SL_OK, "finalize");
    CHECK(((uintptr_t)w->data & 63) == 0 && ((uintptr_t)b->data & 63) == 0, "aligned");
    CHECK(b->data - p.data == 16, "offset padded to 16 floats");
    CHECK(sl_params_numel(&p) == 22, "numel");
    CHECK(sl_params_find(&p, "blocks.0.b") != NULL, "found by full name");
    sl_rng r;
    sl_rng_seed(&r, 1);
    sl_params_randomize(&p, &r);
    CHECK(b->data[6] == 1.0f, "ones");
    sl_params_free(&p);

    sl_params_init(&p);
    SL_PARAM(&p, "x", SL_INIT_ZEROS, 0, false, 1);
    SL_PARAM(&p, "x", SL_INIT_ZEROS, 0, false, 1);
    CHECK(sl_params_finalize(&p) == SL_ERR_ARG && strstr(sl_errmsg(), "'x'"), "duplicate name");
    sl_params_free(&p);
}

static void test_view_shares_gradient(void)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 4096);
    sl_tensor *t = SL_NEW(&ctx, 2, 6);
    t->requires_grad = true;
    sl_tensor *v = SL_VIEW(&ctx, t, 3, 4);
    CHECK(v->data == t->data && v->grad == t->grad && v->requires_grad, "shared");
    CHECK(ctx.tape_len == 1, "recorded");
    sl_ctx_free(&ctx);
}

/* out = sum_i (i + 1) x_i over seven inputs: the node keeps all seven, and
 * the backward reaches each with its own factor. */
static void weighted_sum_backward(sl_ctx *ctx, const sl_node *nd)
{
    for (int i = 0; i < nd->nin; i++) {
        float *g = sl_grad(ctx, nd->in[i]);
        for (int64_t j = 0; j < nd->out->n; j++) g[j] += (float)(i + 1) * nd->out->grad[j];
    }
}

static void test_node_holds_every_input(void)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 4096);
    sl_tensor *x[7];
    for (int i = 0; i < 7; i++) {
        x[i] = SL_NEW(&ctx, 3);
        x[i]->requires_grad = true;
    }
    sl_tensor *out = SL_NEW(&ctx, 3);
    sl_node *nd = SL_RECORD(&ctx, weighted_sum_backward, out, x[0], x[1], x[2], x[3], x[4], x[5],
                            x[6]);
    CHECK(nd && nd->nin == 7, "recorded with 7 inputs: %d", nd ? nd->nin : -1);
    for (int i = 0; i < 7; i++) CHECK(nd->in[i] == x[i], "input %d kept", i);
    sl_backward_with(&ctx, out, (const float[]){1, 2, 3});
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 3; j++)
            CHECK(x[i]->grad && x[i]->grad[j] == (float)((i + 1) * (j + 1)),
                  "input %d reached by the backward", i);
    sl_ctx_free(&ctx);
}

/* Rows 1..2 of a [4, 3] leaf: the view points into its data and gradient,
 * and a gradient through it (an identity node) reaches those rows only. */
static void test_view_rows_in_place(void)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 4096);
    sl_tensor *t = SL_NEW(&ctx, 4, 3);
    for (int64_t i = 0; i < t->n; i++) t->data[i] = (float)i;
    t->requires_grad = true;
    sl_tensor *v = sl_view_rows(&ctx, t, 1, 2);
    CHECK(v->ndim == 2 && v->shape[0] == 2 && v->shape[1] == 3 && v->data == t->data + 3 &&
              v->grad == t->grad + 3 && v->requires_grad,
          "rows 1..2 in place");
    const float dy[6] = {1, 2, 3, 4, 5, 6};
    sl_tensor *out = SL_NEW(&ctx, 2, 3);
    SL_RECORD(&ctx, weighted_sum_backward, out, v);
    sl_backward_with(&ctx, out, dy);
    for (int64_t i = 0; i < t->n; i++)
        CHECK(t->grad[i] == (i >= 3 && i < 9 ? dy[i - 3] : 0.0f), "grad[%lld]", (long long)i);
    sl_ctx_free(&ctx);
}

int main(void)
{
    RUN(test_arena_grows_then_stops_allocating);
    RUN(test_rng_reproducible_and_distributed);
    RUN(test_params_flat_and_aligned);
    RUN(test_view_shares_gradient);
    RUN(test_view_rows_in_place);
    RUN(test_node_holds_every_input);
    return TEST_SUMMARY();
}
