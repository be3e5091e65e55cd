/* Small dense products for chunked kernels: register-tiled C (+)= A B on
 * one thread, plus the packing of strided rows into contiguous chunk
 * buffers. Header-only so the tile width and row count inline as constants
 * in each kernel that uses them (attention.c, recurrence.c, mlstm.c,
 * delta_rule.c). */
#ifndef SL_OPS_SMALL_GEMM_H
#define SL_OPS_SMALL_GEMM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef __AVX__
#include <immintrin.h>
#define SG_TRANSPOSE_BLOCKS 1
#else
#define SG_TRANSPOSE_BLOCKS 0
#endif

/* The small chunk products run inside a thread that owns one (b, h). Through
 * sl_gemm (OpenBLAS) they measured slower than the register tiles below: a
 * BLAS call per 64 x 64 product spends its time in setup and packing. */

typedef float v8 __attribute__((vector_size(32)));
/* Unaligned, aliasing view of 8 floats: rows of packed chunk buffers. */
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* Rows of C per register tile: SG_MR rows x 16 columns of accumulators,
 * 12 of the 16 AVX registers (two more hold the row of B, one the
 * broadcast), so each row of B loaded serves SG_MR rows of C. 6 rows ran
 * the recurrence op 8% faster than 4. */
#define SG_MR 6

/* One register tile: C[mr x 8nv] (+)= sum_{k0 <= k < k1} A(m, k) B[k][0 .. 8nv)
 * with A(m, k) = a[m ras + k cas] (any strides, so A^T costs nothing) and B, C
 * rows ldb, ldc apart; when accumulating, row m of C is first scaled by
 * rs[m] (rs may be NULL). Called with constant mr, nv and acc so each use is
 * a straight-line kernel: per k, nv row loads of B, mr broadcasts of A,
 * mr nv FMAs. The sums start from zero and C is added at the end: C is often
 * a gradient row not yet in cache, and loading it first would stall the
 * whole FMA chain on it. */
static inline __attribute__((always_inline)) void
sg_tile(const int mr, const int nv, int64_t k0, int64_t k1, const float *a, int64_t ras,
        int64_t cas, const float *b, int64_t ldb, float *c, int64_t ldc, const bool acc,
        const float *rs)
{
    v8 r[SG_MR][2];
    for (int m = 0; m < mr; m++)
        for (int v = 0; v < nv; v++) r[m][v] = (v8){0};
    for (int64_t k = k0; k < k1; k++) {
        const float *bk = b + k * ldb;
        v8 b0 = (v8) * (const v8u *)bk, b1 = nv > 1 ? (v8) * (const v8u *)(bk + 8) : b0;
        for (int m = 0; m < mr; m++) {
            float x = a[m * ras + k * cas];
            r[m][0] += x * b0;
            if (nv > 1) r[m][1] += x * b1;
        }
    }
    for (int m = 0; m < mr; m++)
        for (int v = 0; v < nv; v++) {
            float *cv = c + m * ldc + 8 * v;
            if (acc) r[m][v] += rs ? rs[m] * (v8) * (v8u *)cv : (v8) * (v8u *)cv;
            *(v8u *)cv = r[m][v];
        }
}

#define SG_TILE_ROWS(R)                                                                            \
    case R:                                                                                        \
        if (nv == 2)                                                                               \
            sg_tile(R, 2, k0, k1, a, ras, cas, b, ldb, c, ldc, acc, rs);                           \
        else                                                                                       \
            sg_tile(R, 1, k0, k1, a, ras, cas, b, ldb, c, ldc, acc, rs);                           \
        break

/* sg_tile with run-time mr (row tails) and nv, dispatched to constant ones:
 * one row at a time would leave two FMA chains per row, too few to cover
 * the FMA latency (64-row chunks end in 4 such rows). */
static inline __attribute__((always_inline)) void
sg_tile_any(int mr, int nv, int64_t k0, int64_t k1, const float *a, int64_t ras, int64_t cas,
            const float *b, int64_t ldb, float *c, int64_t ldc, const bool acc, const float *rs)
{
    switch (mr) {
        SG_TILE_ROWS(6);
        SG_TILE_ROWS(5);
        SG_TILE_ROWS(4);
        SG_TILE_ROWS(3);
        SG_TILE_ROWS(2);
        SG_TILE_ROWS(1);
    }
}

/* What a chunk product may skip. The intra-chunk products of the chunked
 * kernels are causal: a score matrix is zero above its diagonal, so half of
 * each such product is known zero, and skipping it saves about a quarter of
 * a chunk's work.
 *   SG_FULL     nothing
 *   SG_A_LOWER  A(i, k) = 0 for k > i: row i sums k <= i only
 *   SG_A_UPPER  A(i, k) = 0 for k < i: row i sums k >= i only
 *   SG_C_LOWER  only C(i, j) with j <= i is wanted; tiles wholly above the
 *               diagonal are not computed (nor written: the caller clears them)
 * The skips are per register tile, so a tile that straddles the diagonal
 * still reads A's zeros there: they must be stored as zeros. */
enum { SG_FULL, SG_A_LOWER, SG_A_UPPER, SG_C_LOWER };

/* The k range rows [i, i + mr) need. */
static inline void k_span(int part, int64_t i, int64_t mr, int64_t K, int64_t *k0, int64_t *k1)
{
    *k0 = part == SG_A_UPPER ? (i < K ? i : K) : 0;
    *k1 = part == SG_A_LOWER && i + mr < K ? i + mr : K;
}

/* C[M, N] (+)= A B, A(i, k) = a[i ras + k cas] (so A^T is free), B: [K, N]
 * rows ldb apart, C rows ldc apart, skipping what part says is zero or not
 * wanted. Whole 16-column blocks go through register tiles; the last N % 16
 * columns are plain dot products. */
static inline void mm_part(int part, int64_t M, int64_t N, int64_t K, const float *a, int64_t ras,
                           int64_t cas, const float *b, int64_t ldb, float *c, int64_t ldc,
                           bool acc)
{
    const int64_t n16 = N & ~(int64_t)15;
    for (int64_t i = 0; i < M; i += SG_MR) {
        const int64_t mr = M - i < SG_MR ? M - i : SG_MR;
        const int64_t jend = part == SG_C_LOWER && i + SG_MR < n16 ? i + SG_MR : n16;
        int64_t k0, k1;
        k_span(part, i, mr, K, &k0, &k1);
        const float *ai = a + i * ras;
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < jend; j += 16) {
            if (mr == SG_MR)
                sg_tile(SG_MR, 2, k0, k1, ai, ras, cas, b + j, ldb, ci + j, ldc, acc, NULL);
            else
                sg_tile_any((int)mr, 2, k0, k1, ai, ras, cas, b + j, ldb, ci + j, ldc, acc, NULL);
        }
        for (int64_t m = i; m < i + mr; m++) {
            k_span(part, m, 1, K, &k0, &k1);
            for (int64_t j = n16; j < N && (part != SG_C_LOWER || j <= m); j++) {
                float s = 0.0f;
                for (int64_t kk = k0; kk < k1; kk++) s += a[m * ras + kk * cas] * b[kk * ldb + j];
                c[m * ldc + j] = acc ? c[m * ldc + j] + s : s;
            }
        }
    }
}

static inline void mm_nn(int64_t M, int64_t N, int64_t K, const float *a, int64_t ras, int64_t cas,
                         const float *b, int64_t ldb, float *c, int64_t ldc, bool acc)
{
    mm_part(SG_FULL, M, N, K, a, ras, cas, b, ldb, c, ldc, acc);
}

/* dst: [K, N] (rows ldd >= N apart) <- src^T, src: [N, K] rows ld apart.
 * Whole 8 x 8 blocks go through registers (an element-by-element transpose
 * of a 64 x 64 chunk cost half as much as the product it fed). */
static inline void transpose_ld(const float *src, int64_t ld, int64_t N, int64_t K, float *dst,
                                int64_t ldd)
{
    const int64_t n8 = N & ~(int64_t)7, k8 = K & ~(int64_t)7;
#if SG_TRANSPOSE_BLOCKS
    for (int64_t j = 0; j < n8; j += 8)
        for (int64_t kk = 0; kk < k8; kk += 8) {
            __m256 r[8], t[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + (j + i) * ld + kk);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
                r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_ps(dst + (kk + i) * ldd + j,
                                 _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
                _mm256_storeu_ps(dst + (kk + i + 4) * ldd + j,
                                 _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
            }
        }
#endif
    /* What the blocks left: the last K % 8 columns of the first N - N % 8
     * rows, and the last N % 8 rows whole (all of it without AVX). */
    for (int64_t j = 0; j < N; j++)
        for (int64_t kk = SG_TRANSPOSE_BLOCKS && j < n8 ? k8 : 0; kk < K; kk++)
            dst[kk * ldd + j] = src[j * ld + kk];
}

/* transpose_ld into dst: [K, N] rows N apart. */
static inline void transpose(const float *src, int64_t ld, int64_t N, int64_t K, float *dst)
{
    transpose_ld(src, ld, N, K, dst, N);
}

/* C[M, N] (+)= A B^T: A: [M, K] rows lda apart, B: [N, K] rows ldb apart;
 * part: SG_FULL or SG_C_LOWER. B is transposed into bt: [K, N] first, so
 * the product runs in the register tiles rather than as one horizontal sum
 * per entry of C. */
static inline void mm_nt_part(int part, int64_t M, int64_t N, int64_t K, const float *a,
                              int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                              bool acc, float *bt)
{
    transpose(b, ldb, N, K, bt);
    mm_part(part, M, N, K, a, lda, 1, bt, N, c, ldc, acc);
}

static inline void mm_nt(int64_t M, int64_t N, int64_t K, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float *c, int64_t ldc, bool acc, float *bt)
{
    mm_nt_part(SG_FULL, M, N, K, a, lda, b, ldb, c, ldc, acc, bt);
}

/* dst: [L, w] <- rows of src ld apart. */
static inline void pack(const float *src, int64_t ld, int64_t L, int64_t w, float *dst)
{
    for (int64_t i = 0; i < L; i++) memcpy(dst + i * w, src + i * ld, (size_t)w * sizeof(float));
}

/* rows of dst ld apart += src: [L, w]. */
static inline void unpack_add(const float *src, int64_t L, int64_t w, float *dst, int64_t ld)
{
    for (int64_t i = 0; i < L; i++) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) dst[i * ld + j] += src[i * w + j];
    }
}

#endif
