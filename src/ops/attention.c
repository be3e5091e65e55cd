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
 * skipping goes down to groups of SG_MR rows, so causal attention costs about
 * half the flops of bidirectional (3% above the exact triangle at T = 256).
 *
 * The tile products are register-blocked SG_MR x 16 kernels of small_gemm.h (GCC
 * vector types). On a 64 x 64 x 64 tile they run at ~80% of the FMA peak, where
 * an OpenBLAS sgemm call per tile (measured: 55-70 GFLOP/s against 75-85 on
 * one Zen 3 core) spends its time packing, and they skip the masked parts of
 * a tile, which a GEMM cannot.
 *
 * Grouped-query attention (Hkv key/value heads, Hkv dividing H): query head
 * h reads key/value head h / (H / Hkv); qkv rows are (q: H heads | k: Hkv
 * | v: Hkv). Work items are (sequence, key/value head), each running its
 * group's query heads in turn, so the backward's dK, dV of a shared head
 * are summed by one thread, in a fixed order.
 *
 * Key blocks are the outer loop in both passes: each key block is transposed
 * once (K^T and V^T are the right-hand sides of S = Q K^T and dP = dO V^T),
 * and in the backward dK, dV of a block finish before the next one starts.
 * Work is split over (sequence, head) items: the B batch rows, or with a
 * packed batch (sl_seqs) its sequences, each of which is attended to as if it
 * were alone (a block-diagonal mask: the causal and window masks apply
 * within a sequence, a bidirectional query sees its whole sequence and no
 * other). Every item is computed by one thread in a fixed order, so results
 * do not depend on the thread count at all. */

/* -std=c11 turns off FMA contraction, and the kernels below are FMA chains
 * that run at half speed without it. Without no-trapping-math (the Makefile
 * sets it too) sl_expf's clamps stay branches and no exp loop vectorises.
 * The file asks for both itself so that any build of it is fast; nothing
 * here reads the FP exception flags. */
#pragma GCC optimize("fp-contract=fast", "no-trapping-math")

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attention.h"
#include "ops/chunk_runtime.h"
#include "ops/fastmath.h"
#include "ops/ops.h"
#include "ops/small_gemm.h"

/* Query and key block sizes: a BQ x BK tile of S and P plus the dh x BK
 * transposed key and value blocks stay within L1/L2 for dh <= 128. */
#define BQ 64
#define BK 64
typedef int32_t v8i __attribute__((vector_size(32)));
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
 * [lo[first], hi[last]). lo, hi: [nr]. Returns whether any entry is visible. */
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

/* Columns [n0, n1) of C that are not a whole vector (N % 8 != 0), scalar;
 * same contract as small_gemm.h's sg_tile. */
static void tail_cols(int mr, int64_t n0, int64_t n1, int64_t k0, int64_t k1, const float *a,
                      int64_t ras, int64_t cas, const float *b, int64_t ldb, float *c, int64_t ldc,
                      bool acc, const float *rs)
{
    for (int m = 0; m < mr; m++)
        for (int64_t n = n0; n < n1; n++) {
            float s = 0.0f;
            for (int64_t k = k0; k < k1; k++) s += a[m * ras + k * cas] * b[k * ldb + n];
            if (acc) s += rs ? rs[m] * c[m * ldc + n] : c[m * ldc + n];
            c[m * ldc + n] = s;
        }
}

/* C = A B for a masked product whose rows see only columns [lo[m], hi[m]):
 * A: [M, K] (strides ras, cas), B: [K, N] (ldb), C: [M, N] (ldc). Each group
 * of SG_MR rows computes its union of columns, widened to whole vectors; other
 * entries of C keep what they held. */
static void mm_masked_cols(int64_t M, int64_t N, int64_t K, const float *a, int64_t ras,
                           int64_t cas, const float *b, int64_t ldb, float *c, int64_t ldc,
                           const int32_t *lo, const int32_t *hi)
{
    int64_t nvec = N & ~(int64_t)7;
    for (int64_t m0 = 0; m0 < M; m0 += SG_MR) {
        int mr = (int)min64(SG_MR, M - m0);
        int64_t l = lo[m0], h = hi[m0 + mr - 1];
        if (l >= h) continue;
        const float *am = a + m0 * ras;
        float *cm = c + m0 * ldc;
        int64_t n = l & ~(int64_t)7, nend = min64((h + 7) & ~(int64_t)7, nvec);
        for (; n + 16 <= nend; n += 16)
            sg_tile_any(mr, 2, 0, K, am, ras, cas, b + n, ldb, cm + n, ldc, false, NULL);
        if (n < nend) {
            sg_tile_any(mr, 1, 0, K, am, ras, cas, b + n, ldb, cm + n, ldc, false, NULL);
            n += 8;
        }
        if (h > n) tail_cols(mr, n, h, 0, K, am, ras, cas, b, ldb, cm, ldc, false, NULL);
    }
}

/* C = diag(rs) C + A B where row m of A is zero outside [lo[m], hi[m]): the
 * contraction of each group of SG_MR rows runs over its union only. A: [M, K]
 * (strides ras, cas), B: [K, N] (ldb), C: [M, N] (ldc), rs: [M] or NULL for
 * plain accumulation. A group with an empty union is left as it is, so rows
 * that see nothing must have rs = 1. */
static void mm_masked_acc(int64_t M, int64_t N, const float *a, int64_t ras, int64_t cas,
                          const float *b, int64_t ldb, float *c, int64_t ldc, const int32_t *lo,
                          const int32_t *hi, const float *rs)
{
    int64_t nvec = N & ~(int64_t)7;
    for (int64_t m0 = 0; m0 < M; m0 += SG_MR) {
        int mr = (int)min64(SG_MR, M - m0);
        int64_t k0 = lo[m0], k1 = hi[m0 + mr - 1];
        if (k0 >= k1) continue;
        const float *am = a + m0 * ras, *rm = rs ? rs + m0 : NULL;
        float *cm = c + m0 * ldc;
        int64_t n = 0;
        for (; n + 16 <= nvec; n += 16)
            sg_tile_any(mr, 2, k0, k1, am, ras, cas, b + n, ldb, cm + n, ldc, true, rm);
        if (n < nvec) {
            sg_tile_any(mr, 1, k0, k1, am, ras, cas, b + n, ldb, cm + n, ldc, true, rm);
            n += 8;
        }
        if (N > n) tail_cols(mr, n, N, k0, k1, am, ras, cas, b, ldb, cm, ldc, true, rm);
    }
}

/* --------------------------------------------------------------- softmax */

/* The row loops below run over the whole tile width rounded up to a vector,
 * n8 <= BK, with a mask instead of over each row's [a, b): fixed-width vector
 * loops with no scalar remainder, and the columns outside a row's range come
 * out as exact zeros in the same pass. Row reductions are written with vector
 * types: an `omp simd reduction` pays about as much per 64-float row to set
 * up and fold its lanes as the row's arithmetic. */

/* Lane-wise mask ? x : y, and the larger of x and y. Macros, not functions:
 * a function taking 32-byte vectors by value draws GCC's psABI warning in
 * builds without AVX (the sanitizer build). */
#define VSELECT(mask, x, y) ((v8)(((mask) & (v8i)(x)) | (~(mask) & (v8i)(y))))
#define VMAX(x, y) VSELECT((x) > (y), x, y)

/* max over x[a .. b) (-inf when empty). x: [n8]. */
static inline float masked_max(const float *x, int n8, int a, int b)
{
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    v8 mx = (v8){0} - INFINITY;
    for (int j = 0; j < n8; j += 8) {
        v8 v = VLOAD(x + j);
        v8i take = (lane + j >= a) & (lane + j < b) & (v > mx);
        mx = VSELECT(take, v, mx);
    }
    v8 sh = __builtin_shufflevector(mx, mx, 4, 5, 6, 7, 0, 1, 2, 3);
    mx = VMAX(mx, sh);
    sh = __builtin_shufflevector(mx, mx, 2, 3, 0, 1, 6, 7, 4, 5);
    mx = VMAX(mx, sh);
    sh = __builtin_shufflevector(mx, mx, 1, 0, 3, 2, 5, 4, 7, 6);
    mx = VMAX(mx, sh);
    return mx[0];
}

/* sum of x. x: [n8]. */
static inline float row_sum(const float *x, int n8)
{
    v8 s = {0};
    for (int j = 0; j < n8; j += 8) s += VLOAD(x + j);
    s += __builtin_shufflevector(s, s, 4, 5, 6, 7, 0, 1, 2, 3);
    s += __builtin_shufflevector(s, s, 2, 3, 0, 1, 6, 7, 4, 5);
    s += __builtin_shufflevector(s, s, 1, 0, 3, 2, 5, 4, 7, 6);
    return s[0];
}

/* x[j] = exp(scale x[j] - shift) on [a, b), 0 elsewhere. x: [n8]. */
static inline void masked_exp(float *x, int n8, int a, int b, float scale, float shift)
{
#pragma omp simd
    for (int j = 0; j < n8; j++) {
        float e = sl_expf(x[j] * scale - shift);
        x[j] = j >= a && j < b ? e : 0.0f;
    }
}

/* ------------------------------------------------------------ the op */

/* Multiply-adds of the whole op, for sl_chunk_team: about len^2 dh per
 * (sequence, query head). */
static int64_t attn_work(const sl_chunk_rows *rows, int64_t H, int64_t dh)
{
    int64_t w = 0;
    for (int64_t i = 0; i < rows->n; i++) w += sl_chunk_len(rows, i) * sl_chunk_len(rows, i);
    return w * H * dh;
}

typedef struct {
    int64_t T, dh;
    bool causal;
    int64_t window;
} attn_shape;

/* The per-thread scratch of one (b, h). The right-hand operands of the tile
 * products are packed into contiguous rows: rows of qkv lie 3D floats apart,
 * all fall into a few L1 sets and evict each other, and the products on them
 * ran ~15% slower. */
typedef struct {
    float *t0, *t1;     /* [BQ, BK] score, probability and dS tiles */
    float *kt, *vt;     /* [dh, BK] K^T and V^T of the key block */
    float *blk;         /* [BK, dh] the key block's V (forward) or K (backward) */
    float *row0, *row1; /* [T] per-query statistics */
    float *alpha;       /* [BQ] per-row rescale factors */
    float *qp, *gp;     /* [T, dh] the head's Q and dO (backward only) */
} head_scratch;

/* One thread's buffers from cv (counting only, when cv->base is NULL).
 * The tiles start zeroed so that columns a tile product leaves unset hold
 * finite numbers: the masked loops read them and discard the result. */
static head_scratch carve(sl_carver *cv, int64_t T, int64_t dh, bool backward)
{
    head_scratch hs = {0};
    hs.t0 = sl_carve(cv, BQ * BK);
    hs.t1 = sl_carve(cv, BQ * BK);
    hs.kt = sl_carve(cv, dh * BK);
    hs.vt = sl_carve(cv, dh * BK);
    hs.blk = sl_carve(cv, dh * BK);
    hs.row0 = sl_carve(cv, T);
    hs.row1 = sl_carve(cv, T);
    hs.alpha = sl_carve(cv, BQ);
    if (backward) {
        hs.qp = sl_carve(cv, T * dh);
        hs.gp = sl_carve(cv, T * dh);
    }
    if (cv->base) {
        memset(hs.t0, 0, BQ * BK * sizeof(float));
        memset(hs.t1, 0, BQ * BK * sizeof(float));
    }
    return hs;
}

/* Floats of one thread's scratch for sequences of up to T tokens. */
static int64_t scratch_floats(int64_t T, int64_t dh, bool backward)
{
    sl_carver cv = {NULL, 0};
    carve(&cv, T, dh, backward);
    return cv.used;
}

/* dst = src, rows made contiguous. src: [n, dh] rows ld apart, dst: [n, dh]. */
static void pack_rows(const float *src, int64_t ld, int64_t n, int64_t dh, float *dst)
{
    for (int64_t j = 0; j < n; j++) memcpy(dst + j * dh, src + j * ld, (size_t)dh * sizeof(float));
}

/* One (b, h) of the forward. q, k, v: [T, dh] rows ld = (H + 2 Hkv) dh apart
 * (views into qkv); o: [T, dh] rows D apart (into out); lse: [T] or NULL. */
static void forward_head(const attn_shape *sh, const float *q, const float *k, const float *v,
                         int64_t ld, float *o, int64_t ldo, float *lse, float *scratch)
{
    const int64_t T = sh->T, dh = sh->dh;
    const float scale = 1.0f / sqrtf((float)dh);
    sl_carver cv = {scratch, 0};
    head_scratch hs = carve(&cv, T, dh, false);
    float *m = hs.row0, *l = hs.row1, *s = hs.t0, *alpha = hs.alpha;
    int32_t lo[BQ], hi[BQ];

    for (int64_t i = 0; i < T; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
        memset(o + i * ldo, 0, (size_t)dh * sizeof(float));
    }
    for (int64_t j0 = 0; j0 < T; j0 += BK) {
        int64_t nk = min64(BK, T - j0), ilo, ihi, unused;
        int n8 = (int)((nk + 7) & ~(int64_t)7);
        queries_of(j0, T, sh->causal, sh->window, &ilo, &unused);
        queries_of(j0 + nk - 1, T, sh->causal, sh->window, &unused, &ihi);
        transpose_ld(k + j0 * ld, ld, nk, dh, hs.kt, BK);
        pack_rows(v + j0 * ld, ld, nk, dh, hs.blk);
        for (int64_t i0 = ilo / BQ * BQ; i0 < ihi; i0 += BQ) {
            int64_t nq = min64(BQ, T - i0);
            float *mi = m + i0, *li = l + i0;
            if (!tile_ranges(i0, nq, j0, nk, T, sh->causal, sh->window, true, lo, hi)) continue;
            mm_masked_cols(nq, nk, dh, q + i0 * ld, ld, 1, hs.kt, BK, s, BK, lo, hi);
            /* New running maxima first (alpha holds them for a moment), then
             * all the rescale factors in one vector loop. */
            for (int64_t r = 0; r < nq; r++) {
                float mx = masked_max(s + r * BK, n8, lo[r], hi[r]) * scale;
                alpha[r] = mx > mi[r] ? mx : mi[r];
            }
#pragma omp simd
            for (int64_t r = 0; r < nq; r++) {
                /* A row that has seen no key yet keeps m = -inf; its O and
                 * l are zero, so any finite factor would do. */
                float mnew = alpha[r];
                alpha[r] = mnew == -INFINITY ? 1.0f : sl_expf(mi[r] - mnew);
                mi[r] = mnew;
            }
            for (int64_t r = 0; r < nq; r++) {
                masked_exp(s + r * BK, n8, lo[r], hi[r], scale, mi[r]);
                li[r] = alpha[r] * li[r] + row_sum(s + r * BK, n8);
            }
            mm_masked_acc(nq, dh, s, BK, 1, hs.blk, dh, o + i0 * ldo, ldo, lo, hi, alpha);
        }
    }
    for (int64_t i = 0; i < T; i++) {
        float inv = 1.0f / l[i], *oi = o + i * ldo;
#pragma omp simd
        for (int64_t d = 0; d < dh; d++) oi[d] *= inv;
        if (lse) lse[i] = m[i] + logf(l[i]);
    }
}

/* One (b, h) of the backward, added to dq, dk, dv. q, k, v, dq, dk, dv: [T,
 * dh] rows ld = (H + 2 Hkv) dh apart (into qkv and its gradient); o, dout:
 * [T, dh] rows ldo = D apart; lse: [T]. */
static void backward_head(const attn_shape *sh, const float *q, const float *k, const float *v,
                          int64_t ld, const float *o, const float *dout, int64_t ldo,
                          const float *lse, float *dq, float *dk, float *dv, float *scratch)
{
    const int64_t T = sh->T, dh = sh->dh;
    const float scale = 1.0f / sqrtf((float)dh);
    sl_carver cv = {scratch, 0};
    head_scratch hs = carve(&cv, T, dh, true);
    float *rowdot = hs.row0, *p = hs.t0, *ds = hs.t1;
    int32_t qlo[BQ], qhi[BQ], klo[BK], khi[BK];

    pack_rows(q, ld, T, dh, hs.qp);
    pack_rows(dout, ldo, T, dh, hs.gp);
    /* rowdot = D_i = dO_i . O_i, the softmax Jacobian's row term. */
    for (int64_t i = 0; i < T; i++) {
        const float *oi = o + i * ldo, *gi = hs.gp + i * dh;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t d = 0; d < dh; d++) acc += oi[d] * gi[d];
        rowdot[i] = acc;
    }
    for (int64_t j0 = 0; j0 < T; j0 += BK) {
        int64_t nk = min64(BK, T - j0), ilo, ihi, unused;
        int n8 = (int)((nk + 7) & ~(int64_t)7);
        queries_of(j0, T, sh->causal, sh->window, &ilo, &unused);
        queries_of(j0 + nk - 1, T, sh->causal, sh->window, &unused, &ihi);
        transpose_ld(k + j0 * ld, ld, nk, dh, hs.kt, BK);
        transpose_ld(v + j0 * ld, ld, nk, dh, hs.vt, BK);
        pack_rows(k + j0 * ld, ld, nk, dh, hs.blk);
        for (int64_t i0 = ilo / BQ * BQ; i0 < ihi; i0 += BQ) {
            int64_t nq = min64(BQ, T - i0);
            if (!tile_ranges(i0, nq, j0, nk, T, sh->causal, sh->window, true, qlo, qhi)) continue;
            tile_ranges(j0, nk, i0, nq, T, sh->causal, sh->window, false, klo, khi);
            const float *qi = hs.qp + i0 * dh, *gi = hs.gp + i0 * dh;
            mm_masked_cols(nq, nk, dh, qi, dh, 1, hs.kt, BK, p, BK, qlo, qhi);
            for (int64_t r = 0; r < nq; r++)
                masked_exp(p + r * BK, n8, qlo[r], qhi[r], scale, lse[i0 + r]);
            /* dV_j += P^T dO_i: rows are keys, P read transposed. */
            mm_masked_acc(nk, dh, p, 1, BK, gi, dh, dv + j0 * ld, ld, klo, khi, NULL);
            mm_masked_cols(nq, nk, dh, gi, dh, 1, hs.vt, BK, ds, BK, qlo, qhi);
            for (int64_t r = 0; r < nq; r++) {
                float *pr = p + r * BK, *dr = ds + r * BK, di = rowdot[i0 + r];
                int a = qlo[r], b = qhi[r];
                /* scale folded in here so dQ and dK need no extra pass. */
#pragma omp simd
                for (int j = 0; j < n8; j++)
                    dr[j] = j >= a && j < b ? scale * pr[j] * (dr[j] - di) : 0.0f;
            }
            mm_masked_acc(nq, dh, ds, BK, 1, hs.blk, dh, dq + i0 * ld, ld, qlo, qhi, NULL);
            mm_masked_acc(nk, dh, ds, 1, BK, qi, dh, dk + j0 * ld, ld, klo, khi, NULL);
        }
    }
}

/* The tensors of one run over qkv: [B*T, (H + 2 Hkv) dh] and out, dout:
 * [B*T, H dh]; lse: [H, B*T] or NULL; dqkv as qkv (backward only). */
typedef struct attn_run {
    const sl_attention_desc *d;
    const float *qkv, *dout;
    float *out, *lse, *dqkv;
} attn_run;

/* One (sequence, key/value head) item: its group's query heads in turn, of
 * the backward when r->dqkv is set, else of the forward. */
static void run_item(const void *arg, int64_t item, float *scratch)
{
    const attn_run *r = arg;
    const sl_attention_desc *d = r->d;
    const int64_t H = d->H, G = d->Hkv, dh = d->dh, D = H * dh, ld = (H + 2 * G) * dh;
    const int64_t s = item / G, g = item % G;
    const int64_t t0 = sl_chunk_start(&d->rows, s), len = sl_chunk_len(&d->rows, s);
    if (len == 0) return;
    const attn_shape sh = {len, dh, d->causal, d->window};
    const int64_t ko = t0 * ld + D + g * dh, vo = ko + G * dh;
    for (int64_t h = g * (H / G); h < (g + 1) * (H / G); h++) {
        const int64_t qo = t0 * ld + h * dh, oo = t0 * D + h * dh;
        const float *q = r->qkv + qo, *k = r->qkv + ko, *v = r->qkv + vo;
        float *lse = r->lse ? r->lse + h * d->B * d->T + t0 : NULL;
        if (!r->dqkv) {
            forward_head(&sh, q, k, v, ld, r->out + oo, D, lse, scratch);
            continue;
        }
        backward_head(&sh, q, k, v, ld, r->out + oo, r->dout + oo, D, lse, r->dqkv + qo,
                      r->dqkv + ko, r->dqkv + vo, scratch);
    }
}

static int team(const sl_attention_desc *d)
{
    return sl_chunk_team(d->rows.n * d->Hkv, attn_work(&d->rows, d->H, d->dh));
}

int64_t sl_attention_scratch_floats(const sl_attention_desc *d, bool backward)
{
    return scratch_floats(sl_chunk_max_len(&d->rows), d->dh, backward) * team(d);
}

/* Every (sequence, key/value head) item of the forward (dqkv NULL) or the
 * backward on the threads sl_chunk_team gives. */
static void run_all(const attn_run *r, float *scratch)
{
    const sl_attention_desc *d = r->d;
    const int64_t per = scratch_floats(sl_chunk_max_len(&d->rows), d->dh, r->dqkv != NULL);
    sl_chunk_for(team(d), d->rows.n * d->Hkv, run_item, r, scratch, per);
}

void sl_attention_fwd(const sl_attention_desc *d, const float *qkv, float *out, float *lse,
                      float *scratch)
{
    const attn_run r = {d, qkv, NULL, out, lse, NULL};
    run_all(&r, scratch);
}

void sl_attention_bwd(const sl_attention_desc *d, const float *qkv, const float *out,
                      const float *lse, const float *dout, float *dqkv, float *scratch)
{
    const attn_run r = {d, qkv, dout, (float *)out, (float *)lse, dqkv};
    run_all(&r, scratch);
}

/* Node layout: in[0] = qkv, out = the attention output (kept: the backward's
 * D_i needs it), desc = sl_attention_desc (with an arena copy of the
 * bounds), saved = lse [H, B*T]. */
static void attention_backward(sl_ctx *ctx, const sl_node *nd)
{
    sl_tensor *qkv = nd->in[0], *out = nd->out;
    const sl_attention_desc *d = nd->desc;
    sl_attention_bwd(d, qkv->data, out->data, nd->saved, out->grad, sl_grad(ctx, qkv),
                     sl_arena_floats(ctx, sl_attention_scratch_floats(d, true)));
}

/* qkv: [B, T, (H + 2 Hkv) dh] -> out: [B, T, H*dh]. */
sl_tensor *sl_attention(sl_ctx *ctx, sl_tensor *qkv, int64_t H, int64_t Hkv, bool causal,
                        int64_t window, const sl_seqs *seqs)
{
    if (qkv->ndim != 3 || H <= 0 || Hkv <= 0 || H % Hkv || qkv->shape[2] % (H + 2 * Hkv) != 0) {
        fprintf(stderr,
                "seqlab: internal error: attention over qkv of %d dims, last %lld, H %lld, "
                "Hkv %lld\n",
                qkv->ndim, (long long)sl_last(qkv), (long long)H, (long long)Hkv);
        abort();
    }
    sl_require(sl_seqs_check(seqs, qkv, "sl_attention") == SL_OK, "sl_attention",
               "packed bounds that cover qkv [1, T, ...]");
    const int64_t B = qkv->shape[0], T = qkv->shape[1], dh = qkv->shape[2] / (H + 2 * Hkv);
    sl_tensor *out = SL_NEW(ctx, B, T, H * dh);
    sl_node *nd = SL_RECORD(ctx, attention_backward, out, qkv);
    sl_attention_desc d = {B, T, H, Hkv, dh, causal, window, sl_chunk_rows_of(seqs, B, T)};
    float *lse = NULL;
    if (nd) {
        /* The caller's bounds need not outlive this call; the backward
         * reads a copy. */
        d.rows = sl_chunk_rows_keep(ctx, seqs, B, T, 0);
        lse = nd->saved = sl_arena_floats(ctx, H * B * T);
        SL_KEEP_DESC(ctx, nd, d);
    }
    sl_attention_fwd(&d, qkv->data, out->data, lse,
                     sl_arena_floats(ctx, sl_attention_scratch_floats(&d, false)));
    return out;
}

/* ------------------------------------------------------------- reference */

/* qkv: [B, T, (H + 2 Hkv) dh] -> out: [B, T, H*dh], via the full score
 * matrix of every (sequence, head) in double. */
void sl_attention_ref(const float *qkv, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t dh,
                      bool causal, int64_t window, float *out, const sl_seqs *seqs)
{
    const int64_t D = H * dh, W = (H + 2 * Hkv) * dh;
    const double scale = 1.0 / sqrt((double)dh);
    const sl_chunk_rows rows = sl_chunk_rows_of(seqs, B, T);
    const int64_t L = sl_chunk_max_len(&rows);
    double *s = malloc((size_t)(L * L + 1) * sizeof(double));
    if (!s) {
        fprintf(stderr, "seqlab: out of memory in sl_attention_ref (T = %lld)\n", (long long)L);
        abort();
    }
    for (int64_t r = 0; r < rows.n; r++) {
        const int64_t n = sl_chunk_len(&rows, r), t0 = sl_chunk_start(&rows, r);
        for (int64_t h = 0; h < H; h++) {
            const float *q = qkv + t0 * W + h * dh, *k = qkv + t0 * W + D + h / (H / Hkv) * dh;
            const float *v = k + Hkv * dh;
            for (int64_t i = 0; i < n; i++) {
                double mx = -INFINITY;
                for (int64_t j = 0; j < n; j++) {
                    /* The mask straight from its definition, independent of
                     * keys_of, so the comparison also checks the ranges. */
                    int64_t dist = causal ? i - j : (i > j ? i - j : j - i);
                    bool visible = dist >= 0 && (window <= 0 || dist < window);
                    double dot = 0;
                    for (int64_t d = 0; d < dh; d++)
                        dot += (double)q[i * W + d] * k[j * W + d];
                    s[i * n + j] = visible ? dot * scale : -INFINITY;
                    if (s[i * n + j] > mx) mx = s[i * n + j];
                }
                double sum = 0;
                for (int64_t j = 0; j < n; j++) sum += s[i * n + j] = exp(s[i * n + j] - mx);
                for (int64_t j = 0; j < n; j++) s[i * n + j] /= sum;
            }
            for (int64_t i = 0; i < n; i++)
                for (int64_t d = 0; d < dh; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < n; j++) acc += s[i * n + j] * v[j * W + d];
                    out[(t0 + i) * D + h * dh + d] = (float)acc;
                }
        }
    }
    free(s);
}

/* ---------------------------------------------------------------- decode */

/* kc, vc: [Tk, Hkv*dh] (the state), q: [H*dh] -> out: [H*dh]; scratch:
 * [Tk]. The query sits at position Tk-1, so causality is implicit and only
 * the window cuts. */
void sl_attention_decode(const float *kc, const float *vc, const float *q, int64_t Tk, int64_t H,
                         int64_t Hkv, int64_t dh, int64_t window, float *out, float *scratch)
{
    const int64_t Dkv = Hkv * dh;
    const float scale = 1.0f / sqrtf((float)dh);
    int64_t lo, hi;
    keys_of(Tk - 1, Tk, true, window, &lo, &hi);
    for (int64_t h = 0; h < H; h++) {
        const float *qh = q + h * dh;
        float *oh = out + h * dh, mx = -INFINITY, sum = 0.0f;
        for (int64_t j = lo; j < hi; j++) {
            const float *kj = kc + j * Dkv + h / (H / Hkv) * dh;
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
            const float *vj = vc + j * Dkv + h / (H / Hkv) * dh;
            float w = scratch[j] / sum;
#pragma omp simd
            for (int64_t d = 0; d < dh; d++) oh[d] += w * vj[d];
        }
    }
}
