/* The fused delta rule: the chunked WY/UT forward against the step-by-step
 * recurrence (the oracle), a sequence split into two calls with the state
 * carried, step() against the forward, the chunked backward against finite
 * differences for every input (and adding to, not overwriting, gradients),
 * results independent of the thread count, finite results at T = 65536
 * with beta near 1 and very negative decays, and a packed batch of
 * variable-length sequences equal to each sequence run alone (forward,
 * final states, every gradient), with its bounds checked. */
#include <omp.h>
#include <string.h>

#include "abort_check.h"
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
    sl_tensor *out = sl_delta_rule(&ctx, q, k, v, beta, g, S0, H, C, S, NULL);
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
                    sl_delta_rule_ref(c.q, c.k, c.v, c.beta, c.g, c.S0, B, T, H, dk, o_ref, S_ref,
                                      NULL);
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
            sl_delta_rule_step(S, c.q + t * D, c.k + t * D, c.v + t * D, c.beta + t * H,
                               c.g ? c.g + t * H : NULL, H, dk, y, scratch);
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
                         a->C, NULL, NULL);
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
        sl_tensor *o = sl_delta_rule(&ctx, q, k, v, beta, g, NULL, H, C, NULL, NULL);
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
        sl_tensor *o =
            sl_delta_rule(&ctx, in[0], in[1], in[2], in[3], in[5], in[4], H, 4, NULL, NULL);
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
        sl_tensor *o =
            sl_delta_rule(&ctx, in[0], in[1], in[2], in[3], in[5], in[4], H, 8, NULL, NULL);
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

/* One forward and backward, copied out: o, dq, dk, dv: [T, H*dk], dbeta,
 * dg: [T, H], S (final), dS0: [N, H, dk, dk]. dg, dS0 NULL without g, S0. */
typedef struct dr_run {
    float *o, *S, *dq, *dk, *dv, *dbeta, *dg, *dS0;
} dr_run;

/* q, k, v, dout: [T, H*dk], beta, g: [T, H] (g may be NULL), S0: [N, H, dk,
 * dk] or NULL, as a batch [1, T, ...] of N sequences (seqs, or N = 1 and
 * seqs NULL) -> every output and input gradient under upstream dout. */
static dr_run run_grads(const float *q, const float *k, const float *v, const float *beta,
                        const float *g, const float *S0, const float *dout, int64_t T, int64_t N,
                        int64_t H, int64_t dk, int64_t C, const sl_seqs *seqs)
{
    int64_t D = H * dk, ns = N * H * dk * dk;
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *tq = gc_ctx_leaf(&ctx, q, T, D), *tk = gc_ctx_leaf(&ctx, k, T, D);
    sl_tensor *tv = gc_ctx_leaf(&ctx, v, T, D);
    sl_tensor *tb = gc_ctx_leaf(&ctx, beta, T, H), *tg = g ? gc_ctx_leaf(&ctx, g, T, H) : NULL;
    sl_tensor *tS0 = S0 ? gc_ctx_leaf(&ctx, S0, N, H * dk * dk) : NULL;
    dr_run r = {0};
    r.S = malloc((size_t)ns * sizeof(float));
    sl_tensor *o = sl_delta_rule(&ctx, tq, tk, tv, tb, tg, tS0, H, C, r.S, seqs);
    sl_backward_with(&ctx, o, dout);
    r.o = gc_dup(o->data, T * D);
    r.dq = gc_dup(tq->grad, T * D);
    r.dk = gc_dup(tk->grad, T * D);
    r.dv = gc_dup(tv->grad, T * D);
    r.dbeta = gc_dup(tb->grad, T * H);
    r.dg = tg ? gc_dup(tg->grad, T * H) : NULL;
    r.dS0 = tS0 ? gc_dup(tS0->grad, ns) : NULL;
    sl_ctx_free(&ctx);
    return r;
}

static void free_run(dr_run *r)
{
    float *all[8] = {r->o, r->S, r->dq, r->dk, r->dv, r->dbeta, r->dg, r->dS0};
    for (int i = 0; i < 8; i++) free(all[i]);
}

static void test_packed_equals_one_by_one(void)
{
    /* Lengths around the chunk C = 4: empty (first, inside, last), 1, C-1,
     * C, C+1 and 2C+3, so a sequence's last chunk is short, full, or its
     * only one, and an empty sequence sits between two others. Each
     * sequence is chunked from its own start, so the packed run does the
     * same arithmetic as the lone one: 1e-6 is rounding slack only, far
     * below what one token leaking across a bound would change. */
    const int64_t C = 4, H = 2, dk = 3, D = H * dk, SS = H * dk * dk;
    const int64_t lens[] = {0, C + 1, 1, 0, C - 1, C, 2 * C + 3, 0};
    const int64_t N = (int64_t)(sizeof lens / sizeof lens[0]);
    int64_t cu[sizeof lens / sizeof lens[0] + 1] = {0};
    for (int64_t i = 0; i < N; i++) cu[i + 1] = cu[i] + lens[i];
    const int64_t T = cu[N];
    sl_seqs seqs = {N, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 8);
    for (int gated = 0; gated < 2; gated++)
        for (int with_s0 = 0; with_s0 < 2; with_s0++) {
            dr_case c = make_case(&rng, 1, T, H, dk, gated, false);
            float *S0 = NULL, *dout = malloc((size_t)(T * D) * sizeof(float));
            for (int64_t i = 0; i < T * D; i++) dout[i] = sl_rng_normal(&rng);
            if (with_s0) {
                S0 = malloc((size_t)(N * SS) * sizeof(float));
                for (int64_t i = 0; i < N * SS; i++) S0[i] = sl_rng_normal(&rng);
            }
            dr_run p = run_grads(c.q, c.k, c.v, c.beta, c.g, S0, dout, T, N, H, dk, C, &seqs);
            double worst = 0;
            bool empty_ok = true;
            for (int64_t i = 0; i < N; i++) {
                int64_t t0 = cu[i], len = lens[i];
                if (len == 0) {
                    /* Nothing to run alone: the state passes through, and
                     * the final state carries no gradient back to S0. */
                    for (int64_t j = 0; j < SS; j++) {
                        empty_ok &= p.S[i * SS + j] == (S0 ? S0[i * SS + j] : 0.0f);
                        empty_ok &= !p.dS0 || p.dS0[i * SS + j] == 0.0f;
                    }
                    continue;
                }
                dr_run a = run_grads(c.q + t0 * D, c.k + t0 * D, c.v + t0 * D, c.beta + t0 * H,
                                     c.g ? c.g + t0 * H : NULL, S0 ? S0 + i * SS : NULL,
                                     dout + t0 * D, len, 1, H, dk, C, NULL);
                const float *got[8] = {p.o + t0 * D,  p.S + i * SS,
                                       p.dq + t0 * D, p.dk + t0 * D,
                                       p.dv + t0 * D, p.dbeta + t0 * H,
                                       p.dg ? p.dg + t0 * H : NULL,
                                       p.dS0 ? p.dS0 + i * SS : NULL};
                const float *want[8] = {a.o, a.S, a.dq, a.dk, a.dv, a.dbeta, a.dg, a.dS0};
                const int64_t n[8] = {len * D, SS, len * D, len * D, len * D, len * H, len * H, SS};
                for (int j = 0; j < 8; j++)
                    if (want[j])
                        worst = fmax(worst, close_ratio(got[j], want[j], n[j], 1e-6, 1e-6));
                free_run(&a);
            }
            CHECK(worst <= 1 && empty_ok, "gated %d S0 %d: packed vs alone ratio %g, empty rows %s",
                  gated, with_s0, worst, empty_ok ? "ok" : "wrong");

            /* The oracle: packed equals its own one-by-one runs exactly
             * (the same double loop), and the chunked packed run to 1e-5. */
            float *o_ref = malloc((size_t)(T * D) * sizeof(float));
            float *S_ref = malloc((size_t)(N * SS) * sizeof(float));
            float *o1 = malloc((size_t)(T * D) * sizeof(float));
            float *S1 = malloc((size_t)(N * SS) * sizeof(float));
            sl_delta_rule_ref(c.q, c.k, c.v, c.beta, c.g, S0, 1, T, H, dk, o_ref, S_ref, &seqs);
            for (int64_t i = 0; i < N; i++) {
                int64_t t0 = cu[i];
                sl_delta_rule_ref(c.q + t0 * D, c.k + t0 * D, c.v + t0 * D, c.beta + t0 * H,
                                  c.g ? c.g + t0 * H : NULL, S0 ? S0 + i * SS : NULL, 1, lens[i],
                                  H, dk, o1 + t0 * D, S1 + i * SS, NULL);
            }
            CHECK(!memcmp(o_ref, o1, (size_t)(T * D) * sizeof(float)) &&
                      !memcmp(S_ref, S1, (size_t)(N * SS) * sizeof(float)),
                  "gated %d S0 %d: packed ref vs one by one", gated, with_s0);
            double ro = close_ratio(p.o, o_ref, T * D, 1e-5, 1e-5);
            double rs = close_ratio(p.S, S_ref, N * SS, 1e-5, 1e-5);
            CHECK(ro <= 1 && rs <= 1, "gated %d S0 %d: packed vs ref: out %g state %g", gated,
                  with_s0, ro, rs);

            /* The (sequence, head) pairs of unequal length may go to any
             * thread: the result must not change, bit for bit. */
            int saved = omp_get_max_threads();
            omp_set_num_threads(3);
            dr_run p3 = run_grads(c.q, c.k, c.v, c.beta, c.g, S0, dout, T, N, H, dk, C, &seqs);
            omp_set_num_threads(1);
            dr_run p1 = run_grads(c.q, c.k, c.v, c.beta, c.g, S0, dout, T, N, H, dk, C, &seqs);
            omp_set_num_threads(saved);
            const float *r1[8] = {p1.o, p1.S, p1.dq, p1.dk, p1.dv, p1.dbeta, p1.dg, p1.dS0};
            const float *r3[8] = {p3.o, p3.S, p3.dq, p3.dk, p3.dv, p3.dbeta, p3.dg, p3.dS0};
            const int64_t n[8] = {T * D, N * SS, T * D, T * D, T * D, T * H, T * H, N * SS};
            bool same = true;
            for (int j = 0; j < 8; j++)
                if (r1[j]) same &= !memcmp(r1[j], r3[j], (size_t)n[j] * sizeof(float));
            CHECK(same, "gated %d S0 %d: 1 vs 3 threads", gated, with_s0);

            free_run(&p);
            free_run(&p1);
            free_run(&p3);
            free(o_ref);
            free(S_ref);
            free(o1);
            free(S1);
            free(S0);
            free(dout);
            free_case(&c);
        }
}

/* sl_delta_rule over q: [1, 6, 4] (H = 1) with the bounds in arg. */
static void delta_rule_with(void *arg)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *q = SL_NEW(&ctx, 1, 6, 4), *beta = SL_NEW(&ctx, 1, 6, 1);
    memset(q->data, 0, (size_t)q->n * sizeof(float));
    memset(beta->data, 0, (size_t)beta->n * sizeof(float));
    sl_delta_rule(&ctx, q, q, q, beta, NULL, NULL, 1, 4, NULL, arg);
    sl_ctx_free(&ctx);
}

static void test_bad_bounds_rejected(void)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *x = SL_NEW(&ctx, 1, 6, 4), *x2 = SL_NEW(&ctx, 2, 3, 4);
    static const int64_t good[] = {0, 2, 2, 6}, short_end[] = {0, 3, 5}, late_start[] = {1, 3, 6};
    static const int64_t falling[] = {0, 4, 2, 6}, past_end[] = {0, 3, 9}, lone[] = {0};
    const sl_seqs ok = {3, good};
    const sl_seqs bad[] = {{2, short_end}, {2, late_start}, {3, falling}, {2, past_end},
                           {0, lone},      {1, NULL}};
    CHECK(sl_seqs_check(NULL, x, "t") == SL_OK && sl_seqs_check(&ok, x, "t") == SL_OK,
          "valid bounds, or none, pass");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(sl_seqs_check(&bad[i], x, "packed test") == SL_ERR_ARG &&
                  strstr(sl_errmsg(), "packed test"),
              "bad bounds %zu rejected with a message naming the caller", i);
    CHECK(sl_seqs_check(&ok, x2, "t") == SL_ERR_ARG, "a packed batch must be one row");
    /* The op takes bounds from its caller and stops, as for a bad shape,
     * rather than read past T; good bounds run (here, not in a child: the
     * run starts an OpenMP team). */
    delta_rule_with((void *)&ok);
    CHECK(aborts(delta_rule_with, (void *)&bad[2]), "decreasing bounds stop the op");
    CHECK(aborts(delta_rule_with, (void *)&bad[3]), "bounds past T stop the op");
    sl_ctx_free(&ctx);
}

/* q, k, v as column blocks of one packed [B, T, 3D] tensor, read in place
 * (sl_delta_rule_in): the same output and the same gradients, landing in
 * the blocks' columns, as three tensors of their own; and the kernel pair
 * called on pointers with a descriptor, no tape, gives the same output,
 * which matches the oracle. */
static void test_blocks_in_place_and_kernel_without_tape(void)
{
    const int64_t B = 2, T = 21, H = 2, dk = 8, C = 8, D = H * dk;
    sl_rng rng;
    sl_rng_seed(&rng, 11);
    dr_case c = make_case(&rng, B, T, H, dk, true, false);
    float *dout = malloc((size_t)(B * T * D) * sizeof(float));
    for (int64_t i = 0; i < B * T * D; i++) dout[i] = sl_rng_normal(&rng);
    /* Two contexts: each backward walks its own tape. */
    sl_ctx ctx, ctx2;
    sl_ctx_init(&ctx, 1 << 20);
    sl_ctx_init(&ctx2, 1 << 20);
    sl_tensor *qkv = SL_NEW(&ctx, B, T, 3 * D), *sep[3];
    const float *src[3] = {c.q, c.k, c.v};
    for (int j = 0; j < 3; j++) {
        sep[j] = SL_NEW(&ctx2, B, T, D);
        memcpy(sep[j]->data, src[j], (size_t)(B * T * D) * sizeof(float));
        sep[j]->requires_grad = true;
        for (int64_t t = 0; t < B * T; t++)
            memcpy(qkv->data + t * 3 * D + j * D, src[j] + t * D, (size_t)D * sizeof(float));
    }
    qkv->requires_grad = true;
    sl_tensor *beta = wrap(&ctx, c.beta, B, T, H), *g = wrap(&ctx, c.g, B, T, H);
    const sl_rec_in in = {.q = qkv, .k = qkv, .v = qkv, .k_off = D, .v_off = 2 * D, .dk = dk,
                          .dv = dk};
    sl_tensor *o_in = sl_delta_rule_in(&ctx, &in, beta, g, NULL, H, C, NULL, NULL);
    sl_backward_with(&ctx, o_in, dout);
    sl_tensor *o_sep =
        sl_delta_rule(&ctx2, sep[0], sep[1], sep[2], beta, g, NULL, H, C, NULL, NULL);
    sl_backward_with(&ctx2, o_sep, dout);
    bool same = memcmp(o_in->data, o_sep->data, (size_t)o_in->n * sizeof(float)) == 0;
    for (int j = 0; j < 3; j++)
        for (int64_t t = 0; t < B * T; t++)
            same &= memcmp(qkv->grad + t * 3 * D + j * D, sep[j]->grad + t * D,
                           (size_t)D * sizeof(float)) == 0;
    CHECK(same, "in-place blocks: output and gradients equal to separate tensors");

    const sl_delta_rule_desc d = {B,
                                  T,
                                  H,
                                  dk,
                                  C,
                                  {D, D, D, 0, 0, 0, SL_REC_PLAIN, 1.0f, 1.0f},
                                  sl_chunk_rows_keep(&ctx, NULL, B, T, C), NULL};
    float *o = malloc((size_t)(B * T * D) * sizeof(float));
    float *o_ref = malloc((size_t)(B * T * D) * sizeof(float));
    float *scratch = malloc((size_t)sl_delta_rule_scratch_floats(&d, false) * sizeof(float));
    sl_delta_rule_fwd(&d, c.q, c.k, c.v, c.beta, c.g, NULL, o, NULL, NULL, scratch);
    sl_delta_rule_ref(c.q, c.k, c.v, c.beta, c.g, NULL, B, T, H, dk, o_ref, NULL, NULL);
    CHECK(memcmp(o, o_sep->data, (size_t)(B * T * D) * sizeof(float)) == 0,
          "kernel without the tape: the op's output");
    double r = close_ratio(o, o_ref, B * T * D, 1e-5, 1e-5);
    CHECK(r <= 1, "kernel without the tape against the oracle: ratio %g", r);
    free(o);
    free(o_ref);
    free(scratch);
    free(dout);
    sl_ctx_free(&ctx);
    sl_ctx_free(&ctx2);
    free_case(&c);
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
    RUN(test_packed_equals_one_by_one);
    RUN(test_bad_bounds_rejected);
    RUN(test_blocks_in_place_and_kernel_without_tape);
    return TEST_SUMMARY();
}
