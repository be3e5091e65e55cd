/* Branch-free float exp and tanh that GCC vectorises inside `omp simd` loops.
 * libm's expf/tanhf are scalar calls: in GELU, softmax and attention they
 * alone would cost more than the GEMMs around them.
 *
 * (sl_log1p_unit does the same for log-sigmoid's log(1 + e^-|x|).)
 *
 * sl_expf: range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial
 * for e^r, and 2^n built in the exponent bits. Relative error < 3e-7; inputs
 * are clamped to [-87.3, 88.37] (results ~1e-38 and ~2.7e38, never inf), and
 * NaN stays NaN (both comparisons are false), so NaN checks downstream work.
 *
 * The clamps vectorise (to vminps/vmaxps) only under -fno-trapping-math,
 * which the Makefile sets: without it GCC keeps them as branches and every
 * loop calling these stays scalar, several times slower. */
#ifndef SL_FASTMATH_H
#define SL_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* Always inlined: a call left in a loop keeps the loop scalar, and GCC
 * stops inlining into large kernels (the recurrence's backward called it
 * out of line for every element of elu + 1). */
static inline __attribute__((always_inline)) float sl_expf(float x)
{
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    float n = __builtin_roundf(x * 1.44269504088896341f);
    float r = x - n * 0.693145751953125f; /* ln2 split hi/lo: exact product */
    r = r - n * 1.428606765330187e-06f;
    float p = 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n from the bits of n + 1.5 * 2^23, whose low mantissa bits hold n:
     * unlike a float-to-int cast this is defined for NaN too (p is NaN then,
     * and so is the result). The clamps keep n in [-126, 127]: s is normal. */
    float magic = n + 12582912.0f;
    uint32_t bits;
    memcpy(&bits, &magic, sizeof bits);
    uint32_t e = (bits - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

/* tanh(x) = 1 - 2 / (e^{2x} + 1), exact at the saturated ends. */
static inline float sl_tanhf(float x) { return 1.0f - 2.0f / (sl_expf(2.0f * x) + 1.0f); }

static inline float sl_sigmoidf(float x) { return 1.0f / (1.0f + sl_expf(-x)); }

/* x sigmoid(x): sl_silu's map, and step()'s. */
static inline float sl_siluf(float x) { return x * sl_sigmoidf(x); }

#define SL_GELU_C 0.7978845608028654f /* sqrt(2 / pi) */
#define SL_GELU_A 0.044715f

/* GELU in PyTorch's tanh form x (1 + tanh(u)) / 2, u = c (x + a x^3),
 * computed as x sigmoid(2u): the same function with one exp and one
 * division, and no cancellation in 1 + tanh(u) for negative x nor in
 * 1 - tanh(u)^2 in its derivative. sl_gelu's loop and step() rows share it. */
static inline float sl_gelu_sigmoidf(float x)
{
    return sl_sigmoidf(2.0f * SL_GELU_C * (x + SL_GELU_A * x * x * x));
}
static inline float sl_geluf(float x) { return x * sl_gelu_sigmoidf(x); }

/* log(1 + u) for u in [0, 1], the range log-sigmoid needs: with
 * s = u / (2 + u) in [0, 1/3], log(1 + u) = 2 atanh(s) = 2 s (1 + s^2/3 +
 * s^4/5 + ...), eight terms (the first left out is < 2e-9 of the sum). No
 * cancellation for small u, where s ~ u/2, and no libm call, so loops of
 * it vectorise. */
static inline float sl_log1p_unit(float u)
{
    const float s = u / (2.0f + u), z = s * s;
    float p = 1.0f / 15.0f;
    p = p * z + 1.0f / 13.0f;
    p = p * z + 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    p = p * z + 1.0f;
    return 2.0f * s * p;
}

#endif
