/* The mamba2 mixer through its vtable: step() == forward, split forward with
 * the state == one forward (splits on and across chunk edges), a packed
 * batch == each sequence alone, whole-mixer gradients by finite
 * differences, finite results at T = 4096 with large inputs. */
#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_mamba2;

static void test_step_matches_forward(void)
{
    sl_config c;
    mc_tiny(&c);
    /* Chunked fp32 forward vs the token recurrence: ~1e-6 apart. */
    mc_check_step(&sl_mixer_mamba2, &c, 17, 0, 1e-4);
    /* A prefill over a chunk edge, then steps from the state it left. */
    mc_check_step(&sl_mixer_mamba2, &c, 17, 7, 1e-4);
    /* Without the conv: the projection feeds the SiLU directly. */
    c.conv_size = 0;
    mc_check_step(&sl_mixer_mamba2, &c, 17, 7, 1e-4);
}

static void test_split_matches_whole(void)
{
    sl_config c;
    mc_tiny(&c);
    /* 1 and 2 are shorter than the conv's K-1 = 3 rows of state. */
    static const int64_t splits[] = {1, 2, 5, 6, 12};
    mc_check_split(&sl_mixer_mamba2, &c, 2, 17, splits, 5, 1e-4);
}

static void test_packed_matches_one_by_one(void)
{
    /* Lengths on both sides of the chunk (5) and of the conv's K-1 = 3. */
    static const int64_t lens[] = {7, 0, 1, 2, 5, 12, 4};
    sl_config c;
    mc_tiny(&c);
    mc_check_packed(&sl_mixer_mamba2, &c, lens, 7, 1e-4);
    c.conv_size = 0;
    mc_check_packed(&sl_mixer_mamba2, &c, lens, 7, 1e-4);
}

static void test_gradient_finite_differences(void)
{
    /* B = 2, T = 7 (a full chunk and a ragged one). The mixer is smooth; at
     * h = 5e-3 the h^2 truncation (~3e-5 times O(1) third derivatives
     * through softplus, exp, silu and rmsnorm) and the float rounding of
     * ~200 outputs (~1e-6 / 1e-2 = 1e-4 in a central difference) stay under
     * atol 5e-4; rtol 1e-2 allows for the larger output-weight gradients
     * and still fails a 1%-wrong term. */
    sl_config c;
    mc_tiny(&c);
    mc_check_gradient(&sl_mixer_mamba2, &c, 2, 7, 5e-3f, 5e-4, 1e-2, 12);
}

static void test_long_large_inputs_stay_finite(void)
{
    sl_config c;
    mc_tiny(&c);
    c.chunk_size = 64;
    mc_check_long_finite(&sl_mixer_mamba2, &c, 4096, 100.0f);
}

int main(void)
{
    RUN(test_step_matches_forward);
    RUN(test_split_matches_whole);
    RUN(test_packed_matches_one_by_one);
    RUN(test_gradient_finite_differences);
    RUN(test_long_large_inputs_stay_finite);
    return TEST_SUMMARY();
}
