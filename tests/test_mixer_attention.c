/* The attention mixer's own checks beyond tests/test_mixers.c: lengths
 * that cross the fused op's 64-token tiles (prefill + steps, a split with
 * the KV cache carried, packed batches with and without caches), causal,
 * windowed and with RoPE. */
#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_attention;

static void config(mc_cfg *c, const char *window, bool rope)
{
    mc_tiny(c, &sl_mixer_attention);
    c->dims.rope = rope;
    CHECK(mc_set(c, &sl_mixer_attention, "window", window), "window = %s", window);
}

static void test_step_matches_forward(void)
{
    mc_cfg c;
    config(&c, "0", true);
    mc_check_step(&sl_mixer_attention, &c, 70, 0, 1e-4);
    mc_check_step(&sl_mixer_attention, &c, 70, 66, 1e-4);
    config(&c, "5", false);
    mc_check_step(&sl_mixer_attention, &c, 20, 7, 1e-4);
}

static void test_split_matches_whole(void)
{
    static const int64_t splits[] = {1, 33, 69};
    mc_cfg c;
    config(&c, "0", true);
    mc_check_split(&sl_mixer_attention, &c, 2, 70, splits, 3, 1e-4);
    config(&c, "9", false);
    mc_check_split(&sl_mixer_attention, &c, 2, 70, splits, 3, 1e-4);
}

static void test_packed_matches_one_by_one(void)
{
    static const int64_t lens[] = {5, 0, 70, 1, 66, 0};
    mc_cfg c;
    config(&c, "0", true);
    mc_check_packed(&sl_mixer_attention, &c, lens, 6, 1e-4);
    config(&c, "7", false);
    mc_check_packed(&sl_mixer_attention, &c, lens, 6, 1e-4);
}

int main(void)
{
    RUN(test_step_matches_forward);
    RUN(test_split_matches_whole);
    RUN(test_packed_matches_one_by_one);
    return TEST_SUMMARY();
}
