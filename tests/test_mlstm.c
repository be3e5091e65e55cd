/* mLSTM matrix memory (xLSTM): the chunked op against the step-by-step
 * reference at lengths around chunk edges, a split sequence against a whole
 * one, the one-token step against the op, the backward against finite
 * differences (every input, s0 included, with the normaliser's floor winning
 * everywhere and with |n . q| winning everywhere), the thread count not
 * changing any bit, finite results with O(T) memory at T = 65536 under
 * extreme gates, packed variable-length batches against each sequence
 * alone, forward and backward, and q, k, v read in place as blocks of one
 * wide tensor (with scales) against column copies, and by finite
 * differences. */
#include <omp.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/columns.h"
#include "ops/mlstm.h"
#include "ops/ops.h"

/* How the inputs are drawn. MIX: q, v N(0, scale), k N(0, scale) / sqrt(dk)
 * as the mixer scales it, input gates N(0, 2) (both the floor and |n . q|
 * win somewhere; unscaled keys would make q . k ~ sqrt(dk) and h a quotient
 * of sums cancelling by a factor 1e3, beyond a 1e-5 comparison). FLOOR: input gates near -3 and
 * a small n0, so |n . q| stays well under the floor e^(-m): h = C^T q e^m,
 * smooth. DEN_POS / DEN_NEG: q > 0, k > 0 (or < 0) and input gates near 3,
 * so |n . q| stays well over the floor, with the sign given. Finite
 * differences need the last three: the max() kink |n . q| = e^(-m) must not
 * sit between x - h and x + h. */
enum { MIX, FLOOR, DEN_POS, DEN_NEG, NREGIMES };
static const char *const REGIME[] = {"mixed", "floor", "den > 0", "den < 0"};

typedef struct {
    int64_t H, C;
    bool with_s0;
    const sl_seqs *seqs;
} ml_arg;

/* in = {q, k, v, igate, lfgate, s0 (with_s0)}. */
static sl_tensor *ml_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const ml_arg *a = arg;
    return sl_mlstm(ctx, in[0], in[1], in[2], in[3], in[4], a->with_s0 ? in[5] : NULL, a->H, a->C,
                    NULL, a->seqs);
}

/* logsigmoid(N(0, 1) + shift): a log forget gate in (-inf, 0). */
static float log_forget(sl_rng *rng, float shift)
{
    float x = sl_rng_normal(rng) + shift;
    return (x < 0 ? x : 0.0f) - log1pf(expf(-fabsf(x)));
}

/* Inputs for `rows` state rows of B x T tokens: q, k, v, igate, lfgate and
 * s0 (when with_s0; C and n N(0, 1), m N(0, 1)). */
static void make_inputs(sl_rng *rng, int regime, int64_t B, int64_t T, int64_t H, int64_t dk,
                        int64_t dv, int64_t rows, bool with_s0, float scale, sl_tensor **in)
{
    in[0] = GC_LEAF(rng, scale, B, T, H * dk);
    in[1] = GC_LEAF(rng, scale, B, T, H * dk);
    in[2] = GC_LEAF(rng, scale, B, T, H * dv);
    in[3] = GC_LEAF(rng, 1.0f, B, T, H);
    in[4] = GC_LEAF(rng, 1.0f, B, T, H);
    const int64_t ssz = sl_mlstm_state_floats(dk, dv);
    in[5] = with_s0 ? GC_LEAF(rng, 1.0f, rows, H, ssz) : NULL;
    for (int64_t i = 0; i < in[3]->n; i++) {
        float x = sl_rng_normal(rng);
        in[3]->data[i] = regime == MIX     ? 2.0f * x
                         : regime == FLOOR ? -3.0f + 0.5f * x
                                           : 3.0f + 0.3f * x;
        in[4]->data[i] = log_forget(rng, 1.0f);
    }
    if (regime == MIX)
        for (int64_t i = 0; i < in[1]->n; i++) in[1]->data[i] /= sqrtf((float)dk);
    if (regime == DEN_POS || regime == DEN_NEG) {
        const float sk = regime == DEN_POS ? 1.0f : -1.0f;
        for (int64_t i = 0; i < in[0]->n; i++) in[0]->data[i] = 0.3f + fabsf(in[0]->data[i]);
        for (int64_t i = 0; i < in[1]->n; i++) in[1]->data[i] = sk * (0.3f + fabsf(in[1]->data[i]));
    }
    if (in[5])
        for (int64_t r = 0; r < rows * H; r++) {
            float *n0 = in[5]->data + r * ssz + dk * dv;
            for (int64_t d = 0; d < dk; d++) {
                if (regime == FLOOR) n0[d] *= 0.1f;
                if (regime == DEN_POS) n0[d] = fabsf(n0[d]);
                if (regime == DEN_NEG) n0[d] = -fabsf(n0[d]);
            }
        }
}

/* |n_t . q_t| / e^(-m_t) = the unstabilised |den| over every token and head
 * (rows of T tokens): its smallest and largest values, in double. */
static void den_range(sl_tensor **in, int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv,
                      double *lo, double *hi)
{
    const int64_t ssz = sl_mlstm_state_floats(dk, dv);
    *lo = INFINITY;
    *hi = 0;
    double *n = malloc((size_t)dk * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *s0 = in[5] ? in[5]->data + (b * H + h) * ssz : NULL;
            for (int64_t d = 0; d < dk; d++) n[d] = s0 ? s0[dk * dv + d] : 0.0;
            double m = s0 ? s0[ssz - 1] : -1e30;
            for (int64_t t = b * T; t < (b + 1) * T; t++) {
                double it = in[3]->data[t * H + h], lf = in[4]->data[t * H + h];
                double mt = fmax(lf + m, it), a = exp(lf + m - mt), w = exp(it - mt), den = 0;
                for (int64_t d = 0; d < dk; d++) {
                    n[d] = a * n[d] + w * in[1]->data[t * H * dk + h * dk + d];
                    den += n[d] * in[0]->data[t * H * dk + h * dk + d];
                }
                double u = fabs(den) * exp(mt);
                *lo = fmin(*lo, u);
                *hi = fmax(*hi, u);
                m = mt;
            }
        }
    free(n);
}

/* The condition number of each output token and head: kappa_t =
 * (|q_t| . n+_t) / max(|n_t . q_t|, e^(-m_t)), where n+ is n's recurrence
 * run on |k| (and |n0|): the sum of the magnitudes of the terms whose sum is
 * the denominator, over the denominator. The exponential input gate can
 * weight one key by e^6 while q . k cancels to 1e-3 of its terms; then the
 * float rounding of that dot product alone moves h by ~1e-7 kappa, whatever
 * the form. kappa: [B*T, H]; computed in double, as sl_mlstm_ref. */
static void condition(sl_tensor **in, const sl_seqs *seqs, int64_t B, int64_t T, int64_t H,
                      int64_t dk, int64_t dv, double *kappa)
{
    const int64_t ssz = sl_mlstm_state_floats(dk, dv), rows = sl_seq_count(seqs, B);
    double *n = malloc((size_t)(2 * dk) * sizeof(double)), *na = n + dk;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t h = 0; h < H; h++) {
            const float *s0 = in[5] ? in[5]->data + (r * H + h) * ssz : NULL;
            for (int64_t d = 0; d < dk; d++) {
                n[d] = s0 ? s0[dk * dv + d] : 0.0;
                na[d] = fabs(n[d]);
            }
            double m = s0 ? s0[ssz - 1] : -1e30;
            const int64_t t0 = sl_seq_start(seqs, r, T), len = sl_seq_len(seqs, r, T);
            for (int64_t t = t0; t < t0 + len; t++) {
                const float *q = in[0]->data + (t * H + h) * dk,
                            *k = in[1]->data + (t * H + h) * dk;
                double it = in[3]->data[t * H + h], lf = in[4]->data[t * H + h];
                double mt = fmax(lf + m, it), a = exp(lf + m - mt), w = exp(it - mt);
                double den = 0, mag = 0;
                for (int64_t d = 0; d < dk; d++) {
                    n[d] = a * n[d] + w * k[d];
                    na[d] = a * na[d] + w * fabs(k[d]);
                    den += n[d] * q[d];
                    mag += na[d] * fabs(q[d]);
                }
                kappa[t * H + h] = mag / fmax(fabs(den), exp(fmin(-mt, 88.0)));
                m = mt;
            }
        }
    free(n);
}

/* Max over outputs [ntok, H, dv] of |got - want| / tol with tol = (rms +
 * |want|) max(1e-5, 4e-7 kappa): 1e-5 relative, with an absolute floor of
 * 1e-5 of the outputs' RMS, widened where the problem itself amplifies a few
 * float roundings (4e-7 ~ 6 x 2^-24) beyond that. <= 1 means close. */
static double kappa_ratio(const float *got, const float *want, const double *kappa, int64_t ntok,
                          int64_t H, int64_t dv, double scale)
{
    double worst = 0;
    for (int64_t i = 0; i < ntok * H * dv; i++) {
        double tol = (scale + fabs((double)want[i])) * fmax(1e-5, 4e-7 * kappa[i / dv]);
        double r = fabs((double)got[i] - want[i]) / tol;
        if (isnan(got[i]) || isnan(want[i])) r = INFINITY;
        worst = fmax(worst, r);
    }
    return worst;
}

/* Chunked vs reference at every T in {1, C-1, C, C+1, 3C+5}, with and
 * without s0, for heads (dk, dv); B = 2, H = 2. */
static void check_against_reference(sl_rng *rng, int64_t C, int64_t dk, int64_t dv)
{
    const int64_t B = 2, H = 2, Ts[] = {1, C - 1, C, C + 1, 3 * C + 5};
    const int64_t ssz = sl_mlstm_state_floats(dk, dv), ns = B * H * ssz;
    for (int ti = 0; ti < 5; ti++)
        for (int s0 = 0; s0 < 2; s0++) {
            int64_t T = Ts[ti];
            sl_tensor *in[6];
            make_inputs(rng, MIX, B, T, H, dk, dv, B, s0, 1.0f, in);
            sl_ctx ctx;
            sl_ctx_init(&ctx, 1 << 20);
            ctx.grad_enabled = false;
            float *fin = malloc((size_t)ns * sizeof(float));
            float *ref = malloc((size_t)(B * T * H * dv) * sizeof(float));
            float *ref_fin = malloc((size_t)ns * sizeof(float));
            sl_tensor *o =
                sl_mlstm(&ctx, in[0], in[1], in[2], in[3], in[4], in[5], H, C, fin, NULL);
            sl_mlstm_ref(in[0]->data, in[1]->data, in[2]->data, in[3]->data, in[4]->data,
                         in[5] ? in[5]->data : NULL, B, T, H, dk, dv, ref, ref_fin, NULL);
            double *kappa = malloc((size_t)(B * T * H) * sizeof(double));
            condition(in, NULL, B, T, H, dk, dv, kappa);
            double r = kappa_ratio(o->data, ref, kappa, B * T, H, dv, rms(ref, o->n));
            free(kappa);
            double rf = close_ratio(fin, ref_fin, ns, 1e-5 * rms(ref_fin, ns), 1e-5);
            CHECK(r <= 1 && rf <= 1, "C %lld T %lld dk %lld dv %lld s0 %d: out %g, state %g",
                  (long long)C, (long long)T, (long long)dk, (long long)dv, s0, r, rf);
            free(fin);
            free(ref);
            free(ref_fin);
            sl_ctx_free(&ctx);
            gc_free_all(in, 6);
        }
}

static void test_chunked_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    /* Tiny chunks with square and non-square heads (dva = dv + 1 covers a
     * column tail in every tile), then the default chunk with a realistic
     * head (dva = 33: two whole 16-column tiles and a tail). */
    check_against_reference(&rng, 8, 4, 4);
    check_against_reference(&rng, 8, 5, 3);
    check_against_reference(&rng, 64, 32, 32);
}

static void test_split_equals_whole(void)
{
    const int64_t C = 8, B = 2, H = 2, dk = 4, dv = 3, T = 29, splits[] = {1, 8, 13};
    const int64_t ns = B * H * sl_mlstm_state_floats(dk, dv);
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    for (int si = 0; si < 3; si++)
        for (int s0 = 0; s0 < 2; s0++) {
            sl_tensor *in[6];
            make_inputs(&rng, MIX, B, T, H, dk, dv, B, s0, 1.0f, in);
            sl_ctx ctx;
            sl_ctx_init(&ctx, 1 << 20);
            ctx.grad_enabled = false;
            int64_t t1 = splits[si];
            float *fin = malloc((size_t)ns * sizeof(float));
            sl_tensor *whole =
                sl_mlstm(&ctx, in[0], in[1], in[2], in[3], in[4], in[5], H, C, fin, NULL);
            sl_tensor *st = SL_NEW(&ctx, B, H, sl_mlstm_state_floats(dk, dv));
            if (s0)
                memcpy(st->data, in[5]->data, (size_t)ns * sizeof(float));
            else
                sl_mlstm_state_fresh(st->data, B * H, dk, dv);
            sl_tensor *part[2];
            for (int p = 0; p < 2; p++) {
                int64_t lo = p ? t1 : 0, n = p ? T - t1 : t1;
                sl_tensor *sl[5];
                for (int i = 0; i < 5; i++) sl[i] = gc_time_slice(&ctx, in[i], lo, n);
                /* The state goes out through s_final into the same buffer. */
                part[p] =
                    sl_mlstm(&ctx, sl[0], sl[1], sl[2], sl[3], sl[4], st, H, C, st->data, NULL);
            }
            double worst = 0, *kappa = malloc((size_t)(B * T * H) * sizeof(double));
            condition(in, NULL, B, T, H, dk, dv, kappa);
            for (int64_t b = 0; b < B; b++)
                for (int p = 0; p < 2; p++) {
                    int64_t lo = p ? t1 : 0, n = p ? T - t1 : t1, W = H * dv;
                    double r =
                        kappa_ratio(part[p]->data + b * n * W, whole->data + (b * T + lo) * W,
                                    kappa + (b * T + lo) * H, n, H, dv, rms(whole->data, whole->n));
                    worst = fmax(worst, r);
                }
            free(kappa);
            double rf = close_ratio(st->data, fin, ns, 1e-5 * rms(fin, ns), 1e-5);
            CHECK(worst <= 1 && rf <= 1, "split at %lld, s0 %d: out %g, state %g", (long long)t1,
                  s0, worst, rf);
            free(fin);
            sl_ctx_free(&ctx);
            gc_free_all(in, 6);
        }
}

static void test_steps_equal_forward(void)
{
    const int64_t C = 8, H = 2, dk = 4, dv = 3, T = 21, ssz = sl_mlstm_state_floats(dk, dv);
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    for (int s0 = 0; s0 < 2; s0++) {
        sl_tensor *in[6];
        make_inputs(&rng, MIX, 1, T, H, dk, dv, 1, s0, 1.0f, in);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        ctx.grad_enabled = false;
        float fin[2 * 17], S[2 * 17], y[2 * 3];
        sl_tensor *o = sl_mlstm(&ctx, in[0], in[1], in[2], in[3], in[4], in[5], H, C, fin, NULL);
        if (s0)
            memcpy(S, in[5]->data, sizeof S);
        else
            sl_mlstm_state_fresh(S, H, dk, dv);
        double worst = 0, *kappa = malloc((size_t)(T * H) * sizeof(double));
        condition(in, NULL, 1, T, H, dk, dv, kappa);
        for (int64_t t = 0; t < T; t++) {
            sl_mlstm_step(S, in[0]->data + t * H * dk, in[1]->data + t * H * dk,
                          in[2]->data + t * H * dv, in[3]->data + t * H, in[4]->data + t * H, H, dk,
                          dv, y);
            worst = fmax(worst, kappa_ratio(y, o->data + t * H * dv, kappa + t * H, 1, H, dv,
                                            rms(o->data, o->n)));
        }
        free(kappa);
        double rf = close_ratio(S, fin, H * ssz, 1e-5 * rms(fin, H * ssz), 1e-5);
        CHECK(worst <= 1 && rf <= 1, "s0 %d: out %g, state %g", s0, worst, rf);
        /* An all-zero state is a fresh one too (the unstabilised state is 0
         * whatever m is): the first step from it gives the same output. */
        float Z[2 * 17] = {0};
        sl_mlstm_step(Z, in[0]->data, in[1]->data, in[2]->data, in[3]->data, in[4]->data, H, dk, dv,
                      y);
        if (!s0)
            CHECK(close_ratio(y, o->data, H * dv, 1e-6 * rms(o->data, o->n), 1e-5) <= 1,
                  "zero state == fresh state");
        sl_ctx_free(&ctx);
        gc_free_all(in, 6);
    }
}

/* Every input's gradient by finite differences, in each regime where the
 * normaliser's max() keeps one side, with and without s0. */
static void check_gradients(int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv, int64_t C,
                            uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int regime = FLOOR; regime < NREGIMES; regime++)
        for (int s0 = 0; s0 < 2; s0++) {
            ml_arg a = {H, C, s0, NULL};
            sl_tensor *in[6];
            make_inputs(&rng, regime, B, T, H, dk, dv, B, s0, 0.7f, in);
            double lo, hi;
            den_range(in, B, T, H, dk, dv, &lo, &hi);
            /* A margin of 30% from the kink: a step of h moves |den| far less. */
            bool ok = regime == FLOOR ? hi < 0.7 : lo > 1.3;
            CHECK(ok, "%s s0 %d: |den| / floor in [%g, %g], the regime's side of 1", REGIME[regime],
                  s0, lo, hi);
            char name[64];
            snprintf(name, sizeof name, "mlstm %s C %lld s0 %d", REGIME[regime], (long long)C, s0);
            CHECK(gradcheck(name, ml_fn, in, s0 ? 6 : 5, &a, 1e-2f, 3e-4, 3e-3, 200), "%s", name);
            gc_free_all(in, 6);
        }
}

static void test_gradient_finite_differences(void)
{
    /* Tolerances as for the recurrence op: float32 rounding of ~100 outputs
     * is ~5e-5 after a central difference at h = 1e-2, the h^2 truncation
     * ~1e-5 for these smooth O(1) functions; atol 3e-4 with rtol 3e-3 still
     * fails a missing or 1%-wrong term.
     * T = 8 with C = 3: two whole chunks and a ragged one, so the state
     * carried between chunks is differentiated too. */
    check_gradients(2, 8, 2, 3, 2, 3, 4);
    /* T = 45 with C = 40: the 40-token chunk covers whole 16-column tiles and
     * a tail in every product over tokens, and the last chunk is ragged. */
    check_gradients(1, 45, 1, 3, 2, 40, 5);
    /* dk = dv = 16 (dva = 17): the backward's products over dk, dv and dva
     * run whole 16-column tiles as well as the denominator's column (its
     * own vector loops), over a whole 16-token chunk and a ragged one. */
    check_gradients(1, 23, 1, 16, 16, 16, 6);
}

static void test_threads_do_not_change_results(void)
{
    const int64_t B = 2, T = 200, H = 3, dk = 16, dv = 16;
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    ml_arg a = {H, 64, true, NULL};
    sl_tensor *in[6];
    make_inputs(&rng, MIX, B, T, H, dk, dv, B, true, 1.0f, in);
    float *dout = malloc((size_t)(B * T * H * dv) * sizeof(float));
    for (int64_t i = 0; i < B * T * H * dv; i++) dout[i] = sl_rng_normal(&rng);
    float *ref_out = malloc((size_t)(B * T * H * dv) * sizeof(float));
    float *ref_grad[6];
    for (int i = 0; i < 6; i++) ref_grad[i] = malloc((size_t)in[i]->n * sizeof(float));
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        for (int i = 0; i < 6; i++) memset(in[i]->grad, 0, (size_t)in[i]->n * sizeof(float));
        sl_tensor *o = ml_fn(&ctx, in, &a);
        sl_backward_with(&ctx, o, dout);
        if (threads == 1) {
            memcpy(ref_out, o->data, (size_t)o->n * sizeof(float));
            for (int i = 0; i < 6; i++)
                memcpy(ref_grad[i], in[i]->grad, (size_t)in[i]->n * sizeof(float));
        } else {
            CHECK(!memcmp(ref_out, o->data, (size_t)o->n * sizeof(float)), "out, %d threads",
                  threads);
            for (int i = 0; i < 6; i++)
                CHECK(!memcmp(ref_grad[i], in[i]->grad, (size_t)in[i]->n * sizeof(float)),
                      "grad of input %d, %d threads", i, threads);
        }
        sl_ctx_free(&ctx);
    }
    omp_set_num_threads(saved);
    free(dout);
    free(ref_out);
    for (int i = 0; i < 6; i++) free(ref_grad[i]);
    gc_free_all(in, 6);
}

static void test_extreme_inputs_long_sequence(void)
{
    /* T = 65536: input gates +-1e4, +-80 and N(0, 20); log forget gates
     * -1e4 (a logsigmoid of a huge negative logit), down to -80, -1e-3 and
     * exactly 0 (a saturated open gate); q, k, v of size 100. Outputs, the
     * final state and every gradient stay finite; the output agrees with
     * the double reference; the arena holds nothing T x T. */
    const int64_t B = 1, T = 65536, H = 2, dk = 4, dv = 4, C = 64;
    const int64_t ns = H * sl_mlstm_state_floats(dk, dv);
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    for (int s0 = 0; s0 < 2; s0++) {
        sl_tensor *in[6];
        make_inputs(&rng, MIX, B, T, H, dk, dv, B, s0, 100.0f, in);
        for (int64_t i = 0; i < in[3]->n; i++) {
            int64_t c = i % 11;
            in[3]->data[i] = c == 0   ? 1e4f
                             : c == 1 ? -1e4f
                             : c == 2 ? 80.0f
                             : c == 3 ? -80.0f
                                      : 20.0f * sl_rng_normal(&rng);
            int64_t e = i % 7;
            in[4]->data[i] = e == 0   ? -1e4f
                             : e == 1 ? 0.0f
                             : e == 2 ? -1e-3f
                                      : -80.0f * sl_rng_uniform(&rng);
        }
        if (in[5])
            for (int64_t h = 0; h < H; h++) in[5]->data[(h + 1) * (ns / H) - 1] = 50.0f;
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 16);
        float fin[2 * 21];
        sl_tensor *o = sl_mlstm(&ctx, in[0], in[1], in[2], in[3], in[4], in[5], H, C, fin, NULL);
        float *dout = malloc((size_t)o->n * sizeof(float));
        for (int64_t i = 0; i < o->n; i++) dout[i] = sl_rng_normal(&rng);
        sl_backward_with(&ctx, o, dout);
        bool finite = true;
        for (int64_t i = 0; i < o->n; i++) finite &= isfinite(o->data[i]);
        for (int i = 0; i < ns; i++) finite &= isfinite(fin[i]);
        for (int i = 0; i < 6; i++)
            for (int64_t j = 0; in[i] && j < in[i]->n; j++) finite &= isfinite(in[i]->grad[j]);
        CHECK(finite, "s0 %d: finite outputs, state and gradients", s0);
        float *ref = malloc((size_t)o->n * sizeof(float));
        sl_mlstm_ref(in[0]->data, in[1]->data, in[2]->data, in[3]->data, in[4]->data,
                     in[5] ? in[5]->data : NULL, B, T, H, dk, dv, ref, NULL, NULL);
        double r = close_ratio(o->data, ref, o->n, 1e-4 * rms(ref, o->n), 1e-4);
        CHECK(r <= 1, "s0 %d: chunked vs reference under extreme gates: ratio %g", s0, r);
        /* The inputs live outside the arena; the output and its gradient
         * are 16 floats a token, the saved chunk states well under one. */
        size_t bound = (size_t)T * 64 * sizeof(float);
        CHECK(ctx.arena.peak < bound, "arena peak %zu bytes, bound %zu", ctx.arena.peak, bound);
        free(ref);
        free(dout);
        sl_ctx_free(&ctx);
        gc_free_all(in, 6);
    }
}

static void test_packed_equals_one_by_one(void)
{
    /* Lengths 0, 1, > C, = C, ragged: C = 8. Every sequence has its own s0
     * row and s_final row. */
    const int64_t lens[] = {5, 0, 1, 19, 8, 0, 13}, n = 7, C = 8, H = 2, dk = 4, dv = 3;
    const int64_t ssz = sl_mlstm_state_floats(dk, dv);
    int64_t cu[8] = {0};
    for (int64_t i = 0; i < n; i++) cu[i + 1] = cu[i] + lens[i];
    const int64_t T = cu[n];
    sl_seqs seqs = {n, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    for (int s0 = 0; s0 < 2; s0++) {
        sl_tensor *in[6];
        make_inputs(&rng, MIX, 1, T, H, dk, dv, n, s0, 1.0f, in);
        float *dout = malloc((size_t)(T * H * dv) * sizeof(float));
        for (int64_t i = 0; i < T * H * dv; i++) dout[i] = sl_rng_normal(&rng);
        float *fin = malloc((size_t)(n * H * ssz) * sizeof(float));
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *o = sl_mlstm(&ctx, in[0], in[1], in[2], in[3], in[4], in[5], H, C, fin, &seqs);
        sl_backward_with(&ctx, o, dout);
        /* The reference over the same packed batch. */
        float *ref = malloc((size_t)o->n * sizeof(float)),
              *ref_fin = malloc((size_t)(n * H * ssz) * sizeof(float));
        sl_mlstm_ref(in[0]->data, in[1]->data, in[2]->data, in[3]->data, in[4]->data,
                     in[5] ? in[5]->data : NULL, 1, T, H, dk, dv, ref, ref_fin, &seqs);
        double *kappa = malloc((size_t)(T * H) * sizeof(double));
        condition(in, &seqs, 1, T, H, dk, dv, kappa);
        double rr = kappa_ratio(o->data, ref, kappa, T, H, dv, rms(ref, o->n));
        free(kappa);
        double rrf = close_ratio(fin, ref_fin, n * H * ssz, 1e-5 * rms(ref_fin, n * H * ssz), 1e-5);
        CHECK(rr <= 1 && rrf <= 1, "s0 %d: packed op vs packed reference: out %g, state %g", s0, rr,
              rrf);
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            sl_tensor *one[6];
            for (int j = 0; j < 5; j++) one[j] = gc_leaf_slice(in[j], cu[i], lens[i]);
            one[5] = NULL;
            if (s0) {
                one[5] = GC_LEAF(&rng, 0.0f, 1, H, ssz);
                memcpy(one[5]->data, in[5]->data + i * H * ssz, (size_t)(H * ssz) * sizeof(float));
            }
            float fin1[2 * 17];
            sl_ctx c1;
            sl_ctx_init(&c1, 1 << 20);
            sl_tensor *o1 =
                sl_mlstm(&c1, one[0], one[1], one[2], one[3], one[4], one[5], H, C, fin1, NULL);
            if (lens[i]) sl_backward_with(&c1, o1, dout + cu[i] * H * dv);
            worst = fmax(worst, close_ratio(o->data + cu[i] * H * dv, o1->data, lens[i] * H * dv,
                                            1e-6, 1e-6));
            worst = fmax(worst, close_ratio(fin + i * H * ssz, fin1, H * ssz, 1e-6, 1e-6));
            for (int j = 0; j < 5; j++) {
                int64_t W = in[j]->shape[2];
                worst = fmax(worst, close_ratio(in[j]->grad + cu[i] * W, one[j]->grad, lens[i] * W,
                                                1e-6, 1e-6));
            }
            if (s0)
                worst = fmax(worst, close_ratio(in[5]->grad + i * H * ssz, one[5]->grad, H * ssz,
                                                1e-6, 1e-6));
            sl_ctx_free(&c1);
            for (int j = 0; j < 6; j++)
                if (one[j]) gc_free(one[j]);
        }
        CHECK(worst <= 1, "s0 %d: packed vs one by one (outputs, states, every gradient): %g", s0,
              worst);
        free(ref);
        free(ref_fin);
        free(fin);
        free(dout);
        sl_ctx_free(&ctx);
        gc_free_all(in, 6);
    }
}

/* Blocks of one wide tensor X = [pad 1 | q | v | k | pad 2]: [B, T, W],
 * heads H x (dk, dv); q and k scaled as they are read (0 reads as 1). */
typedef struct {
    float q_scale, k_scale;
    int64_t H, dk, dv, C;
} blocks_arg;

static float scale_of(float s) { return s != 0.0f ? s : 1.0f; }

static sl_rec_in blocks_of(const blocks_arg *a, sl_tensor *X)
{
    const int64_t Hk = a->H * a->dk;
    return (sl_rec_in){.q = X,
                       .k = X,
                       .v = X,
                       .q_off = 1,
                       .v_off = 1 + Hk,
                       .k_off = 1 + Hk + a->H * a->dv,
                       .dk = a->dk,
                       .dv = a->dv,
                       .map = SL_REC_PLAIN,
                       .q_scale = a->q_scale,
                       .k_scale = a->k_scale};
}

/* in = {X, igate, lfgate, s0}: the fused op. */
static sl_tensor *blocks_fused(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const blocks_arg *a = arg;
    const sl_rec_in r = blocks_of(a, in[0]);
    return sl_mlstm_in(ctx, &r, in[1], in[2], in[3], a->H, a->C, NULL, NULL);
}

/* The same from separate ops: column copies, then the scales. */
static sl_tensor *blocks_unfused(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const blocks_arg *a = arg;
    const sl_rec_in r = blocks_of(a, in[0]);
    const int64_t Hk = a->H * a->dk;
    sl_tensor *q = sl_scale(ctx, sl_columns(ctx, in[0], r.q_off, Hk), scale_of(a->q_scale));
    sl_tensor *k = sl_scale(ctx, sl_columns(ctx, in[0], r.k_off, Hk), scale_of(a->k_scale));
    sl_tensor *v = sl_columns(ctx, in[0], r.v_off, a->H * a->dv);
    return sl_mlstm(ctx, q, k, v, in[1], in[2], in[3], a->H, a->C, NULL, NULL);
}

/* in = {X, igate, lfgate, s0} for B rows of T tokens, drawn by make_inputs
 * in the regime given: the blocks of X are its q, k, v divided by the
 * scales, so the op reads make_inputs' values; the pads are N(0, 1).
 * lo, hi: den_range over those values. */
static void make_blocks(sl_rng *rng, int regime, const blocks_arg *a, int64_t B, int64_t T,
                        sl_tensor **in, double *lo, double *hi)
{
    const int64_t H = a->H, dk = a->dk, dv = a->dv, W = 1 + H * (2 * dk + dv) + 2;
    sl_tensor *sep[6];
    make_inputs(rng, regime, B, T, H, dk, dv, B, true, 0.7f, sep);
    den_range(sep, B, T, H, dk, dv, lo, hi);
    in[0] = GC_LEAF(rng, 1.0f, B, T, W);
    const sl_rec_in r = blocks_of(a, in[0]);
    const float qs = scale_of(a->q_scale), ks = scale_of(a->k_scale);
    for (int64_t t = 0; t < B * T; t++) {
        float *x = in[0]->data + t * W;
        for (int64_t j = 0; j < H * dk; j++) {
            x[r.q_off + j] = sep[0]->data[t * H * dk + j] / qs;
            x[r.k_off + j] = sep[1]->data[t * H * dk + j] / ks;
        }
        for (int64_t j = 0; j < H * dv; j++) x[r.v_off + j] = sep[2]->data[t * H * dv + j];
    }
    for (int i = 0; i < 3; i++) in[1 + i] = sep[3 + i];
    gc_free_all(sep, 3);
}

/* The largest |fused - unfused| / (1e-3 + |unfused|) over the output and
 * the gradients of every input, for the upstream gradient sin(i). */
static double fused_vs_unfused(sl_tensor **in, blocks_arg *a)
{
    float *out[2], *grads[2][4];
    int64_t n = 0;
    for (int f = 0; f < 2; f++) {
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 22);
        for (int i = 0; i < 4; i++) memset(in[i]->grad, 0, (size_t)in[i]->n * sizeof(float));
        sl_tensor *o = (f ? blocks_unfused : blocks_fused)(&ctx, in, a);
        n = o->n;
        float *dy = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) dy[i] = sinf((float)i);
        sl_backward_with(&ctx, o, dy);
        out[f] = gc_dup(o->data, n);
        for (int i = 0; i < 4; i++) grads[f][i] = gc_dup(in[i]->grad, in[i]->n);
        free(dy);
        sl_ctx_free(&ctx);
    }
    double worst = 0;
    for (int64_t j = 0; j < n; j++)
        worst = fmax(worst, fabs(out[0][j] - out[1][j]) / (1e-3 + fabs(out[1][j])));
    for (int i = 0; i < 4; i++)
        for (int64_t j = 0; j < in[i]->n; j++)
            worst = fmax(worst, fabs(grads[0][i][j] - grads[1][i][j]) /
                                    (1e-3 + fabs(grads[1][i][j])));
    for (int f = 0; f < 2; f++) {
        free(out[f]);
        for (int i = 0; i < 4; i++) free(grads[f][i]);
    }
    return worst;
}

/* q, k, v as blocks of one wide tensor, k scaled as read (as the mixer
 * reads its projection), with and without a q scale: output and the
 * gradients of X, both gates and s0 equal to column copies scaled by
 * sl_scale, and the fused gradients by finite differences (the pads' are
 * 0 both ways). */
static void test_blocks_of_one_tensor(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 31);
    for (int c = 0; c < 2; c++) {
        /* dk = dv = 16 with C = 16: whole tiles, a ragged last chunk. */
        blocks_arg a = {c ? 1.3f : 0.0f, 0.7f, 2, 16 - 11 * c, 16 - 13 * c, 16 - 9 * c};
        sl_tensor *in[4];
        double lo, hi;
        make_blocks(&rng, MIX, &a, 2, 37, in, &lo, &hi);
        const double worst = fused_vs_unfused(in, &a);
        CHECK(worst < 1e-5, "q scale %g, k scale %g, dk %lld: fused vs unfused %g", a.q_scale,
              a.k_scale, (long long)a.dk, worst);
        gc_free_all(in, 4);
    }
    for (int c = 0; c < 2; c++) {
        /* Two whole chunks and a ragged one; |n . q| well over the floor. */
        blocks_arg a = {c ? 1.3f : 0.0f, 0.7f, 2, 3, 2, 3};
        sl_tensor *in[4];
        double lo, hi;
        make_blocks(&rng, DEN_POS, &a, 2, 8, in, &lo, &hi);
        CHECK(lo > 1.3, "blocks: |den| / floor >= %g, over the regime's margin", lo);
        char name[64];
        snprintf(name, sizeof name, "mlstm blocks q scale %g k scale %g", a.q_scale, a.k_scale);
        CHECK(gradcheck(name, blocks_fused, in, 4, &a, 1e-2f, 3e-4, 3e-3, 400), "%s", name);
        gc_free_all(in, 4);
    }
}

int main(void)
{
    RUN(test_chunked_matches_reference);
    RUN(test_split_equals_whole);
    RUN(test_steps_equal_forward);
    RUN(test_gradient_finite_differences);
    RUN(test_threads_do_not_change_results);
    RUN(test_extreme_inputs_long_sequence);
    RUN(test_packed_equals_one_by_one);
    RUN(test_blocks_of_one_tensor);
    return TEST_SUMMARY();
}
