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

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_step_matches_reference);
    RUN(test_gradient_finite_differences);
    return TEST_SUMMARY();
}
