/* The gated long-convolution chain: the op against the direct double loops
 * (T = 1, odd T, orders 2 to 4, channels across blocks of 16, packed
 * batches), finite differences of every input (p, w, bias, h, s), and
 * T = 65536 at input scale 100 staying finite. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/gated_conv.h"

static void fill(sl_rng *rng, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * sl_rng_normal(rng);
}

/* Packed: an empty sequence first, one token, five, empty, 37, 100. */
static const int64_t CU[] = {0, 0, 1, 6, 6, 43, 143};
static const sl_seqs PACKED = {6, CU};

static void check_case(int64_t B, int64_t T, int64_t D, int64_t N, const sl_seqs *seqs)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + D + N));
    const int64_t K = 3, P = (N + 1) * D, C = (N - 1) * D, n = B * T * D;
    const sl_gated_conv_desc d = {B, T, D, N, K, seqs};
    float *p = malloc((size_t)(B * T * P) * sizeof(float)), *w = malloc((size_t)(P * K) * 4),
          *bias = malloc((size_t)P * 4), *h = malloc((size_t)(C * T) * 4), *s = malloc((size_t)C * 4),
          *z = malloc((size_t)n * 4);
    double *zr = malloc((size_t)n * sizeof(double));
    fill(&rng, p, B * T * P, 1.0f);
    fill(&rng, w, P * K, 0.6f);
    fill(&rng, bias, P, 0.3f);
    fill(&rng, h, C * T, 0.3f);
    fill(&rng, s, C, 1.0f);
    sl_gated_conv_fwd(&d, p, w, bias, h, s, z);
    sl_gated_conv_ref(&d, p, w, bias, h, s, zr);
    double err = 0, mag = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        err = fmax(err, fabs(z[i] - zr[i]));
        mag = fmax(mag, fabs(zr[i]));
    }
    CHECK(err <= 1e-4 * mag, "B=%lld T=%lld D=%lld N=%lld: max error %.3g against max %.3g",
          (long long)B, (long long)T, (long long)D, (long long)N, err, mag);
    free(p), free(w), free(bias), free(h), free(s), free(z), free(zr);
}

static void test_matches_direct(void)
{
    check_case(2, 1, 3, 2, NULL);
    check_case(2, 7, 3, 2, NULL);
    check_case(1, 100, 19, 2, NULL); /* a block of 16 channels and a partial one */
    check_case(2, 33, 5, 3, NULL);
    check_case(1, 50, 4, 4, NULL);
    check_case(1, 143, 4, 3, &PACKED);
}

typedef struct gc_arg {
    int64_t N;
    const sl_seqs *seqs;
} gc_arg;

static sl_tensor *gated_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const gc_arg *a = arg;
    return sl_gated_conv(ctx, in[0], in[1], in[2], in[3], in[4], a->N, a->seqs);
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 11);
    const struct {
        int64_t B, T, D, N;
        const sl_seqs *seqs;
    } cases[] = {{2, 9, 3, 2, NULL}, {1, 143, 2, 3, &PACKED}, {1, 20, 17, 2, NULL}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int64_t T = cases[c].T, D = cases[c].D, N = cases[c].N, P = (N + 1) * D,
                      C = (N - 1) * D;
        gc_arg a = {N, cases[c].seqs};
        sl_tensor *in[5] = {GC_LEAF(&rng, 0.7f, cases[c].B, T, P), GC_LEAF(&rng, 0.6f, P, 3),
                            GC_LEAF(&rng, 0.3f, P), GC_LEAF(&rng, 0.3f, C, T),
                            GC_LEAF(&rng, 0.7f, C)};
        CHECK(gradcheck("gated_conv", gated_fn, in, 5, &a, 1e-2f, 1e-3, 3e-3, 150),
              "gated_conv case %zu", c);
        gc_free_all(in, 5);
    }
}

/* T = 65536 at input scale 100, a slowly decaying filter: finite outputs
 * and gradients. */
static void test_long_finite(void)
{
    const int64_t T = 65536, D = 2, N = 2, K = 3, P = (N + 1) * D, C = (N - 1) * D;
    sl_rng rng;
    sl_rng_seed(&rng, 13);
    const sl_gated_conv_desc d = {1, T, D, N, K, NULL};
    float *p = malloc((size_t)(T * P) * 4), *w = malloc((size_t)(P * K) * 4),
          *h = malloc((size_t)(C * T) * 4), *s = malloc((size_t)C * 4), *z = malloc((size_t)(T * D) * 4);
    float *dp = calloc((size_t)(T * P), 4), *dw = calloc((size_t)(P * K), 4),
          *dh = calloc((size_t)(C * T), 4), *ds = calloc((size_t)C, 4);
    fill(&rng, p, T * P, 100.0f);
    fill(&rng, w, P * K, 0.6f);
    fill(&rng, s, C, 1.0f);
    for (int64_t j = 0; j < C * T; j++)
        h[j] = expf(-(float)(j % T) / 20000.0f) * sl_rng_normal(&rng) * 0.01f;
    sl_gated_conv_fwd(&d, p, w, NULL, h, s, z);
    sl_gated_conv_bwd(&d, p, w, NULL, h, s, z, dp, dw, NULL, dh, ds);
    bool finite = true;
    for (int64_t i = 0; i < T * D; i++) finite = finite && isfinite(z[i]);
    for (int64_t i = 0; i < T * P; i++) finite = finite && isfinite(dp[i]);
    for (int64_t i = 0; i < C * T; i++) finite = finite && isfinite(dh[i]);
    for (int64_t i = 0; i < P * K; i++) finite = finite && isfinite(dw[i]);
    CHECK(finite, "T = 65536 outputs and gradients finite");
    free(p), free(w), free(h), free(s), free(z), free(dp), free(dw), free(dh), free(ds);
}

int main(void)
{
    RUN(test_matches_direct);
    RUN(test_gradient_finite_differences);
    RUN(test_long_finite);
    return TEST_SUMMARY();
}
