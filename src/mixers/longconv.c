/* The long-convolution mixers' shared pieces: positional features, and the
 * FFT convolution continued from a cached history. */
#include <math.h>
#include <string.h>

#include "mixers/longconv.h"
#include "ops/columns.h"
#include "ops/fftconv.h"
#include "ops/ops.h"

double sl_lag_time(int64_t l, int64_t M) { return M > 1 ? (double)l / (double)(M - 1) : 0; }

void sl_lag_features(int64_t l, int64_t M, int64_t E, float *z)
{
    const int64_t nb = (E - 1) / 2;
    const double w = 2.0 * M_PI * (double)l / (double)M;
    z[0] = (float)sl_lag_time(l, M);
    for (int64_t b = 0; b < nb; b++) {
        const double f = nb > 1 ? 1e-4 + ((double)nb - 1 - 1e-4) * (double)b / (double)(nb - 1)
                                : 1e-4;
        z[1 + b] = (float)cos(f * w);
        z[1 + nb + b] = (float)-sin(f * w);
    }
}

sl_tensor *sl_lag_feature_table(sl_ctx *ctx, int64_t L, int64_t M, int64_t E)
{
    sl_tensor *z = SL_NEW(ctx, L, E);
    for (int64_t l = 0; l < L; l++) sl_lag_features(l, M, E, z->data + l * E);
    return z;
}

/* Adds to hy: [len, C] what the pos earlier tokens hist: [pos, C] give
 * the next len tokens under taps k: [C, Lk]: [hist ; zeros] convolved with
 * lags 0 .. pos + len - 1 by FFT, rows pos.. . */
static void history_part(sl_ctx *ctx, const float *hist, const float *k, int64_t Lk, int64_t pos,
                         int64_t len, int64_t C, float *hy)
{
    const int64_t L = pos + len;
    float *uc = sl_arena_floats(ctx, L * C), *kc = sl_arena_floats(ctx, C * L),
          *yc = sl_arena_floats(ctx, L * C);
    memcpy(uc, hist, (size_t)(pos * C) * sizeof(float));
    memset(uc + pos * C, 0, (size_t)(len * C) * sizeof(float));
    for (int64_t c = 0; c < C; c++) memcpy(kc + c * L, k + c * Lk, (size_t)L * sizeof(float));
    const sl_fftconv_desc d = {.B = 1, .T = L, .C = C, .causal = true};
    sl_fftconv_fwd(&d, uc, kc, yc);
    memcpy(hy, yc + pos * C, (size_t)(len * C) * sizeof(float));
}

sl_tensor *sl_longconv(sl_ctx *ctx, sl_tensor *u, sl_tensor *k, const sl_longconv_cache *c,
                       float *state, int64_t pos, const sl_seqs *seqs)
{
    const int64_t B = u->shape[0], T = u->shape[1], C = c->C, Lk = k->shape[1];
    sl_require(k->shape[0] == C && Lk >= pos + T, "sl_longconv", "k [C, >= pos + T]");
    sl_tensor *y = sl_fftconv(ctx, u, Lk == T ? k : sl_columns(ctx, k, 0, T), true, seqs);
    if (!state) return y;
    sl_tensor *hy = NULL;
    if (pos > 0) {
        hy = SL_NEW(ctx, B, T, C);
        memset(hy->data, 0, (size_t)hy->n * sizeof(float));
    }
    for (int64_t i = 0; i < sl_seq_count(seqs, B); i++) {
        float *st = state + i * c->sf, *hs = st + c->hist;
        const int64_t t0 = sl_seq_start(seqs, i, T), len = sl_seq_len(seqs, i, T);
        sl_require(pos + len <= c->M, "sl_longconv", "a carried state within max_seq_len");
        if (c->taps >= 0)
            for (int64_t l = 0; l < pos + len; l++)
                for (int64_t ch = 0; ch < C; ch++) st[c->taps + l * C + ch] = k->data[ch * Lk + l];
        if (hy && len > 0) history_part(ctx, hs, k->data, Lk, pos, len, C, hy->data + t0 * C);
        memcpy(hs + pos * C, u->data + t0 * C, (size_t)(len * C) * sizeof(float));
    }
    return hy ? sl_add(ctx, y, hy) : y;
}

void sl_longconv_step(float *hist, const float *taps, const float *u, int64_t pos, int64_t C,
                      float *y)
{
    memcpy(hist + pos * C, u, (size_t)C * sizeof(float));
    for (int64_t s = 0; s <= pos; s++) {
        const float *kr = taps + (pos - s) * C, *ur = hist + s * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) y[c] += kr[c] * ur[c];
    }
}
