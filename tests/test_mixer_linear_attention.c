/* The linear_attention mixer's own checks beyond tests/test_mixers.c
 * (which runs every accepted feature map, normaliser and feature_dim,
 * causal and bidirectional): the combinations it refuses. */
#include "mixer_check.h"

extern const sl_mixer_vtable sl_mixer_linear_attention;

/* An unknown feature map is refused when the option is set, naming the
 * option and the choices; identity with the normaliser (phi(q) . phi(k)
 * may be negative) when the mixer is created, with nothing allocated. */
static void test_refused_configurations(void)
{
    mc_cfg c;
    mc_tiny(&c, &sl_mixer_linear_attention);
    CHECK(sl_opts_set(&c.opts, "mixer 'linear_attention'", "test", "feature_map", "cosformer",
                      false) == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "feature_map") && strstr(sl_errmsg(), "elu1, relu"),
          "cosformer refused: %s", sl_errmsg());
    CHECK(mc_set(&c, &sl_mixer_linear_attention, "feature_map", "identity") &&
              mc_set(&c, &sl_mixer_linear_attention, "normalize", "true"),
          "settings");
    sl_mixer m;
    sl_params p;
    sl_params_init(&p);
    CHECK(sl_mixer_create(&m, &sl_mixer_linear_attention, &c.dims, &c.opts, 0, &p) ==
                  SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "normalize") && strstr(sl_errmsg(), "linear_attention"),
          "identity + normalize refused: %s", sl_errmsg());
    CHECK(m.impl == NULL && p.count == 0, "nothing allocated or declared");
    sl_params_free(&p);
}

int main(void)
{
    RUN(test_refused_configurations);
    return TEST_SUMMARY();
}
