/* The diagonal scan: the op against a double reference (T = 1, odd T,
 * channels across a block edge, packed batches with empty and one-token
 * sequences, with and without s0), the one-token step against the
 * reference, and gradients of a, b and s0 by finite differences. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/diag_scan.h"

/* Fills n floats: decays in (0, 1) when decay, else N(0, 1). */
static void fill(sl_rng *rng, float *x, int64_t n, bool decay)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = decay ? 0.5f + 0.49f * (2.0f * sl_rng_uniform(rng) - 1.0f) : sl_rng_normal(rng);
}

/* One case: op vs reference, outputs and final states. */
static void check_case(int64_t B, int64_t T, int64_t C, const sl_seqs *seqs, bool with_s0)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + C));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    const int64_t N = sl_seq_count(seqs, B);
    sl_tensor *a = SL_NEW(&ctx, B, T, C), *b = SL_NEW(&ctx, B, T, C);
    sl_tensor *s0 = with_s0 ? SL_NEW(&ctx, N, C) : NULL;
    fill(&rng, a->data, a->n, true);
    fill(&rng, b->data, b->n, false);
    if (s0) fill(&rng, s0->data, s0->n, false);
    float *sf = malloc((size_t)(N * C) * sizeof(float));
    double *href = malloc((size_t)(a->n + 1) * sizeof(double));
    double *sref = malloc((size_t)(N * C) * sizeof(double));
    sl_tensor *h = sl_diag_scan(&ctx, a, b, s0, sf, seqs);
    const sl_diag_scan_desc d = {B, T, C, seqs, NULL};
    sl_diag_scan_ref(&d, a->data, b->data, s0 ? s0->data : NULL, href, sref);
    for (int64_t i = 0; i < h->n; i++) CHECK_CLOSE(h->data[i], href[i], 1e-5, 1e-5, "h");
    for (int64_t i = 0; i < N * C; i++) CHECK_CLOSE(sf[i], sref[i], 1e-5, 1e-5, "s_final");
    free(sf);
    free(href);
    free(sref);
    sl_ctx_free(&ctx);
}

/* Packed: an empty sequence first, one token, four, empty, four. */
static const int64_t CU[] = {0, 0, 1, 5, 5, 9};
static const sl_seqs PACKED = {5, CU};

static void test_forward_matches_reference(void)
{
    for (int s = 0; s <= 1; s++) {
        check_case(2, 1, 3, NULL, s);
        check_case(2, 7, 5, NULL, s);
        check_case(3, 13, 70, NULL, s); /* a second, partial block of channels */
        check_case(1, 9, 70, &PACKED, s);
    }
}

static void test_step_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    enum { T = 6, C = 7 };
    float a[T * C], b[T * C], s0[C], st[C];
    double h[T * C];
    fill(&rng, a, T * C, true);
    fill(&rng, b, T * C, false);
    fill(&rng, s0, C, false);
    const sl_diag_scan_desc d = {1, T, C, NULL, NULL};
    sl_diag_scan_ref(&d, a, b, s0, h, NULL);
    memcpy(st, s0, sizeof st);
    for (int t = 0; t < T; t++) {
        sl_diag_scan_step(st, a + t * C, b + t * C, C);
        for (int c = 0; c < C; c++) CHECK_CLOSE(st[c], h[t * C + c], 1e-6, 1e-5, "step");
    }
}

/* in = {a, b, s0 or NULL}; arg: the seqs or NULL. */
static sl_tensor *ds_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_diag_scan(ctx, in[0], in[1], in[2], NULL, arg);
}

static void test_gradient_finite_differences(void)
{
    /* Linear in b and s0, bilinear in a: central differences are exact up
     * to the float rounding of ~100 O(1) outputs (~1e-6 / h). */
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const struct {
        int64_t B, T, N;
        const sl_seqs *seqs;
    } cases[] = {{2, 5, 2, NULL}, {1, 9, 5, &PACKED}};
    for (int k = 0; k < 2; k++) {
        const int64_t B = cases[k].B, T = cases[k].T, C = 6;
        sl_tensor *in[3] = {GC_LEAF(&rng, 0.4f, B, T, C), GC_LEAF(&rng, 1.0f, B, T, C),
                            GC_LEAF(&rng, 1.0f, cases[k].N, C)};
        for (int64_t i = 0; i < in[0]->n; i++) in[0]->data[i] += 0.5f;
        CHECK(gradcheck("diag_scan", ds_fn, in, 3, (void *)cases[k].seqs, 1e-2f, 2e-4, 2e-3, 200),
              "diag_scan case %d", k);
        gc_free(in[2]);
        in[2] = NULL;
        CHECK(gradcheck("diag_scan no s0", ds_fn, in, 2, (void *)cases[k].seqs, 1e-2f, 2e-4, 2e-3,
                        200),
              "diag_scan case %d without s0", k);
        gc_free_all(in, 2);
    }
}

/* The time-split form (one row of 70 channels, past two pieces of 2048)
 * against the per-channel form (the same row first of four, which keeps it
 * whole): h and s_final, then da, db and ds0 with a final-state gradient. */
static void test_time_split_matches_whole(void)
{
    enum { T = 2 * 2048 + 37, C = 70, R = 4 };
    const int64_t n = (int64_t)T * C;
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    float *a = malloc((size_t)(R * n) * sizeof(float)), *b = malloc((size_t)(R * n) * sizeof(float));
    float *dh = malloc((size_t)(R * n) * sizeof(float)), s0[R * C], dsf[R * C];
    /* Decays near 1, so a piece's product (~e^-1) carries real weight. */
    for (int64_t i = 0; i < R * n; i++) a[i] = 1.0f - 1e-3f * sl_rng_uniform(&rng);
    fill(&rng, b, R * n, false);
    fill(&rng, dh, R * n, false);
    fill(&rng, s0, R * C, false);
    fill(&rng, dsf, R * C, false);
    const sl_diag_scan_desc d1 = {1, T, C, NULL, dsf}, d4 = {R, T, C, NULL, dsf};
    CHECK(sl_diag_scan_scratch_floats(&d1) > 0 && sl_diag_scan_scratch_floats(&d4) == 0,
          "one row splits in time, four do not");
    float *out[2][4];
    for (int f = 0; f < 2; f++) {
        const sl_diag_scan_desc *d = f ? &d4 : &d1;
        const int64_t rows = f ? R : 1;
        float *h = malloc((size_t)(rows * n) * sizeof(float)), *sf = calloc(R * C, sizeof(float));
        float *da = calloc((size_t)(rows * n), sizeof(float));
        float *db = calloc((size_t)(rows * n), sizeof(float)), *ds0 = calloc(R * C, sizeof(float));
        float *scr = malloc((size_t)(sl_diag_scan_scratch_floats(d) + 1) * sizeof(float));
        sl_diag_scan_fwd(d, a, b, s0, h, sf, scr);
        sl_diag_scan_bwd(d, a, h, s0, dh, da, db, ds0, scr);
        out[f][0] = h, out[f][1] = da, out[f][2] = db, out[f][3] = sf;
        memcpy(sf + C, ds0, C * sizeof(float)); /* row 0 of each: s_final, then ds0 */
        free(ds0);
        free(scr);
    }
    static const char *const what[4] = {"h", "da", "db", "s_final and ds0"};
    const int64_t len[4] = {n, n, n, 2 * C};
    for (int i = 0; i < 4; i++) {
        const double r = close_ratio(out[0][i], out[1][i], len[i], 1e-5 * rms(out[1][i], len[i]), 1e-4);
        CHECK(r <= 1, "time-split vs whole, %s: ratio %g", what[i], r);
        free(out[0][i]);
        free(out[1][i]);
    }
    free(a);
    free(b);
    free(dh);
}

/* T = 65536 with coefficients near 1 and inputs of scale 100 (h grows to
 * ~1e6 and beyond): everything finite, forward and backward. */
static void test_long_extreme_finite(void)
{
    enum { T = 65536, C = 8 };
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_rng rng;
    sl_rng_seed(&rng, 8);
    sl_tensor *a = SL_NEW(&ctx, 1, T, C), *b = SL_NEW(&ctx, 1, T, C);
    for (int64_t i = 0; i < a->n; i++) {
        a->data[i] = 1.0f - 1e-6f * sl_rng_uniform(&rng);
        b->data[i] = 100.0f * sl_rng_normal(&rng);
    }
    a->requires_grad = b->requires_grad = true;
    sl_tensor *h = sl_diag_scan(&ctx, a, b, NULL, NULL, NULL);
    float *dh = malloc((size_t)h->n * sizeof(float));
    for (int64_t i = 0; i < h->n; i++) dh[i] = 100.0f;
    sl_backward_with(&ctx, h, dh);
    bool finite = true;
    for (int64_t i = 0; i < h->n; i++)
        finite &= isfinite(h->data[i]) && isfinite(a->grad[i]) && isfinite(b->grad[i]);
    CHECK(finite, "h, da and db finite at T = %d", T);
    free(dh);
    sl_ctx_free(&ctx);
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_step_matches_reference);
    RUN(test_gradient_finite_differences);
    RUN(test_time_split_matches_whole);
    RUN(test_long_extreme_finite);
    return TEST_SUMMARY();
}
