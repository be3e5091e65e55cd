/* The linear_attention mixer through its vtable, for each feature map with
 * and without the normaliser and with q, k narrower than the head: step() ==
 * forward, split forward with the state == one forward, a packed batch ==
 * each sequence alone, whole-mixer gradients by finite differences, finite
 * results at T = 4096 with large inputs; the bidirectional form; and the
 * configurations it refuses. */
#include <string.h>

#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_linear_attention;

/* mc_tiny with a feature map, the normaliser and feature_dim. */
static void tiny(sl_config *c, const char *phi, bool normalize, int64_t feature_dim)
{
    mc_tiny(c);
    strcpy(c->feature_map, phi);
    c->normalize = normalize;
    c->feature_dim = feature_dim;
}

/* Every accepted configuration: (feature map, normalize, feature_dim); a
 * feature_dim of 4 projects q, k below the head width 8, as Based does. */
static const struct {
    const char *phi;
    bool normalize;
    int64_t f;
} VARIANTS[] = {{"elu1", false, 0},     {"elu1", true, 0},    {"relu", false, 0},
                {"relu", true, 0},      {"identity", false, 0}, {"taylor", false, 0},
                {"taylor", true, 0},    {"taylor", true, 4},  {"elu1", false, 4}};
#define NVARIANTS (int)(sizeof VARIANTS / sizeof VARIANTS[0])

static void test_step_matches_forward(void)
{
    for (int i = 0; i < NVARIANTS; i++) {
        sl_config c;
        tiny(&c, VARIANTS[i].phi, VARIANTS[i].normalize, VARIANTS[i].f);
        /* Chunked fp32 forward vs the token recurrence: ~1e-6 apart. */
        mc_check_step(&sl_mixer_linear_attention, &c, 17, 0, 1e-4);
        /* A prefill over a chunk edge, then steps from the state it left. */
        mc_check_step(&sl_mixer_linear_attention, &c, 17, 7, 1e-4);
    }
}

static void test_split_matches_whole(void)
{
    static const int64_t splits[] = {1, 4, 5, 6, 12};
    for (int i = 0; i < NVARIANTS; i++) {
        sl_config c;
        tiny(&c, VARIANTS[i].phi, VARIANTS[i].normalize, VARIANTS[i].f);
        mc_check_split(&sl_mixer_linear_attention, &c, 2, 17, splits, 5, 1e-4);
    }
}

static void test_packed_matches_one_by_one(void)
{
    /* Lengths on both sides of the chunk (5), an empty one and one token. */
    static const int64_t lens[] = {7, 0, 1, 5, 12, 4};
    for (int i = 0; i < NVARIANTS; i++) {
        sl_config c;
        tiny(&c, VARIANTS[i].phi, VARIANTS[i].normalize, VARIANTS[i].f);
        mc_check_packed(&sl_mixer_linear_attention, &c, lens, 6, 1e-4);
    }
}

static void test_gradient_finite_differences(void)
{
    /* B = 2, T = 7 (a full chunk and a ragged one). At h = 5e-3 the h^2
     * truncation (~3e-5 times O(1) third derivatives of elu + 1, the
     * Taylor features and the division) and the float rounding of ~200 outputs (~1e-6 / 1e-2 = 1e-4
     * in a central difference) stay under atol 5e-4; rtol 1e-2 allows for
     * the larger output-weight gradients and still fails a 1%-wrong term.
     * relu is left out: a probe that moves a pre-activation across 0
     * differentiates a kink, and its map is checked in test_gate_maps. */
    for (int i = 0; i < NVARIANTS; i++) {
        if (strcmp(VARIANTS[i].phi, "relu") == 0) continue;
        sl_config c;
        tiny(&c, VARIANTS[i].phi, VARIANTS[i].normalize, VARIANTS[i].f);
        mc_check_gradient(&sl_mixer_linear_attention, &c, 2, 7, 5e-3f, 5e-4, 1e-2, 12);
    }
}

static void test_long_large_inputs_stay_finite(void)
{
    for (int i = 0; i < NVARIANTS; i++) {
        sl_config c;
        tiny(&c, VARIANTS[i].phi, VARIANTS[i].normalize, VARIANTS[i].f);
        c.chunk_size = 64;
        mc_check_long_finite(&sl_mixer_linear_attention, &c, 4096, 100.0f);
    }
}

/* causal = false: the output at t looks at every token of its sequence;
 * packed sequences stay apart; gradients by finite differences. The op's
 * test checks the sums against their definition. */
static void test_bidirectional(void)
{
    static const int64_t lens[] = {7, 0, 1, 5, 12};
    for (int i = 0; i < NVARIANTS; i++) {
        sl_config c;
        tiny(&c, VARIANTS[i].phi, VARIANTS[i].normalize, VARIANTS[i].f);
        c.causal = false;
        mc_check_sees_future(&sl_mixer_linear_attention, &c, 9);
        mc_check_packed(&sl_mixer_linear_attention, &c, lens, 5, 1e-4);
        if (strcmp(VARIANTS[i].phi, "relu") != 0)
            mc_check_gradient(&sl_mixer_linear_attention, &c, 2, 7, 5e-3f, 5e-4, 1e-2, 12);
    }
}

static void test_refused_configurations(void)
{
    static const struct {
        const char *phi, *key;
        bool normalize;
    } bad[] = {{"cosformer", "feature_map", false}, {"identity", "normalize", true}};
    for (int i = 0; i < 2; i++) {
        sl_config c;
        tiny(&c, bad[i].phi, bad[i].normalize, 0);
        sl_mixer m = {.vt = &sl_mixer_linear_attention, .cfg = &c};
        sl_params p;
        sl_params_init(&p);
        CHECK(sl_mixer_linear_attention.init(&m, &p) == SL_ERR_CONFIG, "%s accepted", bad[i].phi);
        CHECK(strstr(sl_errmsg(), bad[i].key) != NULL, "message names '%s': %s", bad[i].key,
              sl_errmsg());
        CHECK(m.impl == NULL && p.count == 0, "nothing allocated or declared");
        sl_params_free(&p);
    }
}

int main(void)
{
    RUN(test_step_matches_forward);
    RUN(test_split_matches_whole);
    RUN(test_packed_matches_one_by_one);
    RUN(test_gradient_finite_differences);
    RUN(test_long_large_inputs_stay_finite);
    RUN(test_bidirectional);
    RUN(test_refused_configurations);
    return TEST_SUMMARY();
}
