/* The deltanet and gated_deltanet mixers (two files sharing the layer of
 * src/ops/delta_layer.h, the gated one with its gates) through their vtables: step() == forward, split
 * forward with the state == one forward (split points inside the conv state,
 * on and across chunk edges), whole-mixer gradients by finite differences,
 * finite results at T = 4096 with large inputs, and a packed batch of
 * variable-length sequences == each sequence alone, with and without
 * states. */
#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_deltanet, sl_mixer_gated_deltanet;

static const sl_mixer_vtable *const VARIANTS[] = {&sl_mixer_deltanet, &sl_mixer_gated_deltanet};
#define NVARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

/* mc_tiny with conv 4 and chunks of 4. */
static void tiny(sl_config *c)
{
    mc_tiny(c);
    c->conv_size = 4;
    c->chunk_size = 4;
}

static void test_step_matches_forward(void)
{
    for (size_t i = 0; i < NVARIANTS; i++) {
        const sl_mixer_vtable *vt = VARIANTS[i];
        sl_config c;
        tiny(&c);
        /* Chunked fp32 forward vs the token recurrence in step(): ~1e-6 apart.
         * Prefill 5 leaves a ragged chunk and a full conv state for step(). */
        mc_check_step(vt, &c, 13, 0, 1e-4);
        mc_check_step(vt, &c, 13, 5, 1e-4);
        c.conv_size = 0;
        mc_check_step(vt, &c, 13, 5, 1e-4);
    }
}

static void test_split_matches_whole(void)
{
    for (size_t i = 0; i < NVARIANTS; i++) {
        const sl_mixer_vtable *vt = VARIANTS[i];
        sl_config c;
        tiny(&c);
        static const int64_t splits[] = {1, 2, 3, 4, 5, 12};
        mc_check_split(vt, &c, 2, 13, splits, 6, 1e-4);
    }
}

static void test_gradient_finite_differences(void)
{
    for (size_t i = 0; i < NVARIANTS; i++) {
        const sl_mixer_vtable *vt = VARIANTS[i];
        /* B = 2, T = 6 (a full chunk and a ragged one). Outputs are O(0.1 .. 1);
         * the mixer is smooth, and at h = 5e-3 the h^2 truncation (~3e-5 times
         * O(1) third derivatives through silu, l2norm and rmsnorm) and float
         * rounding of ~200 outputs (~1e-6 / 1e-2 = 1e-4) stay under atol 5e-4;
         * rtol 1e-2 allows for the larger gradients of the output weights. */
        sl_config c;
        tiny(&c);
        mc_check_gradient(vt, &c, 2, 6, 5e-3f, 5e-4, 1e-2, 12);
    }
}

static void test_long_large_inputs_stay_finite(void)
{
    for (size_t i = 0; i < NVARIANTS; i++) {
        const sl_mixer_vtable *vt = VARIANTS[i];
        sl_config c;
        tiny(&c);
        c.chunk_size = 64;
        mc_check_long_finite(vt, &c, 4096, 100.0f);
    }
}

static void test_packed_matches_one_by_one(void)
{
    /* Conv 4 and chunk 4: empty sequences (first, inside, last), 1, K-2 = 2,
     * C-1 = 3, C = 4, C+1 = 5 and 2C+3 = 11 tokens, so conv taps and chunks
     * would both cross a bound if anything leaked. Packed and alone do the
     * same arithmetic per sequence except for the projections' gemm over
     * more rows: 1e-5. conv_size 0 sends the bounds to the delta rule
     * alone. */
    static const int64_t lens[] = {0, 5, 1, 2, 0, 3, 4, 11, 0};
    const int64_t n = (int64_t)(sizeof lens / sizeof lens[0]);
    for (size_t i = 0; i < NVARIANTS; i++) {
        const sl_mixer_vtable *vt = VARIANTS[i];
        sl_config c;
        tiny(&c);
        mc_check_packed(vt, &c, lens, n, 1e-5);
        c.conv_size = 0;
        mc_check_packed(vt, &c, lens, n, 1e-5);
    }
}

int main(void)
{
    RUN(test_step_matches_forward);
    RUN(test_split_matches_whole);
    RUN(test_gradient_finite_differences);
    RUN(test_long_large_inputs_stay_finite);
    RUN(test_packed_matches_one_by_one);
    return TEST_SUMMARY();
}
