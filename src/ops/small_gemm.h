/* Small dense products for chunked kernels: register-tiled C (+)= A B on
 * one thread, plus the packing of strided rows into contiguous chunk
 * buffers. Header-only so the tile width and row count inline as constants
 * in each kernel that uses them (recurrence.c, mlstm.c). */
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

/* Columns [j, j + 16) of rows [i, i + mr) of C (+)= A B over k in [k0, k1),
 * the sums kept in registers. Called with constant mr so the loops over it
 * unroll. */
static inline __attribute__((always_inline)) void tile16(const int mr, int64_t i, int64_t j,
                                                         int64_t k0, int64_t k1, const float *a,
                                                         int64_t ras, int64_t cas, const float *b,
                                                         int64_t ldb, float *c, int64_t ldc,
                                                         bool acc)
{
    v8 r[SG_MR][2];
    for (int m = 0; m < mr; m++) r[m][0] = r[m][1] = (v8){0};
    for (int64_t kk = k0; kk < k1; kk++) {
        const float *bk = b + kk * ldb + j;
        v8 b0 = *(const v8u *)bk, b1 = *(const v8u *)(bk + 8);
        for (int m = 0; m < mr; m++) {
            float x = a[(i + m) * ras + kk * cas];
            r[m][0] += x * b0;
            r[m][1] += x * b1;
        }
    }
    for (int m = 0; m < mr; m++) {
        float *cm = c + (i + m) * ldc + j;
        if (acc) {
            r[m][0] += *(v8u *)cm;
            r[m][1] += *(v8u *)(cm + 8);
        }
        *(v8u *)cm = r[m][0];
        *(v8u *)(cm + 8) = r[m][1];
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

/* tile16 for the last mr < SG_MR rows of a product, each count its own
 * unrolled copy: one row at a time would leave two FMA chains per row, too
 * few to cover the FMA latency (64-row chunks end in 4 such rows). */
static inline void tile16_tail(int64_t mr, int64_t i, int64_t j, int64_t k0, int64_t k1,
                               const float *a, int64_t ras, int64_t cas, const float *b,
                               int64_t ldb, float *c, int64_t ldc, bool acc)
{
    switch (mr) {
    case 5: tile16(5, i, j, k0, k1, a, ras, cas, b, ldb, c, ldc, acc); break;
    case 4: tile16(4, i, j, k0, k1, a, ras, cas, b, ldb, c, ldc, acc); break;
    case 3: tile16(3, i, j, k0, k1, a, ras, cas, b, ldb, c, ldc, acc); break;
    case 2: tile16(2, i, j, k0, k1, a, ras, cas, b, ldb, c, ldc, acc); break;
    default: tile16(1, i, j, k0, k1, a, ras, cas, b, ldb, c, ldc, acc); break;
    }
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
        for (int64_t j = 0; j < jend; j += 16) {
            if (mr == SG_MR) tile16(SG_MR, i, j, k0, k1, a, ras, cas, b, ldb, c, ldc, acc);
            else tile16_tail(mr, i, j, k0, k1, a, ras, cas, b, ldb, c, ldc, acc);
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

/* dst: [K, N] (rows N apart) <- src^T, src: [N, K] rows ld apart. Whole
 * 8 x 8 blocks go through registers (an element-by-element transpose of a
 * 64 x 64 chunk cost half as much as the product it fed). */
static inline void transpose(const float *src, int64_t ld, int64_t N, int64_t K, float *dst)
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
                _mm256_storeu_ps(dst + (kk + i) * N + j, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
                _mm256_storeu_ps(dst + (kk + i + 4) * N + j,
                                 _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
            }
        }
#endif
    /* What the blocks left: the last K % 8 columns of the first N - N % 8
     * rows, and the last N % 8 rows whole (all of it without AVX). */
    for (int64_t j = 0; j < N; j++)
        for (int64_t kk = SG_TRANSPOSE_BLOCKS && j < n8 ? k8 : 0; kk < K; kk++)
            dst[kk * N + j] = src[j * ld + kk];
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
