/* BaseConv's long-kernel layer: the op against the direct double loops
 * (T = 1, odd T, taps shorter and longer than T, no bias, channels across
 * blocks, packed batches), a packed batch against each sequence alone
 * (output and every gradient, across blocks of channels), finite
 * differences of every input (x, h, w, b), and T = 65536 staying finite. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/base_conv.h"

static void fill(sl_rng *rng, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * sl_rng_normal(rng);
}

/* Packed: an empty sequence first, one token, five, empty, 37, 100. */
static const int64_t CU[] = {0, 0, 1, 6, 6, 43, 143};
static const sl_seqs PACKED = {6, CU};

/* One problem's inputs: x [B, T, D], h [S, D], w [D, D], b [D]. */
typedef struct bc_case {
    float *x, *h, *w, *b;
} bc_case;

static bc_case case_new(const sl_base_conv_desc *d, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    const int64_t n = d->B * d->T * d->D;
    bc_case c = {malloc((size_t)(n + 1) * 4), malloc((size_t)(d->S * d->D) * 4),
                 malloc((size_t)(d->D * d->D) * 4), malloc((size_t)d->D * 4)};
    fill(&rng, c.x, n, 1.0f);
    fill(&rng, c.h, d->S * d->D, 0.3f);
    fill(&rng, c.w, d->D * d->D, 0.5f);
    fill(&rng, c.b, d->D, 0.3f);
    return c;
}

static void case_free(bc_case *c) { free(c->x), free(c->h), free(c->w), free(c->b); }

static void check_case(int64_t B, int64_t T, int64_t D, int64_t S, int64_t cb, bool bias,
                       const sl_seqs *seqs)
{
    const sl_base_conv_desc d = {B, T, D, S, cb, seqs};
    bc_case c = case_new(&d, (uint64_t)(B * 1000 + T * 10 + D + S));
    const float *b = bias ? c.b : NULL;
    const int64_t n = B * T * D;
    float *y = malloc((size_t)(n + 1) * 4);
    double *yr = malloc((size_t)(n + 1) * sizeof(double));
    sl_base_conv_fwd(&d, c.x, c.h, c.w, b, y);
    sl_base_conv_ref(&d, c.x, c.h, c.w, b, yr);
    double err = 0, mag = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        err = fmax(err, fabs(y[i] - yr[i]));
        mag = fmax(mag, fabs(yr[i]));
    }
    CHECK(err <= 1e-5 * mag, "B=%lld T=%lld D=%lld S=%lld cb=%lld: max error %.3g against max %.3g",
          (long long)B, (long long)T, (long long)D, (long long)S, (long long)cb, err, mag);
    free(y), free(yr);
    case_free(&c);
}

static void test_matches_direct(void)
{
    check_case(2, 1, 3, 1, 0, true, NULL);
    check_case(2, 7, 3, 5, 0, true, NULL);     /* taps shorter than T */
    check_case(1, 100, 19, 130, 16, true, NULL); /* a block of 16 and a partial one */
    check_case(2, 33, 5, 33, 2, false, NULL);
    check_case(1, 143, 4, 60, 3, true, &PACKED);
}

/* Every float of a and b within tol of the larger magnitude. */
static double max_rel(const float *a, const float *b, int64_t n)
{
    double err = 0, mag = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        err = fmax(err, fabs((double)a[i] - b[i]));
        mag = fmax(mag, fabs((double)b[i]));
    }
    return err / mag;
}

/* The packed batch in blocks of 16 channels (19: a partial block) against
 * each sequence alone in one block: y and dx per token, dh, dw, db summed. */
static void test_packed_equals_alone(void)
{
    const int64_t T = 143, D = 19, S = 70, n = T * D;
    const sl_base_conv_desc d = {1, T, D, S, 16, &PACKED};
    bc_case c = case_new(&d, 5);
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    float *dy = malloc((size_t)n * 4), *y = malloc((size_t)n * 4), *y1 = calloc((size_t)n, 4);
    float *dx = calloc((size_t)n, 4), *dh = calloc((size_t)(S * D), 4),
          *dw = calloc((size_t)(D * D), 4), *db = calloc((size_t)D, 4);
    float *dx1 = calloc((size_t)n, 4), *dh1 = calloc((size_t)(S * D), 4),
          *dw1 = calloc((size_t)(D * D), 4), *db1 = calloc((size_t)D, 4);
    fill(&rng, dy, n, 1.0f);
    sl_base_conv_fwd(&d, c.x, c.h, c.w, c.b, y);
    sl_base_conv_bwd(&d, c.x, c.h, c.w, c.b, dy, dx, dh, dw, db);
    for (int64_t i = 0; i < PACKED.n; i++) {
        const int64_t st = CU[i], L = CU[i + 1] - CU[i];
        const sl_base_conv_desc d1 = {1, L, D, S, 0, NULL};
        sl_base_conv_fwd(&d1, c.x + st * D, c.h, c.w, c.b, y1 + st * D);
        sl_base_conv_bwd(&d1, c.x + st * D, c.h, c.w, c.b, dy + st * D, dx1 + st * D, dh1, dw1,
                         db1);
    }
    CHECK(max_rel(y, y1, n) <= 1e-6, "y: %.3g", max_rel(y, y1, n));
    CHECK(max_rel(dx, dx1, n) <= 1e-5, "dx: %.3g", max_rel(dx, dx1, n));
    CHECK(max_rel(dh, dh1, S * D) <= 1e-5, "dh: %.3g", max_rel(dh, dh1, S * D));
    CHECK(max_rel(dw, dw1, D * D) <= 1e-5, "dw: %.3g", max_rel(dw, dw1, D * D));
    CHECK(max_rel(db, db1, D) <= 1e-5, "db: %.3g", max_rel(db, db1, D));
    free(dy), free(y), free(y1), free(dx), free(dh), free(dw), free(db);
    free(dx1), free(dh1), free(dw1), free(db1);
    case_free(&c);
}

static sl_tensor *base_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_base_conv(ctx, in[0], in[1], in[2], in[3], arg);
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 11);
    const struct {
        int64_t B, T, D, S;
        const sl_seqs *seqs;
    } cases[] = {{2, 1, 3, 2, NULL},
                 {2, 9, 3, 9, NULL},
                 {1, 143, 2, 40, &PACKED},
                 {1, 20, 17, 25, NULL}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int64_t D = cases[c].D;
        sl_tensor *in[4] = {GC_LEAF(&rng, 0.7f, cases[c].B, cases[c].T, D),
                            GC_LEAF(&rng, 0.3f, cases[c].S, D), GC_LEAF(&rng, 0.5f, D, D),
                            GC_LEAF(&rng, 0.3f, D)};
        CHECK(gradcheck("base_conv", base_fn, in, 4, (void *)cases[c].seqs, 1e-2f, 1e-3, 3e-3,
                        150),
              "base_conv case %zu", c);
        gc_free_all(in, 4);
    }
}

/* T = 65536 at input scale 10, a slowly decaying filter: finite outputs
 * and gradients. */
static void test_long_finite(void)
{
    const int64_t T = 65536, D = 2, S = T;
    sl_rng rng;
    sl_rng_seed(&rng, 13);
    const sl_base_conv_desc d = {1, T, D, S, 0, NULL};
    float *x = malloc((size_t)(T * D) * 4), *h = malloc((size_t)(S * D) * 4),
          *w = malloc((size_t)(D * D) * 4), *y = malloc((size_t)(T * D) * 4);
    float *dx = calloc((size_t)(T * D), 4), *dh = calloc((size_t)(S * D), 4),
          *dw = calloc((size_t)(D * D), 4), *db = calloc((size_t)D, 4);
    fill(&rng, x, T * D, 10.0f);
    fill(&rng, w, D * D, 0.5f);
    for (int64_t j = 0; j < S * D; j++)
        h[j] = expf(-(float)(j / D) / 20000.0f) * sl_rng_normal(&rng) * 0.01f;
    sl_base_conv_fwd(&d, x, h, w, NULL, y);
    sl_base_conv_bwd(&d, x, h, w, NULL, y, dx, dh, dw, db);
    bool finite = true;
    for (int64_t i = 0; i < T * D; i++) finite = finite && isfinite(y[i]) && isfinite(dx[i]);
    for (int64_t i = 0; i < S * D; i++) finite = finite && isfinite(dh[i]);
    for (int64_t i = 0; i < D * D; i++) finite = finite && isfinite(dw[i]);
    CHECK(finite, "T = 65536 outputs and gradients finite");
    free(x), free(h), free(w), free(y), free(dx), free(dh), free(dw), free(db);
}

int main(void)
{
    RUN(test_matches_direct);
    RUN(test_packed_equals_alone);
    RUN(test_gradient_finite_differences);
    RUN(test_long_finite);
    return TEST_SUMMARY();
}
