/* The LSTM recurrence: the op against a double reference (T = 1, odd T,
 * units across a block edge, one row and several, packed batches with
 * empty and one-token sequences, with and without s0), the one-token step
 * against the reference, gradients of gx, w_hh and s0 by finite
 * differences, the final state's gradient (ds_final) by finite differences
 * of the double reference, results independent of the thread count, and
 * T = 65536 with saturating gates finite. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/lstm.h"

static void fill(sl_rng *rng, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = scale * sl_rng_normal(rng);
}

/* Packed: an empty sequence first, one token, four, empty, four. */
static const int64_t CU[] = {0, 0, 1, 5, 5, 9};
static const sl_seqs PACKED = {5, CU};

/* One case: op vs reference, outputs and final states. */
static void check_case(int64_t B, int64_t T, int64_t D, const sl_seqs *seqs, bool with_s0)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + D));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    const int64_t N = sl_seq_count(seqs, B);
    sl_tensor *gx = SL_NEW(&ctx, B, T, 4 * D), *w = SL_NEW(&ctx, 4 * D, D);
    sl_tensor *s0 = with_s0 ? SL_NEW(&ctx, N, 2 * D) : NULL;
    fill(&rng, gx->data, gx->n, 1.0f);
    fill(&rng, w->data, w->n, 1.0f / sqrtf((float)D));
    if (s0) fill(&rng, s0->data, s0->n, 1.0f);
    float *sf = malloc((size_t)(N * 2 * D) * sizeof(float));
    double *href = malloc((size_t)(B * T * D + 1) * sizeof(double));
    double *sref = malloc((size_t)(N * 2 * D) * sizeof(double));
    sl_tensor *h = sl_lstm(&ctx, gx, w, s0, sf, seqs);
    const sl_lstm_desc d = {B, T, D, seqs, NULL};
    sl_lstm_ref(&d, gx->data, w->data, s0 ? s0->data : NULL, href, sref);
    for (int64_t i = 0; i < h->n; i++) CHECK_CLOSE(h->data[i], href[i], 1e-5, 1e-5, "h");
    for (int64_t i = 0; i < N * 2 * D; i++) CHECK_CLOSE(sf[i], sref[i], 1e-5, 1e-5, "s_final");
    free(sf);
    free(href);
    free(sref);
    sl_ctx_free(&ctx);
}

static void test_forward_matches_reference(void)
{
    for (int s = 0; s <= 1; s++) {
        check_case(2, 1, 3, NULL, s);
        check_case(2, 7, 5, NULL, s);   /* units fewer than a block */
        check_case(1, 13, 20, NULL, s); /* one row: two blocks and a partial one */
        check_case(1, 6, 96, NULL, s);  /* one row, threaded */
        check_case(3, 9, 16, NULL, s);
        check_case(1, 9, 10, &PACKED, s);
    }
}

/* Steps against the reference, and against a one-row forward bit for bit
 * (the same dot products and cell). */
static void test_step_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    enum { T = 6, D = 20 };
    float gx[T * 4 * D], w[4 * D * D], s0[2 * D], st[2 * D], scratch[D], hf[T * D];
    double h[T * D];
    fill(&rng, gx, T * 4 * D, 1.0f);
    fill(&rng, w, 4 * D * D, 0.3f);
    fill(&rng, s0, 2 * D, 1.0f);
    const sl_lstm_desc d = {1, T, D, NULL, NULL};
    sl_lstm_ref(&d, gx, w, s0, h, NULL);
    sl_lstm_fwd(&d, gx, w, s0, hf, NULL, NULL);
    memcpy(st, s0, sizeof st);
    for (int t = 0; t < T; t++) {
        sl_lstm_step(st, gx + t * 4 * D, w, D, scratch);
        for (int j = 0; j < D; j++) CHECK_CLOSE(st[j], h[t * D + j], 1e-6, 1e-5, "step");
        CHECK(!memcmp(st, hf + t * D, D * sizeof(float)), "step %d == forward, bit for bit", t);
    }
}

/* in = {gx, w_hh, s0 or NULL}; arg: the seqs or NULL. */
static sl_tensor *lstm_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_lstm(ctx, in[0], in[1], in[2], NULL, arg);
}

static void test_gradient_finite_differences(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 4);
    const struct {
        int64_t B, T, N, D;
        const sl_seqs *seqs;
    } cases[] = {{2, 5, 2, 6, NULL}, {1, 7, 1, 9, NULL}, {1, 9, 5, 6, &PACKED}};
    for (int k = 0; k < 3; k++) {
        const int64_t B = cases[k].B, T = cases[k].T, D = cases[k].D;
        sl_tensor *in[3] = {GC_LEAF(&rng, 1.0f, B, T, 4 * D), GC_LEAF(&rng, 0.5f, 4 * D, D),
                            GC_LEAF(&rng, 1.0f, cases[k].N, 2 * D)};
        CHECK(gradcheck("lstm", lstm_fn, in, 3, (void *)cases[k].seqs, 1e-2f, 2e-4, 3e-3, 200),
              "lstm case %d", k);
        gc_free(in[2]);
        in[2] = NULL;
        CHECK(
            gradcheck("lstm no s0", lstm_fn, in, 2, (void *)cases[k].seqs, 1e-2f, 2e-4, 3e-3, 200),
            "lstm case %d without s0", k);
        gc_free_all(in, 2);
    }
}

/* A kernel-level case: the inputs gx, w_hh, s0 and the weights of the
 * outputs h and s_final in the probed loss. */
typedef struct fd_case {
    sl_lstm_desc d;
    float *in[3], *rh, *rs;
} fd_case;

/* L = sum r_h h + sum r_s s_final in double through the reference. */
static double ref_loss(void *arg)
{
    const fd_case *c = arg;
    const int64_t N = sl_seq_count(c->d.seqs, c->d.B), nh = c->d.B * c->d.T * c->d.D;
    double *h = malloc((size_t)(nh + 1) * sizeof(double));
    double *sf = malloc((size_t)(N * 2 * c->d.D) * sizeof(double));
    sl_lstm_ref(&c->d, c->in[0], c->in[1], c->in[2], h, sf);
    double L = 0;
    for (int64_t i = 0; i < nh; i++) L += c->rh[i] * h[i];
    for (int64_t i = 0; i < N * 2 * c->d.D; i++) L += c->rs[i] * sf[i];
    free(h);
    free(sf);
    return L;
}

/* The kernel's backward with ds_final against the reference's finite
 * differences: how a long sequence's chunks chain their gradients. */
static void test_ds_final_finite_differences(void)
{
    for (int packed = 0; packed <= 1; packed++) {
        const sl_seqs *seqs = packed ? &PACKED : NULL;
        const int64_t B = packed ? 1 : 2, T = 9, D = 5, N = sl_seq_count(seqs, B), G = 4 * D;
        const int64_t n[3] = {B * T * G, G * D, N * 2 * D}, stride[3] = {3, 3, 1};
        sl_rng rng;
        sl_rng_seed(&rng, 8 + (uint64_t)packed);
        fd_case c = {{B, T, D, seqs, NULL}, {NULL}, NULL, NULL};
        float *grad[3], *h = malloc((size_t)(B * T * D) * sizeof(float));
        float *act = malloc((size_t)(B * T * 5 * D) * sizeof(float));
        for (int k = 0; k < 3; k++) {
            c.in[k] = malloc((size_t)n[k] * sizeof(float));
            fill(&rng, c.in[k], n[k], k == 1 ? 0.5f : 1.0f);
            grad[k] = calloc((size_t)n[k], sizeof(float));
        }
        c.rh = malloc((size_t)(B * T * D) * sizeof(float));
        c.rs = malloc((size_t)n[2] * sizeof(float));
        fill(&rng, c.rh, B * T * D, 1.0f);
        fill(&rng, c.rs, n[2], 1.0f);
        sl_lstm_fwd(&c.d, c.in[0], c.in[1], c.in[2], h, act, NULL);
        c.d.ds_final = c.rs;
        sl_lstm_bwd(&c.d, c.in[1], c.in[2], h, act, c.rh, grad[0], grad[1], grad[2]);
        static const char *const NAMES[] = {"dgx", "dw_hh", "ds0"};
        gc_check_central(c.in, grad, n, stride, NAMES, 3, ref_loss, &c, 1e-2f, 2e-4, 2e-3);
        for (int k = 0; k < 3; k++) free(c.in[k]), free(grad[k]);
        free(c.rh), free(c.rs), free(h), free(act);
    }
}

/* One row (the threaded dot-product path) and several (the GEMM path): the
 * same bits on 1, 2 and 3 threads, except dW_hh, one OpenBLAS GEMM over all
 * tokens (as every sl_linear's weight gradient), whose summation order
 * follows the thread count: equal to rounding. */
static void test_thread_count_independent(void)
{
    for (int64_t B = 1; B <= 3; B += 2) {
        const int64_t T = 17, D = 96;
        sl_rng rng;
        sl_rng_seed(&rng, 6);
        sl_tensor *in[3] = {GC_LEAF(&rng, 1.0f, B, T, 4 * D), GC_LEAF(&rng, 0.1f, 4 * D, D),
                            GC_LEAF(&rng, 1.0f, B, 2 * D)};
        float *dout = malloc((size_t)(B * T * D) * sizeof(float));
        fill(&rng, dout, B * T * D, 1.0f);
        float *ref[4], *got[4];
        int64_t n[4];
        const int saved = omp_get_max_threads();
        for (int threads = 1; threads <= 3; threads++) {
            omp_set_num_threads(threads);
            gc_outputs(lstm_fn, in, 3, NULL, dout, threads == 1 ? ref : got, n);
            for (int i = 0; i < 4 && threads > 1; i++) {
                if (i != 2)
                    CHECK(!memcmp(ref[i], got[i], (size_t)n[i] * sizeof(float)),
                          "B %lld, %d threads: output %d differs", (long long)B, threads, i);
                else
                    CHECK(close_ratio(got[i], ref[i], n[i], 1e-5, 1e-5) <= 1,
                          "B %lld, %d threads: dW_hh", (long long)B, threads);
                free(got[i]);
            }
        }
        omp_set_num_threads(saved);
        for (int i = 0; i < 4; i++) free(ref[i]);
        free(dout);
        gc_free_all(in, 3);
    }
}

/* T = 65536, pre-activations of scale 100 (every gate saturated), a large
 * recurrent matrix: h, c and every gradient finite. */
static void test_long_sequence_finite(void)
{
    const int64_t T = 65536, D = 8;
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    sl_tensor *in[3] = {GC_LEAF(&rng, 100.0f, 1, T, 4 * D), GC_LEAF(&rng, 10.0f, 4 * D, D), NULL};
    float *dout = malloc((size_t)(T * D) * sizeof(float)), *res[4];
    fill(&rng, dout, T * D, 1.0f);
    int64_t n[4];
    gc_outputs(lstm_fn, in, 3, NULL, dout, res, n);
    bool ok = true;
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < n[k]; i++) ok &= isfinite(res[k][i]);
    CHECK(ok, "T = 65536 at scale 100: outputs and gradients finite");
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
    RUN(test_long_sequence_finite);
    return TEST_SUMMARY();
}
