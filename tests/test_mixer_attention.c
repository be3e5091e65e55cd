/* The attention mixer's own checks beyond tests/test_mixers.c: lengths
 * that cross the fused op's 64-token tiles (prefill + steps, a split with
 * the KV cache carried, packed batches with and without caches), causal,
 * windowed and with RoPE; grouped heads' parameter shape, ring-cache size
 * and a bad n_kv_heads. */
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

/* qkv.weight holds H + 2G heads; a window's cache holds min(window,
 * max_seq_len) rows, and only then does the mixer stream; G must divide H. */
static void test_grouped_heads_and_ring_sizes(void)
{
    mc_cfg c;
    config(&c, "6", true);
    c.dims.n_heads = 4;
    CHECK(mc_set(&c, &sl_mixer_attention, "n_kv_heads", "1"), "n_kv_heads");
    mc_mixer mc;
    mc_create(&mc, &sl_mixer_attention, &c, 1);
    const sl_tensor *w = &mc.p.list[0]->t;
    CHECK(w->shape[0] == 16 + 2 * 4 && w->shape[1] == 16, "qkv.weight [%lld, %lld]",
          (long long)w->shape[0], (long long)w->shape[1]);
    const sl_mixer *m = &mc.m;
    CHECK(m->vt->state_floats(m, 256) == 2 * 6 * 4 && m->vt->streams(m), "ring of 6 rows of 4");
    mc_free(&mc);
    config(&c, "0", false);
    mc_create(&mc, &sl_mixer_attention, &c, 1);
    CHECK(m->vt->state_floats(m, 256) == 2 * 256 * 16 && !m->vt->streams(m),
          "no window: max_seq_len rows, no streaming");
    mc_free(&mc);
    config(&c, "300", false);
    mc_create(&mc, &sl_mixer_attention, &c, 1);
    CHECK(m->vt->state_floats(m, 256) == 2 * 256 * 16 && !m->vt->streams(m),
          "window past max_seq_len: max_seq_len rows");
    mc_free(&mc);
    config(&c, "0", false);
    c.dims.n_heads = 4;
    CHECK(mc_set(&c, &sl_mixer_attention, "n_kv_heads", "3"), "n_kv_heads");
    sl_params p;
    sl_params_init(&p);
    sl_mixer x;
    CHECK(sl_mixer_create(&x, &sl_mixer_attention, &c.dims, &c.opts, 0, &p) == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "n_kv_heads = 3") && strstr(sl_errmsg(), "n_heads = 4"),
          "%s", sl_errmsg());
    sl_mixer_destroy(&x);
    sl_params_free(&p);
}

int main(void)
{
    RUN(test_step_matches_forward);
    RUN(test_split_matches_whole);
    RUN(test_packed_matches_one_by_one);
    RUN(test_grouped_heads_and_ring_sizes);
    return TEST_SUMMARY();
}
