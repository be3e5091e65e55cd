/* The Legendre Memory Unit's linear memory (Voelker, Kajic, Eliasmith 2019,
 * "Legendre Memory Units: Continuous-Time Representation in Recurrent
 * Neural Networks"): for each of U input channels u_j, a memory of q
 * Legendre coefficients of the input's last theta steps,
 *
 *   m_t = A_bar m_{t-1} + B_bar u_t            m_t: [q] per channel j
 *
 * with the fixed continuous system of the paper,
 *   A_ij = (2i+1)/theta * (-1 if i < j else (-1)^(i-j+1)),  B_i = (2i+1) (-1)^i / theta,
 * discretised by zero-order hold with a step of 1: A_bar = e^A, B_bar =
 * A^-1 (e^A - I) B, both read off the exponential of the augmented matrix
 * [[A, B], [0, 0]] (no inverse), computed in double by scaling and squaring
 * with a degree-18 Taylor series.
 *
 * Training uses the convolution form (Chilkuri & Eliasmith 2021, the form
 * LMUFormer trains): m_t = sum_{s<=t} H[t-s] u_s + A_bar^(t+1) m_0, H[l] =
 * A_bar^l B_bar the impulse response (computed in double, kept per (q,
 * theta) for the process's life, like FFTW's plans), the sum through the
 * FFT convolution kernels (ops/fftconv.h), and the state's term by
 * iterating A_bar on m_0. The backward is the adjoint: du by the FFT
 * convolution's backward, ds0 = sum_t (A_bar^T)^(t+1) dm_t by a reverse
 * iteration; the gradient of s_final (the last m) joins dm first. */
#ifndef SL_OPS_LMU_H
#define SL_OPS_LMU_H

#include "core/core.h"

/* A_bar: [q, q] (row-major), B_bar: [q], in double. */
void sl_lmu_discretize(int64_t q, double theta, double *Abar, double *Bbar);
/* H: [>= L, q], H[l] = A_bar^l B_bar by lag, from a process-wide cache
 * (thread-safe; the pointer stays valid for the process's life). */
const float *sl_lmu_impulse(int64_t q, double theta, int64_t L);

/* One call's sizes, system and packing. */
typedef struct sl_lmu_desc {
    int64_t B, T, U, q;
    const sl_seqs *seqs;   /* NULL, or valid bounds over T with B = 1 */
    const float *A, *Bv;   /* A_bar [q, q], B_bar [q] in float */
    const float *H;        /* [>= T, q], sl_lmu_impulse */
    const float *ds_final; /* [N, U*q], the gradient w.r.t. s_final, or NULL */
} sl_lmu_desc;

/* u: [B, T, U] -> m: [B, T, U*q] (channel j*q + i: coefficient i of input
 * j). s0: [N, U*q] or NULL (zeros), N = sequences; s_final: [N, U*q] or
 * NULL, the last m of each sequence (s0's row for an empty one). d gives
 * q, the system and H; B, T, U and seqs are taken from u and the call.
 * Gradients to u and s0. */
sl_tensor *sl_lmu_memory(sl_ctx *ctx, sl_tensor *u, const sl_lmu_desc *d, sl_tensor *s0,
                         float *s_final, const sl_seqs *seqs);

/* The kernels, same layouts; the backward adds to du and ds0 (either
 * NULL when not wanted). */
void sl_lmu_memory_fwd(const sl_lmu_desc *d, const float *u, const float *s0, float *m,
                       float *s_final);
void sl_lmu_memory_bwd(const sl_lmu_desc *d, const float *dm, float *du, float *ds0);

/* The token loop m_t = A_bar m_{t-1} + B_bar u_t in double, with A_bar,
 * B_bar from sl_lmu_discretize(q, theta). m: [B, T, U*q]. */
void sl_lmu_memory_ref(const sl_lmu_desc *d, double theta, const float *u, const float *s0,
                       double *m);

/* One token of U channels, in place: m: [U*q], u: [U]. */
void sl_lmu_step(const float *A, const float *Bv, int64_t q, int64_t U, float *m, const float *u,
                 float *scratch);

#endif
