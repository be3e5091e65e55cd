/* Parameter init rules (src/core/params.c): the ranged SSM kinds A_LOG and
 * DT_BIAS land in their ranges with the right spread (deciles), everything
 * is a function of the seed, each ranged element takes one draw from the
 * shared stream, bad ranges are refused, and gated_deltanet and mamba2 start
 * their A_log and dt_bias from the reference codes' ranges; mamba's A_log
 * is log(1..N) in every row and its dt_bias in Mamba's range;
 * LOG_UNIFORM and FIXED (s4d's log_dt and A) give their values. */
#include <string.h>

#include "check.h"
#include "mixers/mixer.h"

extern const sl_mixer_vtable sl_mixer_gated_deltanet, sl_mixer_mamba2, sl_mixer_mamba;

#define N_DRAWS 20000

/* softplus in double, stable both ways. */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

/* Every decile of u (n values expected uniform in [0, 1]) within tol of k/10:
 * with n = 20000 a decile's share has sd <= 0.0035, tol 0.02 is ~6 sd, and
 * a linear instead of a logarithmic spread misses by up to ~0.4. */
static void check_deciles(const double *u, int n, double tol, const char *what)
{
    for (int k = 1; k < 10; k++) {
        int below = 0;
        for (int i = 0; i < n; i++) below += u[i] < k / 10.0;
        double share = (double)below / n;
        CHECK(fabs(share - k / 10.0) <= tol, "%s: share below decile %d: %.4f", what, k, share);
    }
}

/* One ranged parameter of n elements, drawn from seed. */
static sl_tensor *ranged(sl_params *p, sl_init_kind kind, float lo, float hi, int64_t n,
                         uint64_t seed)
{
    sl_params_init(p);
    sl_tensor *t = SL_PARAM_RANGE(p, "w", kind, lo, hi, false, n);
    CHECK(sl_params_finalize(p) == SL_OK, "finalize: %s", sl_errmsg());
    sl_rng r;
    sl_rng_seed(&r, seed);
    sl_params_randomize(p, &r);
    return t;
}

static void test_dt_bias_log_uniform(void)
{
    const double lo = 1e-3, hi = 0.1;
    sl_params p;
    sl_tensor *t = ranged(&p, SL_INIT_DT_BIAS, (float)lo, (float)hi, N_DRAWS, 3);
    static double u[N_DRAWS];
    double lmin = INFINITY, lmax = -INFINITY, mean = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        double dt = softplus(t->data[i]);
        /* float rounding of dt_bias moves softplus by < 1e-6 relative */
        CHECK(dt >= lo * (1 - 1e-5) && dt <= hi * (1 + 1e-5), "softplus(dt_bias) %g", dt);
        u[i] = (log(dt) - log(lo)) / (log(hi) - log(lo));
        lmin = fmin(lmin, dt);
        lmax = fmax(lmax, dt);
        mean += dt / N_DRAWS;
    }
    check_deciles(u, N_DRAWS, 0.02, "log dt");
    /* reaches both ends: the extreme of 20000 draws is within ~1e-3 of an end in u */
    CHECK(lmin < lo * 1.01 && lmax > hi * 0.99, "range covered: [%g, %g]", lmin, lmax);
    /* E[dt] for log-uniform dt: (hi - lo) / log(hi / lo) = 0.0215 */
    CHECK_CLOSE(mean, (hi - lo) / log(hi / lo), 0, 0.03, "mean dt");
    sl_params_free(&p);
}

static void test_a_log_uniform(void)
{
    static double u[N_DRAWS];
    static const float ranges[2][2] = {{1, 16}, {0, 16}};
    for (int r = 0; r < 2; r++) {
        const double lo = ranges[r][0], hi = ranges[r][1];
        sl_params p;
        sl_tensor *t = ranged(&p, SL_INIT_A_LOG, (float)lo, (float)hi, N_DRAWS, 4 + r);
        for (int i = 0; i < N_DRAWS; i++) {
            double A = exp(t->data[i]);
            CHECK(isfinite(t->data[i]) && A > lo * (1 - 1e-6) && A <= hi * (1 + 1e-6),
                  "A %g of [%g, %g]", A, lo, hi);
            u[i] = (A - lo) / (hi - lo);
        }
        check_deciles(u, N_DRAWS, 0.02, lo > 0 ? "A in [1, 16]" : "A in (0, 16]");
        sl_params_free(&p);
    }
}

/* Same seed, same bits; another seed, other values; and a ranged element
 * takes exactly one draw, so what follows it sees the documented stream. */
static void test_deterministic_from_seed(void)
{
    float first[2][40];
    for (int rep = 0; rep < 3; rep++) {
        sl_params p;
        sl_params_init(&p);
        sl_tensor *a = SL_PARAM_RANGE(&p, "A_log", SL_INIT_A_LOG, 1.0f, 16.0f, false, 8);
        sl_tensor *d = SL_PARAM_RANGE(&p, "dt_bias", SL_INIT_DT_BIAS, 1e-3f, 0.1f, false, 12);
        sl_tensor *w = SL_PARAM(&p, "w", SL_INIT_NORMAL, 1.0f, true, 20);
        CHECK(sl_params_finalize(&p) == SL_OK, "finalize: %s", sl_errmsg());
        sl_rng r;
        sl_rng_seed(&r, rep < 2 ? 7 : 8);
        sl_params_randomize(&p, &r);
        float all[40];
        memcpy(all, a->data, 8 * sizeof(float));
        memcpy(all + 8, d->data, 12 * sizeof(float));
        memcpy(all + 20, w->data, 20 * sizeof(float));
        if (rep < 2)
            memcpy(first[rep], all, sizeof all);
        else
            CHECK(memcmp(all, first[0], sizeof all) != 0, "seed 8 differs from seed 7");
        if (rep == 0) {
            sl_rng s;
            sl_rng_seed(&s, 7);
            for (int i = 0; i < 20; i++) sl_rng_uniform(&s);
            for (int i = 0; i < 20; i++) {
                float want = sl_rng_normal(&s);
                CHECK(w->data[i] == want, "w[%d] %g after 20 ranged draws, want %g", i, w->data[i],
                      want);
            }
        }
        sl_params_free(&p);
    }
    CHECK(memcmp(first[0], first[1], sizeof first[0]) == 0, "seed 7 twice, same bits");
}

static void test_bad_ranges_refused(void)
{
    static const struct {
        sl_init_kind kind;
        float lo, hi;
    } bad[] = {{SL_INIT_DT_BIAS, 0.0f, 0.1f},  /* log(0) */
               {SL_INIT_DT_BIAS, 0.1f, 1e-3f}, /* reversed */
               {SL_INIT_A_LOG, -1.0f, 16.0f},  /* A <= 0 */
               {SL_INIT_A_LOG, 0.0f, 0.0f},    /* A = 0 only */
               {SL_INIT_A_LOG, 1.0f, INFINITY},
               {SL_INIT_LOG_UNIFORM, 0.0f, 0.1f},  /* log(0) */
               {SL_INIT_ONES_SPAN, 1.0f, 4.0f},  /* past the 3 elements */
               {SL_INIT_ONES_SPAN, 0.5f, 2.0f},  /* not an element index */
               {SL_INIT_ONES_SPAN, 2.0f, 1.0f}}; /* reversed */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_params p;
        sl_params_init(&p);
        SL_PARAM_RANGE(&p, "x", bad[i].kind, bad[i].lo, bad[i].hi, false, 3);
        CHECK(sl_params_finalize(&p) == SL_ERR_ARG && strstr(sl_errmsg(), "'x'"),
              "range %d [%g, %g] accepted", (int)i, bad[i].lo, bad[i].hi);
        sl_params_free(&p);
    }
}

/* ONES_SPAN: ones on [lo, hi) only, and no draw taken (what follows sees
 * the stream from its start). */
static void test_ones_span(void)
{
    sl_params p;
    sl_params_init(&p);
    sl_tensor *b = SL_PARAM_RANGE(&p, "b", SL_INIT_ONES_SPAN, 2.0f, 5.0f, false, 8);
    sl_tensor *w = SL_PARAM(&p, "w", SL_INIT_NORMAL, 1.0f, true, 4);
    CHECK(sl_params_finalize(&p) == SL_OK, "finalize: %s", sl_errmsg());
    sl_rng r, s;
    sl_rng_seed(&r, 9);
    sl_rng_seed(&s, 9);
    sl_params_randomize(&p, &r);
    for (int j = 0; j < 8; j++)
        CHECK(b->data[j] == (j >= 2 && j < 5 ? 1.0f : 0.0f), "b[%d] = %g", j, b->data[j]);
    for (int j = 0; j < 4; j++) CHECK(w->data[j] == sl_rng_normal(&s), "w[%d] after the span", j);
    sl_params_free(&p);
}

/* Layer 0 of vt with its default options, d_model 64 and 16 heads, its
 * parameters drawn from seed 1337. */
static void drawn_mixer(const sl_mixer_vtable *vt, sl_mixer *m, sl_params *p)
{
    const sl_mixer_dims dims = {.d_model = 64, .n_heads = 16, .n_layers = 4, .max_seq_len = 256,
                                .chunk_size = 64, .conv_size = 4, .causal = true,
                                .norm_eps = 1e-5, .init_std = 0.02};
    sl_opts opts;
    sl_params_init(p);
    strcpy(p->prefix, "blocks.0.mixer.");
    CHECK(sl_opts_defaults(&opts, vt->options) == SL_OK &&
              sl_mixer_create(m, vt, &dims, &opts, 0, p) == SL_OK && sl_params_finalize(p) == SL_OK,
          "%s: %s", vt->name, sl_errmsg());
    sl_rng r;
    sl_rng_seed(&r, 1337);
    sl_params_randomize(p, &r);
}

/* The mixers' A_log and dt_bias, through their vtables and a model-sized
 * draw: every head in range. */
static void check_mixer(const sl_mixer_vtable *vt, double a_lo, double a_hi)
{
    sl_mixer m = {0};
    sl_params p;
    drawn_mixer(vt, &m, &p);
    sl_param *alog = sl_params_find(&p, "blocks.0.mixer.A_log");
    sl_param *dtb = sl_params_find(&p, "blocks.0.mixer.dt_bias");
    CHECK(alog && dtb && alog->t.n == 16 && dtb->t.n == 16, "%s: A_log, dt_bias [H]", vt->name);
    if (alog && dtb) {
        CHECK(!alog->decay && !dtb->decay, "%s: no weight decay on A_log, dt_bias", vt->name);
        double amin = INFINITY, amax = 0;
        for (int h = 0; h < 16; h++) {
            double A = exp(alog->t.data[h]), dt = softplus(dtb->t.data[h]);
            CHECK(A > a_lo && A <= a_hi * (1 + 1e-6), "%s: A[%d] = %g", vt->name, h, A);
            CHECK(dt >= 1e-3 * (1 - 1e-5) && dt <= 0.1 * (1 + 1e-5), "%s: dt[%d] = %g", vt->name, h,
                  dt);
            amin = fmin(amin, A);
            amax = fmax(amax, A);
        }
        CHECK(amax - amin > 1, "%s: A spread over heads: [%g, %g]", vt->name, amin, amax);
    }
    free(m.impl);
    sl_params_free(&p);
}

/* mamba: A_log [E, N] is log(1..N) in every row, softplus(dt_bias) [E] in
 * [1e-3, 0.1), D [E] ones. */
static void check_mamba(void)
{
    sl_mixer m = {0};
    sl_params p;
    drawn_mixer(&sl_mixer_mamba, &m, &p);
    sl_param *alog = sl_params_find(&p, "blocks.0.mixer.A_log");
    sl_param *dtb = sl_params_find(&p, "blocks.0.mixer.dt_bias");
    sl_param *dsk = sl_params_find(&p, "blocks.0.mixer.D");
    const int E = 128, N = 16;
    CHECK(alog && dtb && dsk && alog->t.n == E * N && dtb->t.n == E && dsk->t.n == E,
          "mamba: A_log [E, N], dt_bias [E], D [E]");
    for (int i = 0; alog && i < E * N; i++)
        CHECK(alog->t.data[i] == logf((float)(i % N + 1)), "mamba: A_log[%d] = %g", i,
              alog->t.data[i]);
    for (int e = 0; dtb && dsk && e < E; e++) {
        const double dt = softplus(dtb->t.data[e]);
        CHECK(dt >= 1e-3 * (1 - 1e-5) && dt <= 0.1 * (1 + 1e-5) && dsk->t.data[e] == 1.0f,
              "mamba: dt[%d] = %g, D %g", e, dt, dsk->t.data[e]);
    }
    free(m.impl);
    sl_params_free(&p);
}

static void test_mixers_use_the_ssm_init(void)
{
    check_mamba();
    /* Mamba-2: A uniform in [1, 16]; Gated DeltaNet's reference: (0, 16]. */
    check_mixer(&sl_mixer_mamba2, 1.0 * (1 - 1e-6), 16.0);
    check_mixer(&sl_mixer_gated_deltanet, 0.0, 16.0);
}

/* LOG_UNIFORM: log(a) uniform over [log lo, log hi) (s4d's log_dt);
 * FIXED: the declared values, drawing nothing from the stream. */
static void test_log_uniform_and_fixed(void)
{
    const double lo = 1e-3, hi = 0.1;
    sl_params p;
    sl_tensor *t = ranged(&p, SL_INIT_LOG_UNIFORM, (float)lo, (float)hi, N_DRAWS, 5);
    static double u[N_DRAWS];
    for (int i = 0; i < N_DRAWS; i++) {
        CHECK(t->data[i] >= log(lo) - 1e-5 && t->data[i] <= log(hi) + 1e-5, "log a %g",
              t->data[i]);
        u[i] = (t->data[i] - log(lo)) / (log(hi) - log(lo));
    }
    check_deciles(u, N_DRAWS, 0.02, "log a");
    sl_params_free(&p);

    const float vals[3] = {0.5f, -2.0f, 7.0f};
    sl_params_init(&p);
    sl_tensor *f = sl_param_add_fixed(&p, "f", 1, (int64_t[]){3}, vals, false);
    sl_tensor *n = SL_PARAM(&p, "n", SL_INIT_NORMAL, 1.0f, false, 1);
    CHECK(sl_params_finalize(&p) == SL_OK, "finalize: %s", sl_errmsg());
    sl_rng r1, r2;
    sl_rng_seed(&r1, 9);
    sl_rng_seed(&r2, 9);
    sl_params_randomize(&p, &r1);
    CHECK(memcmp(f->data, vals, sizeof vals) == 0, "fixed values");
    CHECK(n->data[0] == sl_rng_normal(&r2), "FIXED takes no draws");
    sl_params_free(&p);
}

int main(void)
{
    RUN(test_dt_bias_log_uniform);
    RUN(test_a_log_uniform);
    RUN(test_deterministic_from_seed);
    RUN(test_log_uniform_and_fixed);
    RUN(test_bad_ranges_refused);
    RUN(test_ones_span);
    RUN(test_mixers_use_the_ssm_init);
    return TEST_SUMMARY();
}
