/* S4D's state terms: the op against the double reference (T = 1, odd T,
 * T across the power blocks, packed batches with empty and one-token
 * sequences, with and without s0), the convolution plus the op against
 * the one-token recurrence from each sequence's state (outputs and final
 * modes), gradients of every input and of the final state by finite
 * differences of the reference, the op's tape against the kernels, and
 * T = 65536 at scale 100 staying finite and exact. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gradcheck.h"
#include "ops/s4d_kernel.h"
#include "ops/s4d_state.h"

enum { IY, IU, IS0, IDT, IRE, IIM, IC, NIN };

/* Every input of one case as floats: y, u [B, T, H], s0 [N, H, M, 2],
 * log_dt [H], a_log_re, a_im [H, M], c [H, M, 2]. */
typedef struct inputs {
    sl_s4d_state_desc d;
    int64_t N, n[NIN];
    float *x[NIN];
} inputs;

static inputs make(sl_rng *rng, int64_t B, int64_t T, int64_t H, int64_t M, const sl_seqs *seqs)
{
    inputs in = {.d = {B, T, H, M, seqs, NULL}, .N = sl_seq_count(seqs, B)};
    const int64_t n[NIN] = {B * T * H, B * T * H, in.N * H * M * 2, H, H * M, H * M, H * M * 2};
    for (int i = 0; i < NIN; i++) {
        in.n[i] = n[i];
        in.x[i] = malloc((size_t)(n[i] + 1) * sizeof(float));
        for (int64_t j = 0; j < n[i]; j++) in.x[i][j] = sl_rng_normal(rng);
    }
    for (int64_t h = 0; h < H; h++) {
        in.x[IDT][h] = logf(0.02f) + 0.7f * (float)h;
        for (int64_t m = 0; m < M; m++) {
            in.x[IRE][h * M + m] = logf(0.5f) + 0.3f * sl_rng_normal(rng);
            in.x[IIM][h * M + m] = 3.14159265f * (float)m + 0.1f * sl_rng_normal(rng);
        }
    }
    in.x[IRE][0] = logf(1e-4f); /* a mode with a tiny dt A: the series */
    in.x[IIM][0] = 0.0f;
    return in;
}

static void release(inputs *in)
{
    for (int i = 0; i < NIN; i++) free(in->x[i]);
}

static void ref(const inputs *in, bool with_s0, double *out, double *sf)
{
    sl_s4d_state_ref(&in->d, in->x[IDT], in->x[IRE], in->x[IIM], in->x[IC], in->x[IY],
                     in->x[IU], with_s0 ? in->x[IS0] : NULL, out, sf);
}

/* Packed: an empty sequence first, one token, 270 (across a block edge),
 * empty, 29. */
static const int64_t CU[] = {0, 0, 1, 271, 271, 300};
static const sl_seqs PACKED = {5, CU};

static void check_case(int64_t B, int64_t T, int64_t H, int64_t M, const sl_seqs *seqs,
                       bool with_s0)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(B * 1000 + T * 10 + M));
    inputs in = make(&rng, B, T, H, M, seqs);
    const int64_t nsf = in.n[IS0];
    float *out = malloc((size_t)(in.n[IY] + 1) * sizeof(float)), *sf = malloc(nsf * sizeof(float));
    double *ro = malloc((size_t)(in.n[IY] + 1) * sizeof(double));
    double *rs = malloc(nsf * sizeof(double));
    memcpy(out, in.x[IY], (size_t)in.n[IY] * sizeof(float));
    sl_s4d_state_fwd(&in.d, in.x[IDT], in.x[IRE], in.x[IIM], in.x[IC], in.x[IU],
                     with_s0 ? in.x[IS0] : NULL, out, sf);
    ref(&in, with_s0, ro, rs);
    for (int64_t i = 0; i < in.n[IY]; i++) CHECK_CLOSE(out[i], ro[i], 1e-5, 1e-5, "y + z");
    for (int64_t i = 0; i < nsf; i++) CHECK_CLOSE(sf[i], rs[i], 1e-5, 1e-5, "s_final");
    free(out), free(sf), free(ro), free(rs);
    release(&in);
}

static void test_forward_matches_reference(void)
{
    for (int s = 0; s <= 1; s++) {
        check_case(2, 1, 3, 4, NULL, s);
        check_case(2, 7, 3, 5, NULL, s);
        check_case(1, 600, 2, 32, NULL, s); /* across two block edges */
        check_case(1, 300, 3, 4, &PACKED, s);
    }
}

/* Kernel convolution + the op == sl_s4d_step from each sequence's modes,
 * tokens and final modes, over the packed batch. */
static void test_matches_recurrence(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 5);
    const int64_t T = 300, H = 3, M = 4;
    inputs in = make(&rng, 1, T, H, M, &PACKED);
    const sl_s4d_desc ks = {1, H, M, T};
    float *d = in.x[IY]; /* D: any H floats */
    double *K = malloc((size_t)(H * T) * sizeof(double));
    sl_s4d_kernel_ref(&ks, in.x[IDT], in.x[IRE], in.x[IIM], in.x[IC], d, K);
    float *y = malloc((size_t)(T * H) * sizeof(float)), *sf = malloc(in.n[IS0] * sizeof(float));
    const float *u = in.x[IU];
    for (int64_t n = 0; n < 5; n++)
        for (int64_t t = CU[n]; t < CU[n + 1]; t++)
            for (int64_t h = 0; h < H; h++) {
                double s = 0;
                for (int64_t j = CU[n]; j <= t; j++) s += K[h * T + t - j] * u[j * H + h];
                y[t * H + h] = (float)s;
            }
    sl_s4d_state_fwd(&in.d, in.x[IDT], in.x[IRE], in.x[IIM], in.x[IC], u, in.x[IS0], y, sf);
    float E[2 * H * M], Bb[2 * H * M], x[2 * H * M], y1[H];
    sl_s4d_modes(H, M, in.x[IDT], in.x[IRE], in.x[IIM], E, Bb);
    for (int64_t n = 0; n < 5; n++) {
        memcpy(x, in.x[IS0] + n * 2 * H * M, sizeof x);
        for (int64_t t = CU[n]; t < CU[n + 1]; t++) {
            sl_s4d_step(H, M, E, Bb, in.x[IC], d, u + t * H, x, y1);
            for (int64_t h = 0; h < H; h++) CHECK_CLOSE(y[t * H + h], y1[h], 1e-4, 1e-4, "y");
        }
        for (int64_t i = 0; i < 2 * H * M; i++)
            CHECK_CLOSE(sf[n * 2 * H * M + i], x[i], 1e-4, 1e-4, "final modes");
    }
    free(K), free(y), free(sf);
    release(&in);
}

/* L = sum r out + sum q s_final by the double reference. */
static double loss(const inputs *in, const float *r, const float *q, double *out, double *sf)
{
    ref(in, true, out, sf);
    double l = 0;
    for (int64_t i = 0; i < in->n[IY]; i++) l += r[i] * out[i];
    for (int64_t i = 0; i < in->n[IS0]; i++) l += q[i] * sf[i];
    return l;
}

/* The backward kernel (dout = r, ds_final = q) against central
 * differences of the reference's loss, every input. */
static void fd_case(int64_t B, int64_t T, const sl_seqs *seqs)
{
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)(7 + T));
    const int64_t H = 2, M = 3;
    inputs in = make(&rng, B, T, H, M, seqs);
    float *r = malloc((size_t)in.n[IY] * sizeof(float)), *q = malloc(in.n[IS0] * sizeof(float));
    for (int64_t i = 0; i < in.n[IY]; i++) r[i] = sl_rng_normal(&rng);
    for (int64_t i = 0; i < in.n[IS0]; i++) q[i] = sl_rng_normal(&rng);
    float *g[NIN];
    for (int i = 0; i < NIN; i++) g[i] = calloc((size_t)(in.n[i] + 1), sizeof(float));
    in.d.ds_final = q;
    sl_s4d_state_bwd(&in.d, in.x[IDT], in.x[IRE], in.x[IIM], in.x[IC], in.x[IU], in.x[IS0], r,
                     g[IU], g[IS0], g[IDT], g[IRE], g[IIM], g[IC]);
    for (int64_t i = 0; i < in.n[IY]; i++) g[IY][i] = r[i];
    double *out = malloc((size_t)in.n[IY] * sizeof(double));
    double *sf = malloc(in.n[IS0] * sizeof(double));
    for (int k = 0; k < NIN; k++)
        for (int64_t i = 0; i < in.n[k]; i += 1 + in.n[k] / 40) {
            const float x0 = in.x[k][i], h = 1e-3f * fmaxf(1.0f, fabsf(x0));
            in.x[k][i] = x0 + h;
            const double lp = loss(&in, r, q, out, sf);
            const float xp = in.x[k][i];
            in.x[k][i] = x0 - h;
            const double lm = loss(&in, r, q, out, sf), fd = (lp - lm) / ((double)xp - in.x[k][i]);
            in.x[k][i] = x0;
            CHECK(fabs(fd - g[k][i]) <= 2e-3 * (1.0 + fabs(fd)), "input %d [%lld]: fd %.8g vs %.8g",
                  k, (long long)i, fd, g[k][i]);
        }
    free(out), free(sf), free(r), free(q);
    for (int i = 0; i < NIN; i++) free(g[i]);
    release(&in);
}

static void test_gradient_finite_differences(void)
{
    fd_case(2, 1, NULL);
    fd_case(2, 13, NULL);
    static const int64_t cu[] = {0, 0, 1, 5, 5, 9};
    const sl_seqs packed = {5, cu};
    fd_case(1, 9, &packed);
}

/* in = {y, u, s0, log_dt, a_log_re, a_im, c [1, H, M, 2]}. */
static sl_tensor *st_fn(sl_ctx *ctx, sl_tensor **in, void *arg)
{
    return sl_s4d_state(ctx, in[0], in[1], in[2], NULL, in[3], in[4], in[5], in[6], arg);
}

/* The op's tape (y, s0, C, log_dt, A; no final state) by the harness. */
static void test_op_gradients(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 11);
    const int64_t H = 2, M = 3;
    static const int64_t cu[] = {0, 3, 3, 10};
    const sl_seqs packed = {3, cu};
    inputs f = make(&rng, 1, 10, H, M, &packed);
    const int64_t shapes[NIN][4] = {{1, 10, H}, {1, 10, H}, {3, H * M * 2}, {H}, {H, M}, {H, M},
                                    {1, H, M, 2}};
    const int nd[NIN] = {3, 3, 2, 1, 2, 2, 4};
    sl_tensor *in[NIN];
    for (int i = 0; i < NIN; i++) {
        in[i] = gc_leaf(NULL, 0.0f, nd[i], shapes[i]);
        memcpy(in[i]->data, f.x[i], (size_t)in[i]->n * sizeof(float));
    }
    CHECK(gradcheck("s4d_state", st_fn, in, NIN, (void *)&packed, 1e-3f, 2e-3, 2e-3, 40),
          "s4d_state op");
    gc_free_all(in, NIN);
    release(&f);
}

/* T = 65536, dt 0.1 and the slow mode, u and s0 of scale 100: finite
 * forward and backward, and the final modes still the reference's. */
static void test_long_finite(void)
{
    sl_rng rng;
    sl_rng_seed(&rng, 13);
    const int64_t T = 65536, H = 2, M = 4;
    inputs in = make(&rng, 1, T, H, M, NULL);
    for (int64_t h = 0; h < H; h++) in.x[IDT][h] = logf(0.1f);
    for (int64_t i = 0; i < T * H; i++) in.x[IU][i] *= 100.0f;
    for (int64_t i = 0; i < in.n[IS0]; i++) in.x[IS0][i] *= 100.0f;
    float *out = malloc((size_t)(T * H) * sizeof(float)), *sf = malloc(in.n[IS0] * sizeof(float));
    float *du = calloc((size_t)(T * H), sizeof(float)), *g = calloc(64, sizeof(float));
    memcpy(out, in.x[IY], (size_t)(T * H) * sizeof(float));
    sl_s4d_state_fwd(&in.d, in.x[IDT], in.x[IRE], in.x[IIM], in.x[IC], in.x[IU], in.x[IS0], out,
                     sf);
    in.d.ds_final = sf;
    sl_s4d_state_bwd(&in.d, in.x[IDT], in.x[IRE], in.x[IIM], in.x[IC], in.x[IU], in.x[IS0], out,
                     du, g, g + 16, g + 18, g + 26, g + 34);
    bool finite = true;
    for (int64_t i = 0; i < T * H; i++) finite = finite && isfinite(out[i]) && isfinite(du[i]);
    for (int64_t i = 0; i < 58; i++) finite = finite && isfinite(g[i]);
    CHECK(finite, "T = 65536: outputs and gradients finite");
    double *ro = malloc((size_t)(T * H) * sizeof(double)), rs[16];
    ref(&in, true, ro, rs);
    const double tol = 1e-5 * (1.0 + fabs(rs[0]) + fabs(rs[1]));
    for (int64_t i = 0; i < 16; i++) CHECK_CLOSE(sf[i], rs[i], tol, 1e-4, "final modes");
    free(out), free(sf), free(du), free(g), free(ro);
    release(&in);
}

int main(void)
{
    RUN(test_forward_matches_reference);
    RUN(test_matches_recurrence);
    RUN(test_gradient_finite_differences);
    RUN(test_op_gradients);
    RUN(test_long_finite);
    return TEST_SUMMARY();
}
