/* PoNet's pooling fusion: the op's forward and backward against the
 * definition in double (T = 1, odd T, ranges wider than the sequence,
 * segment and window of one token, channels across a block edge, o, s, l
 * inside a wider projection, packed batches with empty and one-token
 * sequences, T = 65536), both ways of the backward (writing a fresh
 * gradient, adding to one), packed == each sequence alone, first-index
 * tie-breaking, and finite differences on inputs without ties. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/pool_fusion.h"

/* Packed: an empty sequence first, one token, seven, empty, four. */
static const int64_t CU[] = {0, 0, 1, 8, 8, 12};
static const sl_seqs PACKED = {5, CU};

/* One case: o, s, l at column off of x: [B, T, C]. */
typedef struct fcase {
    int64_t B, T, D, off, C, segment, window;
    const sl_seqs *seqs;
} fcase;

/* Op vs reference: y, dv and every element of dx under a random dy. With
 * add, x's gradient starts from a random one (the backward adds to it);
 * else x is an activation without one (the backward writes it whole). */
static void check_case(const fcase *c, bool add)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(c->T * 100 + c->D + c->segment * 7 + c->window));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    const int64_t N = sl_seq_count(c->seqs, c->B);
    sl_tensor *v = SL_NEW(&ctx, N, c->D), *x = SL_NEW(&ctx, c->B, c->T, c->C);
    v->requires_grad = x->requires_grad = true;
    for (int64_t i = 0; i < v->n; i++) v->data[i] = sl_rng_normal(&rng);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = sl_rng_normal(&rng);
    float *dx0 = calloc((size_t)x->n, sizeof(float));
    if (add) {
        for (int64_t i = 0; i < x->n; i++) dx0[i] = sl_rng_normal(&rng);
        memcpy(sl_grad(&ctx, x), dx0, (size_t)x->n * sizeof(float));
    }
    const int64_t ny = c->B * c->T * c->D;
    float *dy = malloc((size_t)ny * sizeof(float));
    for (int64_t i = 0; i < ny; i++) dy[i] = sl_rng_normal(&rng);
    double *yr = calloc((size_t)ny + 1, sizeof(double)),
           *dvr = calloc((size_t)v->n, sizeof(double));
    double *dxr = calloc((size_t)x->n, sizeof(double));
    for (int64_t i = 0; i < x->n; i++) dxr[i] = dx0[i];
    sl_tensor *y = sl_pool_fusion(&ctx, v, x, c->off, c->segment, c->window, c->seqs);
    sl_backward_with(&ctx, y, dy);
    const sl_pool_fusion_desc d = {c->B, c->T, c->D, c->C, c->segment, c->window, c->seqs};
    sl_pool_fusion_ref(&d, v->data, x->data + c->off, dy, yr, dvr, dxr + c->off);
    bool ok = true;
    for (int64_t i = 0; i < ny; i++) ok &= fabs(y->data[i] - yr[i]) <= 1e-5 + 1e-5 * fabs(yr[i]);
    CHECK(ok, "y: T %lld D %lld S %lld w %lld", (long long)c->T, (long long)c->D,
          (long long)c->segment, (long long)c->window);
    for (int64_t i = 0; i < v->n; i++) CHECK_CLOSE(v->grad[i], dvr[i], 1e-4, 1e-4, "dv");
    ok = true;
    for (int64_t i = 0; i < x->n; i++)
        ok &= fabs(x->grad[i] - dxr[i]) <= 1e-4 + 1e-4 * fabs(dxr[i]);
    CHECK(ok, "dx (%s): T %lld D %lld S %lld w %lld", add ? "added" : "written", (long long)c->T,
          (long long)c->D, (long long)c->segment, (long long)c->window);
    free(dx0);
    free(dy);
    free(yr);
    free(dvr);
    free(dxr);
    sl_ctx_free(&ctx);
}

static void test_matches_reference(void)
{
    const int64_t sizes[][2] = {{1, 1}, {3, 3}, {4, 5}, {40, 31}, {32, 3}};
    for (int k = 0; k < 5; k++) {
        const int64_t S = sizes[k][0], w = sizes[k][1];
        const fcase cases[] = {
            {2, 1, 3, 0, 9, S, w, NULL},
            {2, 13, 5, 2, 19, S, w, NULL},
            {1, 9, 70, 70, 280, S, w, NULL}, /* a second, partial block */
            {1, 12, 70, 1, 211, S, w, &PACKED},
        };
        for (int i = 0; i < 4; i++) {
            check_case(&cases[i], false);
            check_case(&cases[i], true);
        }
    }
}

/* T = 65536 in one sequence and in a packed pair: offsets beyond 2^16
 * rows stay right. */
static void test_long(void)
{
    const int64_t cu[] = {0, 40000, 65536};
    const sl_seqs two = {2, cu};
    check_case(&(fcase){1, 65536, 3, 3, 12, 32, 5, NULL}, false);
    check_case(&(fcase){1, 65536, 3, 0, 9, 1000, 3, &two}, false);
}

/* Each sequence of a packed batch alone ([1, L, C] with its row of v)
 * gives the same y and gradients, bit for bit. */
static void test_packed_equals_alone(void)
{
    const int64_t T = 12, D = 5, C = 17, off = 1, S = 3, w = 5;
    sl_rng rng;
    sl_rng_seed(&rng, 9);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *v = SL_NEW(&ctx, PACKED.n, D), *x = SL_NEW(&ctx, 1, T, C);
    v->requires_grad = x->requires_grad = true;
    for (int64_t i = 0; i < v->n; i++) v->data[i] = sl_rng_normal(&rng);
    for (int64_t i = 0; i < x->n; i++) x->data[i] = sl_rng_normal(&rng);
    float dy[12 * 5];
    for (int64_t i = 0; i < T * D; i++) dy[i] = sl_rng_normal(&rng);
    sl_tensor *y = sl_pool_fusion(&ctx, v, x, off, S, w, &PACKED);
    sl_backward_with(&ctx, y, dy);
    for (int64_t n = 0; n < PACKED.n; n++) {
        const int64_t st = CU[n], L = CU[n + 1] - CU[n];
        if (L == 0) {
            for (int64_t j = 0; j < D; j++) CHECK(v->grad[n * D + j] == 0, "empty: dv = 0");
            continue;
        }
        sl_ctx one;
        sl_ctx_init(&one, 1 << 16);
        sl_tensor *v1 = SL_NEW(&one, 1, D), *x1 = SL_NEW(&one, 1, L, C);
        v1->requires_grad = x1->requires_grad = true;
        memcpy(v1->data, v->data + n * D, (size_t)D * sizeof(float));
        memcpy(x1->data, x->data + st * C, (size_t)(L * C) * sizeof(float));
        sl_tensor *y1 = sl_pool_fusion(&one, v1, x1, off, S, w, NULL);
        sl_backward_with(&one, y1, dy + st * D);
        for (int64_t i = 0; i < L * D; i++) CHECK(y1->data[i] == y->data[st * D + i], "y");
        for (int64_t i = 0; i < D; i++) CHECK(v1->grad[i] == v->grad[n * D + i], "dv");
        for (int64_t i = 0; i < L * C; i++) CHECK(x1->grad[i] == x->grad[st * C + i], "dx");
        sl_ctx_free(&one);
    }
    sl_ctx_free(&ctx);
}

/* Equal values: the first index takes the whole gradient, in the segment
 * (s) and in the window (l). D = 1: x's row is [o, s, l]; o = 1, v = 0. */
static void test_ties_first_index(void)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *v = SL_NEW(&ctx, 1, 1), *x = SL_NEW(&ctx, 1, 4, 3);
    v->data[0] = 0;
    const float sl[4] = {2, 2, 1, 2};
    for (int t = 0; t < 4; t++) {
        x->data[3 * t] = 1;
        x->data[3 * t + 1] = x->data[3 * t + 2] = sl[t];
    }
    x->requires_grad = true;
    const float dy[4] = {1, 10, 100, 1000};
    sl_backward_with(&ctx, sl_pool_fusion(&ctx, v, x, 0, 4, 3, NULL), dy);
    const float *g = x->grad;
    CHECK(g[1] == 1111 && g[4] == 0 && g[7] == 0 && g[10] == 0, "segment: first index");
    /* Windows {0,1}, {0,1,2}, {1,2,3}, {2,3}: argmax 0, 0, 1, 3. */
    CHECK(g[2] == 11 && g[5] == 100 && g[8] == 0 && g[11] == 1000, "window: first index");
    sl_ctx_free(&ctx);
}

static sl_tensor *fusion_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const fcase *c = arg;
    return sl_pool_fusion(ctx, in[0], in[1], c->off, c->segment, c->window, c->seqs);
}

static void test_gradient_finite_differences(void)
{
    /* Piecewise bilinear: exact away from ties, so the tolerance is the
     * float loss's rounding. x is a shuffled ramp (values at least 0.05
     * apart), so no probe of h = 1e-2 moves an argmax. */
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const fcase cases[] = {{2, 12, 4, 0, 12, 4, 3, NULL},
                           {2, 12, 4, 2, 15, 40, 1, NULL},
                           {1, 12, 4, 1, 14, 3, 5, &PACKED},
                           {1, 12, 4, 0, 12, 1, 3, &PACKED}};
    for (int k = 0; k < 4; k++) {
        const fcase *c = &cases[k];
        sl_tensor *in[2] = {GC_LEAF(&rng, 1.0f, sl_seq_count(c->seqs, c->B), c->D),
                            GC_LEAF(&rng, 1.0f, c->B, c->T, c->C)};
        const int64_t n = in[1]->n;
        for (int64_t i = 0; i < n; i++) in[1]->data[i] = 0.05f * (float)(i - n / 2);
        for (int64_t i = n - 1; i > 0; i--) {
            const int64_t j = (int64_t)sl_rng_below(&rng, (uint64_t)(i + 1));
            const float t = in[1]->data[i];
            in[1]->data[i] = in[1]->data[j];
            in[1]->data[j] = t;
        }
        CHECK(gradcheck("pool_fusion", fusion_fn, in, 2, (void *)c, 1e-2f, 5e-4, 2e-3, 400),
              "pool_fusion case %d", k);
        gc_free_all(in, 2);
    }
}

int main(void)
{
    RUN(test_matches_reference);
    RUN(test_long);
    RUN(test_packed_equals_alone);
    RUN(test_ties_first_index);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
