/* S4D's kernel op: against the direct double sum (L = 1, odd L, L across
 * the power blocks, one and two kernel sets, with and without D, a mode
 * with a tiny dt A where the ZOH quotients take their series), finite
 * differences of every input, the one-token step against the kernel's
 * convolution, and a long kernel that stays finite. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/s4d_kernel.h"

/* S4D-Lin-like parameters: dt log-uniform in [1e-3, 0.1], Re A = -1/2,
 * Im A = pi m, C ~ N(0, 1/2) per part. Channel 0's mode 0 is made nearly
 * zero (A = -1e-4) so its dt A takes the series. */
typedef struct params {
    float *log_dt, *a_log_re, *a_im, *c, *d;
} params;

static void fill_params(sl_rng *rng, const sl_s4d_desc *ds, params *p)
{
    const int64_t H = ds->H, M = ds->M;
    p->log_dt = malloc((size_t)H * sizeof(float));
    p->a_log_re = malloc((size_t)(H * M) * sizeof(float));
    p->a_im = malloc((size_t)(H * M) * sizeof(float));
    p->c = malloc((size_t)(2 * ds->S * H * M) * sizeof(float));
    p->d = malloc((size_t)H * sizeof(float));
    for (int64_t h = 0; h < H; h++) {
        p->log_dt[h] = logf(1e-3f) + sl_rng_uniform(rng) * (logf(0.1f) - logf(1e-3f));
        p->d[h] = sl_rng_normal(rng);
        for (int64_t m = 0; m < M; m++) {
            p->a_log_re[h * M + m] = logf(0.5f) + 0.3f * sl_rng_normal(rng);
            p->a_im[h * M + m] = 3.14159265f * (float)m + 0.1f * sl_rng_normal(rng);
        }
    }
    p->a_log_re[0] = logf(1e-4f);
    p->a_im[0] = 0.0f;
    for (int64_t i = 0; i < 2 * ds->S * H * M; i++) p->c[i] = 0.7071f * sl_rng_normal(rng);
}

static void free_params(params *p)
{
    free(p->log_dt), free(p->a_log_re), free(p->a_im), free(p->c), free(p->d);
}

static void check_case(int64_t S, int64_t H, int64_t M, int64_t L, bool with_d)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(S * 100 + L));
    const sl_s4d_desc ds = {S, H, M, L};
    params p;
    fill_params(&rng, &ds, &p);
    const int64_t n = S * H * L;
    float *K = malloc((size_t)(n + 1) * sizeof(float));
    double *Kr = malloc((size_t)(n + 1) * sizeof(double));
    sl_s4d_kernel_fwd(&ds, p.log_dt, p.a_log_re, p.a_im, p.c, with_d ? p.d : NULL, K);
    sl_s4d_kernel_ref(&ds, p.log_dt, p.a_log_re, p.a_im, p.c, with_d ? p.d : NULL, Kr);
    double mag = 1e-30, err = 0;
    for (int64_t i = 0; i < n; i++) {
        mag = fmax(mag, fabs(Kr[i]));
        err = fmax(err, fabs(K[i] - Kr[i]));
    }
    CHECK(err <= 1e-5 * mag, "S %lld L %lld d %d: max error %g of %g", (long long)S, (long long)L,
          with_d, err, mag);
    free(K);
    free(Kr);
    free_params(&p);
}

static void test_matches_reference(void)
{
    for (int64_t S = 1; S <= 2; S++) {
        check_case(S, 3, 4, 1, true);
        check_case(S, 3, 4, 7, false);
        check_case(S, 2, 5, 600, true); /* across two block edges */
        check_case(S, 2, 32, 1000, true);
    }
}

typedef struct kc_arg {
    int64_t L;
} kc_arg;

static sl_tensor *kc_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_s4d_kernel(ctx, in[0], in[1], in[2], in[3], in[4], ((kc_arg *)arg)->L);
}

static sl_tensor *leaf_of(const float *src, int ndim, const int64_t *shape)
{
    sl_tensor *t = gc_leaf(NULL, 0.0f, ndim, shape);
    memcpy(t->data, src, (size_t)t->n * sizeof(float));
    return t;
}

static void test_gradient_finite_differences(void)
{
    for (int64_t S = 1; S <= 2; S++) {
        sl_rng rng;
        sl_rng_seed(&rng, 20 + S);
        const int64_t H = 2, M = 3, L = 300;
        const sl_s4d_desc ds = {S, H, M, L};
        params p;
        fill_params(&rng, &ds, &p);
        /* Larger steps than the init so every tap and mode matters. */
        for (int64_t h = 0; h < H; h++) p.log_dt[h] = logf(0.05f) + 0.5f * (float)h;
        sl_tensor *in[5] = {leaf_of(p.log_dt, 1, (int64_t[]){H}),
                            leaf_of(p.a_log_re, 2, (int64_t[]){H, M}),
                            leaf_of(p.a_im, 2, (int64_t[]){H, M}),
                            leaf_of(p.c, 4, (int64_t[]){S, H, M, 2}),
                            leaf_of(p.d, 1, (int64_t[]){H})};
        kc_arg a = {L};
        CHECK(gradcheck("s4d_kernel", kc_fn, in, 5, &a, 1e-3f, 2e-3, 2e-3, 40), "S %lld",
              (long long)S);
        gc_free_all(in, 5);
        free_params(&p);
    }
}

/* The one-token step from a zero state == the kernel's causal convolution
 * (ops/s4d_state's tests check it from nonzero states, packed). */
static void test_step_matches_kernel(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 30);
    const int64_t H = 3, M = 4, T = 40;
    const sl_s4d_desc ds = {1, H, M, T};
    params p;
    fill_params(&rng, &ds, &p);
    float *E = malloc((size_t)(2 * H * M) * sizeof(float));
    float *Bb = malloc((size_t)(2 * H * M) * sizeof(float));
    sl_s4d_modes(H, M, p.log_dt, p.a_log_re, p.a_im, E, Bb);
    double *K = malloc((size_t)(H * T) * sizeof(double));
    sl_s4d_kernel_ref(&ds, p.log_dt, p.a_log_re, p.a_im, p.c, p.d, K);
    float u[T * H], y[H], x[2 * H * M];
    for (int64_t i = 0; i < T * H; i++) u[i] = sl_rng_normal(&rng);
    memset(x, 0, sizeof x);
    for (int64_t t = 0; t < T; t++) {
        sl_s4d_step(H, M, E, Bb, p.c, p.d, u + t * H, x, y);
        for (int64_t h = 0; h < H; h++) {
            double s = 0;
            for (int64_t j = 0; j <= t; j++) s += K[h * T + j] * u[(t - j) * H + h];
            CHECK_CLOSE(y[h], s, 1e-5, 1e-4, "step vs kernel");
        }
    }
    free(E), free(Bb), free(K);
    free_params(&p);
}

/* L = 65536, the largest dt (0.1), C of scale 100: finite, and still the
 * direct sum at sampled taps. */
static void test_long_finite(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 40);
    const int64_t H = 2, M = 8, L = 65536;
    const sl_s4d_desc ds = {2, H, M, L};
    params p;
    fill_params(&rng, &ds, &p);
    for (int64_t h = 0; h < H; h++) p.log_dt[h] = logf(0.1f);
    for (int64_t i = 0; i < 2 * 2 * H * M; i++) p.c[i] *= 100.0f;
    float *K = malloc((size_t)(2 * H * L) * sizeof(float));
    float *g = calloc((size_t)(2 * H * M * 2), sizeof(float));
    float gdt[H], gre[H * M], gim[H * M];
    memset(gdt, 0, sizeof gdt);
    memset(gre, 0, sizeof gre);
    memset(gim, 0, sizeof gim);
    sl_s4d_kernel_fwd(&ds, p.log_dt, p.a_log_re, p.a_im, p.c, p.d, K);
    sl_s4d_kernel_bwd(&ds, p.log_dt, p.a_log_re, p.a_im, p.c, K, gdt, gre, gim, g, NULL);
    bool finite = true;
    for (int64_t i = 0; i < 2 * H * L; i++) finite = finite && isfinite(K[i]);
    for (int64_t i = 0; i < H * M; i++) finite = finite && isfinite(gre[i]) && isfinite(gim[i]);
    for (int64_t i = 0; i < H; i++) finite = finite && isfinite(gdt[i]);
    CHECK(finite, "L = 65536: kernel and gradients finite");
    double Kr[2 * H * 4];
    const sl_s4d_desc d4 = {2, H, M, 4};
    sl_s4d_kernel_ref(&d4, p.log_dt, p.a_log_re, p.a_im, p.c, p.d, Kr);
    for (int64_t s = 0; s < 2; s++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t l = 0; l < 4; l++)
                CHECK_CLOSE(K[(s * H + h) * L + l], Kr[(s * H + h) * 4 + l], 1e-3, 1e-5, "taps");
    free(K), free(g);
    free_params(&p);
}

int main(void)
{
    RUN(test_matches_reference);
    RUN(test_gradient_finite_differences);
    RUN(test_step_matches_kernel);
    RUN(test_long_finite);
    return TEST_SUMMARY();
}
