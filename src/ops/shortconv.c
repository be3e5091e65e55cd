/* Short causal depthwise conv1d with state (equation in shortconv.h): the
 * kernels on pointers, and the op that records them. The input is read
 * through one row accessor over [s0 ; x], so the state is
 * not special-cased anywhere and chunks shorter than K-1 need no branch of
 * their own. Weights are transposed to [K, C] once per call so the inner
 * loops run over contiguous channels.
 *
 * A packed batch (sl_seqs) is handled by giving every sequence its own
 * [s0_i ; x_i] rows: the row accessor never sees another sequence's
 * tokens, so a sequence's first K-1 taps read its own state (or zeros). */
#include <omp.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/shortconv.h"

/* Row r of xx = [s0 ; x] of one sequence: s0's rows first, zeros when
 * there is no state. x: [T, C], s0: [K-1, C] or NULL, zeros: [C]. */
static inline const float *xx_row(const float *x, const float *s0, const float *zeros, int64_t r,
                                  int64_t K, int64_t C)
{
    if (r >= K - 1) return x + (r - (K - 1)) * C;
    return s0 ? s0 + r * C : zeros;
}

/* Output token t of one sequence: y: [C] = bias + sum_j w_j . xx row t + j,
 * taps in order, with tap j's weight on channel c at w[j * js + c * cs]
 * (the forward's transposed wt: js = C, cs = 1; step()'s w: js = 1, cs = K).
 * Both forms call this, so they agree bit for bit. */
static inline void conv_token(const float *x, const float *s0, const float *zeros, int64_t t,
                              const float *w, int64_t js, int64_t cs, const float *bias, int64_t C,
                              int64_t K, float *y)
{
    if (bias)
        memcpy(y, bias, (size_t)C * sizeof(float));
    else
        memset(y, 0, (size_t)C * sizeof(float));
    for (int64_t j = 0; j < K; j++) {
        const float *xr = xx_row(x, s0, zeros, t + j, K, C), *wj = w + j * js;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) y[c] += wj[c * cs] * xr[c];
    }
}

/* The sequence owning item idx when sequence i's items begin at
 * cu[i] + i*extra (extra = 0 for tokens; K-1 for the rows of the
 * concatenated [s0_i ; x_i], each sequence adding K-1 state rows).
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

/* x: [T, C], s0: [K-1, C] | NULL -> s_final: [K-1, C], the last K-1 rows
 * of xx. Increasing j reads xx row T + j >= j, so s_final may alias s0. */
static void write_state(const float *x, const float *s0, const float *zeros, int64_t T, int64_t K,
                        int64_t C, float *s_final)
{
    for (int64_t j = 0; j < K - 1; j++)
        memmove(s_final + j * C, xx_row(x, s0, zeros, T + j, K, C), (size_t)C * sizeof(float));
}

/* The transposed weights wt: [K, C] and a zero row [C], at the start of
 * either kernel's scratch. */
static float *prepare(const sl_shortconv_desc *d, const float *w, float *scratch)
{
    transpose_w(w, d->C, d->K, scratch);
    memset(scratch + d->K * d->C, 0, (size_t)d->C * sizeof(float));
    return scratch;
}

int64_t sl_shortconv_fwd_scratch(const sl_shortconv_desc *d) { return (d->K + 1) * d->C; }

void sl_shortconv_fwd(const sl_shortconv_desc *d, const float *x, const float *w, const float *bias,
                      const float *s0, float *y, float *s_final, float *scratch)
{
    const int64_t B = d->B, T = d->T, C = d->C, K = d->K, N = sl_seq_count(d->seqs, B);
    const sl_seqs *seqs = d->seqs;
    const float *wt = prepare(d, w, scratch), *zeros = wt + K * C;
#pragma omp parallel for schedule(static) if (B * T * C * K >= SL_PAR_MIN)
    for (int64_t bt = 0; bt < B * T; bt++) {
        /* Token bt of sequence b, at position t of it. */
        int64_t b = seq_of(seqs, bt, T, 0), st = sl_seq_start(seqs, b, T), t = bt - st;
        const float *xb = x + st * C;
        const float *s0b = s0 ? s0 + b * (K - 1) * C : NULL;
        conv_token(xb, s0b, zeros, t, wt, C, 1, bias, C, K, y + bt * C);
    }
    /* Each sequence's own last K-1 rows of [s0_i ; x_i]: one shorter than
     * K-1 keeps part of its own initial state. */
    if (s_final)
        for (int64_t b = 0; b < N; b++)
            write_state(x + sl_seq_start(seqs, b, T) * C, s0 ? s0 + b * (K - 1) * C : NULL, zeros,
                        sl_seq_len(seqs, b, T), K, C, s_final + b * (K - 1) * C);
}

/* The backward's team: one thread below SL_PAR_MIN, as the forward. */
static int bwd_threads(const sl_shortconv_desc *d)
{
    return d->B * d->T * d->C * d->K >= SL_PAR_MIN ? omp_get_max_threads() : 1;
}

/* wt and zeros, then each thread's dw [K, C] and dbias [C] slices. */
int64_t sl_shortconv_bwd_scratch(const sl_shortconv_desc *d)
{
    return (1 + (int64_t)bwd_threads(d)) * (d->K + 1) * d->C;
}

/* dy -> dx, ds0 through the transposed conv, dw and dbias summed per thread
 * over its rows, then over threads in order (deterministic for a given
 * thread count). Rows are those of each sequence's own [s0_i ; x_i], so no
 * gradient crosses a packed bound. */
void sl_shortconv_bwd(const sl_shortconv_desc *d, const float *x, const float *w, const float *s0,
                      const float *dy, float *dx, float *dw, float *dbias, float *ds0,
                      float *scratch)
{
    const int64_t B = d->B, T = d->T, C = d->C, K = d->K, N = sl_seq_count(d->seqs, B);
    const sl_seqs *seqs = d->seqs;
    const int nt = bwd_threads(d);
    const float *wt = prepare(d, w, scratch), *zeros = wt + K * C;
    float *part = dw || dbias ? scratch + (K + 1) * C : NULL;
    if (part) memset(part, 0, (size_t)nt * (size_t)((K + 1) * C) * sizeof(float));
    /* Sequence i's xx rows: its len_i tokens plus K-1 state rows, starting
     * at row start_i + i (K-1) of all N*(K-1) + B*T. */
    const int64_t rows = B * T + N * (K - 1);
#pragma omp parallel num_threads(nt)
    {
        float *pw = part ? part + (int64_t)omp_get_thread_num() * (K + 1) * C : NULL;
#pragma omp for schedule(static)
        for (int64_t br = 0; br < rows; br++) {
            int64_t b = seq_of(seqs, br, T + K - 1, K - 1);
            int64_t st = sl_seq_start(seqs, b, T), len = sl_seq_len(seqs, b, T);
            int64_t r = br - (st + b * (K - 1)); /* row of this sequence's xx */
            const float *xb = x + st * C, *s0b = s0 ? s0 + b * (K - 1) * C : NULL;
            const float *dyb = dy + st * C;
            /* xx row r feeds outputs t = r - j for the K taps j. */
            float *dst = r >= K - 1 ? (dx ? dx + (st + r - (K - 1)) * C : NULL)
                                    : (ds0 ? ds0 + (b * (K - 1) + r) * C : NULL);
            const float *xr = xx_row(xb, s0b, zeros, r, K, C);
            /* The last K-1 rows of xx are the final state. */
            if (dst && d->ds_final && r >= len) {
                const float *g = d->ds_final + (b * (K - 1) + r - len) * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++) dst[c] += g[c];
            }
            for (int64_t j = 0; j < K; j++) {
                int64_t t = r - j;
                if (t < 0 || t >= len) continue;
                const float *dyt = dyb + t * C, *wj = wt + j * C;
                if (dst) {
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) dst[c] += wj[c] * dyt[c];
                }
                if (dw) {
                    float *pwj = pw + j * C;
#pragma omp simd
                    for (int64_t c = 0; c < C; c++) pwj[c] += dyt[c] * xr[c];
                }
            }
            /* Each output row is counted once for dbias: at its current-token tap. */
            if (dbias && r >= K - 1) {
                const float *dyt = dyb + (r - (K - 1)) * C;
                float *pb = pw + K * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++) pb[c] += dyt[c];
            }
        }
    }
    for (int th = 0; th < nt && part; th++) {
        const float *pw = part + (int64_t)th * (K + 1) * C;
        if (dw)
            for (int64_t c = 0; c < C; c++)
                for (int64_t j = 0; j < K; j++) dw[c * K + j] += pw[j * C + c];
        if (dbias)
            for (int64_t c = 0; c < C; c++) dbias[c] += pw[K * C + c];
    }
}

/* Node: in = {x, w, bias, s0}; desc = sl_shortconv_desc, its packed
 * bounds copied to the arena (the caller's cu need not outlive the forward). */
static void shortconv_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *x = nd->in[0], *w = nd->in[1], *bias = nd->in[2], *s0 = nd->in[3];
    const sl_shortconv_desc d = *(const sl_shortconv_desc *)nd->desc;
    float *dw = w->requires_grad ? sl_grad(ctx, w) : NULL;
    float *db = bias && bias->requires_grad ? sl_grad(ctx, bias) : NULL;
    sl_shortconv_bwd(&d, x->data, w->data, s0 ? s0->data : NULL, nd->out->grad,
                     x->requires_grad ? sl_grad(ctx, x) : NULL, dw, db,
                     s0 && s0->requires_grad ? sl_grad(ctx, s0) : NULL,
                     sl_arena_floats(ctx, sl_shortconv_bwd_scratch(&d)));
}

/* x: [B, T, C], w: [C, K], bias: [C] | NULL, s0: [N, K-1, C] | NULL
 * -> [B, T, C]; s_final: [N, K-1, C] | NULL. N = B, or seqs->n with B = 1. */
sl_tensor *sl_shortconv(sl_ctx *ctx, sl_tensor *x, sl_tensor *w, sl_tensor *bias, sl_tensor *s0,
                        float *s_final, const sl_seqs *seqs)
{
    sl_require(x->ndim == 3 && w->ndim == 2 && w->shape[0] == x->shape[2] && w->shape[1] >= 1,
               "sl_shortconv", "x [B, T, C], w [C, K]");
    /* Before anything is allocated or recorded: bounds past T would read and
     * write outside every tensor. */
    sl_require(sl_seqs_check(seqs, x, "sl_shortconv") == SL_OK, "sl_shortconv",
               "packed bounds 0 = cu[0] <= ... <= cu[n] = T over x [1, T, C]");
    sl_shortconv_desc d = {x->shape[0], x->shape[1], x->shape[2], w->shape[1], seqs,
                           sl_state_final_grad(ctx, s_final)};
    const int64_t N = sl_seq_count(seqs, d.B);
    sl_require(!bias || bias->n == d.C, "sl_shortconv", "bias [C]");
    sl_require(!s0 || s0->n == N * (d.K - 1) * d.C, "sl_shortconv", "s0 [N, K-1, C]");
    sl_tensor *y = SL_NEW(ctx, d.B, d.T, d.C);
    sl_node *nd = SL_RECORD(ctx, shortconv_backward, y, x, w, bias, s0);
    if (nd) {
        d.seqs = sl_seqs_keep(ctx, seqs);
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_shortconv_fwd(&d, x->data, w->data, bias ? bias->data : NULL, s0 ? s0->data : NULL, y->data,
                     s_final, sl_arena_floats(ctx, sl_shortconv_fwd_scratch(&d)));
    return y;
}

/* Same layouts as sl_shortconv (x: [B, T, C], states [N, K-1, C]); sums in
 * double. */
void sl_shortconv_ref(const float *x, const float *w, const float *bias, const float *s0, int64_t B,
                      int64_t T, int64_t C, int64_t K, float *y, float *s_final,
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
                    int64_t r = t + j; /* row of [s0 ; x] */
                    double xv = r >= K - 1 ? x[(st + r - (K - 1)) * C + c]
                                : s0       ? s0[(b * (K - 1) + r) * C + c]
                                           : 0.0;
                    s += w[c * K + j] * xv;
                }
                y[(st + t) * C + c] = (float)s;
            }
        if (!s_final) continue;
        /* Increasing j reads row len + j >= j: s_final may alias s0. */
        for (int64_t j = 0; j < K - 1; j++) {
            int64_t r = len + j;
            for (int64_t c = 0; c < C; c++) {
                float v = r >= K - 1 ? x[(st + r - (K - 1)) * C + c]
                          : s0       ? s0[(b * (K - 1) + r) * C + c]
                                     : 0.0f;
                s_final[(b * (K - 1) + j) * C + c] = v;
            }
        }
    }
}

/* state: [K-1, C] in place, oldest row first; x: [C] -> y: [C]. */
void sl_shortconv_step(float *state, const float *x, const float *w, const float *bias, int64_t C,
                       int64_t K, float *y)
{
    conv_token(x, state, NULL, 0, w, 1, K, bias, C, K, y);
    if (K > 1) {
        memmove(state, state + C, (size_t)((K - 2) * C) * sizeof(float));
        memcpy(state + (K - 2) * C, x, (size_t)C * sizeof(float));
    }
}
