/* position.c: learned positions (values, threaded backward, finite
 * differences, restarting per packed sequence) and RoPE: the rotate-half convention on a hand-computed
 * case, bit-exact agreement of the batched op with the one-vector step
 * form, positions restarting at each sequence of a packed batch, and finite
 * differences. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

static void test_add_positions_threaded(void)
{
    const int64_t B = 4, T = 64, D = 160, Tmax = 100, pos0 = 30; /* 40960: threaded */
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    sl_tensor *x = GC_LEAF(&rng, 1, B, T, D), *pos = GC_LEAF(&rng, 1, Tmax, D);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = sl_add_positions(&ctx, x, pos, pos0, NULL);
    int64_t bad = 0;
    for (int64_t i = 0; i < x->n; i++) {
        int64_t t = i / D % T, j = i % D;
        bad += y->data[i] != x->data[i] + pos->data[(pos0 + t) * D + j];
    }
    CHECK(bad == 0, "forward: %lld wrong", (long long)bad);
    float *dy = malloc(x->n * sizeof(float)), *ref = calloc(pos->n, sizeof(float));
    for (int64_t i = 0; i < x->n; i++) dy[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, y, dy);
    for (int64_t b = 0; b < B; b++) /* batch order, as the op sums */
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < D; j++) ref[(pos0 + t) * D + j] += dy[(b * T + t) * D + j];
    bad = 0;
    for (int64_t i = 0; i < pos->n; i++) bad += pos->grad[i] != ref[i];
    for (int64_t i = 0; i < x->n; i++) bad += x->grad[i] != dy[i];
    CHECK(bad == 0, "backward: %lld wrong", (long long)bad);
    free(dy);
    free(ref);
    sl_ctx_free(&ctx);
    gc_free(x);
    gc_free(pos);
}

/* arg: NULL or the bounds of a packed batch. */
static sl_tensor *add_positions_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_add_positions(ctx, in[0], in[1], 2, arg);
}

/* Linear: exact up to float rounding of L over 2h (~1e-5, h = 1e-2). */
static void test_add_positions_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    sl_tensor *in[2] = {GC_LEAF(&rng, 1, 2, 3, 4), GC_LEAF(&rng, 1, 6, 4)};
    CHECK(gradcheck("add_positions", add_positions_fn, in, 2, NULL, 1e-2f, 1e-3, 1e-3, 64), "grads");
    for (int j = 0; j < 4; j++)
        CHECK(in[1]->grad[j] == 0 && in[1]->grad[5 * 4 + j] == 0, "rows outside pos0..pos0+T");
    gc_free(in[0]);
    gc_free(in[1]);
}

/* A packed batch: each sequence's tokens take rows pos0, pos0 + 1, ... of
 * the table; the rows that several sequences share sum their gradients. */
static void test_add_positions_packed(void)
{
    static const int64_t cu[] = {0, 2, 2, 5};
    const sl_seqs seqs = {3, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_tensor *in[2] = {GC_LEAF(&rng, 1, 1, 5, 4), GC_LEAF(&rng, 1, 6, 4)};
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    ctx.grad_enabled = false;
    sl_tensor *y = add_positions_fn(&ctx, in, (void *)&seqs);
    static const int64_t row[] = {2, 3, 2, 3, 4};
    int64_t bad = 0;
    for (int64_t t = 0; t < 5; t++)
        for (int64_t j = 0; j < 4; j++)
            bad += y->data[t * 4 + j] != in[0]->data[t * 4 + j] + in[1]->data[row[t] * 4 + j];
    CHECK(bad == 0, "forward: %lld wrong", (long long)bad);
    sl_ctx_free(&ctx);
    CHECK(gradcheck("add_positions packed", add_positions_fn, in, 2, (void *)&seqs, 1e-2f, 1e-3,
                    1e-3, 64),
          "grads");
    gc_free(in[0]);
    gc_free(in[1]);
}

/* H = 1, dh = 4 at position 1, theta = 10000: pair 0 (elements 0, 2)
 * turns by 1 rad, pair 1 (elements 1, 3) by 10000^(-1/2) = 0.01 rad. */
static void test_rope_convention(void)
{
    float x[4] = {1, 1, 0, 0};
    sl_rope_apply(x, 1, 4, 1, 10000);
    CHECK_CLOSE(x[0], cos(1.0), 1e-7, 0, "x0");
    CHECK_CLOSE(x[2], sin(1.0), 1e-7, 0, "x2");
    CHECK_CLOSE(x[1], cos(0.01), 1e-7, 0, "x1");
    CHECK_CLOSE(x[3], sin(0.01), 1e-7, 0, "x3");
    float z[4] = {0.5f, -2, 3, 4};
    sl_rope_apply(z, 1, 4, 0, 10000);
    CHECK(z[0] == 0.5f && z[1] == -2 && z[2] == 3 && z[3] == 4, "position 0 is the identity");
}

/* Every row of the batched op equals the step form at its position, bit for
 * bit, for q and k; v passes through. 3 * 4 * 32 * 128 = 49152: threaded. */
static void test_rope_qk_matches_step(void)
{
    const int64_t B = 3, T = 32, H = 4, dh = 32, E = H * dh, pos0 = 1000;
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_tensor *qkv = GC_LEAF(&rng, 1, B, T, 3 * E);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = sl_rope_qk(&ctx, qkv, H, H, pos0, 10000, NULL);
    int64_t bad = 0;
    double qk_norm = 0, y_norm = 0;
    for (int64_t r = 0; r < B * T; r++) {
        float q[128], k[128];
        const float *xr = qkv->data + r * 3 * E, *yr = y->data + r * 3 * E;
        memcpy(q, xr, sizeof q);
        memcpy(k, xr + E, sizeof k);
        sl_rope_apply(q, H, dh, pos0 + r % T, 10000);
        sl_rope_apply(k, H, dh, pos0 + r % T, 10000);
        bad += memcmp(q, yr, sizeof q) != 0;
        bad += memcmp(k, yr + E, sizeof k) != 0;
        bad += memcmp(xr + 2 * E, yr + 2 * E, E * sizeof(float)) != 0;
        for (int64_t j = 0; j < 2 * E; j++) {
            qk_norm += (double)xr[j] * xr[j];
            y_norm += (double)yr[j] * yr[j];
        }
    }
    CHECK(bad == 0, "%lld rows differ from sl_rope_apply", (long long)bad);
    CHECK(fabs(y_norm / qk_norm - 1) < 1e-6, "a rotation keeps norms");
    sl_ctx_free(&ctx);
    gc_free(qkv);
}

static sl_tensor *rope_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_rope_qk(ctx, in[0], 2, 2, 3, 100, NULL);
}

static sl_tensor *rope_gqa_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_rope_qk(ctx, in[0], 4, 1, 3, 100, NULL);
}

/* Grouped heads (q: 4 heads, k and v: 1): the q and k heads rotate as the
 * step form does, v passes through. */
static void test_rope_qk_grouped_heads(void)
{
    const int64_t T = 5, H = 4, G = 1, dh = 8, W = (H + 2 * G) * dh;
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    sl_tensor *qkv = GC_LEAF(&rng, 1, 1, T, W);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *y = sl_rope_qk(&ctx, qkv, H, G, 3, 100, NULL);
    for (int64_t t = 0; t < T; t++) {
        float x[48];
        memcpy(x, qkv->data + t * W, sizeof x);
        sl_rope_apply(x, H, dh, 3 + t, 100);
        sl_rope_apply(x + H * dh, G, dh, 3 + t, 100);
        CHECK(!memcmp(x, y->data + t * W, (size_t)(H + G) * dh * sizeof(float)) &&
                  !memcmp(x + (H + G) * dh, y->data + t * W + (H + G) * dh, dh * sizeof(float)),
              "row %lld", (long long)t);
    }
    sl_ctx_free(&ctx);
    CHECK(gradcheck("rope_qk grouped", rope_gqa_fn, &qkv, 1, NULL, 1e-2f, 1e-3, 1e-3, 200),
          "rope_qk grouped");
    gc_free(qkv);
}

/* Linear in qkv: exact up to float rounding of L over 2h (~1e-5). */
static void test_rope_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    sl_tensor *qkv = GC_LEAF(&rng, 1, 2, 3, 3 * 2 * 4);
    CHECK(gradcheck("rope_qk", rope_fn, &qkv, 1, NULL, 1e-2f, 1e-3, 1e-3, 200), "rope_qk");
    gc_free(qkv);
}

/* A packed batch: row r of sequence i is rotated at pos0 + r - cu[i], bit
 * for bit as the step form (empty sequences included). */
static const int64_t ROPE_CU[] = {0, 4, 4, 11, 12, 12};
static const sl_seqs ROPE_SEQS = {5, ROPE_CU};

static void test_rope_qk_packed_restarts(void)
{
    const int64_t T = 12, H = 2, dh = 8, E = H * dh, pos0 = 5;
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    sl_tensor *qkv = GC_LEAF(&rng, 1, 1, T, 3 * E);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *y = sl_rope_qk(&ctx, qkv, H, H, pos0, 10000, &ROPE_SEQS);
    int64_t bad = 0;
    for (int64_t i = 0; i < ROPE_SEQS.n; i++)
        for (int64_t r = ROPE_CU[i]; r < ROPE_CU[i + 1]; r++) {
            float q[16], k[16];
            const float *xr = qkv->data + r * 3 * E, *yr = y->data + r * 3 * E;
            memcpy(q, xr, sizeof q);
            memcpy(k, xr + E, sizeof k);
            sl_rope_apply(q, H, dh, pos0 + r - ROPE_CU[i], 10000);
            sl_rope_apply(k, H, dh, pos0 + r - ROPE_CU[i], 10000);
            bad += memcmp(q, yr, sizeof q) != 0;
            bad += memcmp(k, yr + E, sizeof k) != 0;
            bad += memcmp(xr + 2 * E, yr + 2 * E, E * sizeof(float)) != 0;
        }
    CHECK(bad == 0, "%lld rows differ from sl_rope_apply at their in-sequence position",
          (long long)bad);
    sl_ctx_free(&ctx);
    gc_free(qkv);
}

static sl_tensor *rope_packed_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_rope_qk(ctx, in[0], 2, 2, 3, 100, &ROPE_SEQS);
}

static void test_rope_packed_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    sl_tensor *qkv = GC_LEAF(&rng, 1, 1, 12, 3 * 2 * 4);
    CHECK(gradcheck("rope_qk packed", rope_packed_fn, &qkv, 1, NULL, 1e-2f, 1e-3, 1e-3, 300),
          "rope_qk packed");
    gc_free(qkv);
}

int main(void)
{
    sl_set_threads(2);
    RUN(test_add_positions_threaded);
    RUN(test_add_positions_gradients);
    RUN(test_add_positions_packed);
    RUN(test_rope_convention);
    RUN(test_rope_qk_matches_step);
    RUN(test_rope_gradients);
    RUN(test_rope_qk_grouped_heads);
    RUN(test_rope_qk_packed_restarts);
    RUN(test_rope_packed_gradients);
    return TEST_SUMMARY();
}
