/* Short causal conv: against the naive loop, a sequence split into two calls
 * with the state carried (split points around K-1, the case where a chunk is
 * shorter than the state) equals one call, step() equals the forward, the
 * backward matches finite differences for every input, and a packed batch
 * of variable-length sequences equals each sequence run alone (outputs,
 * final states, every gradient), with its bounds checked. */
#include <string.h>

#include "abort_check.h"
#include "check.h"
#include "gradcheck.h"
#include "ops/shortconv.h"

static void fill(sl_rng *rng, float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) p[i] = sl_rng_normal(rng);
}

static void test_forward_matches_reference(void)
{
    static const int64_t Ks[] = {1, 2, 4, 5}, Ts[] = {1, 3, 17};
    const int64_t B = 2, C = 19; /* 19: scalar channel tails after the vectors */
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    for (int ki = 0; ki < 4; ki++)
        for (int ti = 0; ti < 3; ti++)
            for (int with = 0; with < 2; with++) {
                int64_t K = Ks[ki], T = Ts[ti];
                sl_ctx ctx;
                sl_ctx_init(&ctx, 1 << 20);
                ctx.grad_enabled = false;
                sl_tensor *x = SL_NEW(&ctx, B, T, C), *w = SL_NEW(&ctx, C, K);
                sl_tensor *bias = with ? SL_NEW(&ctx, C) : NULL;
                sl_tensor *s0 = with && K > 1 ? SL_NEW(&ctx, B, K - 1, C) : NULL;
                fill(&rng, x->data, x->n);
                fill(&rng, w->data, w->n);
                if (bias) fill(&rng, bias->data, C);
                if (s0) fill(&rng, s0->data, s0->n);
                float *st = malloc((size_t)(B * K * C) * sizeof(float));
                float *st_ref = malloc((size_t)(B * K * C) * sizeof(float));
                float *y_ref = malloc((size_t)x->n * sizeof(float));
                sl_tensor *y = sl_shortconv(&ctx, x, w, bias, s0, st, NULL);
                sl_shortconv_ref(x->data, w->data, bias ? bias->data : NULL, s0 ? s0->data : NULL,
                                 B, T, C, K, y_ref, st_ref, NULL);
                /* float32 sums of K products against double: ~1e-7 relative. */
                double r = close_ratio(y->data, y_ref, y->n, 1e-6, 1e-5);
                CHECK(r <= 1, "K %lld T %lld with %d: ratio %g", (long long)K, (long long)T, with, r);
                CHECK(!memcmp(st, st_ref, (size_t)(B * (K - 1) * C) * sizeof(float)),
                      "K %lld T %lld: final state", (long long)K, (long long)T);
                free(st);
                free(st_ref);
                free(y_ref);
                sl_ctx_free(&ctx);
            }
}

static void test_split_equals_whole(void)
{
    /* K = 4: splits 1 and 2 leave a first chunk shorter than the K-1 = 3
     * state rows, 3 exactly fills it, 4 overflows it. K = 5 adds 3 = K-2. */
    static const int64_t Ks[] = {4, 5};
    const int64_t B = 2, T = 11, C = 6;
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    for (int ki = 0; ki < 2; ki++) {
        int64_t K = Ks[ki];
        const int64_t splits[] = {1, 2, K - 2, K - 1, K};
        for (int si = 0; si < 5; si++) {
            int64_t T1 = splits[si], T2 = T - T1;
            sl_ctx ctx;
            sl_ctx_init(&ctx, 1 << 20);
            ctx.grad_enabled = false;
            sl_tensor *x = SL_NEW(&ctx, B, T, C), *w = SL_NEW(&ctx, C, K), *bias = SL_NEW(&ctx, C);
            sl_tensor *x1 = SL_NEW(&ctx, B, T1, C), *x2 = SL_NEW(&ctx, B, T2, C);
            sl_tensor *s0 = SL_NEW(&ctx, B, K - 1, C);
            fill(&rng, x->data, x->n);
            fill(&rng, w->data, w->n);
            fill(&rng, bias->data, C);
            fill(&rng, s0->data, s0->n);
            for (int64_t b = 0; b < B; b++) {
                memcpy(x1->data + b * T1 * C, x->data + b * T * C, (size_t)(T1 * C) * sizeof(float));
                memcpy(x2->data + b * T2 * C, x->data + (b * T + T1) * C, (size_t)(T2 * C) * sizeof(float));
            }
            float *st_whole = malloc((size_t)s0->n * sizeof(float));
            sl_tensor *yw = sl_shortconv(&ctx, x, w, bias, s0, st_whole, NULL);
            /* The split run updates s0 in place: s_final aliasing s0. */
            sl_tensor *y1 = sl_shortconv(&ctx, x1, w, bias, s0, s0->data, NULL);
            sl_tensor *y2 = sl_shortconv(&ctx, x2, w, bias, s0, s0->data, NULL);
            bool same = true;
            for (int64_t b = 0; b < B; b++) {
                same &= !memcmp(yw->data + b * T * C, y1->data + b * T1 * C, (size_t)(T1 * C) * sizeof(float));
                same &= !memcmp(yw->data + (b * T + T1) * C, y2->data + b * T2 * C,
                                (size_t)(T2 * C) * sizeof(float));
            }
            CHECK(same, "K %lld split %lld: outputs", (long long)K, (long long)T1);
            CHECK(!memcmp(st_whole, s0->data, (size_t)s0->n * sizeof(float)), "K %lld split %lld: state",
                  (long long)K, (long long)T1);
            free(st_whole);
            sl_ctx_free(&ctx);
        }
    }
}

static void test_step_matches_forward(void)
{
    const int64_t T = 9, C = 5, K = 4;
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *x = SL_NEW(&ctx, 1, T, C), *w = SL_NEW(&ctx, C, K), *bias = SL_NEW(&ctx, C);
    fill(&rng, x->data, x->n);
    fill(&rng, w->data, w->n);
    fill(&rng, bias->data, C);
    float fstate[3 * 5], state[3 * 5] = {0}, y[5];
    sl_tensor *yf = sl_shortconv(&ctx, x, w, bias, NULL, fstate, NULL);
    for (int64_t t = 0; t < T; t++) {
        sl_shortconv_step(state, x->data + t * C, w->data, bias->data, C, K, y);
        /* The same taps in the same order: bit for bit. */
        CHECK(!memcmp(y, yf->data + t * C, sizeof y), "t %lld", (long long)t);
    }
    CHECK(!memcmp(state, fstate, sizeof state), "final state");
    sl_ctx_free(&ctx);
}

static sl_tensor *conv_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_shortconv(ctx, in[0], in[1], in[2], in[3], NULL, NULL);
}

static void test_gradient_finite_differences(void)
{
    /* The op is bilinear in (x or state, w), so the central difference has no
     * truncation error; only float32 rounding of ~B*T*C outputs of O(1)
     * (~1e-6 in L) divided by 2h = 2e-2 remains: ~1e-4 absolute at worst. */
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    static const int64_t Ts[] = {2, 7};
    for (int ti = 0; ti < 2; ti++) {
        sl_tensor *in[4] = {GC_LEAF(&rng, 1.0f, 2, Ts[ti], 5), GC_LEAF(&rng, 1.0f, 5, 4),
                            GC_LEAF(&rng, 1.0f, 5), GC_LEAF(&rng, 1.0f, 2, 3, 5)};
        CHECK(gradcheck("shortconv", conv_fn, in, 4, NULL, 1e-2f, 2e-4, 1e-3, 200), "T %lld",
              (long long)Ts[ti]);
        for (int i = 0; i < 4; i++) gc_free(in[i]);
    }
}

/* One forward and backward, copied out: y, dx: [T, C], S (final), ds0:
 * [N, K-1, C], dw: [C, K], db: [C]. ds0 NULL without s0. */
typedef struct sc_run {
    float *y, *S, *dx, *ds0, *dw, *db;
} sc_run;

/* x, dy: [T, C], w: [C, K], bias: [C], s0: [N, K-1, C] or NULL, as a batch
 * [1, T, C] of N sequences (seqs, or N = 1 and seqs NULL) -> every output
 * and input gradient under upstream dy. */
static sc_run run_grads(const float *x, const float *w, const float *bias, const float *s0,
                        const float *dy, int64_t T, int64_t N, int64_t C, int64_t K,
                        const sl_seqs *seqs)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *tx = gc_ctx_leaf(&ctx, x, T, C), *tb = gc_ctx_leaf(&ctx, bias, 1, C), *tw = SL_NEW(&ctx, C, K);
    sl_tensor *ts0 = s0 ? gc_ctx_leaf(&ctx, s0, N, (K - 1) * C) : NULL;
    memcpy(tw->data, w, (size_t)(C * K) * sizeof(float));
    tw->requires_grad = true;
    sc_run r = {0};
    r.S = malloc((size_t)(N * (K - 1) * C + 1) * sizeof(float));
    sl_tensor *y = sl_shortconv(&ctx, tx, tw, tb, ts0, r.S, seqs);
    sl_backward_with(&ctx, y, dy);
    r.y = gc_dup(y->data, T * C);
    r.dx = gc_dup(tx->grad, T * C);
    r.ds0 = ts0 ? gc_dup(ts0->grad, ts0->n) : NULL;
    r.dw = gc_dup(tw->grad, C * K);
    r.db = gc_dup(tb->grad, C);
    sl_ctx_free(&ctx);
    return r;
}

static void free_run(sc_run *r)
{
    free(r->y);
    free(r->S);
    free(r->dx);
    free(r->ds0);
    free(r->dw);
    free(r->db);
}

static void test_packed_equals_one_by_one(void)
{
    /* K = 4: lengths 0 (first, inside, last), 1 and K-2 (shorter than the
     * state: the final state keeps part of the sequence's own initial
     * rows), K-1, K, K+1 and 2K+3. A sequence's taps read only its own
     * rows, the same products in the same order as alone, so y, dx, ds0 and
     * the final states agree to rounding (1e-6); dw and dbias are sums over
     * all sequences, packed in another order: 1e-5. */
    const int64_t K = 4, C = 19, SC = (K - 1) * C;
    const int64_t lens[] = {0, K + 1, 1, K - 2, 0, K - 1, K, 2 * K + 3, 0};
    const int64_t N = (int64_t)(sizeof lens / sizeof lens[0]);
    int64_t cu[sizeof lens / sizeof lens[0] + 1] = {0};
    for (int64_t i = 0; i < N; i++) cu[i + 1] = cu[i] + lens[i];
    const int64_t T = cu[N];
    sl_seqs seqs = {N, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    float *x = malloc((size_t)(T * C) * sizeof(float));
    float *dy = malloc((size_t)(T * C) * sizeof(float));
    float w[4 * 19], bias[19], *s0buf = malloc((size_t)(N * SC) * sizeof(float));
    fill(&rng, w, C * K);
    fill(&rng, bias, C);
    for (int with_s0 = 0; with_s0 < 2; with_s0++) {
        fill(&rng, x, T * C);
        fill(&rng, dy, T * C);
        fill(&rng, s0buf, N * SC);
        const float *s0 = with_s0 ? s0buf : NULL;
        sc_run p = run_grads(x, w, bias, s0, dy, T, N, C, K, &seqs);
        double worst = 0, dw_sum[4 * 19] = {0}, db_sum[19] = {0};
        bool empty_ok = true;
        for (int64_t i = 0; i < N; i++) {
            int64_t t0 = cu[i], len = lens[i];
            if (len == 0) {
                /* The state passes through; no output reads it. */
                for (int64_t j = 0; j < SC; j++) {
                    empty_ok &= p.S[i * SC + j] == (s0 ? s0[i * SC + j] : 0.0f);
                    empty_ok &= !p.ds0 || p.ds0[i * SC + j] == 0.0f;
                }
                continue;
            }
            sc_run a = run_grads(x + t0 * C, w, bias, s0 ? s0 + i * SC : NULL, dy + t0 * C, len,
                                 1, C, K, NULL);
            worst = fmax(worst, close_ratio(p.y + t0 * C, a.y, len * C, 1e-6, 1e-6));
            worst = fmax(worst, close_ratio(p.dx + t0 * C, a.dx, len * C, 1e-6, 1e-6));
            worst = fmax(worst, close_ratio(p.S + i * SC, a.S, SC, 1e-6, 1e-6));
            if (s0) worst = fmax(worst, close_ratio(p.ds0 + i * SC, a.ds0, SC, 1e-6, 1e-6));
            for (int64_t j = 0; j < C * K; j++) dw_sum[j] += a.dw[j];
            for (int64_t j = 0; j < C; j++) db_sum[j] += a.db[j];
            free_run(&a);
        }
        float dw_f[4 * 19], db_f[19];
        for (int64_t j = 0; j < C * K; j++) dw_f[j] = (float)dw_sum[j];
        for (int64_t j = 0; j < C; j++) db_f[j] = (float)db_sum[j];
        double rw = fmax(close_ratio(p.dw, dw_f, C * K, 1e-5, 1e-5),
                         close_ratio(p.db, db_f, C, 1e-5, 1e-5));
        CHECK(worst <= 1 && rw <= 1 && empty_ok,
              "s0 %d: packed vs alone ratio %g, dw/dbias ratio %g, empty rows %s", with_s0, worst,
              rw, empty_ok ? "ok" : "wrong");

        /* The oracle: packed equals its own one-by-one runs exactly (the
         * same double loop), and the packed op to float rounding. */
        float *y_ref = malloc((size_t)(T * C) * sizeof(float));
        float *y1 = malloc((size_t)(T * C) * sizeof(float));
        float *S_ref = malloc((size_t)(N * SC) * sizeof(float));
        float *S1 = malloc((size_t)(N * SC) * sizeof(float));
        sl_shortconv_ref(x, w, bias, s0, 1, T, C, K, y_ref, S_ref, &seqs);
        for (int64_t i = 0; i < N; i++)
            sl_shortconv_ref(x + cu[i] * C, w, bias, s0 ? s0 + i * SC : NULL, 1, lens[i], C, K,
                             y1 + cu[i] * C, S1 + i * SC, NULL);
        CHECK(!memcmp(y_ref, y1, (size_t)(T * C) * sizeof(float)) &&
                  !memcmp(S_ref, S1, (size_t)(N * SC) * sizeof(float)),
              "s0 %d: packed ref vs one by one", with_s0);
        double ry = close_ratio(p.y, y_ref, T * C, 1e-6, 1e-5);
        CHECK(ry <= 1 && !memcmp(p.S, S_ref, (size_t)(N * SC) * sizeof(float)),
              "s0 %d: packed vs ref: y ratio %g, final states", with_s0, ry);
        free(y_ref);
        free(y1);
        free(S_ref);
        free(S1);
        free_run(&p);
    }
    free(x);
    free(dy);
    free(s0buf);
}

/* sl_shortconv over x: [1, 6, 3], K = 3, with the bounds in arg. */
static void shortconv_with(void *arg)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *x = SL_NEW(&ctx, 1, 6, 3), *w = SL_NEW(&ctx, 3, 3);
    memset(x->data, 0, (size_t)x->n * sizeof(float));
    memset(w->data, 0, (size_t)w->n * sizeof(float));
    sl_shortconv(&ctx, x, w, NULL, NULL, NULL, arg);
    sl_ctx_free(&ctx);
}

static void test_bad_bounds_rejected(void)
{
    static const int64_t good[] = {0, 2, 2, 6}, falling[] = {0, 4, 2, 6}, past_end[] = {0, 3, 9};
    static const int64_t short_end[] = {0, 3, 5};
    const sl_seqs ok = {3, good}, bad[] = {{3, falling}, {2, past_end}, {2, short_end}};
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 16);
    sl_tensor *x = SL_NEW(&ctx, 1, 6, 3);
    for (int i = 0; i < 3; i++)
        CHECK(sl_seqs_check(&bad[i], x, "sl_shortconv") == SL_ERR_ARG, "bad bounds %d rejected", i);
    /* The op stops, as for a bad shape, rather than read past T; good
     * bounds run (here: this may start an OpenMP team, not for a child). */
    shortconv_with((void *)&ok);
    for (int i = 0; i < 3; i++)
        CHECK(aborts(shortconv_with, (void *)&bad[i]), "bad bounds %d stop the op", i);
    sl_ctx_free(&ctx);
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_split_equals_whole);
    RUN(test_step_matches_forward);
    RUN(test_gradient_finite_differences);
    RUN(test_packed_equals_one_by_one);
    RUN(test_bad_bounds_rejected);
    return TEST_SUMMARY();
}
