/* The LMU memory: zero-order hold against its closed form at order 1 and
 * against exp(A) by a fine Euler product, the op (FFT convolution plus the
 * state's term) against the double token loop (T = 1, odd T, several input
 * channels, packed batches with empty and one-token sequences, with and
 * without s0, final states, T = 65536), the step against the loop, and finite
 * differences of u and s0, with a gradient on s_final. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/lmu.h"

static void test_discretisation(void)
{
    double A, B;
    sl_lmu_discretize(1, 4.0, &A, &B);
    CHECK_CLOSE(A, exp(-0.25), 1e-14, 1e-14, "A_bar = e^(-1/theta) at order 1");
    CHECK_CLOSE(B, 1 - exp(-0.25), 1e-14, 1e-14, "B_bar = 1 - e^(-1/theta)");
    /* Order 6, theta 3 (a norm past 1/2: the squarings run): e^A B against
     * (I + A/n)^n B, n = 2^20 (error ~ |A|^2 / 2n). */
    enum { Q = 6 };
    double Ab[Q * Q], Bb[Q], Ac[Q * Q], Bc[Q], x[Q], y[Q], z[Q];
    for (int i = 0; i < Q; i++) {
        for (int j = 0; j < Q; j++)
            Ac[i * Q + j] = (2 * i + 1) / 3.0 * (i < j ? -1.0 : ((i - j + 1) % 2 ? -1.0 : 1.0));
        Bc[i] = (2 * i + 1) / 3.0 * (i % 2 ? -1.0 : 1.0);
    }
    sl_lmu_discretize(Q, 3.0, Ab, Bb);
    const int steps = 1 << 20;
    memcpy(x, Bc, sizeof x);
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < Q; i++) {
            y[i] = x[i];
            for (int j = 0; j < Q; j++) y[i] += Ac[i * Q + j] * x[j] / steps;
        }
        memcpy(x, y, sizeof x);
    }
    for (int i = 0; i < Q; i++) {
        z[i] = 0;
        for (int j = 0; j < Q; j++) z[i] += Ab[i * Q + j] * Bc[j];
        CHECK_CLOSE(z[i], x[i], 1e-4, 1e-4, "e^A B");
    }
}

/* Packed: empty first, one token, four, empty, five. */
static const int64_t CU[] = {0, 0, 1, 5, 5, 10};
static const sl_seqs PACKED = {5, CU};

static sl_lmu_desc system_of(int64_t q, double theta, float *sys, int64_t T)
{
    double *A = malloc((size_t)(q * q + q) * sizeof(double));
    sl_lmu_discretize(q, theta, A, A + q * q);
    for (int64_t i = 0; i < q * q + q; i++) sys[i] = (float)A[i];
    free(A);
    return (sl_lmu_desc){.q = q, .A = sys, .Bv = sys + q * q,
                         .H = sl_lmu_impulse(q, theta, T > 0 ? T : 1)};
}

static void check_case(int64_t B, int64_t T, int64_t U, int64_t q, double theta,
                       const sl_seqs *seqs, bool with_s0)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + U));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    const int64_t N = sl_seq_count(seqs, B), C = U * q;
    float *sys = malloc((size_t)(q * q + q) * sizeof(float));
    const sl_lmu_desc base = system_of(q, theta, sys, T);
    sl_tensor *u = SL_NEW(&ctx, B, T, U), *s0 = with_s0 ? SL_NEW(&ctx, N, C) : NULL;
    for (int64_t i = 0; i < u->n; i++) u->data[i] = sl_rng_normal(&rng);
    for (int64_t i = 0; s0 && i < s0->n; i++) s0->data[i] = sl_rng_normal(&rng);
    float *sf = malloc((size_t)(N * C) * sizeof(float)), *st = calloc((size_t)C, sizeof(float));
    float *scratch = malloc((size_t)q * sizeof(float));
    double *ref = malloc((size_t)(B * T * C + 1) * sizeof(double));
    sl_tensor *m = sl_lmu_memory(&ctx, u, &base, s0, sf, seqs);
    sl_lmu_desc d = base;
    d.B = B, d.T = T, d.U = U, d.seqs = seqs;
    sl_lmu_memory_ref(&d, theta, u->data, s0 ? s0->data : NULL, ref);
    double worst = 0, scale = 1e-6;
    for (int64_t i = 0; i < m->n; i++) scale = fmax(scale, fabs(ref[i]));
    for (int64_t i = 0; i < m->n; i++) worst = fmax(worst, fabs(m->data[i] - ref[i]) / scale);
    CHECK(worst < 1e-5, "B %lld T %lld U %lld q %lld%s: m vs token loop %g", (long long)B,
          (long long)T, (long long)U, (long long)q, with_s0 ? " with s0" : "", worst);
    for (int64_t i = 0; i < N; i++) { /* s_final and the step, sequence by sequence */
        const int64_t t0 = sl_seq_start(seqs, i, T), len = sl_seq_len(seqs, i, T);
        for (int64_t c = 0; c < C; c++) st[c] = s0 ? s0->data[i * C + c] : 0.0f;
        for (int64_t t = t0; t < t0 + len; t++) {
            sl_lmu_step(base.A, base.Bv, q, U, st, u->data + t * U, scratch);
            for (int64_t c = 0; c < C; c++)
                CHECK_CLOSE(st[c], ref[t * C + c], 1e-4, 1e-4, "step");
        }
        for (int64_t c = 0; c < C; c++) CHECK_CLOSE(sf[i * C + c], st[c], 1e-4, 1e-4, "s_final");
    }
    free(sys);
    free(sf);
    free(st);
    free(scratch);
    free(ref);
    sl_ctx_free(&ctx);
}

static void test_forward_matches_loop(void)
{
    for (int s = 0; s <= 1; s++) {
        check_case(2, 1, 1, 4, 3.0, NULL, s);
        check_case(2, 13, 3, 6, 5.0, NULL, s);
        check_case(1, 70, 2, 32, 40.0, NULL, s);
        check_case(1, 10, 2, 5, 4.0, &PACKED, s);
    }
    check_case(1, 65536, 1, 4, 1000.0, NULL, true); /* a long sequence stays exact */
}

static sl_tensor *f_memory(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const sl_lmu_desc *d = arg;
    return sl_lmu_memory(ctx, in[0], d, in[1], NULL, d->seqs);
}

/* sum rf . s_final(u, s0) in double. */
static double final_loss(const sl_lmu_desc *d, const float *u, const float *s0, const float *rf,
                         float *m, float *sf, int64_t n)
{
    sl_lmu_memory_fwd(d, u, s0, m, sf);
    double L = 0;
    for (int64_t i = 0; i < n; i++) L += (double)rf[i] * sf[i];
    return L;
}

static void test_gradients(void)
{
    for (int packed = 0; packed <= 1; packed++) {
        const int64_t B = packed ? 1 : 2, T = packed ? 10 : 9, U = 2, q = 5;
        const sl_seqs *seqs = packed ? &PACKED : NULL;
        const int64_t N = sl_seq_count(seqs, B), C = U * q;
        sl_rng rng;
        sl_rng_seed(&rng, 17 + packed);
        float *sys = malloc((size_t)(q * q + q) * sizeof(float));
        sl_lmu_desc d = system_of(q, 4.0, sys, T);
        d.seqs = seqs;
        sl_tensor *u = GC_LEAF(&rng, 1.0f, B, T, U), *s0 = GC_LEAF(&rng, 1.0f, N, C);
        sl_tensor *in[2] = {u, s0};
        CHECK(gradcheck("lmu memory", f_memory, in, 2, &d, 1e-2f, 1e-3, 1e-3, 60),
              "du and ds0%s", packed ? " (packed)" : "");
        /* The gradient of s_final alone (dm = 0), against central
         * differences of sum rf . s_final (linear: exact up to rounding). */
        const size_t fs = sizeof(float);
        float *rf = malloc((size_t)(N * C) * fs), *sf = malloc((size_t)(N * C) * fs);
        float *m = malloc((size_t)(B * T * C) * fs), *dm = calloc((size_t)(B * T * C), fs);
        float *du = calloc((size_t)u->n, fs), *ds0 = calloc((size_t)s0->n, fs);
        for (int64_t i = 0; i < N * C; i++) rf[i] = sl_rng_normal(&rng);
        d.B = B, d.T = T, d.U = U, d.ds_final = rf;
        sl_lmu_memory_bwd(&d, dm, du, ds0);
        double worst = 0;
        for (int k = 0; k < 2; k++) {
            sl_tensor *t = in[k];
            const float *g = k ? ds0 : du;
            for (int64_t i = 0; i < t->n; i++) {
                const float v = t->data[i], h = 1e-2f;
                t->data[i] = v + h;
                double lp = final_loss(&d, u->data, s0->data, rf, m, sf, N * C);
                t->data[i] = v - h;
                double lm = final_loss(&d, u->data, s0->data, rf, m, sf, N * C);
                t->data[i] = v;
                worst = fmax(worst, fabs((lp - lm) / (2 * h) - g[i]) / (1 + fabs(g[i])));
            }
        }
        CHECK(worst < 1e-3, "d s_final: du and ds0 vs differences%s: %g",
              packed ? " (packed)" : "", worst);
        gc_free(u);
        gc_free(s0);
        free(sys);
        free(rf);
        free(sf);
        free(m);
        free(dm);
        free(du);
        free(ds0);
    }
}

int main(void)
{
    RUN(test_discretisation);
    RUN(test_forward_matches_loop);
    RUN(test_gradients);
    return TEST_SUMMARY();
}
