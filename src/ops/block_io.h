/* How the chunked kernels read a block of columns of a projection into a
 * chunk buffer and write its gradient back (sl_rec_in, recurrence.h): the
 * map and scale applied on the way in, and taken back through on the way
 * out. Header-only, beside small_gemm.h's plain pack and unpack_add. */
#ifndef SL_OPS_BLOCK_IO_H
#define SL_OPS_BLOCK_IO_H

#include "ops/gate_maps.h"
#include "ops/recurrence.h"
#include "ops/small_gemm.h"

/* Where head h's block of q, k or v starts at token t (counted over all
 * B*T) in its tensor. */
static inline int64_t at_q(const sl_rec_layout *io, int64_t t, int64_t h, int64_t dk)
{
    return t * io->ldq + io->qoff + h * dk;
}
static inline int64_t at_k(const sl_rec_layout *io, int64_t t, int64_t h, int64_t dk)
{
    return t * io->ldk + io->koff + h * dk;
}
static inline int64_t at_v(const sl_rec_layout *io, int64_t t, int64_t h, int64_t dv)
{
    return t * io->ldv + io->voff + h * dv;
}

/* dst: [L, w] <- scale phi(x) for the rows x of src, ld apart. The same
 * sl_elu1f and sl_reluf as the standalone ops and step(), so the fused and
 * unfused forms agree bit for bit. */
static inline void pack_in(const float *src, int64_t ld, int64_t L, int64_t w, int map, float scale,
                           float *dst)
{
    pack(src, ld, L, w, dst);
    if (map == SL_REC_PLAIN && scale == 1.0f) return;
    const int64_t n = L * w;
    if (map == SL_REC_ELU1) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dst[i] = scale * sl_elu1f(dst[i]);
    } else if (map == SL_REC_RELU) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dst[i] = scale * sl_reluf(dst[i]);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dst[i] *= scale;
    }
}

/* Rows of dst ld apart += dY: [L, w] taken back through pack_in, given its
 * output Y: phi' is read off phi itself (elu + 1: min(phi, 1), as phi = e^x
 * <= 1 exactly where x <= 0; relu: phi > 0). */
static inline void unpack_in(const float *dY, const float *Y, int64_t L, int64_t w, int map,
                             float scale, float *dst, int64_t ld)
{
    if (map == SL_REC_PLAIN && scale == 1.0f) {
        unpack_add(dY, L, w, dst, ld);
        return;
    }
    const float inv = 1.0f / scale;
    for (int64_t i = 0; i < L; i++) {
        const float *g = dY + i * w, *y = Y + i * w;
        float *d = dst + i * ld;
        if (map == SL_REC_ELU1) {
#pragma omp simd
            for (int64_t j = 0; j < w; j++) {
                const float phi = y[j] * inv;
                d[j] += scale * g[j] * (phi < 1.0f ? phi : 1.0f);
            }
        } else if (map == SL_REC_RELU) {
#pragma omp simd
            for (int64_t j = 0; j < w; j++) d[j] += y[j] > 0.0f ? scale * g[j] : 0.0f;
        } else {
#pragma omp simd
            for (int64_t j = 0; j < w; j++) d[j] += scale * g[j];
        }
    }
}

#endif
