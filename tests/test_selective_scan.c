/* The selective scan: the op against a double reference (T = 1, T around
 * the chunk edges and not a power of two, channels across a block edge,
 * packed batches with empty and one-token sequences, with and without s0),
 * the one-token step against the reference, results independent of the
 * thread count, finite differences of every input through the tape and of
 * a loss that includes s_final through the kernels (ds_final), and T =
 * 65536 with extreme inputs staying finite. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/selective_scan.h"

/* Inputs of one case: dt in (0, 0.5], A in [-2, -0.1], the rest N(0, 1). */
typedef struct ss_case {
    int64_t B, T, E, N, C, rows;
    float *u, *dt, *A, *Bm, *Cm, *D, *s0;
} ss_case;

static float *normals(sl_rng *rng, int64_t n, float scale)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = scale * sl_rng_normal(rng);
    return x;
}

static ss_case make_case(int64_t B, int64_t T, int64_t E, int64_t N, int64_t C, const sl_seqs *seqs,
                         bool with_s0, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    ss_case c = {B, T, E, N, C, sl_seq_count(seqs, B), NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    c.u = normals(&rng, B * T * E, 1.0f);
    c.dt = normals(&rng, B * T * E, 1.0f);
    for (int64_t i = 0; i < B * T * E; i++) c.dt[i] = 0.05f + 0.45f * sl_rng_uniform(&rng);
    c.A = normals(&rng, E * N, 1.0f);
    for (int64_t i = 0; i < E * N; i++) c.A[i] = -0.1f - 1.9f * sl_rng_uniform(&rng);
    c.Bm = normals(&rng, B * T * N, 1.0f);
    c.Cm = normals(&rng, B * T * N, 1.0f);
    c.D = normals(&rng, E, 1.0f);
    c.s0 = with_s0 ? normals(&rng, c.rows * E * N, 1.0f) : NULL;
    return c;
}

static void free_case(ss_case *c)
{
    free(c->u);
    free(c->dt);
    free(c->A);
    free(c->Bm);
    free(c->Cm);
    free(c->D);
    free(c->s0);
}

/* A leaf tensor over a copy of n floats of src (NULL for NULL). */
static sl_tensor *leaf_of(const float *src, int ndim, const int64_t *shape)
{
    if (!src) return NULL;
    sl_tensor *t = gc_leaf(NULL, 0.0f, ndim, shape);
    memcpy(t->data, src, (size_t)t->n * sizeof(float));
    return t;
}

/* One case: op vs reference, outputs and final states. */
static void check_case(int64_t B, int64_t T, int64_t E, int64_t N, int64_t C, const sl_seqs *seqs,
                       bool with_s0)
{
    ss_case c = make_case(B, T, E, N, C, seqs, with_s0, (uint64_t)(B * 1000 + T * 10 + E + C));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *u = SL_NEW(&ctx, B, T, E), *dt = SL_NEW(&ctx, B, T, E), *A = SL_NEW(&ctx, E, N);
    sl_tensor *Bm = SL_NEW(&ctx, B, T, N), *Cm = SL_NEW(&ctx, B, T, N), *D = SL_NEW(&ctx, E);
    sl_tensor *s0 = with_s0 ? SL_NEW(&ctx, c.rows, E, N) : NULL;
    memcpy(u->data, c.u, (size_t)u->n * sizeof(float));
    memcpy(dt->data, c.dt, (size_t)dt->n * sizeof(float));
    memcpy(A->data, c.A, (size_t)A->n * sizeof(float));
    memcpy(Bm->data, c.Bm, (size_t)Bm->n * sizeof(float));
    memcpy(Cm->data, c.Cm, (size_t)Cm->n * sizeof(float));
    memcpy(D->data, c.D, (size_t)D->n * sizeof(float));
    if (s0) memcpy(s0->data, c.s0, (size_t)s0->n * sizeof(float));
    const int64_t S = c.rows * E * N;
    float *sf = malloc((size_t)(S + 1) * sizeof(float));
    double *yref = malloc((size_t)(B * T * E + 1) * sizeof(double));
    double *sref = malloc((size_t)(S + 1) * sizeof(double));
    sl_tensor *y = sl_selective_scan(&ctx, u, dt, A, Bm, Cm, D, s0, C, sf, seqs);
    const sl_selective_scan_desc d = {B, T, E, N, sl_chunk_rows_of(seqs, B, T), NULL};
    sl_selective_scan_ref(&d, c.u, c.dt, c.A, c.Bm, c.Cm, c.D, c.s0, yref, sref);
    for (int64_t i = 0; i < y->n; i++) CHECK_CLOSE(y->data[i], yref[i], 1e-5, 1e-4, "y");
    for (int64_t i = 0; i < S; i++) CHECK_CLOSE(sf[i], sref[i], 1e-5, 1e-4, "s_final");
    free(sf);
    free(yref);
    free(sref);
    free_case(&c);
    sl_ctx_free(&ctx);
}

/* Packed: an empty sequence first, one token, four, empty, five. */
static const int64_t CU[] = {0, 0, 1, 5, 5, 10};
static const sl_seqs PACKED = {5, CU};

static void test_forward_matches_reference(void)
{
    for (int s = 0; s <= 1; s++) {
        check_case(2, 1, 3, 2, 4, NULL, s);
        check_case(2, 7, 5, 3, 4, NULL, s);   /* a full chunk and a ragged one */
        check_case(1, 8, 5, 3, 4, NULL, s);   /* chunk edges exactly */
        check_case(1, 9, 5, 3, 4, NULL, s);   /* one past the edge */
        check_case(3, 13, 70, 4, 5, NULL, s); /* a second, partial block of channels */
        check_case(1, 10, 70, 3, 3, &PACKED, s);
    }
}

static void test_step_matches_reference(void)
{
    enum { T = 6, E = 7, N = 3 };
    ss_case c = make_case(1, T, E, N, 4, NULL, true, 3);
    double y[T * E];
    float st[E * N], yt[E];
    const sl_selective_scan_desc d = {1, T, E, N, sl_chunk_rows_of(NULL, 1, T), NULL};
    sl_selective_scan_ref(&d, c.u, c.dt, c.A, c.Bm, c.Cm, c.D, c.s0, y, NULL);
    memcpy(st, c.s0, sizeof st);
    for (int t = 0; t < T; t++) {
        sl_selective_scan_step(st, c.u + t * E, c.dt + t * E, c.A, c.Bm + t * N, c.Cm + t * N, c.D,
                               E, N, yt);
        for (int e = 0; e < E; e++) CHECK_CLOSE(yt[e], y[t * E + e], 1e-5, 1e-4, "step");
    }
    free_case(&c);
}

/* Forward and backward through the kernels: y, s_final and every
 * gradient (dy and ds_final given) into out, laid out one after another;
 * returns their count. */
static int64_t run_kernels(const ss_case *c, const sl_seqs *seqs, const float *dy,
                           const float *ds_final, float *out)
{
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    const int64_t BTE = c->B * c->T * c->E, BTN = c->B * c->T * c->N, S = c->rows * c->E * c->N;
    sl_selective_scan_desc d = {
        c->B, c->T, c->E, c->N, sl_chunk_rows_keep(&ctx, seqs, c->B, c->T, c->C), ds_final};
    float *y = out, *sf = y + BTE, *du = sf + S, *ddt = du + BTE, *dA = ddt + BTE;
    float *dB = dA + c->E * c->N, *dC = dB + BTN, *dD = dC + BTN, *ds0 = dD + c->E;
    const int64_t total = ds0 + S - out;
    memset(du, 0, (size_t)(total - BTE - S) * sizeof(float));
    float *states = sl_arena_floats(&ctx, sl_selective_scan_states_floats(&d));
    sl_selective_scan_fwd(&d, c->u, c->dt, c->A, c->Bm, c->Cm, c->D, c->s0, y, states, sf,
                          sl_arena_floats(&ctx, sl_selective_scan_fwd_scratch(&d)));
    sl_selective_scan_bwd(&d, c->u, c->dt, c->A, c->Bm, c->Cm, c->D, states, dy, du, ddt, dA, dB,
                          dC, dD, ds0, sl_arena_floats(&ctx, sl_selective_scan_bwd_scratch(&d)),
                          sl_arena_floats(&ctx, sl_selective_scan_work_floats(&d)));
    sl_ctx_free(&ctx);
    return total;
}

static void test_threads_do_not_change_results(void)
{
    /* Large enough for a team (sl_chunk_team), three channel blocks. */
    ss_case c = make_case(2, 300, 130, 4, 64, NULL, true, 5);
    sl_rng rng;
    sl_rng_seed(&rng, 6);
    float *dy = normals(&rng, 2 * 300 * 130, 1.0f), *dsf = normals(&rng, 2 * 130 * 4, 1.0f);
    const int64_t n = 3 * 2 * 300 * 130 + 2 * 2 * 300 * 4 + 130 * 4 + 130 + 2 * 2 * 130 * 4;
    float *ref = malloc((size_t)n * sizeof(float)), *out = malloc((size_t)n * sizeof(float));
    const int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        CHECK(run_kernels(&c, NULL, dy, dsf, threads == 1 ? ref : out) == n, "layout");
        if (threads > 1)
            CHECK(!memcmp(ref, out, (size_t)n * sizeof(float)), "results, %d threads", threads);
    }
    omp_set_num_threads(saved);
    free(ref);
    free(out);
    free(dy);
    free(dsf);
    free_case(&c);
}

/* in = {u, dt, A, Bm, Cm, D, s0 or NULL}; arg: the seqs or NULL; chunks
 * of 3 tokens. */
static sl_tensor *ss_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_selective_scan(ctx, in[0], in[1], in[2], in[3], in[4], in[5], in[6], 3, NULL, arg);
}

static void test_gradient_finite_differences(void)
{
    const struct {
        int64_t B, T, rows;
        const sl_seqs *seqs;
    } cases[] = {{2, 7, 2, NULL}, {1, 10, 5, &PACKED}};
    for (int k = 0; k < 2; k++) {
        const int64_t B = cases[k].B, T = cases[k].T, E = 5, N = 3;
        ss_case c = make_case(B, T, E, N, 3, cases[k].seqs, true, (uint64_t)(10 + k));
        sl_tensor *in[7] = {leaf_of(c.u, 3, (int64_t[]){B, T, E}),
                            leaf_of(c.dt, 3, (int64_t[]){B, T, E}),
                            leaf_of(c.A, 2, (int64_t[]){E, N}),
                            leaf_of(c.Bm, 3, (int64_t[]){B, T, N}),
                            leaf_of(c.Cm, 3, (int64_t[]){B, T, N}),
                            leaf_of(c.D, 1, (int64_t[]){E}),
                            leaf_of(c.s0, 3, (int64_t[]){cases[k].rows, E, N})};
        CHECK(gradcheck("selective_scan", ss_fn, in, 7, (void *)cases[k].seqs, 1e-2f, 3e-4, 3e-3,
                        200),
              "selective_scan case %d", k);
        gc_free(in[6]);
        in[6] = NULL;
        CHECK(gradcheck("selective_scan no s0", ss_fn, in, 6, (void *)cases[k].seqs, 1e-2f, 3e-4,
                        3e-3, 200),
              "selective_scan case %d without s0", k);
        gc_free_all(in, 6);
        free_case(&c);
    }
}

/* L = sum r y + sum q s_final, in double from the kernels' forward. */
static double loss_of(const ss_case *c, const sl_seqs *seqs, const float *r, const float *q)
{
    const int64_t BTE = c->B * c->T * c->E, S = c->rows * c->E * c->N;
    float *y = malloc((size_t)BTE * sizeof(float)), *sf = malloc((size_t)S * sizeof(float));
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_selective_scan_desc d = {
        c->B, c->T, c->E, c->N, sl_chunk_rows_keep(&ctx, seqs, c->B, c->T, c->C), NULL};
    sl_selective_scan_fwd(&d, c->u, c->dt, c->A, c->Bm, c->Cm, c->D, c->s0, y, NULL, sf,
                          sl_arena_floats(&ctx, sl_selective_scan_fwd_scratch(&d)));
    double L = 0;
    for (int64_t i = 0; i < BTE; i++) L += (double)r[i] * y[i];
    for (int64_t i = 0; i < S; i++) L += (double)q[i] * sf[i];
    sl_ctx_free(&ctx);
    free(y);
    free(sf);
    return L;
}

/* The gradient of a loss that includes s_final (ds_final, as the chunked
 * recompute hands it in) by central differences of every input. */
static void test_final_state_gradient(void)
{
    const int64_t E = 5, N = 3;
    const struct {
        int64_t B, T;
        const sl_seqs *seqs;
    } cases[] = {{2, 7, NULL}, {1, 10, &PACKED}};
    for (int k = 0; k < 2; k++) {
        ss_case c =
            make_case(cases[k].B, cases[k].T, E, N, 3, cases[k].seqs, true, (uint64_t)(20 + k));
        const int64_t BTE = c.B * c.T * E, BTN = c.B * c.T * N, S = c.rows * E * N;
        sl_rng rng;
        sl_rng_seed(&rng, 7);
        float *r = normals(&rng, BTE, 1.0f), *q = normals(&rng, S, 1.0f);
        const int64_t total = 3 * BTE + 2 * S + E * N + 2 * BTN + E;
        float *out = malloc((size_t)total * sizeof(float));
        run_kernels(&c, cases[k].seqs, r, q, out);
        const float *g = out + BTE + S; /* du, ddt, dA, dBm, dCm, dD, ds0 */
        float *ins[7] = {c.u, c.dt, c.A, c.Bm, c.Cm, c.D, c.s0};
        const int64_t ns[7] = {BTE, BTE, E * N, BTN, BTN, E, S};
        const float h = 1e-2f;
        for (int a = 0; a < 7; a++) {
            for (int64_t i = 0; i < ns[a]; i += 1 + ns[a] / 40) {
                const float x0 = ins[a][i];
                ins[a][i] = x0 + h;
                const double lp = loss_of(&c, cases[k].seqs, r, q);
                ins[a][i] = x0 - h;
                const double lm = loss_of(&c, cases[k].seqs, r, q);
                ins[a][i] = x0;
                const double num = (lp - lm) / (2.0 * h);
                CHECK(fabs(g[i] - num) <= 3e-4 + 3e-3 * fabs(num),
                      "case %d input %d [%lld]: %g vs %g", k, a, (long long)i, g[i], num);
            }
            g += ns[a];
        }
        free(out);
        free(r);
        free(q);
        free_case(&c);
    }
}

/* T = 65536 with inputs of scale 100, dt up to 100 and A down to -1000:
 * outputs, final states and every gradient stay finite. */
static void test_long_extreme_finite(void)
{
    const int64_t T = 65536, E = 8, N = 4;
    ss_case c = make_case(1, T, E, N, 128, NULL, true, 8);
    sl_rng rng;
    sl_rng_seed(&rng, 9);
    for (int64_t i = 0; i < T * E; i++) {
        c.u[i] *= 100.0f;
        c.dt[i] = i % 3 == 0 ? 100.0f * sl_rng_uniform(&rng) : 1e-4f * sl_rng_uniform(&rng);
    }
    for (int64_t i = 0; i < E * N; i++) c.A[i] = i % 2 ? -1000.0f * sl_rng_uniform(&rng) : -1e-4f;
    for (int64_t i = 0; i < T * N; i++) {
        c.Bm[i] *= 100.0f;
        c.Cm[i] *= 100.0f;
    }
    float *dy = normals(&rng, T * E, 100.0f), *dsf = normals(&rng, E * N, 100.0f);
    const int64_t total = 3 * T * E + 2 * E * N + E * N + 2 * T * N + E;
    float *out = malloc((size_t)total * sizeof(float));
    run_kernels(&c, NULL, dy, dsf, out);
    int64_t bad = 0;
    for (int64_t i = 0; i < total; i++) bad += !isfinite(out[i]);
    CHECK(bad == 0, "%lld of %lld values not finite", (long long)bad, (long long)total);
    free(out);
    free(dy);
    free(dsf);
    free_case(&c);
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_step_matches_reference);
    RUN(test_threads_do_not_change_results);
    RUN(test_gradient_finite_differences);
    RUN(test_final_state_gradient);
    RUN(test_long_extreme_finite);
    return TEST_SUMMARY();
}
