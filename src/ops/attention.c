/* Fused multi-head scaled dot-product attention, forward and backward.
 *
 * Per batch row b and head h, with q_i, k_j, v_j the dh-vectors of token i, j
 * and scale = 1/sqrt(dh):
 *     s_ij = scale q_i . k_j            (only where key j is visible to query i)
 *     out_i = sum_j softmax_j(s_i.) v_j
 *
 * Forward (FlashAttention). Keys are walked in blocks of BK; for every block of
 * BQ queries that sees the key block, S = Q K^T exists only as a BQ x BK tile
 * and the softmax is kept online per query row i:
 *     m_i' = max(m_i, max_j s_ij)
 *     l_i' = e^(m_i - m_i') l_i + sum_j e^(s_ij - m_i')
 *     O_i' = e^(m_i - m_i') O_i + sum_j e^(s_ij - m_i') v_j
 * After the last key block out_i = O_i / l_i exactly, and the log-sum-exp
 * lse_i = m_i + log l_i is all the backward keeps from the forward.
 *
 * Backward (FlashAttention-2). With dO = d out and D_i = dO_i . out_i, per tile:
 *     P = exp(S - lse)        recomputed from Q, K and lse
 *     dV += P^T dO,  dP = dO V^T,  dS = P * (dP - D)
 *     dQ += scale dS K,  dK += scale dS^T Q
 *
 * Why tiled: the T x T score matrix never exists, so extra memory is O(T) per
 * head (lse, plus block-sized scratch per thread) instead of O(T^2); each
 * tile's operands stay in L1/L2; and tiles wholly outside the mask (the causal
 * upper triangle, beyond the window) are skipped. Inside a tile the same
 * skipping goes down to groups of MR rows, so causal attention costs about
 * half the flops of bidirectional. The tile products are register-blocked
 * MR x 16 kernels written with GCC vector types, which run near the FMA peak
 * on these small, strided operands where a BLAS call per tile would spend
 * its time packing.
 *
 * Key blocks are the outer loop in both passes: each key block is transposed
 * once (K^T and V^T are the right-hand sides of S = Q K^T and dP = dO V^T),
 * and in the backward dK, dV of a block finish before the next one starts.
 * Work is split over B x H; every (b, h) is computed by one thread in a fixed
 * order, so results do not depend on the thread count at all. */

/* -std=c11 turns off FMA contraction, and the kernels below are FMA chains
 * that run at half speed without it. Trapping math makes GCC keep sl_expf's
 * clamps as branches, so no exp loop vectorises; nothing here reads the FP
 * exception flags. */
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/fastmath.h"
#include "ops/ops.h"

/* Query and key block sizes: a BQ x BK tile of S and P plus the dh x BK
 * transposed key and value blocks stay within L1/L2 for dh <= 128. */
#define BQ 64
#define BK 64
/* Rows per register tile: MR x 16 accumulators (12 of the 16 AVX registers). */
#define MR 6

typedef float v8 __attribute__((vector_size(32)));
/* Unaligned, aliasing view of 8 floats: operands are rows of strided tensors. */
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define VLOAD(p) ((v8) * (const v8u *)(p))
#define VSTORE(p, x) (*(v8u *)(p) = (x))

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return min64(max64(x, lo), hi); }

/* ------------------------------------------------------------------ mask */

/* Keys visible to query i: [*lo, *hi). Never empty (i sees itself). */
static inline void keys_of(int64_t i, int64_t T, bool causal, int64_t window, int64_t *lo,
                           int64_t *hi)
{
    *lo = window > 0 ? max64(0, i - window + 1) : 0;
    *hi = causal ? i + 1 : window > 0 ? min64(T, i + window) : T;
}

/* Queries that see key j: [*lo, *hi). The mask is symmetric in |i - j| apart
 * from causality, so this is keys_of mirrored. */
static inline void queries_of(int64_t j, int64_t T, bool causal, int64_t window, int64_t *lo,
                              int64_t *hi)
{
    *lo = causal ? j : window > 0 ? max64(0, j - window + 1) : 0;
    *hi = window > 0 ? min64(T, j + window) : T;
}

/* Per row of a tile, the visible columns relative to the tile: rows r of
 * rows [r0, r0+nr), columns [c0, c0+nc). Both bounds are non-decreasing in r,
 * which the kernels rely on to take a group of rows' union as
 * [lo[first], hi[last]). Returns whether any entry is visible. */
static bool tile_ranges(int64_t r0, int64_t nr, int64_t c0, int64_t nc, int64_t T, bool causal,
                        int64_t window, bool rows_are_queries, int32_t *lo, int32_t *hi)
{
    bool any = false;
    for (int64_t r = 0; r < nr; r++) {
        int64_t a, b;
        if (rows_are_queries)
            keys_of(r0 + r, T, causal, window, &a, &b);
        else
            queries_of(r0 + r, T, causal, window, &a, &b);
        lo[r] = (int32_t)clamp64(a - c0, 0, nc);
        hi[r] = (int32_t)clamp64(b - c0, 0, nc);
        any |= lo[r] < hi[r];
    }
    return any;
}

/* --------------------------------------------------------------- kernels */

/* One register tile: C[mr x 8nv] (+)= sum_{k0 <= k < k1} A(m, k) B[k][0 .. 8nv)
 * with A(m, k) = a[m ras + k cas] (any strides, so A^T costs nothing) and B, C
 * row-major. Called with constant mr, nv, acc so each use is a straight-line
 * kernel: per k, nv row loads of B, mr broadcasts of A, mr nv FMAs. The sums
 * start from zero and C is added at the end: C is often a gradient row not
 * yet in cache, and loading it first would stall the whole FMA chain on it. */
static inline __attribute__((always_inline)) void tile(const int mr, const int nv, int64_t k0,
                                                       int64_t k1, const float *a, int64_t ras,
                                                       int64_t cas, const float *b, int64_t ldb,
                                                       float *c, int64_t ldc, const bool acc)
{
    v8 r[MR][2];
    for (int m = 0; m < mr; m++)
        for (int v = 0; v < nv; v++) r[m][v] = (v8){0};
    for (int64_t k = k0; k < k1; k++) {
        const float *bk = b + k * ldb;
        v8 b0 = VLOAD(bk), b1 = nv > 1 ? VLOAD(bk + 8) : b0;
        for (int m = 0; m < mr; m++) {
            float x = a[m * ras + k * cas];
            r[m][0] += x * b0;
            if (nv > 1) r[m][1] += x * b1;
        }
    }
    for (int m = 0; m < mr; m++)
        for (int v = 0; v < nv; v++)
            VSTORE(c + m * ldc + 8 * v, acc ? VLOAD(c + m * ldc + 8 * v) + r[m][v] : r[m][v]);
}

#define TILE_ROWS(R)                                                                      \
    case R:                                                                               \
        if (nv == 2)                                                                      \
            tile(R, 2, k0, k1, a, ras, cas, b, ldb, c, ldc, acc);                         \
        else                                                                              \
            tile(R, 1, k0, k1, a, ras, cas, b, ldb, c, ldc, acc);                         \
        break

/* tile() with run-time mr (row tails) and nv, dispatched to constant ones. */
static inline __attribute__((always_inline)) void tile_any(int mr, int nv, int64_t k0,
                                                           int64_t k1, const float *a,
                                                           int64_t ras, int64_t cas,
                                                           const float *b, int64_t ldb, float *c,
                                                           int64_t ldc, const bool acc)
{
    switch (mr) {
        TILE_ROWS(6);
        TILE_ROWS(5);
        TILE_ROWS(4);
        TILE_ROWS(3);
        TILE_ROWS(2);
        TILE_ROWS(1);
    }
}

/* Columns [n0, n1) of C that are not a whole vector (N % 8 != 0), scalar. */
static void tail_cols(int mr, int64_t n0, int64_t n1, int64_t k0, int64_t k1, const float *a,
                      int64_t ras, int64_t cas, const float *b, int64_t ldb, float *c,
                      int64_t ldc, bool acc)
{
    for (int m = 0; m < mr; m++)
        for (int64_t n = n0; n < n1; n++) {
            float s = acc ? c[m * ldc + n] : 0.0f;
            for (int64_t k = k0; k < k1; k++) s += a[m * ras + k * cas] * b[k * ldb + n];
            c[m * ldc + n] = s;
        }
}

/* C = A B for a masked product whose rows see only columns [lo[m], hi[m]):
 * A: [M, K] (strides ras, cas), B: [K, N] (ldb), C: [M, N] (ldc). Each group
 * of MR rows computes its union of columns, widened to whole vectors; other
 * entries of C are left unset (the caller reads only visible ones). */
static void mm_masked_cols(int64_t M, int64_t N, int64_t K, const float *a, int64_t ras,
                           int64_t cas, const float *b, int64_t ldb, float *c, int64_t ldc,
                           const int32_t *lo, const int32_t *hi)
{
    int64_t nvec = N & ~(int64_t)7;
    for (int64_t m0 = 0; m0 < M; m0 += MR) {
        int mr = (int)min64(MR, M - m0);
        int64_t l = lo[m0], h = hi[m0 + mr - 1];
        if (l >= h) continue;
        const float *am = a + m0 * ras;
        float *cm = c + m0 * ldc;
        int64_t n = l & ~(int64_t)7, nend = min64((h + 7) & ~(int64_t)7, nvec);
        for (; n + 16 <= nend; n += 16) tile_any(mr, 2, 0, K, am, ras, cas, b + n, ldb, cm + n, ldc, false);
        if (n < nend) {
            tile_any(mr, 1, 0, K, am, ras, cas, b + n, ldb, cm + n, ldc, false);
            n += 8;
        }
        if (h > n) tail_cols(mr, n, h, 0, K, am, ras, cas, b, ldb, cm, ldc, false);
    }
}

/* C += A B where row m of A is zero outside [lo[m], hi[m]): the contraction of
 * each group of MR rows runs over its union only. A: [M, K] (strides ras,
 * cas), B: [K, N] (ldb), C: [M, N] (ldc). */
static void mm_masked_acc(int64_t M, int64_t N, const float *a, int64_t ras, int64_t cas,
                          const float *b, int64_t ldb, float *c, int64_t ldc, const int32_t *lo,
                          const int32_t *hi)
{
    int64_t nvec = N & ~(int64_t)7;
    for (int64_t m0 = 0; m0 < M; m0 += MR) {
        int mr = (int)min64(MR, M - m0);
        int64_t k0 = lo[m0], k1 = hi[m0 + mr - 1];
        if (k0 >= k1) continue;
        const float *am = a + m0 * ras;
        float *cm = c + m0 * ldc;
        int64_t n = 0;
        for (; n + 16 <= nvec; n += 16) tile_any(mr, 2, k0, k1, am, ras, cas, b + n, ldb, cm + n, ldc, true);
        if (n < nvec) {
            tile_any(mr, 1, k0, k1, am, ras, cas, b + n, ldb, cm + n, ldc, true);
            n += 8;
        }
        if (N > n) tail_cols(mr, n, N, k0, k1, am, ras, cas, b, ldb, cm, ldc, true);
    }
}

/* max_j x[j]; x: [n], n >= 1. */
static inline float row_max(const float *x, int64_t n)
{
    float mx = x[0];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    return mx;
}

/* x[j] = exp(scale x[j] - shift) in place; returns the sum. x: [n]. */
static inline float exp_row(float *x, int64_t n, float scale, float shift)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) {
        x[j] = sl_expf(x[j] * scale - shift);
        sum += x[j];
    }
    return sum;
}

/* dst[d][j] = src[j][d]: src: [n, dh] rows ld apart, dst: [dh, BK]. */
static void transpose_block(const float *src, int64_t ld, int64_t n, int64_t dh, float *dst)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t d = 0; d < dh; d++) dst[d * BK + j] = src[j * ld + d];
}

/* ------------------------------------------------------------ the op */

/* Per-thread scratch in floats, each part rounded to 64 bytes: two [T] row
 * statistics, two BQ x BK tiles, two dh x BK transposed blocks. */
static int64_t scratch_floats(int64_t T, int64_t dh)
{
    int64_t r16 = ~(int64_t)15;
    return 2 * ((T + 15) & r16) + 2 * BQ * BK + 2 * ((dh * BK + 15) & r16);
}

/* Waking the thread pool costs microseconds, and far more when the cores are
 * shared; below ~1e6 multiply-adds (a few hundred microseconds of work) one
 * thread finishes first. */
static bool worth_threads(int64_t heads, int64_t T, int64_t dh)
{
    return heads > 1 && heads * T * T * dh >= (int64_t)1 << 20;
}

typedef struct {
    int64_t T, H, dh;
    bool causal;
    int64_t window;
} attn_shape;

/* One (b, h) of the forward. q, k, v: [T, dh] rows ld = 3D apart (views into
 * qkv); o: [T, dh] rows D apart (into out); lse: [T] or NULL. */
static void forward_head(const attn_shape *sh, const float *q, const float *k, const float *v,
                         int64_t ld, float *o, int64_t ldo, float *lse, float *scratch)
{
    const int64_t T = sh->T, dh = sh->dh;
    const float scale = 1.0f / sqrtf((float)dh);
    int64_t tpad = (T + 15) & ~(int64_t)15;
    float *m = scratch, *l = m + tpad, *s = l + tpad, *kt = s + 2 * BQ * BK;
    int32_t lo[BQ], hi[BQ];

    for (int64_t i = 0; i < T; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
        memset(o + i * ldo, 0, (size_t)dh * sizeof(float));
    }
    for (int64_t j0 = 0; j0 < T; j0 += BK) {
        int64_t nk = min64(BK, T - j0), ilo, ihi, unused;
        queries_of(j0, T, sh->causal, sh->window, &ilo, &unused);
        queries_of(j0 + nk - 1, T, sh->causal, sh->window, &unused, &ihi);
        transpose_block(k + j0 * ld, ld, nk, dh, kt);
        for (int64_t i0 = ilo / BQ * BQ; i0 < ihi; i0 += BQ) {
            int64_t nq = min64(BQ, T - i0);
            if (!tile_ranges(i0, nq, j0, nk, T, sh->causal, sh->window, true, lo, hi)) continue;
            mm_masked_cols(nq, nk, dh, q + i0 * ld, ld, 1, kt, BK, s, BK, lo, hi);
            for (int64_t r = 0; r < nq; r++) {
                float *sr = s + r * BK, *mi = m + i0 + r, *li = l + i0 + r;
                int64_t a = lo[r], b = hi[r];
                if (a >= b) {
                    memset(sr, 0, (size_t)nk * sizeof(float));
                    continue;
                }
                float mx = row_max(sr + a, b - a) * scale;
                float mnew = mx > *mi ? mx : *mi;
                float sum = exp_row(sr + a, b - a, scale, mnew);
                memset(sr, 0, (size_t)a * sizeof(float));
                memset(sr + b, 0, (size_t)(nk - b) * sizeof(float));
                if (mnew > *mi) {
                    /* The first block a row sees has *mi = -inf: alpha
                     * underflows to ~0 against l = 0 and O = 0. */
                    float alpha = sl_expf(*mi - mnew);
                    float *oi = o + (i0 + r) * ldo;
#pragma omp simd
                    for (int64_t d = 0; d < dh; d++) oi[d] *= alpha;
                    *li *= alpha;
                    *mi = mnew;
                }
                *li += sum;
            }
            mm_masked_acc(nq, dh, s, BK, 1, v + j0 * ld, ld, o + i0 * ldo, ldo, lo, hi);
        }
    }
    for (int64_t i = 0; i < T; i++) {
        float inv = 1.0f / l[i], *oi = o + i * ldo;
#pragma omp simd
        for (int64_t d = 0; d < dh; d++) oi[d] *= inv;
        if (lse) lse[i] = m[i] + logf(l[i]);
    }
}

/* One (b, h) of the backward. q, k, v, dq, dk, dv: [T, dh] rows ld = 3D apart
 * (into qkv and its gradient); o, dout: [T, dh] rows ldo = D apart; lse: [T]. */
static void backward_head(const attn_shape *sh, const float *q, const float *k, const float *v,
                          int64_t ld, const float *o, const float *dout, int64_t ldo,
                          const float *lse, float *dq, float *dk, float *dv, float *scratch)
{
    const int64_t T = sh->T, dh = sh->dh;
    const float scale = 1.0f / sqrtf((float)dh);
    int64_t tpad = (T + 15) & ~(int64_t)15;
    float *rowdot = scratch, *p = rowdot + 2 * tpad, *ds = p + BQ * BK,
          *kt = ds + BQ * BK, *vt = kt + ((dh * BK + 15) & ~(int64_t)15);
    int32_t qlo[BQ], qhi[BQ], klo[BK], khi[BK];

    /* rowdot = D_i = dO_i . O_i, the softmax Jacobian's row term. */
    for (int64_t i = 0; i < T; i++) {
        const float *oi = o + i * ldo, *gi = dout + i * ldo;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t d = 0; d < dh; d++) acc += oi[d] * gi[d];
        rowdot[i] = acc;
    }
    for (int64_t j0 = 0; j0 < T; j0 += BK) {
        int64_t nk = min64(BK, T - j0), ilo, ihi, unused;
        queries_of(j0, T, sh->causal, sh->window, &ilo, &unused);
        queries_of(j0 + nk - 1, T, sh->causal, sh->window, &unused, &ihi);
        transpose_block(k + j0 * ld, ld, nk, dh, kt);
        transpose_block(v + j0 * ld, ld, nk, dh, vt);
        for (int64_t i0 = ilo / BQ * BQ; i0 < ihi; i0 += BQ) {
            int64_t nq = min64(BQ, T - i0);
            if (!tile_ranges(i0, nq, j0, nk, T, sh->causal, sh->window, true, qlo, qhi)) continue;
            tile_ranges(j0, nk, i0, nq, T, sh->causal, sh->window, false, klo, khi);
            mm_masked_cols(nq, nk, dh, q + i0 * ld, ld, 1, kt, BK, p, BK, qlo, qhi);
            for (int64_t r = 0; r < nq; r++) {
                float *pr = p + r * BK, li = lse[i0 + r];
                int64_t a = qlo[r], b = qhi[r];
                if (a >= b) {
                    memset(pr, 0, (size_t)nk * sizeof(float));
                    continue;
                }
                exp_row(pr + a, b - a, scale, li);
                memset(pr, 0, (size_t)a * sizeof(float));
                memset(pr + b, 0, (size_t)(nk - b) * sizeof(float));
            }
            /* dV_j += P^T dO_i: rows are keys, P read transposed. */
            mm_masked_acc(nk, dh, p, 1, BK, dout + i0 * ldo, ldo, dv + j0 * ld, ld, klo, khi);
            mm_masked_cols(nq, nk, dh, dout + i0 * ldo, ldo, 1, vt, BK, ds, BK, qlo, qhi);
            for (int64_t r = 0; r < nq; r++) {
                float *pr = p + r * BK, *dr = ds + r * BK, di = rowdot[i0 + r];
                int64_t a = qlo[r], b = qhi[r];
                if (a >= b) {
                    memset(dr, 0, (size_t)nk * sizeof(float));
                    continue;
                }
                /* scale folded in here so dQ and dK need no extra pass. */
#pragma omp simd
                for (int64_t j = a; j < b; j++) dr[j] = scale * pr[j] * (dr[j] - di);
                memset(dr, 0, (size_t)a * sizeof(float));
                memset(dr + b, 0, (size_t)(nk - b) * sizeof(float));
            }
            mm_masked_acc(nq, dh, ds, BK, 1, k + j0 * ld, ld, dq + i0 * ld, ld, qlo, qhi);
            mm_masked_acc(nk, dh, ds, 1, BK, q + i0 * ld, ld, dk + j0 * ld, ld, klo, khi);
        }
    }
}

/* Node layout: in[0] = qkv, out = the attention output (kept: the backward's
 * D_i needs it), saved = lse [B, H, T], iarg = {H, causal, window}. */
static void attention_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *qkv = nd->in[0], *out = nd->out;
    const int64_t B = qkv->shape[0], T = qkv->shape[1], H = nd->iarg[0];
    const int64_t D = out->shape[2], dh = D / H;
    const attn_shape sh = {T, H, dh, nd->iarg[1] != 0, nd->iarg[2]};
    float *dqkv = sl_grad(ctx, qkv);
    const float *lse = nd->saved, *dout = out->grad;
    int nt = omp_get_max_threads();
    int64_t per = scratch_floats(T, dh);
    float *scratch = sl_arena_floats(ctx, per * nt);

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (worth_threads(B * H, T, dh))
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        int64_t xo = b * T * 3 * D + h * dh, oo = b * T * D + h * dh;
        backward_head(&sh, qkv->data + xo, qkv->data + xo + D, qkv->data + xo + 2 * D, 3 * D,
                      out->data + oo, dout + oo, D, lse + bh * T, dqkv + xo, dqkv + xo + D,
                      dqkv + xo + 2 * D, scratch + per * omp_get_thread_num());
    }
}

/* qkv: [B, T, 3*H*dh] -> out: [B, T, H*dh]. */
sl_tensor *sl_attention(sl_ctx *ctx, sl_tensor *qkv, int64_t H, bool causal, int64_t window)
{
    if (qkv->ndim != 3 || H <= 0 || qkv->shape[2] % (3 * H) != 0) {
        fprintf(stderr, "seqlab: internal error: attention over qkv of %d dims, last %lld, H %lld\n",
                qkv->ndim, (long long)sl_last(qkv), (long long)H);
        abort();
    }
    const int64_t B = qkv->shape[0], T = qkv->shape[1], D = qkv->shape[2] / 3, dh = D / H;
    const attn_shape sh = {T, H, dh, causal, window};
    sl_tensor *out = SL_NEW(ctx, B, T, D);
    sl_node *nd = SL_RECORD(ctx, attention_backward, out, qkv);
    float *lse = NULL;
    if (nd) {
        lse = sl_arena_floats(ctx, B * H * T);
        nd->saved = lse;
        nd->iarg[0] = H;
        nd->iarg[1] = causal;
        nd->iarg[2] = window;
    }
    int nt = omp_get_max_threads();
    int64_t per = scratch_floats(T, dh);
    float *scratch = sl_arena_floats(ctx, per * nt);

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (worth_threads(B * H, T, dh))
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *x = qkv->data + b * T * 3 * D + h * dh;
        forward_head(&sh, x, x + D, x + 2 * D, 3 * D, out->data + b * T * D + h * dh, D,
                     lse ? lse + bh * T : NULL, scratch + per * omp_get_thread_num());
    }
    return out;
}

/* ------------------------------------------------------------- reference */

/* qkv: [B, T, 3*H*dh] -> out: [B, T, H*dh], via the full T x T score matrix
 * per (b, h) in double. */
void sl_attention_ref(const float *qkv, int64_t B, int64_t T, int64_t H, int64_t dh,
                      bool causal, int64_t window, float *out)
{
    const int64_t D = H * dh;
    const double scale = 1.0 / sqrt((double)dh);
    double *s = malloc((size_t)(T * T) * sizeof(double));
    if (!s) {
        fprintf(stderr, "seqlab: out of memory in sl_attention_ref (T = %lld)\n", (long long)T);
        abort();
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *x = qkv + b * T * 3 * D + h * dh;
            for (int64_t i = 0; i < T; i++) {
                int64_t lo, hi;
                keys_of(i, T, causal, window, &lo, &hi);
                double mx = -INFINITY;
                for (int64_t j = 0; j < T; j++) {
                    double dot = 0;
                    for (int64_t d = 0; d < dh; d++)
                        dot += (double)x[i * 3 * D + d] * x[j * 3 * D + D + d];
                    s[i * T + j] = j >= lo && j < hi ? dot * scale : -INFINITY;
                    if (s[i * T + j] > mx) mx = s[i * T + j];
                }
                double sum = 0;
                for (int64_t j = 0; j < T; j++) sum += s[i * T + j] = exp(s[i * T + j] - mx);
                for (int64_t j = 0; j < T; j++) s[i * T + j] /= sum;
            }
            for (int64_t i = 0; i < T; i++)
                for (int64_t d = 0; d < dh; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < T; j++) acc += s[i * T + j] * x[j * 3 * D + 2 * D + d];
                    out[(b * T + i) * D + h * dh + d] = (float)acc;
                }
        }
    free(s);
}

/* ---------------------------------------------------------------- decode */

/* q: [H*dh], kc, vc: [Tk, H*dh] -> out: [H*dh]; scratch: [Tk]. The query sits
 * at position Tk-1, so causality is implicit and only the window cuts. */
void sl_attention_decode(const float *q, const float *kc, const float *vc, int64_t Tk,
                         int64_t H, int64_t dh, int64_t window, float *scratch, float *out)
{
    const int64_t D = H * dh;
    const float scale = 1.0f / sqrtf((float)dh);
    int64_t lo, hi;
    keys_of(Tk - 1, Tk, true, window, &lo, &hi);
    for (int64_t h = 0; h < H; h++) {
        const float *qh = q + h * dh;
        float *oh = out + h * dh, mx = -INFINITY, sum = 0.0f;
        for (int64_t j = lo; j < hi; j++) {
            const float *kj = kc + j * D + h * dh;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t d = 0; d < dh; d++) dot += qh[d] * kj[d];
            scratch[j] = dot * scale;
            mx = fmaxf(mx, scratch[j]);
        }
#pragma omp simd reduction(+ : sum)
        for (int64_t j = lo; j < hi; j++) {
            scratch[j] = sl_expf(scratch[j] - mx);
            sum += scratch[j];
        }
        memset(oh, 0, (size_t)dh * sizeof(float));
        for (int64_t j = lo; j < hi; j++) {
            const float *vj = vc + j * D + h * dh;
            float w = scratch[j] / sum;
#pragma omp simd
            for (int64_t d = 0; d < dh; d++) oh[d] += w * vj[d];
        }
    }
}
