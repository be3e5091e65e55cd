/* The LSTM recurrence: its kernels, the op that records them, the double
 * reference and the one-token step. Hidden units go in blocks of UB; a
 * block's four gates are four runs of UB consecutive rows of W_hh, so one
 * row's recurrent product is dot products of eight rows at a time (one load
 * of h_{t-1} serving eight rows), and the cell update follows in the same
 * block while the gates are still in cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/fastmath.h"
#include "ops/internal.h"
#include "ops/lstm.h"
#include "ops/ops.h"
#include "ops/small_gemm.h"

/* Hidden units per block: one vector. */
#define UB 8

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* out[m] = the sum of the eight lanes of a[m], m < 8. */
static inline void hsum8(const v8 *a, float *out)
{
#ifdef __AVX__
    __m256 t0 = _mm256_hadd_ps((__m256)a[0], (__m256)a[1]);
    __m256 t1 = _mm256_hadd_ps((__m256)a[2], (__m256)a[3]);
    __m256 t2 = _mm256_hadd_ps((__m256)a[4], (__m256)a[5]);
    __m256 t3 = _mm256_hadd_ps((__m256)a[6], (__m256)a[7]);
    t0 = _mm256_hadd_ps(t0, t1);
    t2 = _mm256_hadd_ps(t2, t3);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(t0, t2, 0x20),
                                        _mm256_permute2f128_ps(t0, t2, 0x31)));
#else
    for (int m = 0; m < 8; m++) {
        float s = 0.0f;
        for (int l = 0; l < 8; l++) s += a[m][l];
        out[m] = s;
    }
#endif
}

/* out[m] = (row m of w, rows ld apart) . x over K columns, for m < nr. Eight
 * rows go together, eight sums per vector of x. */
static inline void dot_rows(const float *w, int64_t ld, int64_t nr, int64_t K, const float *x,
                            float *out)
{
    if (nr < 8) {
        for (int64_t m = 0; m < nr; m++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) s += w[m * ld + k] * x[k];
            out[m] = s;
        }
        return;
    }
    v8 acc[8];
    for (int m = 0; m < 8; m++) acc[m] = (v8){0};
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        const v8 xv = *(const v8u *)(x + k);
        for (int m = 0; m < 8; m++) acc[m] += *(const v8u *)(w + m * ld + k) * xv;
    }
    hsum8(acc, out);
    for (; k < K; k++)
        for (int m = 0; m < 8; m++) out[m] += w[m * ld + k] * x[k];
}

/* The cell for n units: z[g ps + u] gate g's pre-activation of unit u,
 * c: [n] c_{t-1} in, c_t out; h: [n] out; a: NULL, or the token's saved
 * row at the units' offset (a[g D + u] the activated gates, a[4D + u] c_t). */
static inline void cell(const float *z, int64_t ps, float *c, float *h, float *a, int64_t D,
                        int64_t n)
{
#pragma omp simd
    for (int64_t u = 0; u < n; u++) {
        const float i = sl_sigmoidf(z[u]), f = sl_sigmoidf(z[ps + u]);
        const float g = sl_tanhf(z[2 * ps + u]), o = sl_sigmoidf(z[3 * ps + u]);
        const float cn = f * c[u] + i * g;
        c[u] = cn;
        h[u] = o * sl_tanhf(cn);
        if (a) {
            a[u] = i;
            a[D + u] = f;
            a[2 * D + u] = g;
            a[3 * D + u] = o;
            a[4 * D + u] = cn;
        }
    }
}

/* Units [j0, j0 + n) of one row's token: z = gx + W_hh h_prev for their
 * four gates, then the cell. gx: [4D], hp: [D]; c, h: [D] (c in place);
 * a: the token's saved row [5D] or NULL. */
static void row_block(const float *w_hh, int64_t D, int64_t j0, int64_t n, const float *gx,
                      const float *hp, float *c, float *h, float *a)
{
    float z[4 * UB];
    for (int64_t g = 0; g < 4; g++) {
        dot_rows(w_hh + (g * D + j0) * D, D, n, D, hp, z + g * UB);
        for (int64_t u = 0; u < n; u++) z[g * UB + u] += gx[g * D + j0 + u];
    }
    cell(z, UB, c + j0, h + j0, a ? a + j0 : NULL, D, n);
}

/* Backward of the cell for n units of one token: a: the token's saved row
 * at the units' offset; cp: c_{t-1}; dho + dhr: dL/dh_t (the output's and
 * the recurrent part); dc: dL/dc_t from later tokens in, dL/dc_{t-1} out;
 * dz: the token's [4D] row at the units' offset, written. */
static inline void cell_bwd(const float *a, const float *cp, const float *dho, const float *dhr,
                            float *dc, float *dz, int64_t D, int64_t n)
{
#pragma omp simd
    for (int64_t u = 0; u < n; u++) {
        const float i = a[u], f = a[D + u], g = a[2 * D + u], o = a[3 * D + u];
        const float tc = sl_tanhf(a[4 * D + u]), dh = dho[u] + dhr[u];
        const float dct = dc[u] + dh * o * (1.0f - tc * tc);
        dz[u] = dct * g * i * (1.0f - i);
        dz[D + u] = dct * cp[u] * f * (1.0f - f);
        dz[2 * D + u] = dct * i * (1.0f - g * g);
        dz[3 * D + u] = dh * tc * o * (1.0f - o);
        dc[u] = dct * f;
    }
}

/* The longest of the N rows' lengths. */
static int64_t max_len(const sl_lstm_desc *d, int64_t N)
{
    int64_t m = 0;
    for (int64_t n = 0; n < N; n++)
        if (sl_seq_len(d->seqs, n, d->T) > m) m = sl_seq_len(d->seqs, n, d->T);
    return m;
}

/* h_{t-1} of row n at its token t: the previous output, or s0's h, or
 * zeros. */
static const float *h_prev(const sl_lstm_desc *d, const float *h, const float *s0,
                           const float *zero, int64_t n, int64_t t)
{
    if (t > 0) return h + (sl_seq_start(d->seqs, n, d->T) + t - 1) * d->D;
    return s0 ? s0 + n * 2 * d->D : zero;
}

/* One row: the time loop inside one parallel region, blocks of units
 * shared out per token (the same blocks to the same thread every token). */
static void fwd_one(const sl_lstm_desc *d, const float *gx, const float *w_hh, const float *s0,
                    const float *zero, float *h, float *act, float *c)
{
    const int64_t D = d->D, st = sl_seq_start(d->seqs, 0, d->T), len = sl_seq_len(d->seqs, 0, d->T);
    const int64_t NB = (D + UB - 1) / UB;
#pragma omp parallel if (4 * D * D >= SL_PAR_MIN)
    for (int64_t t = 0; t < len; t++) {
        const int64_t tok = st + t;
        const float *hp = h_prev(d, h, s0, zero, 0, t);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < NB; b++)
            row_block(w_hh, D, b * UB, min64(UB, D - b * UB), gx + tok * 4 * D, hp, c, h + tok * D,
                      act ? act + tok * 5 * D : NULL);
    }
}

/* Several rows: per token one GEMM over the rows still running, then the
 * cell row by row. */
static void fwd_rows(const sl_lstm_desc *d, int64_t N, const float *gx, const float *w_hh,
                     const float *s0, const float *zero, float *h, float *act, float *c)
{
    const int64_t D = d->D, G = 4 * D, L = max_len(d, N);
    float *hp = malloc((size_t)(N * D) * sizeof(float)),
          *z = malloc((size_t)(N * G) * sizeof(float));
    int64_t *rows = malloc((size_t)N * sizeof(int64_t));
    for (int64_t t = 0; t < L; t++) {
        int64_t na = 0;
        for (int64_t n = 0; n < N; n++) {
            if (t >= sl_seq_len(d->seqs, n, d->T)) continue;
            const int64_t tok = sl_seq_start(d->seqs, n, d->T) + t;
            memcpy(hp + na * D, h_prev(d, h, s0, zero, n, t), (size_t)D * sizeof(float));
            memcpy(z + na * G, gx + tok * G, (size_t)G * sizeof(float));
            rows[na++] = n;
        }
        sl_gemm(false, true, na, G, D, hp, w_hh, 1.0f, z);
#pragma omp parallel for schedule(static) if (na * G >= SL_PAR_MIN)
        for (int64_t r = 0; r < na; r++) {
            const int64_t n = rows[r], tok = sl_seq_start(d->seqs, n, d->T) + t;
            cell(z + r * G, D, c + n * D, h + tok * D, act ? act + tok * 5 * D : NULL, D, D);
        }
    }
    free(hp);
    free(z);
    free(rows);
}

void sl_lstm_fwd(const sl_lstm_desc *d, const float *gx, const float *w_hh, const float *s0,
                 float *h, float *act, float *s_final)
{
    const int64_t D = d->D, N = sl_seq_count(d->seqs, d->B);
    float *c = malloc((size_t)(N * D) * sizeof(float)), *zero = calloc((size_t)D, sizeof(float));
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++) c[n * D + j] = s0 ? s0[n * 2 * D + D + j] : 0.0f;
    if (N == 1)
        fwd_one(d, gx, w_hh, s0, zero, h, act, c);
    else
        fwd_rows(d, N, gx, w_hh, s0, zero, h, act, c);
    for (int64_t n = 0; s_final && n < N; n++) {
        const int64_t len = sl_seq_len(d->seqs, n, d->T);
        memmove(s_final + n * 2 * D, h_prev(d, h, s0, zero, n, len), (size_t)D * sizeof(float));
        memcpy(s_final + n * 2 * D + D, c + n * D, (size_t)D * sizeof(float));
    }
    free(c);
    free(zero);
}

/* c_{t-1} of row n at its token t: the previous token's saved c, or s0's
 * c, or zeros. */
static const float *c_prev(const sl_lstm_desc *d, const float *act, const float *s0,
                           const float *zero, int64_t n, int64_t t)
{
    if (t > 0) return act + (sl_seq_start(d->seqs, n, d->T) + t - 1) * 5 * d->D + 4 * d->D;
    return s0 ? s0 + n * 2 * d->D + d->D : zero;
}

/* One row, in reverse time: per token the cell's backward over blocks of
 * units, a barrier, then dz_t W_hh over the same blocks (each thread's own
 * units, which only it reads next, so no second barrier) as dot products
 * of eight rows of wt = W_hh^T [D, 4D] at a time, the forward's access
 * pattern (W_hh's columns read in place ran 3x slower). */
static void bwd_one(const sl_lstm_desc *d, const float *wt, const float *s0, const float *zero,
                    const float *act, const float *dh, float *dz, float *dhr, float *dc)
{
    const int64_t D = d->D, st = sl_seq_start(d->seqs, 0, d->T), len = sl_seq_len(d->seqs, 0, d->T);
    const int64_t NB = (D + UB - 1) / UB;
#pragma omp parallel if (4 * D * D >= SL_PAR_MIN)
    for (int64_t t = len - 1; t >= 0; t--) {
        const int64_t tok = st + t;
        const float *a = act + tok * 5 * D, *cp = c_prev(d, act, s0, zero, 0, t);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < NB; b++) {
            const int64_t j0 = b * UB;
            cell_bwd(a + j0, cp + j0, dh + tok * D + j0, dhr + j0, dc + j0, dz + tok * 4 * D + j0,
                     D, min64(UB, D - j0));
        }
#pragma omp for schedule(static) nowait
        for (int64_t b = 0; b < NB; b++)
            dot_rows(wt + b * UB * 4 * D, 4 * D, min64(UB, D - b * UB), 4 * D, dz + tok * 4 * D,
                     dhr + b * UB);
    }
}

/* Several rows, in reverse time: the cell's backward row by row, then one
 * GEMM dz W_hh over the rows still running. */
static void bwd_rows(const sl_lstm_desc *d, int64_t N, const float *w_hh, const float *s0,
                     const float *zero, const float *act, const float *dh, float *dz, float *dhr,
                     float *dc)
{
    const int64_t D = d->D, G = 4 * D, L = max_len(d, N);
    float *zb = malloc((size_t)(N * G) * sizeof(float)),
          *hb = malloc((size_t)(N * D) * sizeof(float));
    int64_t *rows = malloc((size_t)N * sizeof(int64_t));
    for (int64_t t = L - 1; t >= 0; t--) {
        int64_t na = 0;
        for (int64_t n = 0; n < N; n++)
            if (t < sl_seq_len(d->seqs, n, d->T)) rows[na++] = n;
#pragma omp parallel for schedule(static) if (na * G >= SL_PAR_MIN)
        for (int64_t r = 0; r < na; r++) {
            const int64_t n = rows[r], tok = sl_seq_start(d->seqs, n, d->T) + t;
            cell_bwd(act + tok * 5 * D, c_prev(d, act, s0, zero, n, t), dh + tok * D, dhr + n * D,
                     dc + n * D, dz + tok * G, D, D);
            memcpy(zb + r * G, dz + tok * G, (size_t)G * sizeof(float));
        }
        sl_gemm(false, false, na, D, G, zb, w_hh, 0.0f, hb);
        for (int64_t r = 0; r < na; r++)
            memcpy(dhr + rows[r] * D, hb + r * D, (size_t)D * sizeof(float));
    }
    free(zb);
    free(hb);
    free(rows);
}

void sl_lstm_bwd(const sl_lstm_desc *d, const float *w_hh, const float *s0, const float *h,
                 const float *act, const float *dh, float *dz, float *dw_hh, float *ds0)
{
    const float *ds_final = d->ds_final;
    const int64_t D = d->D, G = 4 * D, N = sl_seq_count(d->seqs, d->B);
    /* dhr: dL/dh_{t-1} through W_hh, dc: dL/dc_{t-1}, both starting from
     * the final state's gradient. */
    float *dhr = malloc((size_t)(N * D) * sizeof(float)),
          *dc = malloc((size_t)(N * D) * sizeof(float));
    float *zero = calloc((size_t)D, sizeof(float));
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++) {
            dhr[n * D + j] = ds_final ? ds_final[n * 2 * D + j] : 0.0f;
            dc[n * D + j] = ds_final ? ds_final[n * 2 * D + D + j] : 0.0f;
        }
    if (N == 1) {
        float *wt = malloc((size_t)(4 * D * D) * sizeof(float));
        transpose(w_hh, D, 4 * D, D, wt);
        bwd_one(d, wt, s0, zero, act, dh, dz, dhr, dc);
        free(wt);
    } else
        bwd_rows(d, N, w_hh, s0, zero, act, dh, dz, dhr, dc);
    for (int64_t n = 0; ds0 && s0 && n < N; n++)
        for (int64_t j = 0; j < D; j++) {
            ds0[n * 2 * D + j] += dhr[n * D + j];
            ds0[n * 2 * D + D + j] += dc[n * D + j];
        }
    /* dW_hh = sum_t dz_t^T h_{t-1}: per sequence one GEMM over its tokens
     * after the first (their h_{t-1} are the rows of h just before), and
     * the first token's against s0's h. */
    for (int64_t n = 0; dw_hh && n < N; n++) {
        const int64_t st = sl_seq_start(d->seqs, n, d->T), len = sl_seq_len(d->seqs, n, d->T);
        if (len > 1)
            sl_gemm(true, false, G, D, len - 1, dz + (st + 1) * G, h + st * D, 1.0f, dw_hh);
        if (len > 0 && s0) sl_gemm(true, false, G, D, 1, dz + st * G, s0 + n * 2 * D, 1.0f, dw_hh);
    }
    free(dhr);
    free(dc);
    free(zero);
}

/* Node: in = {gx, w_hh, s0}, out = h, desc = the sl_lstm_desc (its seqs
 * kept), saved = the activations [B, T, 5D]. */
static void lstm_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *gx = nd->in[0], *w = nd->in[1], *s0 = nd->in[2];
    float *dz = sl_arena_floats(ctx, gx->n);
    sl_lstm_bwd(nd->desc, w->data, s0 ? s0->data : NULL, nd->out->data, nd->saved, nd->out->grad,
                dz, w->requires_grad ? sl_grad(ctx, w) : NULL,
                s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL);
    if (!gx->requires_grad) return;
    float *g = sl_grad(ctx, gx);
#pragma omp parallel for simd schedule(static) if (gx->n >= SL_PAR_MIN)
    for (int64_t i = 0; i < gx->n; i++) g[i] += dz[i];
}

/* gx: [B, T, 4D], w_hh: [4D, D], s0: [N, 2D] | NULL -> h: [B, T, D];
 * s_final: [N, 2D] | NULL. */
sl_tensor *sl_lstm(sl_ctx *ctx, sl_tensor *gx, sl_tensor *w_hh, sl_tensor *s0, float *s_final,
                   const sl_seqs *seqs)
{
    sl_require(gx->ndim == 3 && gx->shape[2] % 4 == 0 && gx->shape[2] > 0, "sl_lstm",
               "gx [B, T, 4D]");
    const int64_t D = gx->shape[2] / 4;
    sl_require(w_hh->ndim == 2 && w_hh->shape[0] == 4 * D && w_hh->shape[1] == D, "sl_lstm",
               "w_hh [4D, D]");
    sl_require(sl_seqs_check(seqs, gx, "sl_lstm") == SL_OK, "sl_lstm",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over a [1, T, 4D]");
    sl_lstm_desc d = {gx->shape[0], gx->shape[1], D, seqs, sl_state_final_grad(ctx, s_final)};
    sl_require(!s0 || s0->n == sl_seq_count(seqs, d.B) * 2 * D, "sl_lstm", "s0 [N, 2D]");
    sl_tensor *h = SL_NEW(ctx, d.B, d.T, D);
    sl_node *nd = SL_RECORD(ctx, lstm_backward, h, gx, w_hh, s0);
    float *act = NULL;
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
        act = sl_arena_floats(ctx, d.B * d.T * 5 * D);
        nd->saved = act;
    }
    sl_lstm_fwd(&d, gx->data, w_hh->data, s0 ? s0->data : NULL, h->data, act, s_final);
    return h;
}

static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }

void sl_lstm_ref(const sl_lstm_desc *d, const float *gx, const float *w_hh, const float *s0,
                 double *h, double *s_final)
{
    const int64_t D = d->D, G = 4 * D;
    double *hp = malloc((size_t)(2 * D + G) * sizeof(double)), *c = hp + D, *z = c + D;
    for (int64_t n = 0; n < sl_seq_count(d->seqs, d->B); n++) {
        const int64_t st = sl_seq_start(d->seqs, n, d->T), len = sl_seq_len(d->seqs, n, d->T);
        for (int64_t j = 0; j < 2 * D; j++) hp[j] = s0 ? s0[n * 2 * D + j] : 0.0;
        for (int64_t t = 0; t < len; t++) {
            const int64_t tok = st + t;
            for (int64_t r = 0; r < G; r++) {
                double s = gx[tok * G + r];
                for (int64_t k = 0; k < D; k++) s += (double)w_hh[r * D + k] * hp[k];
                z[r] = s;
            }
            for (int64_t j = 0; j < D; j++) {
                c[j] = sigmoid_d(z[D + j]) * c[j] + sigmoid_d(z[j]) * tanh(z[2 * D + j]);
                hp[j] = sigmoid_d(z[3 * D + j]) * tanh(c[j]);
                h[tok * D + j] = hp[j];
            }
        }
        for (int64_t j = 0; s_final && j < 2 * D; j++) s_final[n * 2 * D + j] = hp[j];
    }
    free(hp);
}

void sl_lstm_step(float *state, const float *gx, const float *w_hh, int64_t D, float *scratch)
{
    for (int64_t j0 = 0; j0 < D; j0 += UB)
        row_block(w_hh, D, j0, min64(UB, D - j0), gx, state, state + D, scratch, NULL);
    memcpy(state, scratch, (size_t)D * sizeof(float));
}
