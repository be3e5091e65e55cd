/* Short causal depthwise conv1d with state (equation in shortconv.h). The
 * input is read through one row accessor over [state0 ; x], so the state is
 * not special-cased anywhere and chunks shorter than K-1 need no branch of
 * their own. Weights are transposed to [K, C] once per call so the inner
 * loops run over contiguous channels.
 *
 * A packed batch (sl_seqs) is handled by giving every sequence its own
 * [state0_i ; x_i] rows: the row accessor never sees another sequence's
 * tokens, so a sequence's first K-1 taps read its own state (or zeros). */
#include <omp.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/shortconv.h"

/* Row r of xx = [state0 ; x] of one sequence: state0 rows first, zeros when
 * there is no state. x: [T, C], state0: [K-1, C] or NULL, zeros: [C]. */
static inline const float *xx_row(const float *x, const float *state0, const float *zeros,
                                  int64_t r, int64_t K, int64_t C)
{
    if (r >= K - 1) return x + (r - (K - 1)) * C;
    return state0 ? state0 + r * C : zeros;
}

/* The sequence owning item idx when sequence i's items begin at
 * cu[i] + i*extra (extra = 0 for tokens; K-1 for the rows of the
 * concatenated [state0_i ; x_i], each sequence adding K-1 state rows).
 * Without seqs: B sequences of `per` items each. Returns the largest i whose
 * items begin at or before idx, which skips zero-length sequences (they own
 * no item). Binary search: O(log n) against the K*C work of each item. */
static int64_t seq_of(const sl_seqs *s, int64_t idx, int64_t per, int64_t extra)
{
    if (!s) return idx / per;
    int64_t lo = 0, hi = s->n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (s->cu[mid] + mid * extra <= idx)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* w: [C, K] -> wt: [K, C]. */
static void transpose_w(const float *w, int64_t C, int64_t K, float *wt)
{
    for (int64_t c = 0; c < C; c++)
        for (int64_t j = 0; j < K; j++) wt[j * C + c] = w[c * K + j];
}

/* x: [T, C], state0: [K-1, C] | NULL -> state_out: [K-1, C], the last K-1
 * rows of xx. Increasing j reads xx row T + j >= j, so state_out may alias
 * state0. */
static void write_state(const float *x, const float *state0, const float *zeros, int64_t T,
                        int64_t K, int64_t C, float *state_out)
{
    for (int64_t j = 0; j < K - 1; j++)
        memmove(state_out + j * C, xx_row(x, state0, zeros, T + j, K, C), (size_t)C * sizeof(float));
}

/* What the backward needs: the transposed weights and a zero row, and the
 * packed bounds copied to the arena (the caller's cu need not outlive the
 * forward). */
typedef struct sc_saved {
    const float *wt;    /* [K, C] */
    const float *zeros; /* [C] */
    sl_seqs seqs;       /* seqs.cu NULL: no packing */
} sc_saved;

/* dy: [B, T, C] -> dx: [B, T, C], dstate0: [N, K-1, C] (through the
 * transposed conv), dw: [C, K], dbias: [C] (summed per thread over its rows,
 * then over threads in order, so results are deterministic for a given
 * thread count). Rows are those of each sequence's own [state0_i ; x_i], so
 * no gradient crosses a packed bound. */
static void shortconv_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *w = nd->in[1], *bias = nd->in[2], *s0 = nd->in[3];
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2], K = w->shape[1];
    const sc_saved *sv = nd->saved;
    const sl_seqs *seqs = sv->seqs.cu ? &sv->seqs : NULL;
    const float *dy = nd->out->grad, *wt = sv->wt, *zeros = sv->zeros;
    float *dx = x->requires_grad ? sl_grad(ctx, x) : NULL;
    float *ds0 = s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL;
    bool need_dw = w->requires_grad, need_db = bias && bias->requires_grad;
    int nt = B * T * C * K >= SL_PAR_MIN ? omp_get_max_threads() : 1;
    float *part = NULL;
    if (need_dw || need_db) {
        part = sl_arena_floats(ctx, (int64_t)nt * (K + 1) * C);
        memset(part, 0, (size_t)nt * (size_t)((K + 1) * C) * sizeof(float));
    }
    /* Sequence i's xx rows: its len_i tokens plus K-1 state rows, starting
     * at row start_i + i (K-1) of all N*(K-1) + B*T. */
    int64_t N = sl_seq_count(seqs, B), rows = B * T + N * (K - 1);
#pragma omp parallel num_threads(nt)
    {
        float *pw = part ? part + (int64_t)omp_get_thread_num() * (K + 1) * C : NULL;
#pragma omp for schedule(static)
        for (int64_t br = 0; br < rows; br++) {
            int64_t b = seq_of(seqs, br, T + K - 1, K - 1);
            int64_t st = sl_seq_start(seqs, b, T), len = sl_seq_len(seqs, b, T);
            int64_t r = br - (st + b * (K - 1)); /* row of this sequence's xx */
            const float *xb = x->data + st * C, *s0b = s0 ? s0->data + b * (K - 1) * C : NULL;
            const float *dyb = dy + st * C;
            /* xx row r feeds outputs t = r - j for the K taps j. */
            float *dst = r >= K - 1 ? (dx ? dx + (st + r - (K - 1)) * C : NULL)
                                    : (ds0 ? ds0 + (b * (K - 1) + r) * C : NULL);
            const float *xr = xx_row(xb, s0b, zeros, r, K, C);
            for (int64_t j = 0; j < K; j++) {
                int64_t t = r - j;
                if (t < 0 || t >= len) continue;
                const float *dyt = dyb + t * C, *wj = wt + j * C;
                if (dst) {
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) dst[c] += wj[c] * dyt[c];
                }
                if (need_dw) {
                    float *pwj = pw + j * C;
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) pwj[c] += dyt[c] * xr[c];
                }
            }
            /* Each output row is counted once for dbias: at its current-token tap. */
            if (need_db && r >= K - 1) {
                const float *dyt = dyb + (r - (K - 1)) * C;
                float *pb = pw + K * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++) pb[c] += dyt[c];
            }
        }
    }
    float *dw = need_dw ? sl_grad(ctx, w) : NULL, *db = need_db ? sl_grad(ctx, bias) : NULL;
    for (int th = 0; th < nt && part; th++) {
        const float *pw = part + (int64_t)th * (K + 1) * C;
        if (dw)
            for (int64_t c = 0; c < C; c++)
                for (int64_t j = 0; j < K; j++) dw[c * K + j] += pw[j * C + c];
        if (db)
            for (int64_t c = 0; c < C; c++) db[c] += pw[K * C + c];
    }
}

/* x: [B, T, C], w: [C, K], bias: [C] | NULL, state0: [N, K-1, C] | NULL
 * -> [B, T, C]; state_out: [N, K-1, C] | NULL. N = B, or seqs->n with
 * B = 1. Saves wT: [K, C], a zero row [C] and the bounds. */
sl_tensor *sl_shortconv(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *bias,
                        sl_tensor *state0, float *state_out, const sl_seqs *seqs)
{
    sl_require(x->ndim == 3 && w->ndim == 2 && w->shape[0] == x->shape[2] && w->shape[1] >= 1,
               "sl_shortconv", "x [B, T, C], w [C, K]");
    /* Before anything is allocated or recorded: bounds past T would read and
     * write outside every tensor. */
    sl_require(sl_seqs_check(seqs, x, "sl_shortconv") == SL_OK, "sl_shortconv",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, C]");
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2], K = w->shape[1];
    int64_t N = sl_seq_count(seqs, B);
    sl_require(!bias || bias->n == C, "sl_shortconv", "bias [C]");
    sl_require(!state0 || state0->n == N * (K - 1) * C, "sl_shortconv", "state0 [N, K-1, C]");
    sl_tensor *y = SL_NEW(ctx, B, T, C);
    sl_node *nd = SL_RECORD(ctx, shortconv_backward, y, x, w, bias, state0);
    float *wt = sl_arena_floats(ctx, (K + 1) * C), *zeros = wt + K * C;
    transpose_w(w->data, C, K, wt);
    memset(zeros, 0, (size_t)C * sizeof(float));
    if (nd) {
        sc_saved *sv = sl_arena_alloc(&ctx->arena, sizeof *sv);
        *sv = (sc_saved){wt, zeros, {0, NULL}};
        if (seqs) sv->seqs = *sl_seqs_keep(ctx, seqs);
        nd->saved = sv;
    }
#pragma omp parallel for schedule(static) if (B * T * C * K >= SL_PAR_MIN)
    for (int64_t bt = 0; bt < B * T; bt++) {
        /* Token bt of sequence b, at position t of it. */
        int64_t b = seq_of(seqs, bt, T, 0), st = sl_seq_start(seqs, b, T), t = bt - st;
        const float *xb = x->data + st * C;
        const float *s0b = state0 ? state0->data + b * (K - 1) * C : NULL;
        float *yr = y->data + bt * C;
        if (bias)
            memcpy(yr, bias->data, (size_t)C * sizeof(float));
        else
            memset(yr, 0, (size_t)C * sizeof(float));
        for (int64_t j = 0; j < K; j++) {
            const float *xr = xx_row(xb, s0b, zeros, t + j, K, C), *wj = wt + j * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) yr[c] += wj[c] * xr[c];
        }
    }
    /* Each sequence's own last K-1 rows of [state0_i ; x_i]: one shorter
     * than K-1 keeps part of its own initial state. */
    if (state_out)
        for (int64_t b = 0; b < N; b++)
            write_state(x->data + sl_seq_start(seqs, b, T) * C,
                        state0 ? state0->data + b * (K - 1) * C : NULL, zeros,
                        sl_seq_len(seqs, b, T), K, C, state_out + b * (K - 1) * C);
    return y;
}

/* Same layouts as sl_shortconv (x: [B, T, C], states [N, K-1, C]); sums in
 * double. */
void sl_shortconv_ref(const float *x, const float *w, const float *bias, const float *state0,
                      int64_t B, int64_t T, int64_t C, int64_t K, float *y, float *state_out,
                      const sl_seqs *seqs)
{
    /* b: the sequence; its tokens are st..st+len over all B*T, and its
     * state row is b. */
    for (int64_t b = 0; b < sl_seq_count(seqs, B); b++) {
        int64_t st = sl_seq_start(seqs, b, T), len = sl_seq_len(seqs, b, T);
        for (int64_t t = 0; t < len; t++)
            for (int64_t c = 0; c < C; c++) {
                double s = bias ? bias[c] : 0.0;
                for (int64_t j = 0; j < K; j++) {
                    int64_t r = t + j; /* row of [state0 ; x] */
                    double xv = r >= K - 1 ? x[(st + r - (K - 1)) * C + c]
                                : state0   ? state0[(b * (K - 1) + r) * C + c]
                                           : 0.0;
                    s += w[c * K + j] * xv;
                }
                y[(st + t) * C + c] = (float)s;
            }
        if (!state_out) continue;
        /* Increasing j reads row len + j >= j: state_out may alias state0. */
        for (int64_t j = 0; j < K - 1; j++) {
            int64_t r = len + j;
            for (int64_t c = 0; c < C; c++) {
                float v = r >= K - 1 ? x[(st + r - (K - 1)) * C + c]
                          : state0   ? state0[(b * (K - 1) + r) * C + c]
                                     : 0.0f;
                state_out[(b * (K - 1) + j) * C + c] = v;
            }
        }
    }
}

/* x_t: [C] -> y_t: [C]; state: [K-1, C], oldest row first. */
void sl_shortconv_step(const float *x_t, const float *w, const float *bias, int64_t C, int64_t K,
                       float *state, float *y_t)
{
    for (int64_t c = 0; c < C; c++) {
        float s = bias ? bias[c] : 0.0f;
        for (int64_t j = 0; j < K - 1; j++) s += w[c * K + j] * state[j * C + c];
        y_t[c] = s + w[c * K + K - 1] * x_t[c];
    }
    if (K > 1) {
        memmove(state, state + C, (size_t)((K - 2) * C) * sizeof(float));
        memcpy(state + (K - 2) * C, x_t, (size_t)C * sizeof(float));
    }
}
