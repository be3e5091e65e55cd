/* Fused attention: tiled forward against the O(T^2) reference, the backward
 * against finite differences, decode against the parallel form, results that
 * do not depend on the thread count, memory that stays O(T) at long T, and
 * packed variable-length batches (sl_seqs) that equal each sequence alone.
 * attention.c tiles by 64 queries x 64 keys, so the lengths below (63, 64,
 * 65, 70, 131) put rows and keys on both sides of block edges. */
#include <omp.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/ops.h"

typedef struct {
    int64_t H;
    bool causal;
    int64_t window;
} attn_arg;

static sl_tensor *attn_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const attn_arg *a = arg;
    return sl_attention(ctx, in[0], a->H, a->H, a->causal, a->window, NULL);
}

/* The mask variants every test runs: causal, bidirectional, and each with a
 * window shorter than a block and one that crosses a block edge. */
static const attn_arg masks[] = {{0, true, 0},  {0, false, 0}, {0, true, 5},
                                 {0, true, 70}, {0, false, 5}, {0, false, 70}};
#define NMASKS (int)(sizeof masks / sizeof masks[0])

static void test_forward_matches_reference(void)
{
    static const int64_t Ts[] = {1, 7, 63, 64, 65, 131}, dhs[] = {8, 16, 64}, Hs[] = {1, 3};
    const int64_t B = 2;
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    for (int ti = 0; ti < 6; ti++)
        for (int di = 0; di < 3; di++)
            for (int hi = 0; hi < 2; hi++)
                for (int mi = 0; mi < NMASKS; mi++) {
                    int64_t T = Ts[ti], dh = dhs[di], H = Hs[hi], D = H * dh;
                    /* The largest shapes once per mask are enough. */
                    if (T == 131 && dh == 64 && H == 3 && mi > 1) continue;
                    sl_ctx ctx;
                    sl_ctx_init(&ctx, 1 << 20);
                    sl_tensor *qkv = SL_NEW(&ctx, B, T, 3 * D);
                    for (int64_t i = 0; i < qkv->n; i++) qkv->data[i] = sl_rng_normal(&rng);
                    sl_tensor *out = sl_attention(&ctx, qkv, H, H, masks[mi].causal, masks[mi].window, NULL);
                    float *ref = malloc((size_t)out->n * sizeof(float));
                    sl_attention_ref(qkv->data, B, T, H, H, dh, masks[mi].causal, masks[mi].window,
                                     ref, NULL);
                    /* float32 dot products of N(0,1) vectors and a float32
                     * online softmax against a double reference: errors are a
                     * few 1e-7 relative per term. */
                    double r = close_ratio(out->data, ref, out->n, 1e-5, 1e-5);
                    CHECK(r <= 1, "T %lld dh %lld H %lld causal %d window %lld: ratio %g", (long long)T,
                          (long long)dh, (long long)H, masks[mi].causal, (long long)masks[mi].window, r);
                    free(ref);
                    sl_ctx_free(&ctx);
                }
}

static void test_uneven_head_width(void)
{
    /* dh = 12 is not a whole number of 8-float vectors: the scalar column tails. */
    sl_rng rng;
    sl_rng_seed(&rng, 8);
    const int64_t B = 1, T = 70, H = 2, dh = 12, D = H * dh;
    for (int mi = 0; mi < NMASKS; mi++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *qkv = SL_NEW(&ctx, B, T, 3 * D);
        for (int64_t i = 0; i < qkv->n; i++) qkv->data[i] = sl_rng_normal(&rng);
        sl_tensor *out = sl_attention(&ctx, qkv, H, H, masks[mi].causal, masks[mi].window, NULL);
        float *ref = malloc((size_t)out->n * sizeof(float));
        sl_attention_ref(qkv->data, B, T, H, H, dh, masks[mi].causal, masks[mi].window, ref, NULL);
        double r = close_ratio(out->data, ref, out->n, 1e-5, 1e-5);
        CHECK(r <= 1, "mask %d: ratio %g", mi, r);
        free(ref);
        sl_ctx_free(&ctx);
    }
}

static void test_gradient_finite_differences(void)
{
    /* T = 70 spans two query and two key blocks. Tolerances: the op runs in
     * float32; a probe moves up to T*dh outputs, each rounded to ~1e-7
     * relative, so L carries ~1e-6 of noise, a few 1e-5 in a central
     * difference at h = 1.5e-2, and the h^2 truncation term is smaller still
     * for O(1) inputs (the largest errors seen: 4e-5 at dh 8, 7e-5 at dh 64).
     * Gradients are O(0.01 .. 1), so atol 3e-4 with rtol 3e-3 keeps a 4x
     * margin and still catches a wrong term: D_i off by 1% fails it. */
    sl_rng rng;
    sl_rng_seed(&rng, 9);
    for (int mi = 0; mi < NMASKS; mi++) {
        attn_arg a = masks[mi];
        a.H = 2;
        sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 2, 70, 3 * 2 * 8);
        char name[64];
        snprintf(name, sizeof name, "attention causal %d window %lld", a.causal, (long long)a.window);
        CHECK(gradcheck(name, attn_fn, &qkv, 1, &a, 1.5e-2f, 3e-4, 3e-3, 60), "%s", name);
        gc_free(qkv);
    }
    /* Full-width head (dh = 64: the 16-column register tiles) over three
     * blocks with a ragged last one. */
    static attn_arg wide[] = {{2, true, 0}, {2, false, 40}};
    for (int w = 0; w < 2; w++) {
        sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, 131, 3 * 2 * 64);
        char name[64];
        snprintf(name, sizeof name, "attention dh 64 causal %d", wide[w].causal);
        CHECK(gradcheck(name, attn_fn, &qkv, 1, &wide[w], 1.5e-2f, 3e-4, 3e-3, 24), "%s", name);
        gc_free(qkv);
    }
    /* One short sequence, inside a single block. */
    attn_arg a = {3, true, 0};
    sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, 5, 3 * 3 * 4);
    CHECK(gradcheck("attention T 5", attn_fn, &qkv, 1, &a, 1.5e-2f, 3e-4, 3e-3, 100), "T 5");
    gc_free(qkv);
}

static void test_backward_accumulates(void)
{
    /* qkv may feed other ops too, so the backward must add to its gradient. */
    sl_rng rng;
    sl_rng_seed(&rng, 10);
    sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, 20, 3 * 16);
    float *dout = malloc(20 * 16 * sizeof(float)), *g1 = malloc((size_t)qkv->n * sizeof(float));
    for (int i = 0; i < 20 * 16; i++) dout[i] = sl_rng_normal(&rng);
    for (int pass = 0; pass < 2; pass++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        for (int64_t i = 0; i < qkv->n; i++) qkv->grad[i] = pass ? 1.0f : 0.0f;
        sl_backward_with(&ctx, sl_attention(&ctx, qkv, 2, 2, true, 0, NULL), dout);
        for (int64_t i = 0; i < qkv->n; i++) {
            if (pass)
                CHECK_CLOSE(qkv->grad[i], g1[i] + 1.0f, 1e-6, 1e-6, "accumulated");
            else
                g1[i] = qkv->grad[i];
        }
        sl_ctx_free(&ctx);
    }
    free(dout);
    free(g1);
    gc_free(qkv);
}

static void test_threads_do_not_change_results(void)
{
    /* Each (b, h) is one thread's work in a fixed order: bit-identical. */
    sl_rng rng;
    sl_rng_seed(&rng, 13);
    sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 2, 131, 3 * 2 * 64);
    float *dout = malloc(2 * 131 * 128 * sizeof(float));
    float *ref_out = malloc(2 * 131 * 128 * sizeof(float)), *ref_grad = malloc((size_t)qkv->n * sizeof(float));
    for (int i = 0; i < 2 * 131 * 128; i++) dout[i] = sl_rng_normal(&rng);
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        memset(qkv->grad, 0, (size_t)qkv->n * sizeof(float));
        sl_tensor *out = sl_attention(&ctx, qkv, 2, 2, true, 0, NULL);
        sl_backward_with(&ctx, out, dout);
        if (threads == 1) {
            memcpy(ref_out, out->data, (size_t)out->n * sizeof(float));
            memcpy(ref_grad, qkv->grad, (size_t)qkv->n * sizeof(float));
        } else {
            CHECK(!memcmp(ref_out, out->data, (size_t)out->n * sizeof(float)), "out, %d threads", threads);
            CHECK(!memcmp(ref_grad, qkv->grad, (size_t)qkv->n * sizeof(float)), "grad, %d threads", threads);
        }
        sl_ctx_free(&ctx);
    }
    omp_set_num_threads(saved);
    free(dout);
    free(ref_out);
    free(ref_grad);
    gc_free(qkv);
}

static void test_decode_matches_parallel(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 11);
    const int64_t T = 70, H = 3, dh = 16, D = H * dh;
    const int64_t windows[] = {0, 9, 70};
    for (int w = 0; w < 3; w++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *qkv = SL_NEW(&ctx, 1, T, 3 * D);
        for (int64_t i = 0; i < qkv->n; i++) qkv->data[i] = sl_rng_normal(&rng);
        sl_tensor *out = sl_attention(&ctx, qkv, H, H, true, windows[w], NULL);
        float *kc = malloc((size_t)(T * D) * sizeof(float)), *vc = malloc((size_t)(T * D) * sizeof(float));
        float *scratch = malloc((size_t)T * sizeof(float)), y[3 * 16];
        for (int64_t t = 0; t < T; t++) {
            memcpy(kc + t * D, qkv->data + t * 3 * D + D, (size_t)D * sizeof(float));
            memcpy(vc + t * D, qkv->data + t * 3 * D + 2 * D, (size_t)D * sizeof(float));
        }
        for (int64_t t = 0; t < T; t++) {
            sl_attention_decode(kc, vc, qkv->data + t * 3 * D, t + 1, H, H, dh, windows[w], y,
                                scratch);
            double r = close_ratio(y, out->data + t * D, D, 1e-5, 1e-5);
            CHECK(r <= 1, "window %lld t %lld: ratio %g", (long long)windows[w], (long long)t, r);
        }
        free(kc);
        free(vc);
        free(scratch);
        sl_ctx_free(&ctx);
    }
}

static void test_long_sequence_memory_is_linear(void)
{
    /* A T x T float buffer would be 64 MiB; everything the op needs (out,
     * its gradient, lse, block scratch, the head's Q and dO packed) is about
     * 1.2 MiB here. */
    const int64_t T = 4096, dh = 16;
    sl_rng rng;
    sl_rng_seed(&rng, 12);
    sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, T, 3 * dh);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *out = sl_attention(&ctx, qkv, 1, 1, true, 0, NULL);
    float *dout = malloc((size_t)out->n * sizeof(float)), scratch_row[16];
    for (int64_t i = 0; i < out->n; i++) dout[i] = sl_rng_normal(&rng);
    sl_backward_with(&ctx, out, dout);
    size_t bound = (size_t)(T * T) * sizeof(float) / 8;
    CHECK(ctx.arena.peak < bound, "arena peak %zu bytes, bound %zu", ctx.arena.peak, bound);
    bool finite = true;
    for (int64_t i = 0; i < qkv->n; i++) finite &= isfinite(qkv->grad[i]);
    CHECK(finite, "finite gradient");
    /* Spot rows against decode, which is O(T) per row. */
    float *kc = malloc((size_t)(T * dh) * sizeof(float)), *vc = malloc((size_t)(T * dh) * sizeof(float));
    float *scratch = malloc((size_t)T * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
        memcpy(kc + t * dh, qkv->data + t * 3 * dh + dh, (size_t)dh * sizeof(float));
        memcpy(vc + t * dh, qkv->data + t * 3 * dh + 2 * dh, (size_t)dh * sizeof(float));
    }
    static const int64_t rows[] = {0, 1, 1000, 4095};
    for (int k = 0; k < 4; k++) {
        int64_t t = rows[k];
        sl_attention_decode(kc, vc, qkv->data + t * 3 * dh, t + 1, 1, 1, dh, 0, scratch_row, scratch);
        double r = close_ratio(scratch_row, out->data + t * dh, dh, 1e-5, 1e-5);
        CHECK(r <= 1, "row %lld: ratio %g", (long long)t, r);
    }
    free(kc);
    free(vc);
    free(scratch);
    free(dout);
    sl_ctx_free(&ctx);
    gc_free(qkv);
}

/* The lengths of the packed batches below: empty ones (also first and last),
 * a single token, and sequences longer than a 64-token tile. */
static const int64_t PACK_LENS[] = {0, 1, 70, 5, 0, 131, 64, 0};
#define NPACK (int64_t)(sizeof PACK_LENS / sizeof PACK_LENS[0])

static void pack_bounds(const int64_t *lens, int64_t n, int64_t *cu)
{
    cu[0] = 0;
    for (int64_t i = 0; i < n; i++) cu[i + 1] = cu[i] + lens[i];
}

/* A packed batch forward and backward equals each sequence run alone as
 * [1, len, 3D] (nothing crosses a bound in either pass), and the packed fast
 * forward equals the packed reference, for every mask. */
static void test_packed_matches_each_sequence_alone(void)
{
    const int64_t H = 2, dh = 16, D = H * dh;
    int64_t cu[NPACK + 1];
    pack_bounds(PACK_LENS, NPACK, cu);
    const int64_t T = cu[NPACK];
    const sl_seqs seqs = {NPACK, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 21);
    for (int mi = 0; mi < NMASKS; mi++) {
        sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, T, 3 * D);
        float *dout = malloc((size_t)(T * D) * sizeof(float));
        for (int64_t i = 0; i < T * D; i++) dout[i] = sl_rng_normal(&rng);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *out = sl_attention(&ctx, qkv, H, H, masks[mi].causal, masks[mi].window, &seqs);
        sl_backward_with(&ctx, out, dout);
        float *ref = malloc((size_t)(T * D) * sizeof(float));
        sl_attention_ref(qkv->data, 1, T, H, H, dh, masks[mi].causal, masks[mi].window, ref, &seqs);
        double r_ref = close_ratio(out->data, ref, T * D, 1e-5, 1e-5), r_y = 0, r_dx = 0;
        for (int64_t i = 0; i < NPACK; i++) {
            const int64_t len = PACK_LENS[i];
            if (len == 0) continue;
            sl_ctx c1;
            sl_ctx_init(&c1, 1 << 20);
            sl_tensor *qi = GC_LEAF(&rng, 1.0f, 1, len, 3 * D);
            memcpy(qi->data, qkv->data + cu[i] * 3 * D, (size_t)(len * 3 * D) * sizeof(float));
            sl_tensor *oi = sl_attention(&c1, qi, H, H, masks[mi].causal, masks[mi].window, NULL);
            sl_backward_with(&c1, oi, dout + cu[i] * D);
            /* The same kernel on the same rows: equal up to nothing. */
            r_y = fmax(r_y, close_ratio(out->data + cu[i] * D, oi->data, len * D, 1e-7, 1e-7));
            r_dx = fmax(r_dx, close_ratio(qkv->grad + cu[i] * 3 * D, qi->grad, len * 3 * D, 1e-7, 1e-7));
            gc_free(qi);
            sl_ctx_free(&c1);
        }
        CHECK(r_ref <= 1 && r_y <= 1 && r_dx <= 1,
              "causal %d window %lld: packed vs reference %g, vs alone: out %g, grad %g",
              masks[mi].causal, (long long)masks[mi].window, r_ref, r_y, r_dx);
        free(ref);
        free(dout);
        sl_ctx_free(&ctx);
        gc_free(qkv);
    }
}

typedef struct {
    attn_arg a;
    const sl_seqs *seqs;
} packed_arg;

static sl_tensor *packed_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const packed_arg *p = arg;
    return sl_attention(ctx, in[0], p->a.H, p->a.H, p->a.causal, p->a.window, p->seqs);
}

/* The packed backward against finite differences (tolerances as above). */
static void test_packed_gradient_finite_differences(void)
{
    static const int64_t lens[] = {3, 0, 9, 1, 70};
    int64_t cu[6];
    pack_bounds(lens, 5, cu);
    const sl_seqs seqs = {5, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 22);
    for (int mi = 0; mi < NMASKS; mi++) {
        packed_arg p = {masks[mi], &seqs};
        p.a.H = 2;
        sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, cu[5], 3 * 2 * 8);
        char name[64];
        snprintf(name, sizeof name, "packed causal %d window %lld", p.a.causal, (long long)p.a.window);
        CHECK(gradcheck(name, packed_fn, &qkv, 1, &p, 1.5e-2f, 3e-4, 3e-3, 60), "%s", name);
        gc_free(qkv);
    }
}

/* A packed batch's results are bit-identical at any thread count too. */
static void test_packed_threads_do_not_change_results(void)
{
    const int64_t H = 2, D = 2 * 64;
    int64_t cu[NPACK + 1];
    pack_bounds(PACK_LENS, NPACK, cu);
    const int64_t T = cu[NPACK];
    const sl_seqs seqs = {NPACK, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 23);
    sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, T, 3 * D);
    float *dout = malloc((size_t)(T * D) * sizeof(float));
    float *ref_out = malloc((size_t)(T * D) * sizeof(float)), *ref_grad = malloc((size_t)qkv->n * sizeof(float));
    for (int64_t i = 0; i < T * D; i++) dout[i] = sl_rng_normal(&rng);
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        memset(qkv->grad, 0, (size_t)qkv->n * sizeof(float));
        sl_tensor *out = sl_attention(&ctx, qkv, H, H, false, 0, &seqs);
        sl_backward_with(&ctx, out, dout);
        if (threads == 1) {
            memcpy(ref_out, out->data, (size_t)out->n * sizeof(float));
            memcpy(ref_grad, qkv->grad, (size_t)qkv->n * sizeof(float));
        } else {
            CHECK(!memcmp(ref_out, out->data, (size_t)out->n * sizeof(float)), "out, %d threads", threads);
            CHECK(!memcmp(ref_grad, qkv->grad, (size_t)qkv->n * sizeof(float)), "grad, %d threads", threads);
        }
        sl_ctx_free(&ctx);
    }
    omp_set_num_threads(saved);
    free(dout);
    free(ref_out);
    free(ref_grad);
    gc_free(qkv);
}

/* Grouped-query and multi-query heads: the op on (q: H | k: G | v: G)
 * rows, against the reference, finite differences (the shared k and v
 * gather their group's gradients), decode, and thread counts. */
typedef struct {
    int64_t H, G;
    bool causal;
    int64_t window;
} gqa_arg;

static sl_tensor *gqa_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const gqa_arg *a = arg;
    return sl_attention(ctx, in[0], a->H, a->G, a->causal, a->window, NULL);
}

static void test_grouped_heads(void)
{
    static const int64_t HG[][2] = {{4, 2}, {4, 1}, {6, 3}}, Ts[] = {7, 70};
    const int64_t dh = 8, B = 2;
    sl_rng rng;
    sl_rng_seed(&rng, 21);
    for (int g = 0; g < 3; g++)
        for (int ti = 0; ti < 2; ti++)
            for (int mi = 0; mi < NMASKS; mi++) {
                const int64_t H = HG[g][0], G = HG[g][1], T = Ts[ti], W = (H + 2 * G) * dh;
                sl_ctx ctx;
                sl_ctx_init(&ctx, 1 << 20);
                sl_tensor *qkv = SL_NEW(&ctx, B, T, W);
                for (int64_t i = 0; i < qkv->n; i++) qkv->data[i] = sl_rng_normal(&rng);
                sl_tensor *out =
                    sl_attention(&ctx, qkv, H, G, masks[mi].causal, masks[mi].window, NULL);
                CHECK(out->shape[2] == H * dh, "out width %lld", (long long)out->shape[2]);
                float *ref = malloc((size_t)out->n * sizeof(float));
                sl_attention_ref(qkv->data, B, T, H, G, dh, masks[mi].causal, masks[mi].window,
                                 ref, NULL);
                double r = close_ratio(out->data, ref, out->n, 1e-5, 1e-5);
                CHECK(r <= 1, "H %lld G %lld T %lld mask %d: ratio %g", (long long)H, (long long)G,
                      (long long)T, mi, r);
                free(ref);
                sl_ctx_free(&ctx);
            }
    /* Tolerances as test_gradient_finite_differences. */
    static const gqa_arg fd[] = {{4, 2, true, 0}, {4, 1, false, 5}, {6, 3, true, 9}};
    for (int k = 0; k < 3; k++) {
        sl_tensor *qkv = GC_LEAF(&rng, 1.0f, 1, 70, (fd[k].H + 2 * fd[k].G) * dh);
        char name[64];
        snprintf(name, sizeof name, "attention H %lld G %lld", (long long)fd[k].H,
                 (long long)fd[k].G);
        CHECK(gradcheck(name, gqa_fn, &qkv, 1, (void *)&fd[k], 1.5e-2f, 3e-4, 3e-3, 80), "%s",
              name);
        gc_free(qkv);
    }
    /* Decode: each query against the cache of its rows' k and v. */
    const int64_t H = 4, G = 2, T = 40, W = (H + 2 * G) * dh, Dkv = G * dh;
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *qkv = SL_NEW(&ctx, 1, T, W);
    for (int64_t i = 0; i < qkv->n; i++) qkv->data[i] = sl_rng_normal(&rng);
    float kc[40 * 16], vc[40 * 16], y[32], scratch[40];
    for (int64_t t = 0; t < T; t++) {
        memcpy(kc + t * Dkv, qkv->data + t * W + H * dh, (size_t)Dkv * sizeof(float));
        memcpy(vc + t * Dkv, qkv->data + t * W + H * dh + Dkv, (size_t)Dkv * sizeof(float));
    }
    for (int64_t window = 0; window <= 9; window += 9) {
        sl_tensor *out = sl_attention(&ctx, qkv, H, G, true, window, NULL);
        for (int64_t t = 0; t < T; t++) {
            sl_attention_decode(kc, vc, qkv->data + t * W, t + 1, H, G, dh, window, y, scratch);
            double r = close_ratio(y, out->data + t * H * dh, H * dh, 1e-5, 1e-5);
            CHECK(r <= 1, "decode window %lld t %lld: ratio %g", (long long)window, (long long)t,
                  r);
        }
    }
    sl_ctx_free(&ctx);
    /* A group's shared gradient is summed by one thread: bit-identical. */
    sl_tensor *x = GC_LEAF(&rng, 1.0f, 2, 131, W);
    float *dout = malloc(2 * 131 * 32 * sizeof(float)), *g1 = malloc((size_t)x->n * sizeof(float));
    for (int i = 0; i < 2 * 131 * 32; i++) dout[i] = sl_rng_normal(&rng);
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads += 2) {
        omp_set_num_threads(threads);
        sl_ctx c;
        sl_ctx_init(&c, 1 << 20);
        memset(x->grad, 0, (size_t)x->n * sizeof(float));
        sl_backward_with(&c, sl_attention(&c, x, H, G, true, 0, NULL), dout);
        if (threads == 1)
            memcpy(g1, x->grad, (size_t)x->n * sizeof(float));
        else
            CHECK(!memcmp(g1, x->grad, (size_t)x->n * sizeof(float)), "grad, %d threads", threads);
        sl_ctx_free(&c);
    }
    omp_set_num_threads(saved);
    free(dout);
    free(g1);
    gc_free(x);
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_uneven_head_width);
    RUN(test_gradient_finite_differences);
    RUN(test_backward_accumulates);
    RUN(test_threads_do_not_change_results);
    RUN(test_decode_matches_parallel);
    RUN(test_long_sequence_memory_is_linear);
    RUN(test_packed_matches_each_sequence_alone);
    RUN(test_packed_gradient_finite_differences);
    RUN(test_packed_threads_do_not_change_results);
    RUN(test_grouped_heads);
    return TEST_SUMMARY();
}
