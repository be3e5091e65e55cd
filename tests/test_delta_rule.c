/* The fused delta rule: the chunked WY/UT forward against the step-by-step
 * recurrence (the oracle), a sequence split into two calls with the state
 * carried, step() against the forward, the chunked backward against finite
 * differences for every input (and adding to, not overwriting, gradients),
 * results independent of the thread count, and finite results at T = 65536
 * with beta near 1 and very negative decays. */
#include <omp.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/delta_rule.h"
#include "ops/fastmath.h"

/* Inputs of one case, in the op's layouts; g and S0 may be NULL. */
typedef struct dr_case {
    int64_t B, T, H, dk;
    float *q, *k, *v, *beta, *g, *S0;
} dr_case;

/* Unit-norm rows of dk floats, as the mixers' L2 norm gives. */
static void unit_rows(sl_rng *rng, float *x, int64_t n, int64_t dk)
{
    for (int64_t r = 0; r < n / dk; r++) {
        double ss = 0;
        for (int64_t j = 0; j < dk; j++) {
            x[r * dk + j] = sl_rng_normal(rng);
            ss += (double)x[r * dk + j] * x[r * dk + j];
        }
        for (int64_t j = 0; j < dk; j++) x[r * dk + j] = (float)(x[r * dk + j] / sqrt(ss));
    }
}

static dr_case make_case(sl_rng *rng, int64_t B, int64_t T, int64_t H, int64_t dk, bool gated,
                         bool with_s0)
{
    dr_case c = {B, T, H, dk, NULL, NULL, NULL, NULL, NULL, NULL};
    int64_t n = B * T * H * dk, nh = B * T * H;
    c.q = malloc((size_t)n * sizeof(float));
    c.k = malloc((size_t)n * sizeof(float));
    c.v = malloc((size_t)n * sizeof(float));
    c.beta = malloc((size_t)nh * sizeof(float));
    unit_rows(rng, c.q, n, dk);
    unit_rows(rng, c.k, n, dk);
    for (int64_t i = 0; i < n; i++) c.v[i] = sl_rng_normal(rng);
    for (int64_t i = 0; i < nh; i++) c.beta[i] = sl_sigmoidf(2.0f * sl_rng_normal(rng));
    if (gated) {
        c.g = malloc((size_t)nh * sizeof(float));
        for (int64_t i = 0; i < nh; i++) c.g[i] = -0.5f * sl_rng_uniform(rng);
    }
    if (with_s0) {
        c.S0 = malloc((size_t)(B * H * dk * dk) * sizeof(float));
        for (int64_t i = 0; i < B * H * dk * dk; i++) c.S0[i] = sl_rng_normal(rng);
    }
    return c;
}

static void free_case(dr_case *c)
{
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->beta);
    free(c->g);
    free(c->S0);
}

/* A tensor over caller data (no copy, no gradient). */
static sl_tensor *wrap(sl_ctx *ctx, float *data, int64_t d0, int64_t d1, int64_t d2)
{
    sl_tensor *t = SL_NEW(ctx, d0, d1, d2);
    t->data = data;
    return t;
}

/* Runs the chunked op on rows [t0, t0 + T) of c; S: state in and out
 * ([B, H, dk, dk], NULL: zeros in, nothing out). o: [B, T, H*dk]. */
static void run_chunked(const dr_case *c, int64_t t0, int64_t T, int64_t C, float *S, float *o)
{
    int64_t B = c->B, H = c->H, dk = c->dk, D = H * dk;
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *q = SL_NEW(&ctx, B, T, D), *k = SL_NEW(&ctx, B, T, D), *v = SL_NEW(&ctx, B, T, D);
    sl_tensor *beta = SL_NEW(&ctx, B, T, H), *g = c->g ? SL_NEW(&ctx, B, T, H) : NULL;
    for (int64_t b = 0; b < B; b++) {
        size_t row = (size_t)(T * D) * sizeof(float), hrow = (size_t)(T * H) * sizeof(float);
        int64_t src = b * c->T + t0;
        memcpy(q->data + b * T * D, c->q + src * D, row);
        memcpy(k->data + b * T * D, c->k + src * D, row);
        memcpy(v->data + b * T * D, c->v + src * D, row);
        memcpy(beta->data + b * T * H, c->beta + src * H, hrow);
        if (g) memcpy(g->data + b * T * H, c->g + src * H, hrow);
    }
    sl_tensor *S0 = S ? wrap(&ctx, S, B, H, dk * dk) : NULL;
    sl_tensor *out = sl_delta_rule(&ctx, q, k, v, beta, g, S0, H, C, S);
    memcpy(o, out->data, (size_t)out->n * sizeof(float));
    sl_ctx_free(&ctx);
}

static void test_chunked_matches_recurrence(void)
{
    const int64_t C = 16, B = 2, H = 2;
    const int64_t Ts[] = {1, C - 1, C, C + 1, 3 * C + 5}, dks[] = {8, 5};
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    for (int ti = 0; ti < 5; ti++)
        for (int di = 0; di < 2; di++)
            for (int gated = 0; gated < 2; gated++)
                for (int with_s0 = 0; with_s0 < 2; with_s0++) {
                    int64_t T = Ts[ti], dk = dks[di], n = B * T * H * dk, ns = B * H * dk * dk;
                    dr_case c = make_case(&rng, B, T, H, dk, gated, with_s0);
                    float *o = malloc((size_t)n * sizeof(float)), *o_ref = malloc((size_t)n * sizeof(float));
                    float *S = malloc((size_t)ns * sizeof(float)), *S_ref = malloc((size_t)ns * sizeof(float));
                    if (with_s0)
                        memcpy(S, c.S0, (size_t)ns * sizeof(float));
                    else
                        memset(S, 0, (size_t)ns * sizeof(float));
                    run_chunked(&c, 0, T, C, S, o);
                    sl_delta_rule_ref(c.q, c.k, c.v, c.beta, c.g, c.S0, B, T, H, dk, o_ref, S_ref);
                    /* fp32 against a double recurrence: outputs and state
                     * entries are O(1), each the sum of O(dk C) rounded
                     * products, so 1e-5 relative with a 1e-5 floor. */
                    double ro = close_ratio(o, o_ref, n, 1e-5, 1e-5);
                    double rs = close_ratio(S, S_ref, ns, 1e-5, 1e-5);
                    CHECK(ro <= 1 && rs <= 1, "T %lld dk %lld gated %d S0 %d: ratio out %g state %g",
                          (long long)T, (long long)dk, gated, with_s0, ro, rs);
                    free(o);
                    free(o_ref);
                    free(S);
                    free(S_ref);
                    free_case(&c);
                }
}

static void test_split_equals_whole(void)
{
    /* Splits inside a chunk, on a chunk edge, and leaving a first call of one
     * token: the state carried between calls must make the two agree. */
    const int64_t C = 8, B = 2, H = 2, dk = 4, T = 29, D = H * dk, ns = B * H * dk * dk;
    const int64_t splits[] = {1, 5, 8, 16, 28};
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    for (int gated = 0; gated < 2; gated++)
        for (int si = 0; si < 5; si++) {
            int64_t T1 = splits[si], T2 = T - T1;
            dr_case c = make_case(&rng, B, T, H, dk, gated, true);
            float *ow = malloc((size_t)(B * T * D) * sizeof(float));
            float *o1 = malloc((size_t)(B * T1 * D) * sizeof(float)), *o2 = malloc((size_t)(B * T2 * D) * sizeof(float));
            float *Sw = malloc((size_t)ns * sizeof(float)), *Ss = malloc((size_t)ns * sizeof(float));
            memcpy(Sw, c.S0, (size_t)ns * sizeof(float));
            memcpy(Ss, c.S0, (size_t)ns * sizeof(float));
            run_chunked(&c, 0, T, C, Sw, ow);
            run_chunked(&c, 0, T1, C, Ss, o1);
            run_chunked(&c, T1, T2, C, Ss, o2);
            double worst = 0;
            for (int64_t b = 0; b < B; b++) {
                double r1 = close_ratio(o1 + b * T1 * D, ow + b * T * D, T1 * D, 1e-5, 1e-5);
                double r2 = close_ratio(o2 + b * T2 * D, ow + (b * T + T1) * D, T2 * D, 1e-5, 1e-5);
                worst = fmax(worst, fmax(r1, r2));
            }
            double rs = close_ratio(Ss, Sw, ns, 1e-5, 1e-5);
            CHECK(worst <= 1 && rs <= 1, "gated %d split %lld: ratio out %g state %g", gated,
                  (long long)T1, worst, rs);
            free(ow);
            free(o1);
            free(o2);
            free(Sw);
            free(Ss);
            free_case(&c);
        }
}

static void test_step_matches_forward(void)
{
    const int64_t C = 8, H = 3, dk = 6, T = 21, D = H * dk;
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    for (int gated = 0; gated < 2; gated++) {
        dr_case c = make_case(&rng, 1, T, H, dk, gated, true);
        float *o = malloc((size_t)(T * D) * sizeof(float)), *Sf = malloc((size_t)(H * dk * dk) * sizeof(float));
        float *S = malloc((size_t)(H * dk * dk) * sizeof(float)), y[3 * 6], scratch[6];
        memcpy(Sf, c.S0, (size_t)(H * dk * dk) * sizeof(float));
        memcpy(S, c.S0, (size_t)(H * dk * dk) * sizeof(float));
        run_chunked(&c, 0, T, C, Sf, o);
        double worst = 0;
        for (int64_t t = 0; t < T; t++) {
            sl_delta_rule_step(c.q + t * D, c.k + t * D, c.v + t * D, c.beta + t * H,
                               c.g ? c.g + t * H : NULL, H, dk, S, y, scratch);
            worst = fmax(worst, close_ratio(y, o + t * D, D, 1e-5, 1e-5));
        }
        double rs = close_ratio(S, Sf, H * dk * dk, 1e-5, 1e-5);
        CHECK(worst <= 1 && rs <= 1, "gated %d: ratio out %g state %g", gated, worst, rs);
        free(o);
        free(Sf);
        free(S);
        free_case(&c);
    }
}

typedef struct {
    int64_t H, C;
    bool gated;
} dr_arg;

/* in: q, k, v, beta, S0, then g when gated (gradcheck wants no NULL slots). */
static sl_tensor *dr_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const dr_arg *a = arg;
    return sl_delta_rule(ctx, in[0], in[1], in[2], in[3], a->gated ? in[5] : NULL, in[4], a->H,
                         a->C, NULL);
}

static void test_gradient_finite_differences(void)
{
    /* T = 7 at C = 3: two full chunks and a ragged one, so the backward's
     * chunk-by-chunk recomputation and its state hand-over are both probed.
     * The op is a polynomial of low degree in q, k, v, beta, S0 and smooth in
     * g; at h = 1e-2 the truncation term (h^2 times third derivatives of
     * O(1)) is ~1e-4, and float rounding of the ~40 O(1) outputs adds
     * ~1e-6 / 2h ~ 5e-5. atol 5e-4 with rtol 5e-3 leaves a 2-4x margin, and a
     * dropped term of the adjoint (all of order 0.1 .. 1) still fails. */
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const int64_t B = 2, T = 7, H = 2, dk = 3, D = H * dk;
    for (int gated = 0; gated < 2; gated++) {
        dr_arg a = {H, 3, gated};
        sl_tensor *in[6] = {GC_LEAF(&rng, 0.6f, B, T, D), GC_LEAF(&rng, 0.6f, B, T, D),
                            GC_LEAF(&rng, 1.0f, B, T, D), GC_LEAF(&rng, 1.0f, B, T, H),
                            GC_LEAF(&rng, 0.5f, B, H, dk, dk), GC_LEAF(&rng, 1.0f, B, T, H)};
        /* beta in (0.2, 0.8) and g in (-0.8, -0.1), away from the ends
         * that the +-h probes must not cross. */
        for (int64_t i = 0; i < in[3]->n; i++) in[3]->data[i] = 0.2f + 0.6f * sl_rng_uniform(&rng);
        for (int64_t i = 0; i < in[5]->n; i++) in[5]->data[i] = -0.1f - 0.7f * sl_rng_uniform(&rng);
        CHECK(gradcheck(gated ? "delta rule gated" : "delta rule", dr_fn, in, 5 + gated, &a, 1e-2f,
                        5e-4, 5e-3, 200),
              "gated %d", gated);
        for (int i = 0; i < 6; i++) gc_free(in[i]);
    }
}

static void test_extreme_inputs_stay_finite(void)
{
    /* T = 65536 at H = 1, dk = 4: beta -> 1 makes each token overwrite its
     * key's slot entirely, g = -80 decays to e^-80 per token (a chunk's
     * cumulative decay reaches -5000: only differences are exponentiated),
     * and large v checks nothing grows without bound. Forward and backward. */
    const int64_t T = 65536, H = 1, dk = 4, C = 64;
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    for (int gated = 0; gated < 2; gated++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *q = GC_LEAF(&rng, 1.0f, 1, T, dk), *k = GC_LEAF(&rng, 1.0f, 1, T, dk);
        sl_tensor *v = GC_LEAF(&rng, 100.0f, 1, T, dk), *beta = GC_LEAF(&rng, 1.0f, 1, T, H);
        sl_tensor *g = gated ? GC_LEAF(&rng, 1.0f, 1, T, H) : NULL;
        unit_rows(&rng, q->data, q->n, dk);
        unit_rows(&rng, k->data, k->n, dk);
        for (int64_t t = 0; t < T; t++) {
            beta->data[t] = 0.99999f;
            if (g) g->data[t] = t % 2 ? -80.0f : -1e-4f;
        }
        sl_tensor *o = sl_delta_rule(&ctx, q, k, v, beta, g, NULL, H, C, NULL);
        float *dout = malloc((size_t)o->n * sizeof(float));
        for (int64_t i = 0; i < o->n; i++) dout[i] = sl_rng_normal(&rng);
        sl_backward_with(&ctx, o, dout);
        bool finite = true;
        for (int64_t i = 0; i < o->n; i++)
            finite &= isfinite(o->data[i]) && isfinite(q->grad[i]) && isfinite(k->grad[i]) &&
                      isfinite(v->grad[i]);
        for (int64_t t = 0; t < T; t++) finite &= isfinite(beta->grad[t]) && (!g || isfinite(g->grad[t]));
        CHECK(finite, "gated %d: finite outputs and gradients", gated);
        free(dout);
        gc_free(q);
        gc_free(k);
        gc_free(v);
        gc_free(beta);
        if (g) gc_free(g);
        sl_ctx_free(&ctx);
    }
}

static void test_backward_accumulates(void)
{
    /* Inputs may feed other ops too, so the backward must add to their
     * gradients: a second pass over gradients preset to 1 gives first + 1. */
    const int64_t B = 1, T = 9, H = 2, dk = 3, D = H * dk;
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    sl_tensor *in[6] = {GC_LEAF(&rng, 0.5f, B, T, D), GC_LEAF(&rng, 0.5f, B, T, D),
                        GC_LEAF(&rng, 1.0f, B, T, D), GC_LEAF(&rng, 1.0f, B, T, H),
                        GC_LEAF(&rng, 0.5f, B, H, dk, dk), GC_LEAF(&rng, 1.0f, B, T, H)};
    for (int64_t i = 0; i < in[3]->n; i++) {
        in[3]->data[i] = 0.5f;
        in[5]->data[i] = -0.3f;
    }
    float *dout = malloc((size_t)(B * T * D) * sizeof(float)), *first[6];
    for (int64_t i = 0; i < B * T * D; i++) dout[i] = sl_rng_normal(&rng);
    for (int pass = 0; pass < 2; pass++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        for (int i = 0; i < 6; i++)
            for (int64_t j = 0; j < in[i]->n; j++) in[i]->grad[j] = pass ? 1.0f : 0.0f;
        sl_tensor *o = sl_delta_rule(&ctx, in[0], in[1], in[2], in[3], in[5], in[4], H, 4, NULL);
        sl_backward_with(&ctx, o, dout);
        for (int i = 0; i < 6; i++) {
            if (!pass) {
                first[i] = malloc((size_t)in[i]->n * sizeof(float));
                memcpy(first[i], in[i]->grad, (size_t)in[i]->n * sizeof(float));
                continue;
            }
            for (int64_t j = 0; j < in[i]->n; j++)
                CHECK_CLOSE(in[i]->grad[j], first[i][j] + 1.0f, 1e-6, 1e-6, "accumulated");
        }
        sl_ctx_free(&ctx);
    }
    for (int i = 0; i < 6; i++) {
        free(first[i]);
        gc_free(in[i]);
    }
    free(dout);
}

static void test_threads_do_not_change_results(void)
{
    /* Each (b, h) is one thread's work in a fixed order: bit-identical. */
    const int64_t B = 2, T = 37, H = 3, dk = 4, D = H * dk;
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    sl_tensor *in[6] = {GC_LEAF(&rng, 0.5f, B, T, D), GC_LEAF(&rng, 0.5f, B, T, D),
                        GC_LEAF(&rng, 1.0f, B, T, D), GC_LEAF(&rng, 1.0f, B, T, H),
                        GC_LEAF(&rng, 0.5f, B, H, dk, dk), GC_LEAF(&rng, 1.0f, B, T, H)};
    for (int64_t i = 0; i < in[3]->n; i++) {
        in[3]->data[i] = 0.5f;
        in[5]->data[i] = -0.2f;
    }
    float *dout = malloc((size_t)(B * T * D) * sizeof(float)), *ref[7];
    for (int64_t i = 0; i < B * T * D; i++) dout[i] = sl_rng_normal(&rng);
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        for (int i = 0; i < 6; i++) memset(in[i]->grad, 0, (size_t)in[i]->n * sizeof(float));
        sl_tensor *o = sl_delta_rule(&ctx, in[0], in[1], in[2], in[3], in[5], in[4], H, 8, NULL);
        sl_backward_with(&ctx, o, dout);
        const float *got[7] = {o->data, in[0]->grad, in[1]->grad, in[2]->grad,
                               in[3]->grad, in[4]->grad, in[5]->grad};
        const int64_t n[7] = {o->n, in[0]->n, in[1]->n, in[2]->n, in[3]->n, in[4]->n, in[5]->n};
        for (int j = 0; j < 7; j++) {
            if (threads == 1) {
                ref[j] = malloc((size_t)n[j] * sizeof(float));
                memcpy(ref[j], got[j], (size_t)n[j] * sizeof(float));
            } else {
                CHECK(!memcmp(ref[j], got[j], (size_t)n[j] * sizeof(float)), "%d threads: array %d",
                      threads, j);
            }
        }
        sl_ctx_free(&ctx);
    }
    omp_set_num_threads(saved);
    for (int j = 0; j < 7; j++) free(ref[j]);
    for (int i = 0; i < 6; i++) gc_free(in[i]);
    free(dout);
}

int main(void)
{
    RUN(test_chunked_matches_recurrence);
    RUN(test_split_equals_whole);
    RUN(test_step_matches_forward);
    RUN(test_gradient_finite_differences);
    RUN(test_backward_accumulates);
    RUN(test_threads_do_not_change_results);
    RUN(test_extreme_inputs_stay_finite);
    return TEST_SUMMARY();
}
