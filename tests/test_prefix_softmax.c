/* The prefix softmax: the op against the naive double reference (T = 1,
 * odd T, block edges, packed batches with empty, one-token and multi-block
 * sequences, with and without s0, s0 empty), the one-token step against the
 * reference, gradients of s, v and s0 by finite differences, the final
 * state's gradient (ds_final) by finite differences of the double
 * reference, results independent of the thread count, and T = 65536 with
 * scores of scale 100 finite and equal to a double running loop. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/prefix_softmax.h"

static void fill(sl_rng *rng, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * sl_rng_normal(rng);
}

/* n states of H heads: m ~ N(0, 1), u in [0.5, 1.5), w ~ N(0, 1). */
static void fill_state(sl_rng *rng, float *st, int64_t n, int64_t H, int64_t P)
{
    for (int64_t i = 0; i < n * H; i++) {
        float *z = st + i * (P + 2);
        z[0] = sl_rng_normal(rng);
        z[1] = 0.5f + sl_rng_uniform(rng);
        fill(rng, z + 2, P, 1.0f);
    }
}

/* Packed: empty first, one token, 69 (two blocks), empty, 70. */
static const int64_t CU[] = {0, 0, 1, 70, 70, 140};
static const sl_seqs PACKED = {5, CU};

/* s0: 0 none, 1 drawn, 2 the empty state. */
static void check_case(int64_t B, int64_t T, int64_t H, int64_t P, const sl_seqs *seqs, int s0k,
                       float scale)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + H + P));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    const int64_t N = sl_seq_count(seqs, B), W = N * H * (P + 2);
    sl_tensor *s = SL_NEW(&ctx, B, T, H), *v = SL_NEW(&ctx, B, T, H * P);
    sl_tensor *s0 = s0k ? SL_NEW(&ctx, N, H * (P + 2)) : NULL;
    fill(&rng, s->data, s->n, scale);
    fill(&rng, v->data, v->n, 1.0f);
    if (s0k == 1) fill_state(&rng, s0->data, N, H, P);
    for (int64_t n = 0; s0k == 2 && n < N; n++)
        sl_prefix_softmax_empty(s0->data + n * H * (P + 2), H, P);
    float *sf = malloc((size_t)W * sizeof(float));
    double *oref = malloc((size_t)(v->n + 1) * sizeof(double));
    double *sref = malloc((size_t)W * sizeof(double));
    sl_tensor *o = sl_prefix_softmax(&ctx, s, v, s0, sf, seqs);
    const sl_prefix_softmax_desc d = {B, T, H, P, seqs, NULL};
    sl_prefix_softmax_ref(&d, s->data, v->data, s0 ? s0->data : NULL, oref, sref);
    for (int64_t i = 0; i < o->n; i++) CHECK_CLOSE(o->data[i], oref[i], 1e-5, 1e-5, "o");
    /* Compared as the state they stand for: (m, u, w) ~ (m', u e^(m - m'),
     * w e^(m - m')); with the same running max, entry by entry. */
    for (int64_t i = 0; i < W; i++) CHECK_CLOSE(sf[i], sref[i], 1e-5, 1e-5, "s_final");
    free(sf);
    free(oref);
    free(sref);
    sl_ctx_free(&ctx);
}

static void test_forward_matches_reference(void)
{
    for (int k = 0; k <= 2; k++) {
        check_case(2, 1, 1, 3, NULL, k, 1.0f);
        check_case(2, 7, 2, 5, NULL, k, 1.0f);
        check_case(1, 150, 3, 8, NULL, k, 3.0f); /* two blocks and a ragged one */
        check_case(3, 128, 2, 4, NULL, k, 1.0f); /* exactly two blocks */
        check_case(1, 140, 2, 3, &PACKED, k, 1.0f);
    }
}

/* Steps against the reference, and inside one block (where the forward
 * runs the same per-token update from s0) against the forward bit for
 * bit. */
static void test_step_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    enum { T = 6, H = 2, P = 5, W = H * (P + 2) };
    float s[T * H], v[T * H * P], s0[W], st[W], o[H * P], of[T * H * P];
    double oref[T * H * P];
    fill(&rng, s, T * H, 2.0f);
    fill(&rng, v, T * H * P, 1.0f);
    fill_state(&rng, s0, 1, H, P);
    const sl_prefix_softmax_desc d = {1, T, H, P, NULL, NULL};
    sl_prefix_softmax_ref(&d, s, v, s0, oref, NULL);
    sl_prefix_softmax_fwd(&d, s, v, s0, of, NULL, NULL);
    memcpy(st, s0, sizeof st);
    for (int t = 0; t < T; t++) {
        sl_prefix_softmax_step(st, s + t * H, v + t * H * P, o, H, P);
        for (int j = 0; j < H * P; j++) CHECK_CLOSE(o[j], oref[t * H * P + j], 1e-6, 1e-5, "step");
        CHECK(!memcmp(o, of + t * H * P, sizeof o), "step %d == forward, bit for bit", t);
    }
}

/* in = {s, v, s0 or NULL}; arg: the seqs or NULL. */
static sl_tensor *ps_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_prefix_softmax(ctx, in[0], in[1], in[2], NULL, arg);
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const struct {
        int64_t B, T, N;
        const sl_seqs *seqs;
    } cases[] = {{2, 9, 2, NULL}, {1, 70, 1, NULL}, {1, 140, 5, &PACKED}};
    const int64_t H = 2, P = 3;
    for (int k = 0; k < 3; k++) {
        const int64_t B = cases[k].B, T = cases[k].T, N = cases[k].N;
        sl_tensor *in[3] = {GC_LEAF(&rng, 1.0f, B, T, H), GC_LEAF(&rng, 1.0f, B, T, H * P),
                            GC_LEAF(&rng, 1.0f, N, H * (P + 2))};
        fill_state(&rng, in[2]->data, N, H, P);
        CHECK(gradcheck("prefix_softmax", ps_fn, in, 3, (void *)cases[k].seqs, 1e-2f, 2e-4, 3e-3,
                        200),
              "prefix_softmax case %d", k);
        gc_free(in[2]);
        in[2] = NULL;
        CHECK(gradcheck("prefix_softmax no s0", ps_fn, in, 2, (void *)cases[k].seqs, 1e-2f, 2e-4,
                        3e-3, 200),
              "prefix_softmax case %d without s0", k);
        gc_free_all(in, 2);
    }
}

/* A kernel-level case: the inputs s, v, s0 and the weights of the outputs
 * o and s_final in the probed loss. */
typedef struct fd_case {
    sl_prefix_softmax_desc d;
    float *in[3], *ro, *rs;
} fd_case;

/* L = sum r_o o + sum r_s s_final in double through the reference. */
static double ref_loss(void *arg)
{
    const fd_case *c = arg;
    const sl_prefix_softmax_desc *d = &c->d;
    const int64_t N = sl_seq_count(d->seqs, d->B), no = d->B * d->T * d->H * d->P;
    const int64_t W = N * d->H * (d->P + 2);
    double *o = malloc((size_t)(no + 1) * sizeof(double)), *sf = malloc((size_t)W * sizeof(double));
    sl_prefix_softmax_ref(d, c->in[0], c->in[1], c->in[2], o, sf);
    double L = 0;
    for (int64_t i = 0; i < no; i++) L += c->ro[i] * o[i];
    for (int64_t i = 0; i < W; i++) L += c->rs[i] * sf[i];
    free(o);
    free(sf);
    return L;
}

/* The kernel's backward with ds_final against the reference's finite
 * differences (m_final's share going to the score, or s0's m, that set
 * it): how a long sequence's chunks chain their gradients. */
static void test_ds_final_finite_differences(void)
{
    for (int kase = 0; kase < 3; kase++) {
        const sl_seqs *seqs = kase == 2 ? &PACKED : NULL;
        const int64_t B = kase == 2 ? 1 : 2, T = kase == 2 ? 140 : 9, H = 2, P = 3;
        const int64_t N = sl_seq_count(seqs, B), NT = B * T;
        const int64_t n[3] = {NT * H, NT * H * P, N * H * (P + 2)};
        const int64_t stride[3] = {kase == 2 ? 7 : 1, kase == 2 ? 11 : 3, 1};
        sl_rng rng;
        sl_rng_seed(&rng, 8 + (uint64_t)kase);
        fd_case c = {{B, T, H, P, seqs, NULL}, {NULL}, NULL, NULL};
        float *grad[3], *o = malloc((size_t)n[1] * sizeof(float));
        float *lse = malloc((size_t)n[0] * sizeof(float));
        for (int k = 0; k < 3; k++) {
            c.in[k] = malloc((size_t)n[k] * sizeof(float));
            fill(&rng, c.in[k], n[k], k == 0 ? 2.0f : 1.0f);
            grad[k] = calloc((size_t)n[k], sizeof(float));
        }
        fill_state(&rng, c.in[2], N, H, P);
        if (kase == 1) /* s0's m above every score: it sets m_final */
            for (int64_t i = 0; i < N * H; i++) c.in[2][i * (P + 2)] = 10.0f;
        c.ro = malloc((size_t)n[1] * sizeof(float));
        c.rs = malloc((size_t)n[2] * sizeof(float));
        fill(&rng, c.ro, n[1], 1.0f);
        fill(&rng, c.rs, n[2], 1.0f);
        sl_prefix_softmax_fwd(&c.d, c.in[0], c.in[1], c.in[2], o, lse, NULL);
        c.d.ds_final = c.rs;
        sl_prefix_softmax_bwd(&c.d, c.in[0], c.in[1], c.in[2], o, lse, c.ro, grad[0], grad[1],
                              grad[2]);
        static const char *const NAMES[] = {"ds", "dv", "ds0"};
        gc_check_central(c.in, grad, n, stride, NAMES, 3, ref_loss, &c, 1e-3f, 2e-4, 2e-3);
        for (int k = 0; k < 3; k++) free(c.in[k]), free(grad[k]);
        free(c.ro), free(c.rs), free(o), free(lse);
    }
}

/* The same bits on 1, 2 and 3 threads, forward and backward. */
static void test_thread_count_independent(void)
{
    const int64_t B = 2, T = 1000, H = 4, P = 16;
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    sl_tensor *in[3] = {GC_LEAF(&rng, 3.0f, B, T, H), GC_LEAF(&rng, 1.0f, B, T, H * P),
                        GC_LEAF(&rng, 1.0f, B, H * (P + 2))};
    fill_state(&rng, in[2]->data, B, H, P);
    float *dout = malloc((size_t)(B * T * H * P) * sizeof(float));
    fill(&rng, dout, B * T * H * P, 1.0f);
    float *ref[4], *got[4];
    int64_t n[4];
    const int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        gc_outputs(ps_fn, in, 3, NULL, dout, threads == 1 ? ref : got, n);
        for (int i = 0; i < 4 && threads > 1; i++) {
            CHECK(!memcmp(ref[i], got[i], (size_t)n[i] * sizeof(float)),
                  "%d threads: output %d differs", threads, i);
            free(got[i]);
        }
    }
    omp_set_num_threads(saved);
    for (int i = 0; i < 4; i++) free(ref[i]);
    free(dout);
    gc_free_all(in, 3);
}

/* T = 65536, scores of scale 100 (weights e^(s - m) down to e^-700 and
 * maxima that keep rising): outputs equal a double running loop, and the
 * gradients are finite. */
static void test_long_sequence_stable(void)
{
    const int64_t T = 65536, H = 2, P = 4;
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    sl_tensor *in[3] = {GC_LEAF(&rng, 100.0f, 1, T, H), GC_LEAF(&rng, 1.0f, 1, T, H * P), NULL};
    float *dout = malloc((size_t)(T * H * P) * sizeof(float)), *res[4];
    fill(&rng, dout, T * H * P, 1.0f);
    int64_t n[4];
    gc_outputs(ps_fn, in, 3, NULL, dout, res, n);
    double worst = 0;
    for (int64_t h = 0; h < H; h++) {
        double m = -INFINITY, u = 0, w[4] = {0};
        for (int64_t t = 0; t < T; t++) {
            const double s = in[0]->data[t * H + h], mn = fmax(m, s), a = exp(m - mn);
            const double p = exp(s - mn);
            u = u * a + p;
            m = mn;
            for (int64_t j = 0; j < P; j++) {
                const float o = res[0][(t * H + h) * P + j];
                w[j] = w[j] * a + p * in[1]->data[(t * H + h) * P + j];
                const double e = fabs(o - w[j] / u);
                worst = e > worst || !isfinite(o) ? e : worst;
            }
        }
    }
    CHECK(worst <= 1e-4, "T = 65536 at scale 100: |o - double loop| up to %g", worst);
    bool ok = true;
    for (int k = 1; k < 3; k++)
        for (int64_t i = 0; i < n[k]; i++) ok &= isfinite(res[k][i]);
    CHECK(ok, "T = 65536 at scale 100: gradients finite");
    for (int k = 0; k < 4; k++) free(res[k]);
    free(dout);
    gc_free_all(in, 2);
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_step_matches_reference);
    RUN(test_gradient_finite_differences);
    RUN(test_ds_final_finite_differences);
    RUN(test_thread_count_independent);
    RUN(test_long_sequence_stable);
    return TEST_SUMMARY();
}
