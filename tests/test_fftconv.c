/* The FFT long convolution: the op against the direct double sums (T = 1,
 * 2, odd and non-power-of-two T, both directions), its backward against the
 * direct adjoint sums, packed batches against each sequence alone, finite
 * differences of u and k, and a long run (T = 65536, inputs of scale 100)
 * that stays finite and matches direct sums at sampled tokens. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/fftconv.h"

static int64_t k_floats(const sl_fftconv_desc *d) { return (d->causal ? 1 : 2) * d->C * d->T; }

static void fill(sl_rng *rng, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * sl_rng_normal(rng);
}

/* max |a - b| <= tol * max |b|: FFT rounding spreads over the whole output,
 * so the bound is relative to the output's scale. */
static void check_rel(const float *a, const double *b, int64_t n, double tol, const char *what)
{
    double err = 0, mag = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        err = fmax(err, fabs(a[i] - b[i]));
        mag = fmax(mag, fabs(b[i]));
        CHECK(isfinite(a[i]), "%s: element %lld not finite", what, (long long)i);
    }
    CHECK(err <= tol * mag, "%s: max error %.3g against max %.3g", what, err, mag);
}

/* The backward's direct sums in double: du: [B, T, C], dk: k's shape. */
static void bwd_ref(const sl_fftconv_desc *d, const float *u, const float *k, const float *dy,
                    double *du, double *dk)
{
    const int64_t T = d->T, C = d->C;
    memset(du, 0, (size_t)(d->B * T * C) * sizeof(double));
    memset(dk, 0, (size_t)k_floats(d) * sizeof(double));
    for (int64_t i = 0; i < sl_seq_count(d->seqs, d->B); i++) {
        const int64_t st = sl_seq_start(d->seqs, i, T), L = sl_seq_len(d->seqs, i, T);
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < L; t++)
                for (int64_t s = 0; s < L; s++) {
                    const int64_t it = (st + t) * C + c, is = (st + s) * C + c;
                    int64_t j = -1;
                    if (s <= t) j = c * T + t - s;
                    else if (!d->causal) j = (C + c) * T + s - t - 1;
                    if (j < 0) continue;
                    du[is] += (double)k[j] * dy[it];
                    dk[j] += (double)dy[it] * u[is];
                }
    }
}

/* One case: forward and backward against the direct sums. */
static void check_case(int64_t B, int64_t T, int64_t C, bool causal, const sl_seqs *seqs)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + C + causal));
    const sl_fftconv_desc d = {B, T, C, causal, seqs};
    const int64_t n = B * T * C, nk = k_floats(&d);
    float *u = malloc((size_t)n * sizeof(float)), *k = malloc((size_t)nk * sizeof(float));
    float *y = malloc((size_t)n * sizeof(float)), *dy = malloc((size_t)n * sizeof(float));
    float *du = calloc((size_t)n, sizeof(float)), *dk = calloc((size_t)nk, sizeof(float));
    double *yr = malloc((size_t)n * sizeof(double)), *dur = malloc((size_t)n * sizeof(double));
    double *dkr = malloc((size_t)nk * sizeof(double));
    fill(&rng, u, n, 1.0f);
    fill(&rng, k, nk, 1.0f);
    fill(&rng, dy, n, 1.0f);
    sl_fftconv_fwd(&d, u, k, y);
    sl_fftconv_ref(&d, u, k, yr);
    sl_fftconv_bwd(&d, u, k, dy, du, dk);
    bwd_ref(&d, u, k, dy, dur, dkr);
    char what[64];
    snprintf(what, sizeof what, "T=%lld %s y", (long long)T, causal ? "causal" : "bidir");
    check_rel(y, yr, n, 1e-4, what);
    snprintf(what, sizeof what, "T=%lld %s du", (long long)T, causal ? "causal" : "bidir");
    check_rel(du, dur, n, 1e-4, what);
    snprintf(what, sizeof what, "T=%lld %s dk", (long long)T, causal ? "causal" : "bidir");
    check_rel(dk, dkr, nk, 1e-4, what);
    free(u), free(k), free(y), free(dy), free(du), free(dk), free(yr), free(dur), free(dkr);
}

/* Packed: an empty sequence first, one token, five, empty, 37, 100. */
static const int64_t CU[] = {0, 0, 1, 6, 6, 43, 143};
static const sl_seqs PACKED = {6, CU};

static void test_matches_direct(void)
{
    const int64_t Ts[] = {1, 2, 7, 64, 100, 1000};
    for (int causal = 0; causal <= 1; causal++) {
        for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) check_case(2, Ts[i], 3, causal, NULL);
        check_case(1, 143, 4, causal, &PACKED);
    }
}

static void test_fft_sizes(void)
{
    CHECK(sl_fftconv_size(1) == 2, "size(1)");
    CHECK(sl_fftconv_size(7) == 14, "size(7)");
    CHECK(sl_fftconv_size(1000) == 2000, "size(1000)");
    CHECK(sl_fftconv_size(1025) == 2058, "size(1025)"); /* 2 * 3 * 7^3 */
    CHECK(sl_fftconv_size(1 << 20) == 1 << 21, "size(2^20)");
}

/* Each packed sequence, run alone as a [1, L, C] batch with the same
 * kernel, gives the same bits (forward, du and dk summed over sequences). */
static void test_packed_equals_alone(void)
{
    const int64_t T = 143, C = 4;
    for (int causal = 0; causal <= 1; causal++) {
        sl_rng rng;
        sl_rng_seed(&rng, 7 + causal);
        const sl_fftconv_desc d = {1, T, C, causal, &PACKED};
        const int64_t nk = k_floats(&d);
        float *u = malloc(T * C * sizeof(float)), *dy = malloc(T * C * sizeof(float));
        float *k = malloc((size_t)nk * sizeof(float)), *y = malloc(T * C * sizeof(float));
        float *du = calloc(T * C, sizeof(float)), *dk = calloc((size_t)nk, sizeof(float));
        float *y1 = malloc(T * C * sizeof(float)), *du1 = calloc(T * C, sizeof(float));
        float *dk1 = calloc((size_t)nk, sizeof(float));
        fill(&rng, u, T * C, 1.0f);
        fill(&rng, dy, T * C, 1.0f);
        fill(&rng, k, nk, 1.0f);
        sl_fftconv_fwd(&d, u, k, y);
        sl_fftconv_bwd(&d, u, k, dy, du, dk);
        for (int64_t i = 0; i < PACKED.n; i++) {
            const int64_t st = CU[i], L = CU[i + 1] - CU[i];
            if (L == 0) continue;
            /* The sequence's own kernel: taps 0 .. L-1 of each direction. */
            const sl_fftconv_desc d1 = {1, L, C, causal, NULL};
            float *k1 = malloc((size_t)k_floats(&d1) * sizeof(float));
            float *g1 = calloc((size_t)k_floats(&d1), sizeof(float));
            for (int64_t r = 0; r < (causal ? 1 : 2) * C; r++)
                memcpy(k1 + r * L, k + r * T, (size_t)L * sizeof(float));
            sl_fftconv_fwd(&d1, u + st * C, k1, y1 + st * C);
            sl_fftconv_bwd(&d1, u + st * C, k1, dy + st * C, du1 + st * C, g1);
            for (int64_t r = 0; r < (causal ? 1 : 2) * C; r++)
                for (int64_t j = 0; j < L; j++) dk1[r * T + j] += g1[r * L + j];
            free(k1);
            free(g1);
        }
        CHECK(memcmp(y, y1, T * C * sizeof(float)) == 0, "packed y == alone (causal %d)", causal);
        CHECK(memcmp(du, du1, T * C * sizeof(float)) == 0, "packed du == alone (causal %d)",
              causal);
        /* dk sums the sequences' taps in another rounding order (the
         * packed run adds each one's transform into dk directly). */
        CHECK(close_ratio(dk, dk1, nk, 1e-5, 1e-5) <= 1, "packed dk == alone (causal %d)", causal);
        free(u), free(dy), free(k), free(y), free(du), free(dk), free(y1), free(du1), free(dk1);
    }
}

typedef struct fc_arg {
    bool causal;
    const sl_seqs *seqs;
} fc_arg;

static sl_tensor *fc_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const fc_arg *a = arg;
    return sl_fftconv(ctx, in[0], in[1], a->causal, a->seqs);
}

static void test_gradient_finite_differences(void)
{
    /* Bilinear in (u, k): central differences are exact up to the float
     * rounding of the FFT outputs (~1e-6 relative, over h). */
    sl_rng rng;
    sl_rng_seed(&rng, 11);
    for (int causal = 0; causal <= 1; causal++) {
        const struct {
            int64_t B, T;
            const sl_seqs *seqs;
        } cases[] = {{2, 9, NULL}, {1, 143, &PACKED}};
        for (int c = 0; c < 2; c++) {
            const int64_t C = 3, T = cases[c].T;
            fc_arg a = {causal, cases[c].seqs};
            sl_tensor *in[2] = {GC_LEAF(&rng, 1.0f, cases[c].B, T, C),
                                causal ? GC_LEAF(&rng, 0.3f, C, T) : GC_LEAF(&rng, 0.3f, 2, C, T)};
            CHECK(gradcheck("fftconv", fc_fn, in, 2, &a, 1e-2f, 5e-4, 2e-3, 150),
                  "fftconv causal %d case %d", causal, c);
            gc_free_all(in, 2);
        }
    }
}

/* T = 65536, inputs of scale 100 and a slowly decaying kernel: finite,
 * and equal to the direct sums at sampled tokens (each O(T)). */
static void test_long_finite(void)
{
    const int64_t T = 65536, C = 2;
    for (int causal = 0; causal <= 1; causal++) {
        sl_rng rng;
        sl_rng_seed(&rng, 13);
        const sl_fftconv_desc d = {1, T, C, causal, NULL};
        const int64_t nk = k_floats(&d);
        float *u = malloc(T * C * sizeof(float)), *k = malloc((size_t)nk * sizeof(float));
        float *y = malloc(T * C * sizeof(float)), *du = calloc(T * C, sizeof(float));
        float *dk = calloc((size_t)nk, sizeof(float));
        fill(&rng, u, T * C, 100.0f);
        for (int64_t j = 0; j < nk; j++)
            k[j] = 100.0f * expf(-(float)(j % T) / 20000.0f) * sl_rng_normal(&rng);
        sl_fftconv_fwd(&d, u, k, y);
        sl_fftconv_bwd(&d, u, k, y, du, dk);
        bool finite = true;
        for (int64_t i = 0; i < T * C; i++) finite = finite && isfinite(y[i]) && isfinite(du[i]);
        for (int64_t i = 0; i < nk; i++) finite = finite && isfinite(dk[i]);
        CHECK(finite, "T = 65536 outputs and gradients finite (causal %d)", causal);
        const double scale = rms(y, T * C);
        const int64_t ts[] = {0, 1, 4095, 40000, T - 1};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
            const int64_t t = ts[i];
            double s = 0;
            for (int64_t j = 0; j <= t; j++) s += (double)k[j] * u[(t - j) * C];
            if (!causal)
                for (int64_t j = 0; t + 1 + j < T; j++)
                    s += (double)k[C * T + j] * u[(t + 1 + j) * C];
            CHECK_CLOSE(y[t * C], s, 1e-4 * scale, 0, "long y");
        }
        free(u), free(k), free(y), free(du), free(dk);
    }
}

int main(void)
{
    RUN(test_fft_sizes);
    RUN(test_matches_direct);
    RUN(test_packed_equals_alone);
    RUN(test_gradient_finite_differences);
    RUN(test_long_finite);
    return TEST_SUMMARY();
}
