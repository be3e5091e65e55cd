/* The attention mixer through its vtable (tests/mixer_check.h): prefill +
 * steps equal the forward, a sequence split over two calls with the KV cache
 * carried equals one call, and a packed batch of variable-length sequences
 * equals each sequence alone, with and without caches carried in; causal,
 * windowed and with RoPE. Lengths cross the op's 64-token tiles. */
#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_attention;

static void config(sl_config *c, int64_t window, const char *pos)
{
    sl_config_defaults(c);
    c->d_model = 16;
    c->n_heads = 2;
    c->max_seq_len = 256;
    c->window = window;
    c->init_std = 0.3;
    strcpy(c->pos, pos);
}

static void test_step_matches_forward(void)
{
    sl_config c;
    config(&c, 0, "rope");
    mc_check_step(&sl_mixer_attention, &c, 70, 0, 1e-4);
    mc_check_step(&sl_mixer_attention, &c, 70, 66, 1e-4);
    config(&c, 5, "none");
    mc_check_step(&sl_mixer_attention, &c, 20, 7, 1e-4);
}

static void test_split_matches_whole(void)
{
    static const int64_t splits[] = {1, 33, 69};
    sl_config c;
    config(&c, 0, "rope");
    mc_check_split(&sl_mixer_attention, &c, 2, 70, splits, 3, 1e-4);
    config(&c, 9, "none");
    mc_check_split(&sl_mixer_attention, &c, 2, 70, splits, 3, 1e-4);
}

static void test_packed_matches_one_by_one(void)
{
    static const int64_t lens[] = {5, 0, 70, 1, 66, 0};
    sl_config c;
    config(&c, 0, "rope");
    mc_check_packed(&sl_mixer_attention, &c, lens, 6, 1e-4);
    config(&c, 7, "none");
    mc_check_packed(&sl_mixer_attention, &c, lens, 6, 1e-4);
}

int main(void)
{
    RUN(test_step_matches_forward);
    RUN(test_split_matches_whole);
    RUN(test_packed_matches_one_by_one);
    return TEST_SUMMARY();
}
