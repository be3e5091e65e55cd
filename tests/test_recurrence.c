/* Decayed matrix-state recurrence: the chunked op against the step-by-step
 * reference in every decay mode and at lengths around chunk edges, a split
 * sequence against a whole one, the one-token step against the op, the
 * backward against finite differences, a key-dim decay with equal gates
 * against the per-token decay, a packed batch of variable-length sequences
 * against each alone, finite results with O(T) memory at T = 65536 under
 * extreme inputs, and blocks read in place from one wide tensor through a
 * fused feature map against the unfused composition. */
#include <omp.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/columns.h"
#include "ops/gate_maps.h"
#include "ops/ops.h"
#include "ops/recurrence.h"

enum { MODE_NONE, MODE_HEAD, MODE_TOKEN, MODE_KEY, NMODES };
static const char *const MODE_NAME[] = {"none", "per head", "per token", "per key dim"};

typedef struct {
    int mode;
    int64_t H, C;
    float log_gamma[4];
    bool with_s0;
} rec_arg;

/* RetNet's gammas, 1 - 2^(-5-h). */
static void retnet_gammas(rec_arg *a)
{
    for (int h = 0; h < 4; h++) a->log_gamma[h] = logf(1.0f - exp2f(-5.0f - (float)h));
}

/* Width of g per head in a mode: 0 (no g tensor), 1 or dk. */
static int64_t gw_of(int mode, int64_t dk)
{
    return mode == MODE_TOKEN ? 1 : mode == MODE_KEY ? dk : 0;
}

/* A log-decay in (-inf, 0): logsigmoid of N(0, 1) draws, as GLA's gate. */
static void fill_gates(sl_rng *rng, float *g, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float x = sl_rng_normal(rng) + 1.0f;
        g[i] = -log1pf(expf(-x));
    }
}

/* in = {q, k, v, then g and s0 where the mode and arg have them}. */
static sl_tensor *rec_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const rec_arg *a = arg;
    int i = 3;
    sl_tensor *g = a->mode == MODE_TOKEN || a->mode == MODE_KEY ? in[i++] : NULL;
    sl_tensor *s0 = a->with_s0 ? in[i] : NULL;
    return sl_recurrence(ctx, in[0], in[1], in[2], g, a->mode == MODE_HEAD ? a->log_gamma : NULL,
                         s0, a->H, a->C, NULL, NULL);
}

/* Inputs for B, T, H, dk, dv in a mode: q, k, v N(0, scale), g gates, s0 N(0, 1). */
static void make_inputs(sl_rng *rng, const rec_arg *a, int64_t B, int64_t T, int64_t dk, int64_t dv,
                        float scale, sl_tensor **in)
{
    int64_t H = a->H, gw = gw_of(a->mode, dk);
    in[0] = GC_LEAF(rng, scale, B, T, H * dk);
    in[1] = GC_LEAF(rng, scale, B, T, H * dk);
    in[2] = GC_LEAF(rng, scale, B, T, H * dv);
    in[3] = gw ? GC_LEAF(rng, 1.0f, B, T, H * gw) : NULL;
    if (in[3]) fill_gates(rng, in[3]->data, in[3]->n);
    in[4] = a->with_s0 ? GC_LEAF(rng, 1.0f, B, H, dk, dv) : NULL;
}

/* Chunked vs reference at every T in {1, C-1, C, C+1, 3C+5}, every mode,
 * with and without s0, for heads (dk, dv); B = 2, H = 2. */
static void check_against_reference(sl_rng *rng, int64_t C, int64_t dk, int64_t dv)
{
    const int64_t B = 2, H = 2, Ts[] = {1, C - 1, C, C + 1, 3 * C + 5};
    for (int mode = 0; mode < NMODES; mode++)
        for (int ti = 0; ti < 5; ti++)
            for (int s0 = 0; s0 < 2; s0++) {
                rec_arg a = {mode, H, C, {0}, s0};
                retnet_gammas(&a);
                int64_t T = Ts[ti];
                sl_tensor *in[5];
                make_inputs(rng, &a, B, T, dk, dv, 1.0f, in);
                sl_ctx ctx;
                sl_ctx_init(&ctx, 1 << 20);
                ctx.grad_enabled = false;
                float *fin = malloc((size_t)(B * H * dk * dv) * sizeof(float));
                float *ref = malloc((size_t)(B * T * H * dv) * sizeof(float));
                float *ref_fin = malloc((size_t)(B * H * dk * dv) * sizeof(float));
                sl_tensor *o =
                    sl_recurrence(&ctx, in[0], in[1], in[2], in[3],
                                  mode == MODE_HEAD ? a.log_gamma : NULL, in[4], H, C, fin, NULL);
                sl_recurrence_ref(in[0]->data, in[1]->data, in[2]->data, in[3] ? in[3]->data : NULL,
                                  gw_of(mode, dk), mode == MODE_HEAD ? a.log_gamma : NULL,
                                  in[4] ? in[4]->data : NULL, B, T, H, dk, dv, ref, ref_fin,
                                  NULL);
                /* 1e-5 relative, with an absolute floor of 1e-5 of the
                 * outputs' RMS: an output that is a cancelling sum of O(1)
                 * terms can be near zero, and float rounding of its terms is
                 * relative to them, not to it. */
                double r = close_ratio(o->data, ref, o->n, 1e-5 * rms(ref, o->n), 1e-5);
                double rf = close_ratio(fin, ref_fin, B * H * dk * dv,
                                        1e-5 * rms(ref_fin, B * H * dk * dv), 1e-5);
                CHECK(r <= 1 && rf <= 1, "%s C %lld T %lld dk %lld dv %lld s0 %d: out %g, state %g",
                      MODE_NAME[mode], (long long)C, (long long)T, (long long)dk, (long long)dv, s0,
                      r, rf);
                free(fin);
                free(ref);
                free(ref_fin);
                sl_ctx_free(&ctx);
                gc_free_all(in, 5);
            }
}

static void test_chunked_matches_reference(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 1);
    /* Tiny chunks with square and non-square heads, then the default chunk
     * with a realistic head. */
    check_against_reference(&rng, 8, 4, 4);
    check_against_reference(&rng, 8, 5, 3);
    check_against_reference(&rng, 64, 32, 32);
}

static void test_split_equals_whole(void)
{
    const int64_t C = 8, B = 2, H = 2, dk = 4, dv = 4, T = 29, splits[] = {1, 8, 13};
    sl_rng rng;
    sl_rng_seed(&rng, 2);
    for (int mode = 0; mode < NMODES; mode++)
        for (int si = 0; si < 3; si++) {
            rec_arg a = {mode, H, C, {0}, true};
            retnet_gammas(&a);
            const float *lg = mode == MODE_HEAD ? a.log_gamma : NULL;
            sl_tensor *in[5];
            make_inputs(&rng, &a, B, T, dk, dv, 1.0f, in);
            sl_ctx ctx;
            sl_ctx_init(&ctx, 1 << 20);
            ctx.grad_enabled = false;
            int64_t ns = B * H * dk * dv, t1 = splits[si];
            float *fin = malloc((size_t)ns * sizeof(float));
            sl_tensor *whole =
                sl_recurrence(&ctx, in[0], in[1], in[2], in[3], lg, in[4], H, C, fin, NULL);
            sl_tensor *st = SL_NEW(&ctx, B, H, dk, dv);
            memcpy(st->data, in[4]->data, (size_t)ns * sizeof(float));
            sl_tensor *part[2];
            for (int p = 0; p < 2; p++) {
                int64_t lo = p ? t1 : 0, n = p ? T - t1 : t1;
                sl_tensor *g = in[3] ? gc_time_slice(&ctx, in[3], lo, n) : NULL;
                /* The state goes out through s_final into the same buffer. */
                part[p] = sl_recurrence(&ctx, gc_time_slice(&ctx, in[0], lo, n),
                                        gc_time_slice(&ctx, in[1], lo, n),
                                        gc_time_slice(&ctx, in[2], lo, n), g, lg, st, H, C, st->data,
                                        NULL);
            }
            double worst = 0;
            for (int64_t b = 0; b < B; b++)
                for (int p = 0; p < 2; p++) {
                    int64_t lo = p ? t1 : 0, n = p ? T - t1 : t1, W = H * dv;
                    double r =
                        close_ratio(part[p]->data + b * n * W, whole->data + (b * T + lo) * W,
                                    n * W, 1e-5 * rms(whole->data, whole->n), 1e-5);
                    if (r > worst) worst = r;
                }
            double rf = close_ratio(st->data, fin, ns, 1e-5 * rms(fin, ns), 1e-5);
            CHECK(worst <= 1 && rf <= 1, "%s split at %lld: out %g, state %g", MODE_NAME[mode],
                  (long long)t1, worst, rf);
            free(fin);
            sl_ctx_free(&ctx);
            gc_free_all(in, 5);
        }
}

static void test_steps_equal_forward(void)
{
    const int64_t C = 8, H = 2, dk = 4, dv = 3, T = 21;
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    for (int mode = 0; mode < NMODES; mode++) {
        rec_arg a = {mode, H, C, {0}, true};
        retnet_gammas(&a);
        const float *lg = mode == MODE_HEAD ? a.log_gamma : NULL;
        int64_t gw = gw_of(mode, dk);
        sl_tensor *in[5];
        make_inputs(&rng, &a, 1, T, dk, dv, 1.0f, in);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        ctx.grad_enabled = false;
        sl_tensor *o = sl_recurrence(&ctx, in[0], in[1], in[2], in[3], lg, in[4], H, C, NULL, NULL);
        float S[2 * 4 * 3], y[2 * 3];
        memcpy(S, in[4]->data, sizeof S);
        double worst = 0;
        for (int64_t t = 0; t < T; t++) {
            sl_recurrence_step(S, in[0]->data + t * H * dk, in[1]->data + t * H * dk,
                               in[2]->data + t * H * dv, gw ? in[3]->data + t * H * gw : NULL, gw,
                               lg, H, dk, dv, y);
            double r =
                close_ratio(y, o->data + t * H * dv, H * dv, 1e-5 * rms(o->data, o->n), 1e-5);
            if (r > worst) worst = r;
        }
        CHECK(worst <= 1, "%s: ratio %g", MODE_NAME[mode], worst);
        sl_ctx_free(&ctx);
        gc_free_all(in, 5);
    }
}

/* Every input's gradient by finite differences, in every mode, with and
 * without s0, for one shape. */
static void check_gradients(int64_t B, int64_t T, int64_t H, int64_t dk, int64_t dv, int64_t C,
                            uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int mode = 0; mode < NMODES; mode++)
        for (int s0 = 0; s0 < 2; s0++) {
            rec_arg a = {mode, H, C, {0}, s0};
            retnet_gammas(&a);
            sl_tensor *in[5];
            make_inputs(&rng, &a, B, T, dk, dv, 0.7f, in);
            sl_tensor *packed[5];
            int n = 0;
            for (int i = 0; i < 5; i++)
                if (in[i]) packed[n++] = in[i];
            char name[64];
            snprintf(name, sizeof name, "recurrence %s C %lld s0 %d", MODE_NAME[mode], (long long)C,
                     s0);
            CHECK(gradcheck(name, rec_fn, packed, n, &a, 1e-2f, 3e-4, 3e-3, 200), "%s", name);
            gc_free_all(in, 5);
        }
}

static void test_gradient_finite_differences(void)
{
    /* Tolerances: the op runs in float32; L sums up to ~100 outputs of size
     * ~1, so it carries ~1e-6 of rounding noise, ~5e-5 after the central
     * difference at h = 1e-2; the h^2 truncation term is ~1e-5 for these
     * smooth O(1) functions (exp of gates in (-4, 0)). Gradients are
     * O(0.1 .. 3), so atol 3e-4 with rtol 3e-3 leaves a margin and still
     * fails a missing or 1%-wrong term.
     * T = 8 with C = 3: two whole chunks and a ragged one, so the state
     * carried between chunks is differentiated too. */
    check_gradients(2, 8, 2, 3, 2, 3, 4);
    /* T = 45 with C = 40: the chunk products run in register tiles of 16
     * columns, so a 40-token chunk covers whole tiles and a column tail in
     * every product over tokens, and the last chunk is ragged. */
    check_gradients(1, 45, 1, 3, 2, 40, 5);
}

/* A key-dim decay whose dk gates are equal is the per-token decay: the two
 * run different code (products of per-key steps in sub-blocks of the
 * chunk, with the diagonal blocks scored pair by pair; one masked product),
 * so outputs and the gradients of q, k, v and s0 must agree, and the key
 * gates' gradient summed over d must be the token gate's. A realistic head
 * (dk 64) and three chunks plus a ragged one, so every sub-block path runs
 * with whole vectors, where the finite-difference checks use dk = 3. */
static void test_key_decay_matches_token_decay(void)
{
    const int64_t B = 2, T = 3 * 64 + 21, H = 2, dk = 64, dv = 16, C = 64;
    sl_rng rng;
    sl_rng_seed(&rng, 8);
    rec_arg tok = {MODE_TOKEN, H, C, {0}, true}, key = {MODE_KEY, H, C, {0}, true};
    sl_tensor *in[5], *kin[5];
    make_inputs(&rng, &tok, B, T, dk, dv, 1.0f, in);
    for (int i = 0; i < 5; i++) kin[i] = in[i];
    kin[3] = GC_LEAF(&rng, 0.0f, B, T, H * dk);
    for (int64_t i = 0; i < kin[3]->n; i++) kin[3]->data[i] = in[3]->data[i / dk];
    float *dout = malloc((size_t)(B * T * H * dv) * sizeof(float));
    for (int64_t i = 0; i < B * T * H * dv; i++) dout[i] = sl_rng_normal(&rng);
    sl_tensor *o[2];
    float *grads[2][5];
    for (int run = 0; run < 2; run++) {
        sl_tensor **x = run ? kin : in;
        for (int i = 0; i < 5; i++) memset(x[i]->grad, 0, (size_t)x[i]->n * sizeof(float));
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *y = rec_fn(&ctx, x, run ? &key : &tok);
        sl_backward_with(&ctx, y, dout);
        o[run] = GC_LEAF(&rng, 0.0f, B, T, H * dv);
        memcpy(o[run]->data, y->data, (size_t)y->n * sizeof(float));
        for (int i = 0; i < 5; i++) {
            grads[run][i] = malloc((size_t)x[i]->n * sizeof(float));
            memcpy(grads[run][i], x[i]->grad, (size_t)x[i]->n * sizeof(float));
        }
        sl_ctx_free(&ctx);
    }
    /* The token gate's gradient from the key gates': summed over d. */
    float *dg_key = malloc((size_t)in[3]->n * sizeof(float));
    for (int64_t i = 0; i < in[3]->n; i++) {
        double acc = 0;
        for (int64_t d = 0; d < dk; d++) acc += grads[1][3][i * dk + d];
        dg_key[i] = (float)acc;
    }
    /* Both are float sums of the same terms in different orders: 1e-5
     * relative with a floor of 1e-5 of the RMS, as against the reference;
     * the gate gradients are differences of such sums over a chunk, so 1e-4. */
    double worst =
        close_ratio(o[1]->data, o[0]->data, o[0]->n, 1e-5 * rms(o[0]->data, o[0]->n), 1e-5);
    for (int i = 0; i < 5; i++) {
        const float *a = i == 3 ? dg_key : grads[1][i], *b = grads[0][i];
        const double tol = i == 3 ? 1e-4 : 1e-5;
        worst = fmax(worst, close_ratio(a, b, in[i]->n, tol * rms(b, in[i]->n), tol));
    }
    CHECK(worst <= 1, "key-dim decay with equal gates vs per-token decay: ratio %g", worst);
    for (int run = 0; run < 2; run++) {
        gc_free(o[run]);
        for (int i = 0; i < 5; i++) free(grads[run][i]);
    }
    free(dg_key);
    free(dout);
    gc_free(kin[3]);
    gc_free_all(in, 5);
}

static void test_threads_do_not_change_results(void)
{
    const int64_t B = 2, T = 200, H = 3, dk = 16, dv = 16;
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    rec_arg a = {MODE_KEY, H, 64, {0}, true};
    sl_tensor *in[5];
    make_inputs(&rng, &a, B, T, dk, dv, 1.0f, in);
    float *dout = malloc((size_t)(B * T * H * dv) * sizeof(float));
    for (int64_t i = 0; i < B * T * H * dv; i++) dout[i] = sl_rng_normal(&rng);
    float *ref_out = malloc((size_t)(B * T * H * dv) * sizeof(float));
    float *ref_dg = malloc((size_t)in[3]->n * sizeof(float));
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        for (int i = 0; i < 5; i++) memset(in[i]->grad, 0, (size_t)in[i]->n * sizeof(float));
        sl_tensor *o = rec_fn(&ctx, in, &a);
        sl_backward_with(&ctx, o, dout);
        if (threads == 1) {
            memcpy(ref_out, o->data, (size_t)o->n * sizeof(float));
            memcpy(ref_dg, in[3]->grad, (size_t)in[3]->n * sizeof(float));
        } else {
            CHECK(!memcmp(ref_out, o->data, (size_t)o->n * sizeof(float)), "out, %d threads",
                  threads);
            CHECK(!memcmp(ref_dg, in[3]->grad, (size_t)in[3]->n * sizeof(float)), "dg, %d threads",
                  threads);
        }
        sl_ctx_free(&ctx);
    }
    omp_set_num_threads(saved);
    free(dout);
    free(ref_out);
    free(ref_dg);
    gc_free_all(in, 5);
}

/* A packed batch of sequences of lengths {0, 1, C-1, C, C+1, 2C+3} against
 * each run alone, in every mode, with per-sequence s0: outputs, final
 * states, and the gradients of q, k, v, g and s0 under one upstream
 * gradient; and the reference over the packed batch against the chunked
 * op. Nothing may cross a bound. */
static void test_packed_equals_one_by_one(void)
{
    const int64_t C = 5, H = 2, dk = 3, dv = 4, n = 6;
    const int64_t lens[6] = {0, 1, C - 1, C, C + 1, 2 * C + 3};
    int64_t cu[7] = {0};
    for (int64_t i = 0; i < n; i++) cu[i + 1] = cu[i] + lens[i];
    const int64_t T = cu[n], ssz = H * dk * dv;
    const sl_seqs seqs = {n, cu};
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    for (int mode = 0; mode < NMODES; mode++) {
        rec_arg a = {mode, H, C, {0}, true};
        retnet_gammas(&a);
        const float *lg = mode == MODE_HEAD ? a.log_gamma : NULL;
        sl_tensor *in[5];
        make_inputs(&rng, &a, 1, T, dk, dv, 1.0f, in);
        gc_free(in[4]);
        in[4] = GC_LEAF(&rng, 1.0f, n, H, dk, dv);
        float *dout = malloc((size_t)(T * H * dv) * sizeof(float));
        for (int64_t i = 0; i < T * H * dv; i++) dout[i] = sl_rng_normal(&rng);
        float *fin = malloc((size_t)(n * ssz) * sizeof(float));
        float *ref = malloc((size_t)(T * H * dv) * sizeof(float));
        float *ref_fin = malloc((size_t)(n * ssz) * sizeof(float));
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 20);
        sl_tensor *o = sl_recurrence(&ctx, in[0], in[1], in[2], in[3], lg, in[4], H, C, fin, &seqs);
        sl_backward_with(&ctx, o, dout);
        sl_recurrence_ref(in[0]->data, in[1]->data, in[2]->data, in[3] ? in[3]->data : NULL,
                          gw_of(mode, dk), lg, in[4]->data, 1, T, H, dk, dv, ref, ref_fin, &seqs);
        double worst = fmax(close_ratio(o->data, ref, o->n, 1e-5 * rms(ref, o->n), 1e-5),
                            close_ratio(fin, ref_fin, n * ssz, 1e-5 * rms(ref_fin, n * ssz), 1e-5));
        for (int64_t i = 0; i < n; i++) {
            if (lens[i] == 0) {
                /* An empty sequence passes its state through untouched. */
                worst = fmax(worst, close_ratio(fin + i * ssz, in[4]->data + i * ssz, ssz, 0, 0));
                continue;
            }
            sl_tensor *one[5];
            for (int j = 0; j < 4; j++)
                one[j] = in[j] ? gc_leaf_slice(in[j], cu[i], lens[i]) : NULL;
            one[4] = GC_LEAF(&rng, 0.0f, 1, H, dk, dv);
            memcpy(one[4]->data, in[4]->data + i * ssz, (size_t)ssz * sizeof(float));
            sl_ctx c1;
            sl_ctx_init(&c1, 1 << 20);
            float *fin1 = malloc((size_t)ssz * sizeof(float));
            sl_tensor *o1 =
                sl_recurrence(&c1, one[0], one[1], one[2], one[3], lg, one[4], H, C, fin1, NULL);
            sl_backward_with(&c1, o1, dout + cu[i] * H * dv);
            const double ta = 1e-5 * rms(ref, o->n);
            worst = fmax(worst, close_ratio(o->data + cu[i] * H * dv, o1->data, o1->n, ta, 1e-5));
            worst = fmax(worst, close_ratio(fin + i * ssz, fin1, ssz, ta, 1e-5));
            for (int j = 0; j < 5; j++) {
                if (!one[j]) continue;
                const float *g = j < 4 ? in[j]->grad + cu[i] * sl_last(in[j]) : in[4]->grad + i * ssz;
                worst = fmax(worst, close_ratio(g, one[j]->grad, one[j]->n, 1e-5, 1e-4));
                gc_free(one[j]);
            }
            free(fin1);
            sl_ctx_free(&c1);
        }
        CHECK(worst <= 1, "%s: packed vs one by one and vs reference: ratio %g", MODE_NAME[mode],
              worst);
        free(dout);
        free(fin);
        free(ref);
        free(ref_fin);
        sl_ctx_free(&ctx);
        gc_free_all(in, 5);
    }
}

static void test_extreme_inputs_long_sequence(void)
{
    /* T = 65536: gates from -1e-3 down to -80 (e^-80 ~ 2e-35, near the
     * bottom of float's range), and every seventh -1e4 (a logsigmoid of a
     * huge negative logit), so sums over a chunk reach -1e5; k and v of size
     * 100. Outputs, the final state and every gradient stay finite, and the
     * arena holds nothing T x T (that would be 16 GiB). */
    const int64_t B = 1, T = 65536, H = 2, dk = 4, dv = 4, C = 64;
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    for (int mode = 0; mode < NMODES; mode++) {
        rec_arg a = {mode, H, C, {0}, true};
        retnet_gammas(&a);
        sl_tensor *in[5];
        make_inputs(&rng, &a, B, T, dk, dv, 100.0f, in);
        if (in[3])
            for (int64_t i = 0; i < in[3]->n; i++)
                in[3]->data[i] = i % 7 == 0 ? -1e4f
                                 : i % 3    ? -80.0f * sl_rng_uniform(&rng)
                                            : -1e-3f;
        sl_ctx ctx;
        sl_ctx_init(&ctx, 1 << 16);
        float fin[2 * 4 * 4];
        sl_tensor *o = sl_recurrence(&ctx, in[0], in[1], in[2], in[3],
                                     mode == MODE_HEAD ? a.log_gamma : NULL, in[4], H, C, fin, NULL);
        float *dout = malloc((size_t)o->n * sizeof(float));
        for (int64_t i = 0; i < o->n; i++) dout[i] = sl_rng_normal(&rng);
        sl_backward_with(&ctx, o, dout);
        bool finite = true;
        for (int64_t i = 0; i < o->n; i++) finite &= isfinite(o->data[i]);
        for (int i = 0; i < 32; i++) finite &= isfinite(fin[i]);
        for (int i = 0; i < 5; i++)
            for (int64_t j = 0; in[i] && j < in[i]->n; j++) finite &= isfinite(in[i]->grad[j]);
        CHECK(finite, "%s: finite outputs, state and gradients", MODE_NAME[mode]);
        /* The inputs live outside the arena; the output and its gradient
         * are 16 floats a token, the saved chunk states half a float. */
        size_t bound = (size_t)T * 64 * sizeof(float);
        CHECK(ctx.arena.peak < bound, "%s: arena peak %zu bytes, bound %zu", MODE_NAME[mode],
              ctx.arena.peak, bound);
        free(dout);
        sl_ctx_free(&ctx);
        gc_free_all(in, 5);
    }
}

/* Blocks of one wide tensor X = [pad 1 | q | v | k | pad 2]: [B, T, W],
 * each row of heads H x (dk, dv), and a per-key-dim gate g or a per-head
 * decay. */
typedef struct {
    int map, mode;
    float q_scale, k_scale;
    int64_t H, dk, dv, C;
    float log_gamma[4];
} blocks_arg;

static sl_rec_in blocks_of(const blocks_arg *a, sl_tensor *X)
{
    const int64_t Hk = a->H * a->dk;
    return (sl_rec_in){.q = X, .k = X, .v = X, .q_off = 1, .v_off = 1 + Hk,
                       .k_off = 1 + Hk + a->H * a->dv, .dk = a->dk, .dv = a->dv,
                       .map = a->map, .q_scale = a->q_scale, .k_scale = a->k_scale};
}

/* in = {X, g}: the fused op. */
static sl_tensor *blocks_fused(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const blocks_arg *a = arg;
    const sl_rec_in r = blocks_of(a, in[0]);
    return sl_recurrence_in(ctx, &r, a->mode == MODE_KEY ? in[1] : NULL,
                            a->mode == MODE_HEAD ? a->log_gamma : NULL, NULL, a->H, a->C, NULL,
                            NULL);
}

/* The same from separate ops: column copies, the map, the scale. */
static sl_tensor *blocks_unfused(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    const blocks_arg *a = arg;
    const sl_rec_in r = blocks_of(a, in[0]);
    sl_tensor *qk[2] = {sl_columns(ctx, in[0], r.q_off, a->H * a->dk),
                        sl_columns(ctx, in[0], r.k_off, a->H * a->dk)};
    for (int i = 0; i < 2; i++)
        if (a->map != SL_REC_PLAIN)
            qk[i] = a->map == SL_REC_ELU1 ? sl_elu1(ctx, qk[i]) : sl_relu(ctx, qk[i]);
    return sl_recurrence(ctx, sl_scale(ctx, qk[0], a->q_scale), sl_scale(ctx, qk[1], a->k_scale),
                         sl_columns(ctx, in[0], r.v_off, a->H * a->dv),
                         a->mode == MODE_KEY ? in[1] : NULL,
                         a->mode == MODE_HEAD ? a->log_gamma : NULL, NULL, a->H, a->C, NULL,
                         NULL);
}

/* Output and gradients of X and g: fused == unfused up to rounding, and the
 * fused gradients by finite differences. */
static void test_blocks_of_one_tensor(void)
{
    const int maps[3] = {SL_REC_PLAIN, SL_REC_ELU1, SL_REC_RELU};
    sl_rng rng;
    sl_rng_seed(&rng, 21);
    for (int mi = 0; mi < 3; mi++)
        for (int mode = MODE_HEAD; mode <= MODE_KEY; mode += MODE_KEY - MODE_HEAD) {
            blocks_arg a = {maps[mi], mode, mi == 0 ? 0.5f : 1.0f, mi == 1 ? 1.5f : 1.0f, 2, 3, 2, 5,
                            {0}};
            for (int h = 0; h < 2; h++) a.log_gamma[h] = -0.1f * (float)(h + 1);
            const int64_t B = 2, T = 19, W = 1 + a.H * (2 * a.dk + a.dv) + 2;
            sl_tensor *in[2] = {GC_LEAF(&rng, 0.8f, B, T, W), GC_LEAF(&rng, 1.0f, B, T, a.H * a.dk)};
            fill_gates(&rng, in[1]->data, in[1]->n);
            float *grads[2][2];
            double worst = 0;
            for (int f = 0; f < 2; f++) {
                sl_ctx ctx;
                sl_ctx_init(&ctx, 1 << 20);
                for (int i = 0; i < 2; i++) memset(in[i]->grad, 0, (size_t)in[i]->n * sizeof(float));
                sl_tensor *o = (f ? blocks_unfused : blocks_fused)(&ctx, in, &a);
                float *dy = malloc((size_t)o->n * sizeof(float));
                for (int64_t i = 0; i < o->n; i++) dy[i] = sinf((float)i);
                sl_backward_with(&ctx, o, dy);
                for (int i = 0; i < 2; i++) {
                    grads[f][i] = malloc((size_t)in[i]->n * sizeof(float));
                    memcpy(grads[f][i], in[i]->grad, (size_t)in[i]->n * sizeof(float));
                }
                static float out0[4096];
                CHECK(o->n <= 4096, "output fits");
                if (f == 0) memcpy(out0, o->data, (size_t)o->n * sizeof(float));
                else
                    for (int64_t i = 0; i < o->n; i++)
                        worst = fmax(worst, fabs(out0[i] - o->data[i]) / (1e-3 + fabs(o->data[i])));
                free(dy);
                sl_ctx_free(&ctx);
            }
            for (int i = 0; i < 2; i++) {
                for (int64_t j = 0; j < in[i]->n; j++)
                    worst = fmax(worst, fabs(grads[0][i][j] - grads[1][i][j]) /
                                            (1e-3 + fabs(grads[1][i][j])));
                free(grads[0][i]);
                free(grads[1][i]);
            }
            CHECK(worst < 1e-4, "map %d mode %s: fused vs unfused %g", a.map, MODE_NAME[mode],
                  worst);
            char name[64];
            snprintf(name, sizeof name, "blocks map %d mode %s", a.map, MODE_NAME[mode]);
            if (a.map != SL_REC_RELU) /* relu's kink at 0 defeats finite differences */
                CHECK(gradcheck(name, blocks_fused, in, 2, &a, 1e-2f, 3e-4, 3e-3, 200), "%s", name);
            gc_free_all(in, 2);
        }
}

int main(void)
{
    RUN(test_chunked_matches_reference);
    RUN(test_split_equals_whole);
    RUN(test_steps_equal_forward);
    RUN(test_gradient_finite_differences);
    RUN(test_key_decay_matches_token_decay);
    RUN(test_threads_do_not_change_results);
    RUN(test_packed_equals_one_by_one);
    RUN(test_extreme_inputs_long_sequence);
    RUN(test_blocks_of_one_tensor);
    return TEST_SUMMARY();
}
