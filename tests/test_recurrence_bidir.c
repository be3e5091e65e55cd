/* The non-causal recurrence (recurrence_bidir.c) against its definition,
 * o_t = sum_j gamma^|t-j| (q_t . k_j) v_j summed directly in double, with
 * no decay and with RetNet's per-head decays, at lengths around the chunk
 * size, for plain rows and for packed sequences; and its gradients by
 * finite differences. */
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/recurrence.h"

enum { H = 2, DK = 3, DV = 4 };

typedef struct {
    const float *log_gamma;
    int64_t C;
    const sl_seqs *seqs;
} bidir_arg;

static sl_tensor *bidir_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const bidir_arg *a = arg;
    const sl_rec_in r = {.q = in[0], .k = in[1], .v = in[2], .dk = DK, .dv = DV};
    return sl_recurrence_bidir(ctx, &r, a->log_gamma, H, a->C, a->seqs);
}

/* The definition over tokens [t0, t0 + L) of q, k: [.., H*DK], v: [.., H*DV]. */
static void direct(const float *q, const float *k, const float *v, const float *log_gamma,
                   int64_t t0, int64_t L, double *o)
{
    for (int64_t t = t0; t < t0 + L; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t e = 0; e < DV; e++) {
                double acc = 0;
                for (int64_t j = t0; j < t0 + L; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < DK; d++)
                        s += (double)q[t * H * DK + h * DK + d] * k[j * H * DK + h * DK + d];
                    double w = log_gamma ? exp(fabs((double)(t - j)) * log_gamma[h]) : 1.0;
                    acc += w * s * v[j * H * DV + h * DV + e];
                }
                o[t * H * DV + h * DV + e] = acc;
            }
}

/* Largest |got - want| over the RMS of want. */
static double rel_err(const float *got, const double *want, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - want[i]));
        s += want[i] * want[i];
    }
    return e / sqrt(s / (double)n + 1e-30);
}

static void check(int64_t B, int64_t T, const sl_seqs *seqs, const float *lg, int64_t C,
                  sl_rng *rng)
{
    sl_tensor *q = GC_LEAF(rng, 1.0f, B, T, H * DK), *k = GC_LEAF(rng, 1.0f, B, T, H * DK);
    sl_tensor *v = GC_LEAF(rng, 1.0f, B, T, H * DV);
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    ctx.grad_enabled = false;
    sl_tensor *in[3] = {q, k, v};
    bidir_arg a = {lg, C, seqs};
    sl_tensor *o = bidir_fn(&ctx, in, &a);
    double *want = malloc((size_t)o->n * sizeof(double));
    for (int64_t r = 0; r < sl_seq_count(seqs, B); r++)
        direct(q->data, k->data, v->data, lg, sl_seq_start(seqs, r, T), sl_seq_len(seqs, r, T),
               want);
    double e = rel_err(o->data, want, o->n);
    CHECK(e < 1e-5, "T %lld C %lld %s%s: error %g of the RMS", (long long)T, (long long)C,
          lg ? "decay" : "no decay", seqs ? ", packed" : "", e);
    free(want);
    sl_ctx_free(&ctx);
    gc_free(q);
    gc_free(k);
    gc_free(v);
}

static const float LOG_GAMMA[H] = {-0.03125f, -0.5f};

static void test_matches_definition(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    const int64_t C = 5, Ts[] = {1, C - 1, C, C + 1, 3 * C + 5};
    for (int i = 0; i < 5; i++) {
        check(2, Ts[i], NULL, NULL, C, &rng);
        check(2, Ts[i], NULL, LOG_GAMMA, C, &rng);
    }
    static const int64_t cu[] = {0, 4, 4, 5, 11, 23};
    const sl_seqs seqs = {5, cu};
    check(1, 23, &seqs, NULL, C, &rng);
    check(1, 23, &seqs, LOG_GAMMA, C, &rng);
}

static void test_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    static const int64_t cu[] = {0, 3, 9};
    const sl_seqs seqs = {2, cu};
    for (int packed = 0; packed < 2; packed++)
        for (int decay = 0; decay < 2; decay++) {
            const int64_t B = packed ? 1 : 2, T = packed ? 9 : 7;
            sl_tensor *in[3] = {GC_LEAF(&rng, 0.7f, B, T, H * DK), GC_LEAF(&rng, 0.7f, B, T, H * DK),
                                GC_LEAF(&rng, 0.7f, B, T, H * DV)};
            bidir_arg a = {decay ? LOG_GAMMA : NULL, 3, packed ? &seqs : NULL};
            /* Trilinear in (q, k, v) with exact exponentials: the central
             * difference is exact up to float rounding of the loss. */
            CHECK(gradcheck("bidir", bidir_fn, in, 3, &a, 1e-2f, 3e-4, 3e-3, 200),
                  "decay %d packed %d", decay, packed);
            for (int i = 0; i < 3; i++) gc_free(in[i]);
        }
}

int main(void)
{
    RUN(test_matches_definition);
    RUN(test_gradients);
    return TEST_SUMMARY();
}
